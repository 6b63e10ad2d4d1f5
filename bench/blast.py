"""Benchmark: an emergency blast to every guardian through our MTA, and the same mail through Postfix.

Run with ``.venv/bin/python bench/blast.py [--guardians 40000] [--addresses 4]`` (as root, for
Postfix and smtp-sink's ``-u postfix``). In a throw-away data dir it seeds one school of
40,000 guardians with 4 addresses each (on carrier and free-mail domains: docomo.ne.jp,
gmail.com, ...), creates one emergency message (160,000 deliveries) and times
``outbound.run(until_idle=True)`` (``mta.service.outbound_for``): claiming, rendering, DKIM
signing (in its worker processes), MX lookups and SMTP to four Postfix ``smtp-sink``
processes on 127.0.0.2-5, results written to the database.

Nothing can leave the machine: ``[mta] nameservers`` is only a DNS server on loopback (the
tests' ``DnsServer``) whose MX records point every seeded domain at one of the sinks, the
environment is not read, and the transport map is empty. The sinks are not carriers, so the
carriers' per-domain pacing (200/s each) is lifted unless ``--keep-pacing``; concurrency and
per-session limits stay as shipped.

Then, for the ratio, a private Postfix instance (temporary config, queue and log) relays
the same kind of mail (a second message, rendered and signed by the same code outside the
timing) to the same sinks: one SMTP transaction per address with the same VERP sender,
injected over a few connections; timed from the first injection until the sinks have all
of it. By default Postfix gets 20,000 of the messages (``--postfix-messages``; it runs at a
few hundred a second here): compare rates, not totals.

``--profile`` runs only our MTA, under cProfile and on one thread (what the engine hands
to threads runs inline), on a smaller run (e.g. ``--guardians 5000``), and prints where
the CPU goes by stage.

Prints figures; asserts nothing. A WARNING line says when not every message arrived.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import cProfile
import json
import os
import pstats
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from appliance import db, outbox
from appliance.demo import seed_bench
from appliance.messages import create_message, message_summary
from appliance.models import School
from appliance.runtime import init_data_dir
from appliance.sample_data import DOMAINS
from mta import dkim
from mta.outbound import Job
from mta.policy import KNOWN
from mta.service import outbound_for

SINK_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
SUBJECT = "【訓練】大規模地震を想定した引き渡し訓練のお知らせ"
BODY = """\
保護者の皆様

日頃より本校の教育活動にご理解とご協力をいただき、誠にありがとうございます。
これは訓練のお知らせです。実際の災害ではありません。

本日午前十時、震度六強の地震が発生したとの想定で、児童の引き渡し訓練を行います。
保護者の皆様は、登録された引き取り者カードをお持ちのうえ、午前十時三十分から
十一時三十分までの間に、体育館へお越しください。

・お車での来校はご遠慮ください。近隣の道路が混雑し、緊急車両の妨げになります。
・引き取り者カードをお持ちでない方には、お子様をお渡しできません。
・ご都合のつかない方は、このメールの下のリンクからその旨をお知らせください。
・お子様の安否は、連絡網アプリの「ここネット」でもご確認いただけます。

実際に大きな地震が起きたときも、同じ手順でお子様をお引き渡しします。
ご家庭でも、避難場所と連絡方法を改めてご確認ください。

ご協力をよろしくお願いいたします。
"""
PROGRESS_EVERY = 10.0      # seconds between progress lines while mail is moving
STALL_AFTER = 60.0         # seconds without a message at the sinks before giving up on Postfix


# -- the receiving side: four smtp-sink processes and a DNS server ------------------------------------

def free_port(hosts: tuple[str, ...]) -> int:
    """Return a TCP port free on every one of the hosts (the sinks share one port)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every sink address")


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Poll until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)


def proc_cpu(pid: int | str, children: bool = False) -> float:
    """Return a live process's (or "self/task/<tid>" thread's) CPU seconds, with its reaped children's if asked."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based here.
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class Sinks:
    """Postfix smtp-sink on port ``port`` of each host, counting messages (``-c``) into a file each."""

    _COUNTER = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)\r")

    def __init__(self, hosts: tuple[str, ...], port: int, workdir: Path):
        self.hosts, self.port, self.workdir = hosts, port, workdir
        self.processes: list[subprocess.Popen] = []

    def start(self) -> Sinks:
        """Start one smtp-sink per host and wait until each accepts connections."""
        as_user = ["-u", "postfix"] if os.geteuid() == 0 else []
        for host in self.hosts:
            with open(self._counter_file(host), "wb") as out:
                # Own session: a Ctrl-C at the terminal reaches us, and we stop the sinks in order.
                self.processes.append(subprocess.Popen(
                    ["smtp-sink", *as_user, "-c", "-m", "1000", f"{host}:{self.port}", "1000"],
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        for host in self.hosts:
            wait_for_port(host, self.port)
        return self

    def stop(self) -> None:
        """Stop every sink (process group) and reap it."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = []

    def counters(self) -> dict[str, tuple[int, int]]:
        """Return (sessions, messages) each sink has had so far, from its last complete counter line."""
        counts = {}
        for host in self.hosts:
            path = self._counter_file(host)
            with open(path, "rb") as counter:
                counter.seek(max(0, path.stat().st_size - 256))
                found = self._COUNTER.findall(counter.read())
            counts[host] = (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)
        return counts

    def received(self) -> dict[str, int]:
        """Return the messages each sink has taken so far."""
        return {host: messages for host, (_sessions, messages) in self.counters().items()}

    def total(self) -> int:
        """Return the messages all sinks have taken so far."""
        return sum(self.received().values())

    def sessions(self) -> int:
        """Return the SMTP sessions all sinks have had so far."""
        return sum(sessions for sessions, _messages in self.counters().values())

    def cpu_seconds(self) -> float:
        """Return the CPU seconds the sinks have used so far."""
        return sum(proc_cpu(p.pid) for p in self.processes)

    def _counter_file(self, host: str) -> Path:
        return self.workdir / f"sink-{host}.out"


def assign_domains(domains: dict[str, int], hosts: tuple[str, ...]) -> dict[str, str]:
    """Spread domains over the hosts, heaviest first onto the least loaded host, so each sink gets a fair share."""
    load = dict.fromkeys(hosts, 0)
    assignment = {}
    for domain, weight in sorted(domains.items(), key=lambda item: -item[1]):
        host = min(hosts, key=lambda h: load[h])
        assignment[domain] = host
        load[host] += weight
    return assignment


def start_dns(assignment: dict[str, str]):
    """Start the tests' DNS server on loopback with an MX for every domain, pointing at its sink."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:      # tests/ is not installed: import it from the checkout
        sys.path.insert(0, root)
    from tests.integration.dns_server import DnsServer

    server = DnsServer().start()
    for domain, host in assignment.items():
        server.zone.add_mx(domain, [(10, f"mx1.{domain}")])
        server.zone.add_a(f"mx1.{domain}", host)
    return server


# -- our side --------------------------------------------------------------------------------------------

@dataclass
class Usage:
    """Wall time, our process's CPU and peak RSS, and the sinks' CPU, between two snapshots."""

    wall: float
    cpu: float
    sinks_cpu: float

    @classmethod
    def now(cls, sinks: Sinks) -> Usage:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        return cls(time.perf_counter(), cpu, sinks.cpu_seconds())

    def since(self, start: Usage) -> Usage:
        return Usage(self.wall - start.wall, self.cpu - start.cpu, self.sinks_cpu - start.sinks_cpu)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Return the peak resident set so far (of this process, or its largest reaped child), in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


def rsa_rate(seconds: float = 0.3) -> float:
    """Return RSA-2048 signatures a second on one core now: the machine's pace, against DESIGN.md's 4,600/s."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(b"x" * 600, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - start)


def proc_status_kb(pid: int | str, field: str) -> int:
    """Return a size field (VmRSS, VmHWM) of /proc/<pid>/status in KB, or 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) so that a later reading covers only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Progress:
    """Prints the sinks' count every PROGRESS_EVERY seconds; samples CPU by thread and child processes' RSS."""

    SAMPLE_EVERY = 1.0

    def __init__(self, sinks: Sinks, label: str):
        self.sinks, self.label = sinks, label
        self.thread_cpu: dict[str, float] = {}       # thread name -> CPU seconds used while this ran
        self.children_peak_kb = 0                    # the largest VmHWM of a child process (signing pool)
        self._ignored = {p.pid for p in sinks.processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._baseline: dict[int, float] = {}

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        for thread in threading.enumerate():
            if thread is self._thread or thread.native_id is None:
                continue
            cpu = proc_cpu(f"self/task/{thread.native_id}")
            base = self._baseline.setdefault(thread.native_id, cpu)
            self.thread_cpu[thread.name] = max(self.thread_cpu.get(thread.name, 0.0), cpu - base)
        me = str(os.getpid())
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError):
                if stat.read_text().rpartition(")")[2].split()[1] == me and int(stat.parent.name) not in self._ignored:
                    self.children_peak_kb = max(self.children_peak_kb, proc_status_kb(stat.parent.name, "VmHWM"))

    def _run(self) -> None:
        start, base = time.perf_counter(), self.sinks.total()
        last, last_print = base, start
        self._sample()
        while not self._stop.wait(self.SAMPLE_EVERY):
            self._sample()
            if time.perf_counter() - last_print >= PROGRESS_EVERY:
                now, printed = self.sinks.total(), time.perf_counter()
                print(f"  {self.label} t={printed - start:5.0f} s: {now - base:8,d} at the sinks "
                      f"({(now - last) / (printed - last_print):6,.0f}/s since the last line)", flush=True)
                last, last_print = now, printed

    def cpu_by_role(self) -> dict[str, float]:
        """Return CPU seconds of the event loop (main thread), the to_thread workers, and other threads."""
        roles = {"event loop": 0.0, "to_thread workers": 0.0, "other threads": 0.0}
        for name, cpu in self.thread_cpu.items():
            role = ("event loop" if name == "MainThread" else
                    "to_thread workers" if name.startswith("asyncio_") else "other threads")
            roles[role] += cpu
        return roles


def run_ours(app, sinks: Sinks, smtp_port: int, expected: int) -> tuple[float, Counter]:
    """Time our MTA delivering everything due; print the figures and return (messages/s, outcomes)."""
    rss_before = proc_status_kb("self", "VmRSS") / 1024
    peak_reset = reset_peak_rss()
    before_sinks, before_sessions = sinks.total(), sinks.sessions()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    start = Usage.now(sinks)
    # The signing processes start and stop inside the timing: `appliance mta flush` pays for them too.
    with Progress(sinks, "ours") as progress, outbound_for(app, smtp_port=smtp_port) as outbound:
        counts = asyncio.run(outbound.run(until_idle=True))
    used = Usage.now(sinks).since(start)      # after the pool's shutdown: its CPU is in RUSAGE_CHILDREN
    own = resource.getrusage(resource.RUSAGE_SELF)
    own_user, own_sys = own.ru_utime - own_before.ru_utime, own.ru_stime - own_before.ru_stime
    run_peak = proc_status_kb("self", "VmHWM") / 1024 if peak_reset else peak_rss_mb()
    received, sessions = sinks.total() - before_sinks, sinks.sessions() - before_sessions
    rate = counts["delivered"] / used.wall
    print("\nour MTA (claim, render, DKIM in worker processes, MX, SMTP, results)")
    print(f"  wall {used.wall:8.2f} s   {rate:8,.0f} messages/s delivered")
    print(f"  cpu  {used.cpu:8.2f} s   ({used.cpu / used.wall:.2f} cores, this process and its signing processes; "
          f"the sinks used {used.sinks_cpu:.2f} s more)")
    roles = progress.cpu_by_role()
    print(f"       this process {own_user + own_sys:.2f} s (user {own_user:.2f}, sys {own_sys:.2f}): "
          + ", ".join(f"{role} {cpu:.2f} s" for role, cpu in roles.items())
          + f"; signing processes {used.cpu - own_user - own_sys:.2f} s")
    print(f"  peak RSS {run_peak:.0f} MB this process during the run ({rss_before:.0f} MB at its start, "
          f"{peak_rss_mb():.0f} MB peak since start-up), {progress.children_peak_kb / 1024:.0f} MB largest signing process")
    print(f"  outcomes {dict(counts)}")
    print(f"  received by the sinks {received:,d} of {expected:,d} in {sessions:,d} SMTP sessions "
          f"({received / max(1, sessions):.1f} messages a session)")
    if counts["delivered"] != expected or received != expected:
        print(f"WARNING: our MTA delivered {counts['delivered']:,d} and the sinks received {received:,d} "
              f"of {expected:,d} messages")
    return rate, counts


# Where the CPU of our process goes, by stage: cumulative time in these functions (callees included).
STAGES = (
    ("claim due rows (deliveries.claim_due)", "appliance/deliveries.py", ("claim_due",)),
    ("render mails (mail.render_deliveries)", "appliance/mail.py", ("render_deliveries",)),
    ("  of which: tokens (tokens.issue_tokens)", "appliance/tokens.py", ("issue_tokens",)),
    ("  of which: open addresses (contacts.open_for_delivery)", "appliance/contacts.py", ("open_for_delivery",)),
    ("  of which: children (mail._children_by_guardian)", "appliance/mail.py", ("_children_by_guardian",)),
    ("  of which: MIME text (MessageTemplate.render)", "appliance/mail.py", ("render",)),
    ("DKIM: hand to the signing processes, wait for them", "mta/service.py", ("__call__",)),
    ("write results (deliveries.record_outcomes)", "appliance/deliveries.py", ("record_outcomes",)),
    ("SMTP client: open, send, close (mta/smtp.py)", "mta/smtp.py", ("open", "send", "close")),
    ("MX routing (Router.next_hops)", "mta/routing.py", ("next_hops",)),
)
IDLE = "<method 'poll' of 'select.epoll' objects>"    # the event loop waiting for sockets and timers


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs what the engine hands to asyncio.to_thread on the loop's own thread (asyncio wants this class)."""

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine, as a thread would
            future.set_exception(exc)
        return future


def profile_ours(app, sinks: Sinks, smtp_port: int, lines: int) -> None:
    """Run our MTA under cProfile, single-threaded; print CPU by stage and the top functions."""
    profile = cProfile.Profile()
    before_sinks = sinks.total()
    start = Usage.now(sinks)

    async def deliver(outbound):
        # One thread: claims and result writes block the loop a little, but no GIL hand-offs
        # blur the attribution (in threads, a socket send waiting for the GIL looks like a slow send).
        asyncio.get_running_loop().set_default_executor(InlineExecutor())
        return await outbound.run(until_idle=True)

    with outbound_for(app, smtp_port=smtp_port) as outbound:
        profile.enable()
        try:
            counts = asyncio.run(deliver(outbound))
        finally:
            profile.disable()
    used = Usage.now(sinks).since(start)
    own = resource.getrusage(resource.RUSAGE_SELF)
    entries = pstats.Stats(profile).stats    # (file, line, function) -> (calls, calls, own, cumulative, callers)
    idle = sum(tt for (_f, _l, name), (_cc, _nc, tt, _ct, _callers) in entries.items() if name == IDLE)
    busy = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values()) - idle
    delivered = max(1, counts["delivered"])
    print(f"\nprofile of our MTA, one thread: {counts['delivered']:,d} delivered "
          f"({sinks.total() - before_sinks:,d} at the sinks) in {used.wall:.2f} s ({counts['delivered'] / used.wall:,.0f}/s "
          "under the profiler, which slows Python code: read shares, not rates)")
    print(f"  profiled time {busy:.2f} s besides {idle:.2f} s of the loop waiting; CPU {used.cpu:.2f} s in all, "
          f"this process {own.ru_utime + own.ru_stime:.2f} s since start-up (sys {own.ru_stime:.2f} s)")
    print(f"  {'stage':<62} {'seconds':>8} {'share':>6} {'per message':>12}")
    top_level = 0.0
    for label, path, names in STAGES:
        seconds = sum(ct for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in entries.items()
                      if file.endswith(path) and name in names)
        top_level += 0 if label.startswith(" ") else seconds
        print(f"  {label:<62} {seconds:8.2f} {seconds / busy:6.1%} {seconds / delivered * 1e6:9.0f} µs")
    rest = busy - top_level
    print(f"  {'the rest: event loop, engine (outbound.py), socket writes':<62} {rest:8.2f} {rest / busy:6.1%} "
          f"{rest / delivered * 1e6:9.0f} µs")
    print(f"\n  top {lines} functions by own time (the loop's waiting left out):")
    ranked = sorted(((tt, nc, ct, key) for key, (_cc, nc, tt, ct, _callers) in entries.items() if key[2] != IDLE),
                    reverse=True)
    for tt, nc, ct, (file, line, name) in ranked[:lines]:
        where = name if file == "~" else f"{file.replace(str(Path.cwd()) + '/', '')}:{line}({name})"
        print(f"  {tt:7.2f} s own {ct:7.2f} s cum {nc:9,d} calls  {where}")


# -- Postfix, the reference -------------------------------------------------------------------------------

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/spool
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = reference.renraku.example
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
maillog_file_prefixes = {base}
maillog_file = {base}/maillog
transport_maps = texthash:{base}/etc/transport
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_process_limit = {processes}
smtp_destination_concurrency_limit = {concurrency}
"""
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A private Postfix instance in a temporary dir: smtpd on 127.0.0.1:port, relaying by transport map."""

    def __init__(self, base: Path, port: int, transport: dict[str, str], sink_port: int, concurrency: int):
        self.base, self.port = base, port
        self.config_dir = base / "etc"
        self.master_pid: int | None = None
        # Config, spool and data side by side: postfix-script wants everything below the
        # config dir owned by root, the data dir owned by postfix.
        base.mkdir()
        base.chmod(0o755)     # the postfix user must reach its data dir
        for sub in ("etc", "spool", "data"):
            (base / sub).mkdir()
        os.chown(base / "data", pwd.getpwnam("postfix").pw_uid, -1)
        (self.config_dir / "main.cf").write_text(
            MAIN_CF.format(base=base, processes=max(100, 4 * concurrency + 20), concurrency=concurrency))
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(port=port))
        (self.config_dir / "transport").write_text(
            "".join(f"{domain} smtp:[{host}]:{sink_port}\n" for domain, host in sorted(transport.items())))

    def start(self) -> Postfix:
        """Start the instance and wait for its smtpd."""
        result = subprocess.run(["postfix", "-c", str(self.config_dir), "start"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed:\n{result.stdout}{result.stderr}{self.log_tail()}")
        wait_for_port("127.0.0.1", self.port)
        self.master_pid = int((self.base / "data" / "master.lock").read_text().strip())
        return self

    def stop(self) -> None:
        """Stop the instance and wait for its master to go."""
        subprocess.run(["postfix", "-c", str(self.config_dir), "stop"], capture_output=True)
        if self.master_pid is None:
            return
        deadline = time.monotonic() + 10
        while Path(f"/proc/{self.master_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{self.master_pid}").exists():
            subprocess.run(["postfix", "-c", str(self.config_dir), "abort"], capture_output=True)

    def cpu_seconds(self) -> float:
        """Return the CPU seconds of the master, its live daemons and the daemons it has reaped."""
        if self.master_pid is None:
            return 0.0
        total = proc_cpu(self.master_pid, children=True)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.master_pid:
                total += proc_cpu(int(stat.parent.name))
        return total

    def queued(self) -> int:
        """Return how many messages are still in the queue (postqueue -j)."""
        result = subprocess.run(["postqueue", "-c", str(self.config_dir), "-j"], capture_output=True, text=True)
        return sum(1 for line in result.stdout.splitlines() if line.strip())

    def sent(self) -> Counter:
        """Return the delivery statuses in the mail log (sent, deferred, bounced)."""
        statuses: Counter = Counter()
        with contextlib.suppress(FileNotFoundError), open(self.base / "maillog", "rb") as log:
            for line in log:
                if b" status=" in line:
                    statuses[line.partition(b" status=")[2].split(b" ", 1)[0].decode()] += 1
        return statuses

    def log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join((self.base / "maillog").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def render_for_postfix(app, outbound, signer, limit: int) -> list[tuple[str, str, bytes]]:
    """Claim, render and sign due mail with the MTA's own code; return (VERP sender, address, data) per transaction."""
    transactions: list[tuple[str, str, bytes]] = []
    while len(transactions) < limit:
        batch = outbox.claim_mail(app, min(1000, limit - len(transactions)))
        if not batch.deliveries:
            break
        for mail in batch.mails:
            data = signer.sign(mail.data)
            for delivery_id, address in mail.envelopes:
                transactions.append((outbound.sender_for(Job(delivery_id, address, data)), address, data))
    return transactions[:limit]


async def _reply(reader: asyncio.StreamReader) -> int:
    """Read one (possibly multi-line) SMTP reply and return its code."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


async def inject(port: int, transactions: list[tuple[str, str, bytes]], connections: int) -> Counter:
    """Send every transaction into Postfix's smtpd over a few connections; return reply counts.

    A lean client on purpose (RFC 2920 pipelining, each mail dot-stuffed once): it shares the
    machine with Postfix, and a general-purpose client would take ~5x the CPU from it.
    """
    pending = iter(transactions)     # shared by the workers: one event loop, no locking needed
    replies: Counter = Counter()
    stuffed: dict[int, bytes] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await _reply(reader)
            writer.write(b"EHLO bench.renraku.example\r\n")
            await _reply(reader)
            for sender, recipient, data in pending:
                body = stuffed.get(id(data))
                if body is None:
                    body = (b"." + data if data.startswith(b".") else data).replace(b"\r\n.", b"\r\n..")
                    stuffed[id(data)] = body = body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"
                writer.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
                codes = [await _reply(reader) for _ in range(3)]
                if codes[2] != 354:
                    writer.write(b"RSET\r\n")
                    await _reply(reader)
                    replies[f"refused {max(codes)}"] += 1
                    continue
                writer.write(body)
                code = await _reply(reader)
                replies["accepted" if code == 250 else f"refused {code}"] += 1
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return replies


def run_postfix(app, sinks: Sinks, assignment: dict[str, str], limit: int, connections: int,
                concurrency: int, workdir: Path) -> float:
    """Relay `limit` messages through a private Postfix to the sinks; print the figures and return its rate."""
    school = School.get(School.code == "bench001")
    signer = dkim.load_signer(app.config, app.clock)
    second = create_message(app, school, audience="all", subject=SUBJECT, body=BODY, priority="emergency",
                            actor="bench")
    wanted = min(limit, message_summary(second)["deliveries"]["email"])
    start = time.perf_counter(), time.process_time()
    with outbound_for(app, smtp_port=sinks.port) as outbound:    # for its VERP senders only
        transactions = render_for_postfix(app, outbound, signer, wanted)
    wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
    mails = len({id(data) for _, _, data in transactions})
    size = sum(len(data) for _, _, data in transactions) / max(1, len(transactions))
    print(f"\nPostfix input: {len(transactions):,d} transactions ({mails:,d} mails, {size:,.0f} bytes each signed), "
          f"claimed, rendered and signed (one process) by the MTA's code in {wall:.2f} s (cpu {cpu:.2f} s): "
          f"{mails / wall:,.0f} mails/s, {len(transactions) / wall:,.0f} messages/s, no SMTP")

    postfix = Postfix(workdir / "postfix", free_port(("127.0.0.1",)), assignment, sinks.port, concurrency)
    try:
        postfix.start()
        before_sinks, before_cpu = sinks.total(), postfix.cpu_seconds()
        start = Usage.now(sinks)
        with Progress(sinks, "postfix"):
            replies = asyncio.run(inject(postfix.port, transactions, connections))
            injected = Usage.now(sinks).since(start)
            expected = replies["accepted"]
            last_count, last_change = sinks.total(), time.monotonic()
            while last_count - before_sinks < expected and time.monotonic() - last_change < STALL_AFTER:
                time.sleep(0.02)
                count = sinks.total()
                if count != last_count:
                    last_count, last_change = count, time.monotonic()
        used = Usage.now(sinks).since(start)
        postfix_cpu = postfix.cpu_seconds() - before_cpu
        received = sinks.total() - before_sinks
        left = postfix.queued()
        statuses = postfix.sent()
    finally:
        postfix.stop()
    rate = received / used.wall
    print(f"\nPostfix {subprocess.run(['postconf', '-d', '-h', 'mail_version'], capture_output=True, text=True).stdout.strip()}"
          f" (smtpd -> queue -> smtp, {concurrency} connections a sink, transport map to the same sinks)")
    print(f"  {len(transactions):,d} messages injected over {connections} connections in {injected.wall:.2f} s "
          f"({len(transactions) / injected.wall:,.0f}/s); replies {dict(replies)}")
    print(f"  wall {used.wall:8.2f} s   {rate:8,.0f} messages/s, first injection to last message at the sinks")
    print(f"  cpu  {postfix_cpu:8.2f} s Postfix daemons + {used.cpu:.2f} s injector (this process) "
          f"+ {used.sinks_cpu:.2f} s sinks")
    print(f"  log statuses {dict(statuses)}; left in the queue {left}")
    print(f"  received by the sinks {received:,d} of {len(transactions):,d}")
    if received != len(transactions) or left:
        print(f"WARNING: Postfix got {received:,d} of {len(transactions):,d} messages to the sinks; "
              f"{left} still queued\n{postfix.log_tail()}")
    return rate


# -- the whole run -----------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    """Set everything up in temporary dirs, run both MTAs, print the figures, take everything down."""
    if shutil.which("smtp-sink") is None:
        raise SystemExit("smtp-sink is missing: install Debian's postfix package (see the Makefile)")
    workdir = Path(tempfile.mkdtemp(prefix="renraku-blast-"))
    workdir.chmod(0o711)      # Postfix's data dir inside must be reachable by the postfix user
    assignment = assign_domains(DOMAINS, SINK_HOSTS)
    sinks = Sinks(SINK_HOSTS, args.sink_port or free_port(SINK_HOSTS), workdir)
    dns_server = None
    try:
        sinks.start()
        dns_server = start_dns(assignment)
        mta = {"nameservers": [dns_server.nameserver], "transport": {}}
        if not args.keep_pacing:
            # The sinks are not carriers: lift the per-domain pacing to measure the engine itself.
            mta["domains"] = {domain: {"rate": 0.0} for domain, policy in KNOWN.items() if policy.rate}
        # environ={}: no APPLIANCE_* variable can add a transport or another nameserver.
        app = init_data_dir(workdir / "data", environ={},
                            overrides={"site": {"name": "bench"}, "mta": mta})
        if app.config["mta"]["nameservers"] != [dns_server.nameserver] or app.config["mta"]["transport"]:
            raise RuntimeError("mail could leave the machine: [mta] must use only the bench's DNS, no transport")
        dkim.make_keys(app.config, app.config["mail"]["domain"], app.config["mta"]["dkim_selector"])
        print(f"cpus: {os.cpu_count()}, RSA-2048 now {rsa_rate():,.0f} signatures/s a core "
              "(DESIGN.md's reference box: 4,600/s)")
        print(f"guardians: {args.guardians:,d} x {args.addresses} addresses, "
              f"{len(assignment)} domains on {len(SINK_HOSTS)} sinks ({', '.join(SINK_HOSTS)} port {sinks.port}), "
              f"DNS {dns_server.nameserver}")
        print("pacing: " + ("as shipped (mta/policy.py)" if args.keep_pacing else
                            "per-domain rate limits lifted (--keep-pacing keeps them); concurrency limits as shipped"))
        started = time.perf_counter()
        seeded = seed_bench(app, schools=1, guardians=args.guardians, addresses=args.addresses)
        school = School.get(School.code == "bench001")
        print(f"seeded {seeded.guardians:,d} guardians, {seeded.addresses:,d} addresses in "
              f"{time.perf_counter() - started:.1f} s (not part of the figures)")
        started = time.perf_counter()
        message = create_message(app, school, audience="all", subject=SUBJECT, body=BODY, priority="emergency",
                                 actor="bench")
        expected = message_summary(message)["deliveries"]["email"]
        print(f"created the blast: {expected:,d} deliveries in {time.perf_counter() - started:.1f} s")
        if not args.keep_pacing:
            floor, slowest = max((DOMAINS[d] / sum(DOMAINS.values()) * expected / p.rate, d)
                                 for d, p in KNOWN.items() if p.rate and d in DOMAINS)
            print(f"  (with the shipped pacing {slowest} alone, ~{DOMAINS[slowest] / sum(DOMAINS.values()):.0%} of the "
                  f"addresses at {KNOWN[slowest].rate:.0f}/s, would need >= {floor:.0f} s)")
        # A box that has been up a while has its WAL checkpointed; the seeding's is not ours to pay for.
        db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")

        if args.profile:
            profile_ours(app, sinks, sinks.port, args.profile)
        else:
            compare(app, sinks, assignment, expected, args, workdir)
        db.close_database()
    finally:
        if dns_server is not None:
            dns_server.stop()
        sinks.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def compare(app, sinks: Sinks, assignment: dict[str, str], expected: int, args: argparse.Namespace,
            workdir: Path) -> None:
    """Time our MTA, then Postfix on the same kind of mail, and print the ratio."""
    ours, _counts = run_ours(app, sinks, sinks.port, expected)
    if args.postfix_messages == 0:
        print("\nPostfix reference skipped (--postfix-messages 0)")
    elif os.geteuid() != 0:
        print("\nPostfix reference skipped: a private Postfix instance needs root")
    else:
        if args.postfix_messages < expected:
            print(f"\nPostfix reference on a subset: {args.postfix_messages:,d} of {expected:,d} messages "
                  "(--postfix-messages); compare rates, not totals")
        theirs = run_postfix(app, sinks, assignment, args.postfix_messages, args.inject_connections,
                             args.postfix_concurrency, workdir)
        if theirs > 0:
            print(f"\nours / Postfix: {ours / theirs:.2f}x ({ours:,.0f} vs {theirs:,.0f} messages/s)")
    print(f"per sink (both runs): {json.dumps(sinks.received())}")


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guardians", type=int, default=40_000)
    parser.add_argument("--addresses", type=int, default=4, help="addresses per guardian (1-4)")
    parser.add_argument("--postfix-messages", type=int, default=20_000,
                        help="messages for the Postfix reference (a subset is fine: rates are compared); 0 skips it")
    parser.add_argument("--postfix-concurrency", type=int, default=20,
                        help="Postfix's smtp_destination_concurrency_limit, one destination per sink "
                             "(20: Postfix's default and our per-domain maximum)")
    parser.add_argument("--inject-connections", type=int, default=10,
                        help="SMTP connections injecting into Postfix")
    parser.add_argument("--sink-port", type=int, default=0, help="port of the sinks (default: a free one; 25 works)")
    parser.add_argument("--keep-pacing", action="store_true",
                        help="keep the shipped per-domain rate limits (carriers 200/s each)")
    parser.add_argument("--profile", type=int, nargs="?", const=30, default=0, metavar="LINES",
                        help="profile our MTA (single-threaded) instead of timing it; skips Postfix")
    # A kill (SIGTERM) stops like Ctrl-C: through the finally blocks that stop the sinks, DNS and Postfix.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
