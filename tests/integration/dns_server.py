"""An authoritative DNS server on loopback for tests and benchmarks, answering from an in-memory zone.

    with DnsServer() as server:                 # or the ``dns_server`` fixture
        server.zone.add_mx("docomo.test", [(10, "mx1.docomo.test")])
        server.zone.add_a("mx1.docomo.test", "127.0.0.2")
        ...  # point [mta] nameservers at server.nameserver

It answers every name itself (authoritative, no recursion): names without records are
NXDOMAIN, names with records but none of the type asked for are NODATA, both with an SOA
whose TTL is ``zone.negative_ttl``. ``zone.servfail(name)`` and ``zone.slow(name)`` make
a name fail. UDP and TCP listen on the same free port of 127.0.0.1.
"""
from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence

import pytest
from dnslib import AAAA, MX, QTYPE, RCODE, RR, SOA, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSLogger, DNSServer

HOST = "127.0.0.1"


def _normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


class Zone:
    """The records the server answers from; safe to change while it runs."""

    def __init__(self, default_ttl: int = 300, negative_ttl: int = 300):
        self.default_ttl = default_ttl
        self.negative_ttl = negative_ttl
        self._lock = threading.Lock()
        self._records: dict[str, list[RR]] = {}
        self._servfail: set[str] = set()
        self._slow: dict[str, float | None] = {}

    def add_mx(self, name: str, records: Sequence[tuple[int, str]], ttl: int | None = None) -> None:
        """Add MX records (preference, exchange) to a name."""
        self._add(name, QTYPE.MX, [MX(_normalize(host) + ".", preference) for preference, host in records], ttl)

    def add_null_mx(self, name: str, ttl: int | None = None) -> None:
        """Publish the null MX "0 ." for a name (RFC 7505)."""
        self._add(name, QTYPE.MX, [MX(".", 0)], ttl)

    def add_a(self, name: str, *addresses: str, ttl: int | None = None) -> None:
        """Add IPv4 addresses to a name."""
        self._add(name, QTYPE.A, [A(str(ipaddress.IPv4Address(a))) for a in addresses], ttl)

    def add_aaaa(self, name: str, *addresses: str, ttl: int | None = None) -> None:
        """Add IPv6 addresses to a name."""
        self._add(name, QTYPE.AAAA, [AAAA(str(ipaddress.IPv6Address(a))) for a in addresses], ttl)

    def add_txt(self, name: str, *texts: str, ttl: int | None = None) -> None:
        """Add TXT records (SPF policies, DKIM keys), each cut into strings of 255 bytes as DNS holds them."""
        records = [text.encode() for text in texts]
        self._add(name, QTYPE.TXT, [TXT([r[i:i + 255] for i in range(0, len(r), 255)]) for r in records], ttl)

    def remove(self, name: str) -> None:
        """Forget every record of a name, and its failure mode."""
        name = _normalize(name)
        with self._lock:
            self._records.pop(name, None)
            self._servfail.discard(name)
            self._slow.pop(name, None)

    def servfail(self, name: str) -> None:
        """Answer SERVFAIL for a name."""
        with self._lock:
            self._servfail.add(_normalize(name))

    def slow(self, name: str, seconds: float | None = None) -> None:
        """Answer a name only after some seconds, or with None not before the server stops."""
        with self._lock:
            self._slow[_normalize(name)] = seconds

    def _add(self, name: str, rtype: int, rdatas: list, ttl: int | None) -> None:
        name = _normalize(name)
        ttl = self.default_ttl if ttl is None else ttl
        with self._lock:
            self._records.setdefault(name, []).extend(RR(name + ".", rtype, rdata=r, ttl=ttl) for r in rdatas)

    def lookup(self, name: str, qtype: int) -> tuple[str, list[RR], float | None]:
        """Return (rcode name, answers, delay) for a question; delay None means hold until stopped."""
        with self._lock:
            delay = self._slow.get(name, 0.0)
            if name in self._servfail:
                return "SERVFAIL", [], delay
            # A name with no records of its own still exists when names below it do.
            if not any(k == name or k.endswith("." + name) for k in self._records):
                return "NXDOMAIN", [], delay
            return "NOERROR", [rr for rr in self._records.get(name, []) if rr.rtype == qtype], delay


class DnsServer:
    """A dnslib server for one Zone on 127.0.0.1, UDP and TCP on one free port."""

    def __init__(self, zone: Zone | None = None):
        self.zone = zone or Zone()
        self.host = HOST
        self.port = 0
        self._stopping = threading.Event()
        self._servers: list[DNSServer] = []

    @property
    def nameserver(self) -> str:
        """Return "127.0.0.1:port", as ``[mta] nameservers`` takes it."""
        return f"{self.host}:{self.port}"

    def start(self) -> DnsServer:
        """Bind UDP and TCP on one free port and serve in background threads."""
        # Silent: the tests' output is not the place for a line per query.
        logger = DNSLogger(logf=lambda _line: None)
        self._stopping.clear()
        for _attempt in range(20):
            udp = DNSServer(self, address=self.host, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self, address=self.host, port=port, tcp=True, logger=logger)
            except OSError:   # the port is taken for TCP: try another
                udp.server.server_close()
                continue
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        self.port = port
        self._servers = [udp, tcp]
        # The sockets are bound and listening already: queries wait in the backlog, no polling needed.
        for server in self._servers:
            # A short poll interval: stop() waits for it, twice per test (dnslib's default is 0.5 s).
            server.thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.02},
                                             daemon=True)
            server.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release held answers and close the sockets."""
        self._stopping.set()
        for server in self._servers:
            server.stop()
            server.server.server_close()
            server.thread.join()
        self._servers = []

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        """Answer one query from the zone (dnslib's resolver interface; runs in a server thread)."""
        name = _normalize(str(request.q.qname))
        rcode, answers, delay = self.zone.lookup(name, request.q.qtype)
        if delay != 0.0 and self._stopping.wait(delay):
            raise DNSError("server stopped before the answer was due")   # dnslib drops the query
        reply = request.reply()
        reply.header.rcode = getattr(RCODE, rcode)
        for rr in answers:
            reply.add_answer(rr)
        if rcode != "SERVFAIL" and not answers:
            # Negative answers carry the SOA whose minimum resolvers cache them by (RFC 2308).
            ttl = self.zone.negative_ttl
            soa = SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, ttl))
            reply.add_auth(RR(".", QTYPE.SOA, rdata=soa, ttl=ttl))
        return reply


# Named apart from its fixture name so that importing it (conftest.py, a test module) does not
# shadow the argument of every test that uses it.
@pytest.fixture(name="dns_server")
def dns_server_fixture():
    """A DNS server on loopback with an empty zone; set records through ``dns_server.zone``."""
    with DnsServer() as server:
        yield server
