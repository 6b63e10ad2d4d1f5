"""Benchmark: a burst of guardians opening their links (/r/<token> read reports, /c/<token> CoCo-net) under gunicorn.

Run with ``.venv/bin/python bench/guardian_burst.py [--with-blast] [--workers N] [--threads N]``.
In a throw-away data dir it seeds 40,000 guardians (``bench/webui_latency.py``'s ``seed``:
one school, a message to all of them, signed-in staff), opens a CoCo-net event with every
class marked protected and a few notices, issues a read token per guardian
(``tokens.issue_tokens``) and a CoCo-net link per guardian (``coconet.guardian_links``), and
starts gunicorn as ``appliance web`` does (``gunicorn_command``; ``--workers`` and
``--threads`` change it, to compare).

The load generator is asyncio on raw HTTP/1.1 sockets in this process: ``--connections``
connections, each sending its next request as soon as the last answer is in (closed loop,
the most the server gives), or, with ``--rate``, each request at its scheduled time (open
loop: a late answer delays nothing but its own latency, which is counted from when the
request was due, so a stalled server shows as latency and not as fewer requests). A
connection the server closes (gunicorn's sync workers close after every answer) is opened
again, inside the request's time. Before anything else it measures its own ceiling against a
trivial server in another process (a fixed answer, kept alive, and a fresh connection per
request, as sync workers force) and prints it: figures near that ceiling measure the
generator, not the appliance.

Each burst sends every request to a different guardian's link (up to ``--seconds`` or until
the links run out): every /r/ request records a first read (a write), every /c/ request
records an opening (CoCo-net records each one). All requests come from 127.0.0.1, so the
rate limiter on link guessing would see one client: a 429 among valid links is a bug and is
printed as such. During each burst ``--staff`` signed-in staff open the staff pages (one
every ``--think`` s on average, in another process) and their p95 is printed against the
300 ms target. ``--with-blast`` runs bench/blast.py (our MTA only, its own data dir) and
measures while its MTA sends. ``--profile N`` instead opens N /r/ links (and N /c/ links) in
this process with Flask's test client under cProfile and prints where the time goes.

Prints figures and the targets (2,000 requests/s with p99 under 250 ms); asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import multiprocessing
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from blast import free_port, wait_for_port
from webui_latency import PAGES, Blast, Staff, measure, report, seed, stop_process

from appliance import coconet, db, tokens
from appliance.cli.services import gunicorn_command
from appliance.models import Recipient, School

TARGET_RATE = 2_000
TARGET_P99_MS = 250
CEILING_REQUESTS = 20_000


# --- the load generator ---------------------------------------------------------------------------

async def exchange(loop, sock: socket.socket, request: bytes, buffer: bytearray) -> tuple[int, bool, int]:
    """Send one request on the socket and read its answer (by Content-Length); return (status, closes, length)."""
    # The loop's sock_* calls, not transports and protocols: a fresh connection per request
    # (sync workers) then costs the generator half as much.
    await loop.sock_sendall(sock, request)
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = int(head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0     # a 304 has none
            if len(buffer) >= end + 4 + length:
                del buffer[:end + 4 + length]
                return int(head[9:12]), b"\r\nconnection: close" in head, length
        data = await loop.sock_recv(sock, 65536)
        if not data:
            raise ConnectionError("closed before the answer")
        buffer += data


class Result:
    """What a burst got: latencies of 200s (seconds), statuses, errors, bytes, wall time."""

    def __init__(self):
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.errors: Counter = Counter()
        self.sizes: list[int] = []
        self.wall = 0.0

    def line(self, label: str) -> str:
        """One printed line: requests/s, percentiles, statuses and errors."""
        done = len(self.latencies)
        rate = sum(self.statuses.values()) / self.wall if self.wall else 0.0
        if done >= 2:
            cuts = statistics.quantiles([t * 1000 for t in self.latencies], n=100, method="inclusive")
            p50, p95, p99 = cuts[49], cuts[94], cuts[98]
            figures = f"{p50:8.1f} {p95:8.1f} {p99:8.1f} {max(self.latencies) * 1000:8.0f}"
        else:
            figures, p99 = f"{'-':>8} {'-':>8} {'-':>8} {'-':>8}", float("inf")
        size = f"{statistics.mean(self.sizes) / 1024:6.1f}" if self.sizes else f"{'-':>6}"
        statuses = " ".join(f"{code}:{count}" for code, count in sorted(self.statuses.items()))
        errors = " ".join(f"{what} x{count}" for what, count in self.errors.most_common(2))
        met = "met" if rate >= TARGET_RATE and p99 < TARGET_P99_MS else "NOT MET"
        return (f"{label:<22} {sum(self.statuses.values()):>7} {self.wall:6.1f} {rate:8.0f} {figures} {size}  "
                f"{met:<7}  {statuses}{'  errors: ' + errors if errors else ''}")


HEADER = (f"{'burst':<22} {'answers':>7} {'s':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'KB':>6}  {TARGET_RATE}/s & p99<{TARGET_P99_MS}ms  statuses")


async def _burst(host: str, port: int, paths, connections: int, seconds: float, rate: float) -> Result:
    loop = asyncio.get_running_loop()
    result = Result()
    jobs = enumerate(paths)         # shared by the connections: one event loop, no lock needed
    started = loop.time()
    deadline = started + seconds

    async def client() -> None:
        sock: socket.socket | None = None
        buffer = bytearray()
        for number, path in jobs:
            due = started + number / rate if rate else loop.time()
            if due >= deadline:
                break
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
            try:
                if sock is None:
                    sock = socket.socket()
                    sock.setblocking(False)
                    await loop.sock_connect(sock, (host, port))
                    buffer.clear()
                status, close, length = await exchange(loop, sock, request, buffer)
                if close:
                    sock.close()
                    sock = None
            except (OSError, ConnectionError) as error:
                result.errors[type(error).__name__] += 1
                if sock is not None:
                    sock.close()
                sock = None
                continue
            result.statuses[status] += 1
            if status == 200:
                result.latencies.append(loop.time() - due)
                result.sizes.append(length)
        if sock is not None:
            sock.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.wall = loop.time() - started
    return result


def burst(base: str, paths, connections: int, seconds: float, rate: float = 0.0) -> Result:
    """GET each path once over `connections` connections, for at most `seconds`; return the figures."""
    host, port = base.rsplit(":", 1)
    return asyncio.run(_burst(host, int(port), paths, connections, seconds, rate))


# --- the generator's ceiling --------------------------------------------------------------------

class _Static(asyncio.Protocol):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def __init__(self, close: bool):
        self.close = close

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.close:
            self.transport.write(self.answer.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
            self.transport.close()
        else:
            self.transport.write(self.answer * data.count(b"\r\n\r\n"))


def _serve_static(port: int, close: bool) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)     # main()'s handler, inherited: stop quietly
    async def serve():
        server = await asyncio.get_running_loop().create_server(lambda: _Static(close), "127.0.0.1", port,
                                                                backlog=1024)
        await server.serve_forever()
    asyncio.run(serve())


def ceiling(connections: int) -> dict[str, Result]:
    """The generator against a trivial server in another process: kept alive, and a connection per request."""
    found = {}
    for label, close in (("static keep-alive", False), ("static new connection", True)):
        port = free_port(("127.0.0.1",))
        server = multiprocessing.Process(target=_serve_static, args=(port, close), daemon=True)
        server.start()
        try:
            wait_for_port("127.0.0.1", port)
            found[label] = burst(f"127.0.0.1:{port}", itertools.repeat("/", CEILING_REQUESTS), connections, 60)
        finally:
            server.terminate()
            server.join()
    return found


# --- staff pages at the same time -----------------------------------------------------------------

def _staff_pages(base: str, count: int, paths: list[str], seconds: float, think: float) -> None:
    clients = [Staff(base) for _ in range(count)]
    for number, client in enumerate(clients):
        client.sign_in(f"bench-staff{number:02d}")
    timings, errors, wall = measure(clients, paths, seconds, think)
    print(f"  staff pages during the burst ({count} staff, ~{think:g} s between pages):", flush=True)
    report(timings, errors, paths, list(PAGES), wall)


def staff_alongside(base: str, args, code: str, message_id: str, seconds: float):
    """Start the staff's page loads in another process (its own GIL) for the burst's length, or None."""
    if not args.staff:
        return None
    paths = [template.format(code=code, message=message_id) for template in PAGES]
    process = multiprocessing.Process(target=_staff_pages, args=(base, args.staff, paths, seconds, args.think))
    process.start()
    return process


# --- seeding and profiling ------------------------------------------------------------------------

def prepare(app, code: str, message_id: str) -> tuple[list[str], list[str]]:
    """Open a CoCo-net event (every class protected, notices); return the /r/ and /c/ paths, one per guardian."""
    started = time.perf_counter()
    school = School.get(School.code == code)
    event = coconet.open_event(app, school, kind="earthquake", title="地震発生に伴う児童の安否確認",
                               body="児童は全員、体育館で待機しています。", send_notice=False, actor="bench")
    for grade, class_name in coconet.school_classes(school):
        coconet.set_class_state(app, event, grade, class_name, "protected", place="体育館", actor="bench")
    for number in range(1, 4):
        coconet.post_notice(app, event, f"お知らせ{number}: 引き渡しは正門で行います。身分証をお持ちください。",
                            actor="bench")
    guardians = [gid for (gid,) in Recipient.select(Recipient.guardian).where(Recipient.message == message_id)
                 .order_by(Recipient.id).tuples()]
    issued = tokens.issue_tokens(app, "read", [(gid, message_id) for gid in guardians])
    read = [f"/r/{issued[(gid, message_id)]}" for gid in guardians]
    links = coconet.guardian_links(app, guardians)
    base = app.config["web"]["base_url"].rstrip("/")
    check = [links[gid].removeprefix(base) for gid in guardians]
    db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"opened a CoCo-net event, issued {len(read):,d} read tokens and {len(check):,d} CoCo-net links "
          f"in {time.perf_counter() - started:.1f} s", flush=True)
    return read, check


def profile(app, read: list[str], check: list[str], count: int, lines: int) -> None:
    """Open `count` links of each kind with Flask's test client under cProfile; print where the time goes."""
    from webui import create_app      # only here: the measured runs import no Flask in this process

    web = create_app({"APPLIANCE": app, "DATA_DIR": app.data_dir})
    client = web.test_client()
    for label, paths in (("/r/<token>", read), ("/c/<token>", check)):
        client.get(paths[-1])       # warm: templates compiled, connections opened
        started = time.perf_counter()
        for path in paths[count:2 * count]:
            client.get(path)
        plain = (time.perf_counter() - started) / count
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for path in paths[:count]:
            status = client.get(path).status_code
            if status != 200:
                raise SystemExit(f"{path} answered {status}")
        profiler.disable()
        wall = time.perf_counter() - started
        print(f"\n=== {label}: in-process {plain * 1000:.2f} ms a request ({count} requests, first reads); "
              f"under cProfile {wall / count * 1000:.2f} ms ===")
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(lines)
        stats.sort_stats("tottime").print_stats(lines)


# --- the run --------------------------------------------------------------------------------------

def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def run(args: argparse.Namespace) -> None:
    """Measure the ceiling, seed, serve, burst /r/ then /c/ (during a blast if asked), print, take all down."""
    workdir = Path(tempfile.mkdtemp(prefix="renraku-burst-"))
    bind = f"127.0.0.1:{free_port(('127.0.0.1',))}"
    web = blast = None
    try:
        if not args.profile:
            print(f"cpus: {os.cpu_count()}, load average {load()}; the generator's ceiling "
                  f"({CEILING_REQUESTS:,d} requests, {args.connections} connections):", flush=True)
            print(HEADER)
            for label, result in ceiling(args.connections).items():
                print(result.line(label), flush=True)
        args.clients = max(args.staff, 1)       # webui_latency.seed's staff accounts
        app, code, message_id = seed(workdir / "data", args, bind)
        read, check = prepare(app, code, message_id)
        if args.profile:
            profile(app, read, check, args.profile, args.profile_lines)
            return
        db.close_database()     # gunicorn's workers have the database to themselves
        command = gunicorn_command(app)
        command[command.index("--workers") + 1] = str(args.workers or app.config["web"]["workers"])
        if args.threads:
            command[3:3] = ["--worker-class", "gthread", "--threads", str(args.threads)]
        with open(workdir / "web.log", "wb") as log:
            web = subprocess.Popen(command, env=dict(os.environ, APPLIANCE_DATA_DIR=str(app.data_dir)),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        host, port = bind.rsplit(":", 1)
        wait_for_port(host, int(port), timeout=30)
        burst(bind, [read[-1], check[-1]] * 20, 2, 30)       # warm every worker: templates, connections
        if args.with_blast:
            blast = Blast(args.blast_guardians)
            blast.sending.wait()
            if blast.process.poll() is not None:
                raise SystemExit(f"blast.py ended (exit {blast.process.returncode}) before its MTA sent anything")
            print("measuring while the blast's MTA sends", flush=True)
        workers = command[command.index("--workers") + 1]
        print(f"\ngunicorn: {workers} workers{f' x {args.threads} threads (gthread)' if args.threads else ' (sync)'}, "
              f"{args.connections} connections, {f'{args.rate:g} requests/s scheduled' if args.rate else 'closed loop'}"
              f", up to {args.seconds:g} s per burst, each request a different guardian", flush=True)
        results = {}
        for label, paths in (("/r/<token> read report", read[:-1]), ("/c/<token> CoCo-net", check[:-1])):
            load_before = load()
            staff = staff_alongside(f"http://{bind}", args, code, message_id, args.seconds)
            results[label] = burst(bind, paths, args.connections, args.seconds, args.rate)
            if staff is not None:
                staff.join()
            print(f"{label}: load average before {load_before}, after {load()}", flush=True)
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
    parser.add_argument("--schools", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections of the generator")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests/s scheduled (open loop); default: closed loop, as fast as answered")
    parser.add_argument("--seconds", type=float, default=20.0, help="longest a burst runs")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: [web] workers)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="gthread workers with N threads each instead of `appliance web`'s sync workers")
    parser.add_argument("--staff", type=int, default=5, help="signed-in staff opening pages during each burst (0: none)")
    parser.add_argument("--think", type=float, default=1.0, help="average seconds between a staff member's pages")
    parser.add_argument("--with-blast", action="store_true", help="measure while bench/blast.py's MTA sends")
    parser.add_argument("--blast-guardians", type=int, default=40_000, help="blast.py --guardians")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile N requests of each kind in-process (Flask test client) instead")
    parser.add_argument("--profile-lines", type=int, default=25)
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # a kill stops blast.py and gunicorn too
    run(parser.parse_args())


if __name__ == "__main__":
    main()
