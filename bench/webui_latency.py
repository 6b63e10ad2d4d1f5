"""Benchmark: latency of the staff pages (p50/p95/p99) under 20 concurrent signed-in staff, optionally during a blast.

Run with ``.venv/bin/python bench/webui_latency.py [--pages PATH ...] [--with-blast]``. In a
throw-away data dir it seeds 40,000 guardians with 4 addresses each (``seed_bench``, what
``appliance bench seed`` runs; one school by default, the largest a page can face), creates
one message to all of them (160,000 deliveries, the follow-up page's subject) and 20
school_admin accounts, then starts gunicorn as ``appliance serve`` does (its web command,
2 workers, each an event loop running Flask for GETs one at a time: webui/front.py). Each of 20 clients signs
in through the form (a real CSRF token) and then, on its own thread, opens the pages one
after another, round and round, for ``--seconds``: with no pause by default (the worst
case), or with ``--think SECONDS`` (on average; each pause is drawn between half and one
and a half times it) between clicks, as staff reading a page do. A page answered with
anything but 200 on its own URL (a redirect to the sign-in is one) counts as an error, not as a latency.

``--with-blast`` runs ``bench/blast.py`` (our MTA only: ``--postfix-messages 0``) in a
subprocess and measures while its MTA is sending. blast.py keeps its own data dir, DNS
server and sinks, so the pages compete with it for the machine's CPU and disk, not for the
same database file. Prints figures and the 300 ms target; asserts nothing.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from http.cookiejar import CookieJar
from types import SimpleNamespace
from pathlib import Path

from blast import BODY, SUBJECT, free_port, wait_for_port

from appliance import db
from appliance.cli.services import MTA_NICE, gunicorn_command
from appliance.demo import seed_bench
from appliance.messages import create_message
from appliance.models import School
from appliance.runtime import init_data_dir
from appliance.staff import add_staff_user

# What staff open during a blast: {code} is the seeded school, {message} its 160,000-delivery message.
PAGES = (
    "/admin/s/{code}/",
    "/admin/s/{code}/messages/{message}",
    "/admin/s/{code}/messages/new",
    "/status",
)
TARGET_P95_MS = 300
PASSWORD = "bench-password-0123"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
BLAST_SENDING = "created the blast"      # blast.py's line before its MTA starts sending


class Staff:
    """One signed-in staff member: a cookie jar of their own, as a browser has."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def sign_in(self, login: str) -> None:
        """Sign in through the form: GET it for its CSRF token, POST it, land on the school."""
        with self.opener.open(self.base_url + "/admin/login", timeout=30) as response:
            token = CSRF.search(response.read().decode()).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "login": login, "password": PASSWORD}).encode()
        with self.opener.open(self.base_url + "/admin/login", data=form, timeout=30) as response:
            if "/admin/s/" not in response.geturl():
                raise RuntimeError(f"{login} did not land on a school page but on {response.geturl()}")

    def get(self, path: str) -> tuple[float, str | None]:
        """GET a page; return (seconds, None) or (seconds, what went wrong)."""
        url = self.base_url + path
        started = time.perf_counter()
        try:
            with self.opener.open(url, timeout=30) as response:
                response.read()
                problem = None if response.geturl() == url else f"redirected to {response.geturl()}"
        except (urllib.error.URLError, OSError) as error:
            problem = str(error)
        return time.perf_counter() - started, problem


def seed(data_dir: Path, args: argparse.Namespace, bind: str) -> tuple:
    """Create the data dir, its guardians, one message to all and the staff; return (app, code, message id)."""
    app = init_data_dir(data_dir, environ={}, overrides={
        "site": {"name": "bench"}, "web": {"bind": bind, "base_url": f"http://{bind}", "workers": 2}})
    started = time.perf_counter()
    seeded = seed_bench(app, schools=args.schools, guardians=args.guardians, addresses=args.addresses)
    school = School.get(School.code == "bench001")
    message = create_message(app, school, audience="all", subject=SUBJECT, body=BODY, priority="emergency",
                             actor="bench")
    for number in range(args.clients):
        add_staff_user(app, login=f"bench-staff{number:02d}", password=PASSWORD, role="school_admin",
                       school=school, display_name=f"職員{number}", actor="bench")
    db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"seeded {seeded.guardians:,d} guardians ({seeded.addresses:,d} addresses) in {seeded.schools} "
          f"school(s), a message to all of {school.code} and {args.clients} staff in "
          f"{time.perf_counter() - started:.1f} s (not part of the figures)")
    return app, school.code, message.id


def web_command(app, *, workers: int = 0, pinned: bool = True) -> list[str]:
    """The gunicorn command `appliance web` runs, with another number of workers or the workers left to the
    scheduler (as `[web] pin_workers = false`) if asked, to compare."""
    web = {**app.config["web"], **({"workers": workers} if workers else {}), **({} if pinned else {"pin_workers": False})}
    return gunicorn_command(SimpleNamespace(config={"web": web}))


def serve(command: list[str], app, log_path: Path, bind: str) -> subprocess.Popen:
    """Start gunicorn on the app's data dir with its output in a file; return once it listens."""
    with open(log_path, "wb") as log:      # a file: a pipe nobody reads fills and stalls the workers
        web = subprocess.Popen(command, env=dict(os.environ, APPLIANCE_DATA_DIR=str(app.data_dir)),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host, port = bind.rsplit(":", 1)
    wait_for_port(host, int(port), timeout=30)
    return web


def load() -> str:
    """The load averages, printed beside the figures."""
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def stop_process(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the process (blast.py and gunicorn stop in order on it); kill its group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _lower_session(pid: int) -> None:
    """Give the blast's session the MTA's priority against other sessions, as systemd's CPUWeight does.

    With the kernel's autogroup scheduling (on in Debian), nice orders processes only within
    their session; blast.py runs in a session of its own, so without this it would get half
    the CPU however nice its processes are.
    """
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(MTA_NICE))
    except OSError as error:
        print(f"note: could not lower the blast's autogroup ({error}); it competes as an equal", flush=True)


class Blast:
    """bench/blast.py (our MTA only) in a subprocess, its output echoed until it is stopped."""

    def __init__(self, guardians: int):
        self.process = subprocess.Popen(   # at the MTA's production priority (below the web UI)
            ["nice", "-n", str(MTA_NICE), sys.executable, str(Path(__file__).with_name("blast.py")),
             "--postfix-messages", "0",
             "--guardians", str(guardians)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))    # its lines as they come, not when it ends
        _lower_session(self.process.pid)
        self.sending = threading.Event()      # set once its MTA sends (or it has ended)
        self._quiet = threading.Event()
        threading.Thread(target=self._echo, daemon=True).start()

    def _echo(self) -> None:
        for line in self.process.stdout:      # read to the end even when quiet: a full pipe would stall it
            if not self._quiet.is_set():
                print(f"  blast| {line.rstrip()}", flush=True)
            if BLAST_SENDING in line:
                self.sending.set()
        self.sending.set()

    def wait_sending(self) -> None:
        """Return once its MTA sends; exit if blast.py ended before that."""
        self.sending.wait()
        if self.process.poll() is not None:
            raise SystemExit(f"blast.py ended (exit {self.process.returncode}) before its MTA sent anything")
        print("measuring while the blast's MTA sends", flush=True)

    def stop(self) -> None:
        """Stop echoing (its interrupted traceback is noise) and stop it."""
        self._quiet.set()
        stop_process(self.process)


def measure(clients: list[Staff], paths: list[str], seconds: float, think: float) -> tuple[dict, dict, float]:
    """Every client opens the pages in turn for this long, pausing about `think` s between them;
    return (seconds by path, errors by path, wall)."""
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(number: int, client: Staff) -> None:
        # Each client starts at another page, so every page is always being asked for; the
        # pauses are drawn at random so the clients do not click in step.
        pause = random.Random(number)
        for path in itertools.islice(itertools.cycle(paths), number % len(paths), None):
            if time.monotonic() >= deadline:
                return
            elapsed, problem = client.get(path)
            with lock:
                (errors[path].append(problem) if problem else timings[path].append(elapsed))
            if think:
                time.sleep(min(think * pause.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(run, range(len(clients)), clients))
    return timings, errors, time.perf_counter() - started


def report(timings: dict, errors: dict, paths: list[str], templates: list[str], wall: float) -> None:
    """Print p50/p95/p99 by page and whether p95 meets the target."""
    print(f"\n{'page':<44} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}  "
          f"p95 < {TARGET_P95_MS} ms")
    for path, template in zip(paths, templates):
        times = [t * 1000 for t in timings[path]]
        if len(times) < 2:
            print(f"{template:<44} {len(times):>8} (too few answers) errors {len(errors[path])}")
            continue
        cuts = statistics.quantiles(times, n=100, method="inclusive")
        p50, p95, p99 = cuts[49], cuts[94], cuts[98]
        print(f"{template:<44} {len(times):>8} {p50:8.0f} {p95:8.0f} {p99:8.0f} {max(times):8.0f} "
              f"{len(errors[path]):>6}  {'met' if p95 < TARGET_P95_MS else 'NOT MET'}")
        if errors[path]:
            print(f"  first error: {errors[path][0]}")
    total = sum(len(t) for t in timings.values())
    print(f"{total:,d} pages in {wall:.1f} s: {total / wall:,.0f} pages/s")


def run(args: argparse.Namespace) -> None:
    """Seed, serve, sign the staff in, measure (during a blast if asked), print, take everything down."""
    workdir = Path(tempfile.mkdtemp(prefix="renraku-webui-"))
    bind = f"127.0.0.1:{free_port(('127.0.0.1',))}"
    web = blast = None
    try:
        app, code, message_id = seed(workdir / "data", args, bind)
        db.close_database()     # gunicorn's workers have the database to themselves
        web = serve(web_command(app), app, workdir / "web.log", bind)
        clients = [Staff(f"http://{bind}") for _ in range(args.clients)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: clients[n].sign_in(f"bench-staff{n:02d}"), range(args.clients)))
        paths = [template.format(code=code, message=message_id) for template in args.pages]
        for client in clients[:1]:      # one warm-up round: the workers' first requests load templates
            for path in paths:
                client.get(path)
        print(f"cpus: {os.cpu_count()}, load average {load()}, "
              f"gunicorn workers: {app.config['web']['workers']}, "
              f"{args.clients} signed-in staff, "
              f"{f'thinking {args.think:g} s between pages' if args.think else 'no pause between pages'}, "
              f"{args.seconds:.0f} s")

        if args.with_blast:
            blast = Blast(args.blast_guardians)
            blast.wait_sending()
        timings, errors, wall = measure(clients, paths, args.seconds, args.think)
        if blast is not None:
            if blast.process.poll() is not None:
                print(f"WARNING: blast.py ended (exit {blast.process.returncode}) before the measurement did: "
                      "part of it ran without the blast (lower --seconds or raise --blast-guardians)")
            blast.stop()
        report(timings, errors, paths, args.pages, wall)
    finally:
        if blast is not None:
            blast.stop()
        if web is not None:
            stop_process(web)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", nargs="+", default=list(PAGES), metavar="PATH",
                        help="pages to open; {code} is the school, {message} its message (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent signed-in staff")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients keep asking")
    parser.add_argument("--think", type=float, default=0.0, metavar="SECONDS",
                        help="average pause between a client's pages, as staff read them (default: none, the worst case)")
    parser.add_argument("--guardians", type=int, default=40_000)
    parser.add_argument("--addresses", type=int, default=4, help="addresses per guardian (1-4)")
    parser.add_argument("--schools", type=int, default=1, help="schools the guardians are shared out over")
    parser.add_argument("--with-blast", action="store_true", help="measure while bench/blast.py's MTA sends")
    parser.add_argument("--blast-guardians", type=int, default=40_000, help="blast.py --guardians")
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # a kill stops blast.py and gunicorn too
    run(parser.parse_args())


if __name__ == "__main__":
    main()
