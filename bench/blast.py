"""Benchmark: an emergency blast to every guardian through our MTA, and the same mail through Postfix.

Run with ``.venv/bin/python bench/blast.py [--guardians 40000] [--addresses 4]`` (as root, for
Postfix and smtp-sink's ``-u postfix``). In a throw-away data dir it seeds one school of
40,000 guardians with 4 addresses each (on carrier and free-mail domains: docomo.ne.jp,
gmail.com, ...), creates one emergency message (160,000 deliveries) and times
``build_outbound(app).run(until_idle=True)``: rendering, DKIM signing, MX lookups and SMTP
to four Postfix ``smtp-sink`` processes on 127.0.0.2-5, results written to the database.

Nothing can leave the machine: ``[mta] nameservers`` is only a DNS server on loopback (the
tests' ``DnsServer``) whose MX records point every seeded domain at one of the sinks, the
environment is not read, and the transport map is empty.

Then, for the ratio, a private Postfix instance (temporary config, queue and log) relays
the same kind of mail (a second message, rendered and signed by the same code outside the
timing) to the same sinks: one SMTP transaction per address with the same VERP sender,
injected over a few connections; timed from the first injection until the sinks have all
of it. ``--postfix-messages`` sends a subset (compare rates, not totals).

Prints figures; asserts nothing. A WARNING line says when not every message arrived.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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

import aiosmtplib

from appliance import db, outbox
from appliance.demo import seed_bench
from appliance.messages import create_message, message_summary
from appliance.models import School
from appliance.runtime import init_data_dir
from appliance.sample_data import DOMAINS
from mta import dkim
from mta.outbound import Job
from mta.policy import KNOWN
from mta.service import build_outbound

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


def proc_cpu(pid: int, children: bool = False) -> float:
    """Return a live process's user+system CPU seconds (with its waited-for children's if asked)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based here.
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class Sinks:
    """Postfix smtp-sink on port ``port`` of each host, counting messages (``-c``) into a file each."""

    _COUNTER = re.compile(rb"mesg=(\d+)\r")

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

    def received(self) -> dict[str, int]:
        """Return the messages each sink has taken so far (the last complete counter line)."""
        counts = {}
        for host in self.hosts:
            path = self._counter_file(host)
            with open(path, "rb") as counter:
                counter.seek(max(0, path.stat().st_size - 256))
                found = self._COUNTER.findall(counter.read())
            counts[host] = int(found[-1]) if found else 0
        return counts

    def total(self) -> int:
        """Return the messages all sinks have taken so far."""
        return sum(self.received().values())

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


def peak_rss_mb() -> float:
    """Return this process's peak resident set so far, in MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Progress:
    """Prints, every PROGRESS_EVERY seconds, how many messages the sinks have and the recent rate."""

    def __init__(self, sinks: Sinks, label: str):
        self.sinks, self.label = sinks, label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start, base = time.perf_counter(), self.sinks.total()
        last = base
        while not self._stop.wait(PROGRESS_EVERY):
            now = self.sinks.total()
            print(f"  {self.label} t={time.perf_counter() - start:5.0f} s: {now - base:8,d} at the sinks "
                  f"({(now - last) / PROGRESS_EVERY:6,.0f}/s over the last {PROGRESS_EVERY:.0f} s)", flush=True)
            last = now


def run_ours(app, sinks: Sinks, smtp_port: int, expected: int) -> tuple[float, Counter]:
    """Time our MTA delivering everything due; print the figures and return (messages/s, outcomes)."""
    outbound = build_outbound(app, smtp_port=smtp_port)
    rss_before = peak_rss_mb()
    before_sinks = sinks.total()
    start = Usage.now(sinks)
    with Progress(sinks, "ours"):
        counts = asyncio.run(outbound.run(until_idle=True))
    used = Usage.now(sinks).since(start)
    received = sinks.total() - before_sinks
    rate = counts["delivered"] / used.wall
    print("\nour MTA (in-process: claim, render, DKIM, MX, SMTP, results)")
    print(f"  wall {used.wall:8.2f} s   {rate:8,.0f} messages/s delivered")
    print(f"  cpu  {used.cpu:8.2f} s   ({used.cpu / used.wall:.2f} cores; the sinks used {used.sinks_cpu:.2f} s more)")
    print(f"  peak RSS {peak_rss_mb():.0f} MB (process peak; {rss_before:.0f} MB before the run)")
    print(f"  outcomes {dict(counts)}")
    print(f"  received by the sinks {received:,d} of {expected:,d}")
    if counts["delivered"] != expected or received != expected:
        print(f"WARNING: our MTA delivered {counts['delivered']:,d} and the sinks received {received:,d} "
              f"of {expected:,d} messages")
    return rate, counts


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
            for envelope in mail.envelopes:
                sender = outbound.sender_for(Job(envelope.delivery_id, envelope.address, data))
                transactions.append((sender, envelope.address, data))
    return transactions[:limit]


async def inject(port: int, transactions: list[tuple[str, str, bytes]], connections: int) -> Counter:
    """Send every transaction into Postfix's smtpd over a few reused connections; return reply counts."""
    pending = iter(transactions)     # shared by the workers: one event loop, no locking needed
    replies: Counter = Counter()

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench.renraku.example",
                                 timeout=120, start_tls=False)
        await client.connect()
        try:
            for sender, recipient, data in pending:
                try:
                    await client.sendmail(sender, [recipient], data)
                    replies["accepted"] += 1
                except aiosmtplib.SMTPResponseException as exc:
                    replies[f"refused {exc.code}"] += 1
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return replies


def run_postfix(app, sinks: Sinks, assignment: dict[str, str], limit: int, connections: int,
                concurrency: int, workdir: Path) -> float | None:
    """Relay `limit` messages through a private Postfix to the sinks; print the figures and return its rate."""
    school = School.get(School.code == "bench001")
    outbound = build_outbound(app, smtp_port=sinks.port)
    signer = dkim.load_signer(app.config, app.clock)
    second = create_message(app, school, audience="all", subject=SUBJECT, body=BODY, priority="emergency",
                            actor="bench")
    wanted = min(limit, message_summary(second)["deliveries"]["email"])
    start = time.perf_counter(), time.process_time()
    transactions = render_for_postfix(app, outbound, signer, wanted)
    wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
    mails = len({id(data) for _, _, data in transactions})
    size = sum(len(data) for _, _, data in transactions) / max(1, len(transactions))
    print(f"\nPostfix input: {len(transactions):,d} transactions ({mails:,d} mails, {size:,.0f} bytes each signed), "
          f"claimed, rendered and signed by the MTA's code in {wall:.2f} s (cpu {cpu:.2f} s): "
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
        print(f"cpus: {os.cpu_count()}, guardians: {args.guardians:,d} x {args.addresses} addresses, "
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
        # A box that has been up a while has its WAL checkpointed; the seeding's is not ours to pay for.
        db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")

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
            if theirs:
                print(f"\nours / Postfix: {ours / theirs:.2f}x ({ours:,.0f} vs {theirs:,.0f} messages/s)")
        print(f"per sink (both runs): {json.dumps(sinks.received())}")
        db.close_database()
    finally:
        if dns_server is not None:
            dns_server.stop()
        sinks.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guardians", type=int, default=40_000)
    parser.add_argument("--addresses", type=int, default=4, help="addresses per guardian (1-4)")
    parser.add_argument("--postfix-messages", type=int, default=160_000,
                        help="messages for the Postfix reference (a subset is fine: rates are compared); 0 skips it")
    parser.add_argument("--postfix-concurrency", type=int, default=25,
                        help="Postfix's smtp_destination_concurrency_limit (one destination per sink)")
    parser.add_argument("--inject-connections", type=int, default=10,
                        help="SMTP connections injecting into Postfix")
    parser.add_argument("--sink-port", type=int, default=0, help="port of the sinks (default: a free one; 25 works)")
    parser.add_argument("--keep-pacing", action="store_true",
                        help="keep the shipped per-domain rate limits (carriers 200/s each)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
