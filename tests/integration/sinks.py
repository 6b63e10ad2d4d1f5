"""Receiving mail servers for the MTA's integration tests: Postfix smtp-sink and an aiosmtpd STARTTLS sink.

    with SinkFarm() as farm:
        a, b = farm.hosts(2)                       # free loopback addresses 127.X.Y.2, .3
        sink = farm.start(a, "-f", "RCPT")        # smtp-sink on a:25; extra options as in smtp-sink(1)
        ...
        [mail] = sink.mails()                     # each transaction smtp-sink dumped (-d), parsed

Each sink listens on port 25 of its own loopback address, because the MTA delivers to
MX hosts on port 25. The addresses are drawn at random from 127.0.0.0/8 (a block per
farm) so that two runs of the suite on one machine, or a benchmark's sinks on 127.0.0.2-5,
do not collide. As root smtp-sink needs ``-u postfix``; it then writes its dumps as that
user, so the farm keeps them in a directory of its own under the system temp dir (pytest's
``tmp_path`` is not reachable by other users) and removes it when stopped.
"""
from __future__ import annotations

import datetime
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_PORT = 25
_ADDRESS = re.compile(rb"<([^>]*)>")


@dataclass(frozen=True)
class Dump:
    """One mail transaction as smtp-sink dumped it."""

    path: Path
    sender: str                 # the MAIL FROM address
    recipients: tuple[str, ...]
    message: bytes              # the message as received, CRLF line ends, without smtp-sink's headers


def parse_dump(path: Path) -> Dump:
    """Split an smtp-sink dump (-d) into envelope and message."""
    lines = path.read_bytes().split(b"\n")
    sender, recipients = "", []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith(b"X-Mail-Args:"):
            sender = _ADDRESS.search(line).group(1).decode()
        elif line.startswith(b"X-Rcpt-Args:"):
            recipients.append(_ADDRESS.search(line).group(1).decode())
        elif line.startswith(b"Received:"):
            # smtp-sink's own three-line Received header ends its part of the dump.
            while index < len(lines) and lines[index][:1] in (b" ", b"\t"):
                index += 1
            break
    return Dump(path, sender, tuple(recipients), b"\r\n".join(lines[index:]))


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, process: subprocess.Popen | None = None, timeout: float = 10) -> None:
    """Wait until something accepts connections on host:port; fail if the process serving it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {host}:{port} exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


@dataclass
class SmtpSink:
    """One smtp-sink process on host:25, dumping every transaction into its own directory."""

    host: str
    dump_dir: Path
    options: tuple[str, ...] = ()
    port: int = SMTP_PORT
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> SmtpSink:
        """Start smtp-sink and wait until it accepts connections."""
        as_user = ["-u", "postfix"] if os.geteuid() == 0 else []
        # The log sits beside, not in, the dump dir: only dumps are counted there.
        log = open(self.dump_dir.with_suffix(".log"), "ab")
        with log:
            self.process = subprocess.Popen(
                ["smtp-sink", *as_user, "-d", f"{self.dump_dir}/%H%M%S.", *self.options,
                 f"{self.host}:{self.port}", "100"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.host, self.port, self.process)
        return self

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, *options: str) -> SmtpSink:
        """Stop and start again on the same address and dump dir, with new options."""
        self.stop()
        self.options = options
        return self.start()

    def count(self) -> int:
        """Return how many transactions have been dumped so far."""
        return len(self._dumps())

    def mails(self) -> list[Dump]:
        """Return every dumped transaction, parsed."""
        return [parse_dump(path) for path in self._dumps()]

    def _dumps(self) -> list[Path]:
        # smtp-sink opens a transaction's dump at DATA: one whose client went away before
        # sending content (killed while -w held the 354) leaves an empty file, not a mail.
        dumps = []
        for entry in os.scandir(self.dump_dir):
            try:
                if entry.stat().st_size:
                    dumps.append(Path(entry.path))
            except FileNotFoundError:    # a cut-off transaction's dump, removed by smtp-sink meanwhile
                pass
        return sorted(dumps)


class SinkFarm:
    """smtp-sink processes on free loopback addresses; stop() ends them all and removes their dumps."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="renraku-sinks-"))
        self.base.chmod(0o755)      # smtp-sink runs as postfix and must reach its dump dirs
        self.sinks: list[SmtpSink] = []
        self._block = None
        self._next = 2

    def hosts(self, n: int) -> list[str]:
        """Return n loopback addresses on which port 25 is free, in one random 127.X.Y.0/24 block."""
        found: list[str] = []
        for _attempt in range(200):
            if self._block is None:
                self._block = f"127.{random.randint(100, 254)}.{random.randint(1, 254)}"
            while len(found) < n and self._next < 255:
                host = f"{self._block}.{self._next}"
                self._next += 1
                if _bindable(host, SMTP_PORT):
                    found.append(host)
            if len(found) == n:
                return found
            self._block, self._next = None, 2
        raise RuntimeError("no loopback block with free port 25 found")

    def start(self, host: str, *options: str) -> SmtpSink:
        """Start an smtp-sink on host:25 with smtp-sink(1) options (e.g. "-f", "RCPT")."""
        dump_dir = self.base / host
        dump_dir.mkdir()
        if os.geteuid() == 0:
            postfix = pwd.getpwnam("postfix")
            os.chown(dump_dir, postfix.pw_uid, postfix.pw_gid)
        sink = SmtpSink(host, dump_dir, tuple(options))
        self.sinks.append(sink)
        return sink.start()

    def count(self) -> int:
        """Return how many transactions all sinks have dumped."""
        return sum(sink.count() for sink in self.sinks)

    def mails(self) -> list[Dump]:
        """Return every transaction every sink dumped."""
        return [mail for sink in self.sinks for mail in sink.mails()]

    def stop(self) -> None:
        """Stop every sink and remove the dumps."""
        for sink in self.sinks:
            sink.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> SinkFarm:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


# -- STARTTLS ---------------------------------------------------------------------------------------

def make_self_signed(directory: Path, host: str = "mx.tls.test") -> tuple[Path, Path]:
    """Write a fresh self-signed certificate and its key (made now, never kept) into directory."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "sink-cert.pem", directory / "sink-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass(frozen=True)
class Received:
    """A mail the TLS sink took, with what it knew of the session."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    tls_version: str | None     # e.g. "TLSv1.3"; None when the session was not upgraded
    helo: str


class RecordingHandler:
    """An aiosmtpd handler that keeps every mail with its session's TLS state."""

    def __init__(self):
        self.received: list[Received] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        ssl_object = (session.ssl or {}).get("ssl_object")
        with self._lock:
            self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content,
                                          ssl_object.version() if ssl_object is not None else None,
                                          session.host_name or ""))
        return "250 2.0.0 OK: queued"


class TlsSink:
    """An aiosmtpd server on 127.0.0.1 that offers STARTTLS (not required) with a throw-away certificate."""

    def __init__(self, cert_dir: Path, host: str = "127.0.0.1", port: int = 0):
        cert_path, key_path = make_self_signed(cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.handler = RecordingHandler()
        self.host = host
        self.port = port or _free_port(host)
        self.controller = Controller(self.handler, hostname=host, port=self.port, tls_context=context,
                                     require_starttls=False, ready_timeout=10)

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def start(self) -> TlsSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> TlsSink:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
