"""Benchmark: a burst of guardians opening their links (/r/<token> read reports, /c/<token> CoCo-net) under gunicorn.

Run with ``.venv/bin/python bench/guardian_burst.py [--with-blast] [--workers N] [--unpinned] [--keep-alive]``.
In a throw-away data dir it seeds 40,000 guardians in ``--schools`` schools
(``bench/webui_latency.py``'s ``seed``, with signed-in staff at the first school), then plays
a regional earthquake: every school sends a message to all its guardians and opens a CoCo-net
event with every class marked protected and a few notices. It issues a read token per
guardian (``tokens.issue_tokens``) and a CoCo-net link per guardian
(``coconet.guardian_links``), and starts gunicorn as ``appliance web`` does
(``gunicorn_command``: the front's worker, webui/front.py, a CPU each; ``--workers`` changes their number,
``--unpinned`` leaves them to the scheduler).

The load generator is wrk (Debian's package; ``bench/burst.lua`` gives every request a
different guardian's link): ``--connections`` connections on ``--wrk-threads`` threads, each
sending its next request as soon as the last answer is in (closed loop: the most the server
gives). Each request comes on a connection of its own, as each guardian's phone opens its
own (``Connection: close``; wrk connects again inside the request's time); ``--keep-alive``
sends them one after another on the same connections instead, to compare. wrk's C costs a
small part of what the server spends.

Each burst runs ``--seconds`` and sends every request to a different guardian's link (a
link is sent again only once wrk runs out of them, and the figures say so): every /r/
request records a first read (a write), every /c/ request records an opening (CoCo-net
records each one). All requests come from 127.0.0.1, so the
rate limiter on link guessing would see one client: a 429 among valid links is a bug and is
printed as such. During each burst ``--staff`` signed-in staff open the staff pages (one
every ``--think`` s on average, in another process) and their p95 is printed against the
300 ms target: the school's message pages during the read reports, its CoCo-net dashboard and
a class's roll call during the CoCo-net burst. ``--with-blast`` runs bench/blast.py (our MTA only, its own data dir) and
measures while its MTA sends. ``--profile N`` instead opens N /r/ links (and N /c/ links) in
this process through the front (its ASGI app called directly) under cProfile and prints where
the time goes.

After the two bursts the same gunicorn command serves bench/_reference_app.py, a fixed 7 KB
page, and gets the same two bursts: for /r/ links the ASGI callable answers it alone (the
server's own share of a first tap), for /c/ links a Flask view does (the share of every page
Flask renders), on this machine, in the same run.

Prints figures and the targets (2,000 requests/s with p99 under 250 ms); asserts nothing.
``cpu ms`` is the web workers' CPU time (user and system, from /proc) per answer, the staff
pages they served meanwhile included: unlike the rate, it hardly changes with what else the
machine runs, and on 2 cores the target needs it under 1 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import pstats
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from blast import BODY, SUBJECT, free_port
from webui_latency import PAGES, Blast, Staff, load, measure, report, seed, serve, stop_process, web_command

from appliance import coconet, db, roster, tokens
from appliance.messages import create_message
from appliance.models import Recipient, School

TARGET_RATE = 2_000
TARGET_P99_MS = 250
LUA = Path(__file__).with_name("burst.lua")
# What staff open during the CoCo-net burst (during the read reports': webui_latency's PAGES).
COCONET_PAGES = (
    "/admin/s/{code}/coconet/{event}/",
    "/admin/s/{code}/coconet/{event}/class/1/1",
    "/status",
)


# --- the load generator: wrk --------------------------------------------------------------------

class Result:
    """What a burst got, from bench/burst.lua's summary line: rate, latency percentiles, statuses, errors."""

    def __init__(self, summary: dict, links: int):
        self.requests = summary["requests"]
        self.wall = summary["us"] / 1e6
        self.percentiles = [summary[key] / 1000 for key in ("p50", "p95", "p99", "max")]
        self.size = summary["bytes"] / max(self.requests, 1)
        self.statuses = Counter()
        for counts in summary["statuses"]:
            self.statuses.update({int(code): count for code, count in counts.items()})
        self.errors = {what: count for what, count in summary["errors"].items() if count}
        self.repeats = max(self.requests - links, 0)
        self.cpu = 0.0      # seconds the web workers used during the burst (set by the caller)

    def line(self, label: str) -> str:
        """One printed line: requests/s, percentiles, statuses and errors."""
        rate = self.requests / self.wall if self.wall else 0.0
        p50, p95, p99, most = self.percentiles
        met = "met" if rate >= TARGET_RATE and p99 < TARGET_P99_MS else "NOT MET"
        statuses = " ".join(f"{code}:{count}" for code, count in sorted(self.statuses.items()))
        errors = "  errors: " + " ".join(f"{what} x{count}" for what, count in self.errors.items()) if self.errors else ""
        repeats = f"  ({self.repeats} repeated links)" if self.repeats else ""
        cpu_ms = self.cpu / max(self.requests, 1) * 1000
        return (f"{label:<22} {self.requests:>7} {self.wall:6.1f} {rate:8.0f} {p50:8.1f} {p95:8.1f} {p99:8.1f} "
                f"{most:8.0f} {self.size / 1024:6.1f} {cpu_ms:7.2f}  {met:<7}  {statuses}{errors}"
                f"{repeats}")


HEADER = (f"{'burst':<22} {'answers':>7} {'s':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'KB':>6} {'cpu ms':>7}  {TARGET_RATE}/s & p99<{TARGET_P99_MS}ms  statuses")


def burst(base: str, paths: list[str], connections: int, seconds: float, threads: int,
          keep_alive: bool = False) -> Result:
    """GET each path (once, while they last) with wrk over `connections` connections for `seconds`."""
    with tempfile.NamedTemporaryFile("w", suffix=".paths") as listed:
        listed.write("\n".join(paths) + "\n")
        listed.flush()
        run = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                              "-s", str(LUA), f"http://{base}", "--", str(threads), "keep-alive" if keep_alive else "close"],
                             env=dict(os.environ, BURST_PATHS=listed.name), capture_output=True, text=True,
                             check=True)
    summary = [line for line in run.stdout.splitlines() if line.startswith("BURST ")]
    if not summary:
        raise SystemExit(f"wrk printed no summary:\n{run.stdout}{run.stderr}")
    return Result(json.loads(summary[-1].removeprefix("BURST ")), len(paths))


# --- staff pages at the same time -----------------------------------------------------------------

def _staff_pages(base: str, count: int, templates: tuple[str, ...], paths: list[str], seconds: float,
                 think: float) -> None:
    clients = [Staff(base) for _ in range(count)]
    for number, client in enumerate(clients):
        client.sign_in(f"bench-staff{number:02d}")
    timings, errors, wall = measure(clients, paths, seconds, think)
    print(f"  staff pages during the burst ({count} staff, ~{think:g} s between pages):", flush=True)
    report(timings, errors, paths, list(templates), wall)


def staff_alongside(base: str, args, templates: tuple[str, ...], ids: dict[str, str]):
    """Start the staff's page loads in another process (its own GIL) for the burst's length, or None."""
    if not args.staff:
        return None
    paths = [template.format(**ids) for template in templates]
    process = multiprocessing.Process(target=_staff_pages,
                                      args=(base, args.staff, templates, paths, args.seconds, args.think))
    process.start()
    return process


# --- seeding and profiling ------------------------------------------------------------------------

def prepare(app, code: str) -> tuple[list[str], list[str], str]:
    """A regional earthquake: every school messages all its guardians and opens CoCo-net (every class
    protected, notices). Return the /r/ and /c/ paths (one per guardian each) and `code`'s event id."""
    started = time.perf_counter()
    events = {}
    for school in School.select().order_by(School.code):
        if school.code != code:         # seed() sent `code`'s message
            create_message(app, school, audience="all", subject=SUBJECT, body=BODY, priority="emergency",
                           actor="bench")
        event = events[school.code] = coconet.open_event(
            app, school, kind="earthquake", title="地震発生に伴う児童の安否確認",
            body="児童は全員、体育館で待機しています。", send_notice=False, actor="bench")
        for grade, class_name in roster.school_classes(school):
            coconet.set_class_state(app, event, grade, class_name, "protected", place="体育館", actor="bench")
        for number in range(1, 4):
            coconet.post_notice(app, event, f"お知らせ{number}: 引き渡しは正門で行います。身分証をお持ちください。",
                                actor="bench")
    pairs = list(Recipient.select(Recipient.guardian, Recipient.message).order_by(Recipient.id).tuples())
    issued = tokens.issue_tokens(app, "read", pairs)
    read = [f"/r/{issued[pair]}" for pair in pairs]
    links = coconet.guardian_links(app, [gid for gid, _ in pairs])
    base = app.config["web"]["base_url"].rstrip("/")
    check = [links[gid].removeprefix(base) for gid, _ in pairs]
    db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"{len(events)} schools each sent a message and opened a CoCo-net event; issued {len(read):,d} read "
          f"tokens and {len(check):,d} CoCo-net links in {time.perf_counter() - started:.1f} s", flush=True)
    return read, check, events[code].id


def profile(app, read: list[str], check: list[str], count: int, lines: int) -> None:
    """Open `count` links of each kind through the front (webui/front.py, its ASGI app called in this process's
    event loop, as uvicorn calls it) under cProfile; print where the time goes."""
    from webui import create_app      # only here: the measured runs import no Flask in this process
    from webui.front import Front
    from webui.group_commit import GroupCommit

    # One link after another: each commit at once, not 10 ms after the last one started.
    front = Front(create_app({"APPLIANCE": app, "DATA_DIR": app.data_dir}), GroupCommit(gather_seconds=0))

    async def opened(paths: list[str]) -> None:
        for path in paths:
            if (status := await _front_status(front, path)) != 200:
                raise SystemExit(f"{path} answered {status}")
    try:
        for label, paths in (("/r/<token>", read), ("/c/<token>", check)):
            asyncio.run(opened(paths[-1:]))     # warm: templates compiled, the page kept ready, connections
            timed = paths[count:2 * count]
            started = time.perf_counter()
            asyncio.run(opened(timed))
            plain = (time.perf_counter() - started) / len(timed)
            profiled = paths[:count]
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            asyncio.run(opened(profiled))
            profiler.disable()
            wall = time.perf_counter() - started
            print(f"\n=== {label}: in-process {plain * 1000:.2f} ms a request ({len(timed)} requests, first reads, "
                  f"each waiting for its own commit); under cProfile {wall / len(profiled) * 1000:.2f} ms (the event "
                  "loop's thread only: the inserts run on the group commit's writer thread) ===")
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(lines)
            stats.sort_stats("tottime").print_stats(lines)
    finally:
        front.commits.close()


async def _front_status(front, path: str) -> int:
    """One GET through the front, as uvicorn hands it over; its status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 50000), "server": ("bench", 80)}
    started = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(event):
        started.setdefault("status", event.get("status"))
    await front(scope, receive, send)
    return started["status"]


# --- the run --------------------------------------------------------------------------------------

def workers_cpu(master: int) -> float:
    """CPU seconds (user and system) the gunicorn master's worker processes have used so far."""
    ticks = 0
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])       # utime, stime: the stat file's 14th and 15th fields
    return ticks / os.sysconf("SC_CLK_TCK")


def measured_burst(web: subprocess.Popen, bind: str, paths: list[str], args: argparse.Namespace) -> Result:
    """One burst, with the CPU time gunicorn's workers spent on it."""
    cpu_before = workers_cpu(web.pid)
    result = burst(bind, paths, args.connections, args.seconds, args.wrk_threads, args.keep_alive)
    result.cpu = workers_cpu(web.pid) - cpu_before
    return result


def run(args: argparse.Namespace) -> None:
    """Seed, serve, burst /r/ then /c/ then the reference (during a blast if asked), print, take all down."""
    workdir = Path(tempfile.mkdtemp(prefix="renraku-burst-"))
    bind = f"127.0.0.1:{free_port(('127.0.0.1',))}"
    web = blast = None
    try:
        print(f"cpus: {os.cpu_count()}, load average {load()}", flush=True)
        args.clients = max(args.staff, 1)       # webui_latency.seed's staff accounts
        app, code, message_id = seed(workdir / "data", args, bind)
        read, check, event_id = prepare(app, code)
        ids = {"code": code, "message": message_id, "event": event_id}
        if args.profile:
            profile(app, read, check, args.profile, args.profile_lines)
            return
        db.close_database()     # gunicorn's workers have the database to themselves
        command = web_command(app, workers=args.workers, pinned=not args.unpinned)
        web = serve(command, app, workdir / "web.log", bind)
        burst(bind, [read[-1], check[-1]], 4, 1, 1)       # warm every worker: templates, connections
        if args.with_blast:
            blast = Blast(args.blast_guardians)
            blast.wait_sending()
        workers = command[command.index("--workers") + 1]
        print(f"\ngunicorn: {workers} workers (webui.front.Worker, {'a CPU each' if '--config' in command else 'unpinned'}), "
              f"wrk: {args.connections} connections on {args.wrk_threads} threads, closed loop, "
              f"{'keep-alive' if args.keep_alive else 'a connection per request'}"
              f", up to {args.seconds:g} s per burst, each request a different guardian", flush=True)
        results = {}
        for label, paths, pages in (("/r/<token> read report", read[:-1], PAGES),
                                    ("/c/<token> CoCo-net", check[:-1], COCONET_PAGES)):
            load_before = load()
            staff = staff_alongside(f"http://{bind}", args, pages, ids)
            results[label] = measured_burst(web, bind, paths, args)
            if staff is not None:
                staff.join()
            print(f"{label}: load average before {load_before}, after {load()}", flush=True)
        stop_process(web)
        # The references: the same gunicorn serving a fixed page (bench/_reference_app.py), the same bursts.
        web = serve(command[:-1] + ["--chdir", str(Path(__file__).parent), "_reference_app:app"], app,
                    workdir / "reference.log", bind)
        results["fixed page, server"] = measured_burst(web, bind, read[:-1], args)
        results["fixed page, Flask"] = measured_burst(web, bind, check[:-1], args)
        if blast is not None and blast.process.poll() is not None:
            print(f"WARNING: blast.py ended (exit {blast.process.returncode}) before the bursts did: part of "
                  "them ran without the blast (lower --seconds or raise --blast-guardians)")
        print("\n" + HEADER)
        for label, result in results.items():
            print(result.line(label))
            if result.statuses.get(429):
                print(f"  BUG: {result.statuses[429]} valid links were refused by the rate limiter (429)")
    finally:
        if blast is not None:
            blast.stop()
        if web is not None:
            stop_process(web)
        db.close_database()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guardians", type=int, default=40_000)
    parser.add_argument("--addresses", type=int, default=1, help="addresses per guardian (1-4)")
    parser.add_argument("--schools", type=int, default=30, help="schools the guardians are spread over")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections of the generator")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk's threads")
    # 14 s: 40,000 links last up to ~2,850 requests/s; past that the repeated links (reads again, which write
    # nothing) would flatter the figures.
    parser.add_argument("--seconds", type=float, default=14.0, help="longest a burst runs")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: [web] workers)")
    parser.add_argument("--unpinned", action="store_true",
                        help="leave the workers to the scheduler, as [web] pin_workers = false (to compare)")
    parser.add_argument("--keep-alive", action="store_true",
                        help="send the requests one after another on the connections (default: one per connection)")
    parser.add_argument("--staff", type=int, default=5, help="signed-in staff opening pages during each burst (0: none)")
    parser.add_argument("--think", type=float, default=1.0, help="average seconds between a staff member's pages")
    parser.add_argument("--with-blast", action="store_true", help="measure while bench/blast.py's MTA sends")
    parser.add_argument("--blast-guardians", type=int, default=40_000, help="blast.py --guardians")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile N requests of each kind in-process (through the front) instead")
    parser.add_argument("--profile-lines", type=int, default=25)
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # a kill stops blast.py and gunicorn too
    run(parser.parse_args())


if __name__ == "__main__":
    main()
