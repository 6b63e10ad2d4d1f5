"""Next hops for a recipient domain: the transport map, else MX (RFC 5321 §5.1), cached by TTL.

The outbound MTA asks ``Router.next_hops(domain)`` where to deliver and gets hops best
first: one per address of each mail host, keeping the host name for TLS and logs. DNS
comes from a ``DnsBackend``: dnspython's asyncio resolver in production, ``FakeDns`` in
unit tests; both pass the contract in ``tests/unit/test_routing.py``. Failures are
typed: a ``PermanentRoutingError`` means the address cannot receive mail (bounce it), a
``TemporaryRoutingError`` means try again later (defer it).
"""
from __future__ import annotations

import asyncio
import copy
import functools
import ipaddress
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from appliance.config import Config, ConfigError

SMTP_PORT = 25
DNS_PORT = 53
NULL_MX = "."   # the root as an MX exchange: the domain takes no mail (RFC 7505)

T = TypeVar("T")


class RoutingError(Exception):
    """No next hop for a domain; ``permanent`` says whether retrying could help."""

    permanent = False

    def __init__(self, name: str, detail: str):
        super().__init__(name, detail)
        self.name = name
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


class TemporaryRoutingError(RoutingError):
    """DNS gave no usable answer now (timeout, SERVFAIL): defer and retry."""


class PermanentRoutingError(RoutingError):
    """The domain cannot receive mail: bounce."""

    permanent = True


class NoSuchDomain(PermanentRoutingError):
    """The name does not exist (NXDOMAIN) or is not a valid domain name."""


class NullMx(PermanentRoutingError):
    """The domain publishes a null MX: it accepts no mail (RFC 7505)."""


class NoMailHost(PermanentRoutingError):
    """Neither the domain's MX hosts nor, without MX, the domain itself have an address."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One place to try: connect to ``address``:``port``; ``host`` is the name for TLS and logs.

    For a transport-map entry ``address`` is its host as written (a name is resolved by
    the connector).
    """

    host: str
    address: str
    port: int
    preference: int


@dataclass(frozen=True, slots=True)
class Records(Generic[T]):
    """A DNS answer reduced to what routing needs: its values and how long they may be kept."""

    values: tuple[T, ...]
    ttl: int


class DnsBackend(Protocol):
    """Where the router gets DNS answers.

    Names are given and returned lower-case without the final dot. A name that does not
    exist raises ``NoSuchDomain``; no answer in time, SERVFAIL and the like raise
    ``TemporaryRoutingError``. A name that exists without records of the type asked for
    gives empty ``Records`` whose ttl is the zone's negative TTL.
    """

    async def mx(self, domain: str) -> Records[tuple[int, str]]:
        """Return the domain's MX records as (preference, exchange); a null MX's exchange is "."."""
        ...

    async def addresses(self, host: str) -> Records[str]:
        """Return the host's IPv4 addresses, then its IPv6 ones."""
        ...


def _normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


class FakeDns:
    """An in-memory DnsBackend for unit tests; records are set like on tests' DNS server zone."""

    def __init__(self, default_ttl: int = 300, negative_ttl: int = 300):
        self.default_ttl = default_ttl
        self.negative_ttl = negative_ttl
        self.queries: Counter[tuple[str, str]] = Counter()   # ("mx" | "addresses", name) -> calls
        self._mx: dict[str, list[tuple[int, str, int]]] = {}
        self._addresses: dict[str, list[tuple[str, int]]] = {}
        self._failing: dict[str, str] = {}

    def add_mx(self, name: str, records: Sequence[tuple[int, str]], ttl: int | None = None) -> None:
        """Add MX records (preference, exchange) to a name."""
        ttl = self.default_ttl if ttl is None else ttl
        self._mx.setdefault(_normalize(name), []).extend((p, _normalize(h) or NULL_MX, ttl) for p, h in records)

    def add_null_mx(self, name: str, ttl: int | None = None) -> None:
        """Publish the null MX "0 ." for a name."""
        self.add_mx(name, [(0, NULL_MX)], ttl)

    def add_a(self, name: str, *addresses: str, ttl: int | None = None) -> None:
        """Add IPv4 addresses to a name."""
        self._add_addresses(name, map(ipaddress.IPv4Address, addresses), ttl)

    def add_aaaa(self, name: str, *addresses: str, ttl: int | None = None) -> None:
        """Add IPv6 addresses to a name."""
        self._add_addresses(name, map(ipaddress.IPv6Address, addresses), ttl)

    def remove(self, name: str) -> None:
        """Forget every record of a name, and its failure mode."""
        for table in (self._mx, self._addresses, self._failing):
            table.pop(_normalize(name), None)

    def servfail(self, name: str) -> None:
        """Make lookups of a name fail as on SERVFAIL."""
        self._failing[_normalize(name)] = "SERVFAIL"

    def slow(self, name: str) -> None:
        """Make lookups of a name time out."""
        self._failing[_normalize(name)] = "timed out"

    async def mx(self, domain: str) -> Records[tuple[int, str]]:
        """Return the domain's MX records as (preference, exchange); a null MX's exchange is "."."""
        domain = self._look_up("mx", domain)
        await asyncio.sleep(0)   # answer on a later turn of the loop, as a real query does
        records = self._mx.get(domain, [])
        return Records(tuple((p, h) for p, h, _ in records), min((t for *_, t in records), default=self.negative_ttl))

    async def addresses(self, host: str) -> Records[str]:
        """Return the host's IPv4 addresses, then its IPv6 ones."""
        host = self._look_up("addresses", host)
        await asyncio.sleep(0)
        records = sorted(self._addresses.get(host, []), key=lambda r: ":" in r[0])   # stable: IPv4 first
        return Records(tuple(a for a, _ in records), min((t for _, t in records), default=self.negative_ttl))

    def _add_addresses(self, name: str, addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address],
                       ttl: int | None) -> None:
        ttl = self.default_ttl if ttl is None else ttl
        self._addresses.setdefault(_normalize(name), []).extend((str(a), ttl) for a in addresses)

    def _look_up(self, kind: str, name: str) -> str:
        name = _normalize(name)
        self.queries[kind, name] += 1
        if name in self._failing:
            raise TemporaryRoutingError(name, self._failing[name])
        known = (*self._mx, *self._addresses)
        # A name with no records of its own still exists when names below it do.
        if not any(k == name or k.endswith("." + name) for k in known):
            raise NoSuchDomain(name, "does not exist (NXDOMAIN)")
        return name


def make_resolver(kind: type, nameservers: Sequence[tuple[str, int]], lifetime: float):
    """Return a dnspython resolver (``kind``: the blocking or the asyncio one) on these nameservers or the system's."""
    # Without nameservers dnspython reads /etc/resolv.conf here, once, not on each query.
    resolver = kind(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
    resolver.lifetime = lifetime
    return resolver


class DnspythonBackend:
    """A DnsBackend on dnspython's asyncio resolver, asking the given nameservers or the system's."""

    def __init__(self, nameservers: Sequence[tuple[str, int]] = (), lifetime: float = 5.0):
        self._resolver = make_resolver(dns.asyncresolver.Resolver, nameservers, lifetime)

    async def mx(self, domain: str) -> Records[tuple[int, str]]:
        """Return the domain's MX records as (preference, exchange); a null MX's exchange is "."."""
        answer = await self._query(domain, "MX")
        values = tuple(
            (r.preference, NULL_MX if r.exchange == dns.name.root else _normalize(r.exchange.to_text()))
            for r in answer.rrset or ()
        )
        return Records(values, answer.chaining_result.minimum_ttl)

    async def addresses(self, host: str) -> Records[str]:
        """Return the host's IPv4 addresses, then its IPv6 ones."""
        answers = await asyncio.gather(self._query(host, "A"), self._query(host, "AAAA"), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, TemporaryRoutingError):
                raise answer   # NXDOMAIN for one family is NXDOMAIN for the name
        found = [a for a in answers if not isinstance(a, BaseException)]
        values = tuple(r.address for a in found for r in a.rrset or ())
        if not values and len(found) < len(answers):
            # Some servers drop AAAA queries: an A answer alone is enough, nothing at all is not.
            raise next(a for a in answers if isinstance(a, TemporaryRoutingError))
        return Records(values, min(a.chaining_result.minimum_ttl for a in found))

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise NoSuchDomain(name, f"not a valid domain name ({exc})") from None
        try:
            return await self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(name, "does not exist (NXDOMAIN)") from None
        except dns.exception.Timeout:
            raise TemporaryRoutingError(name, f"{rdtype} lookup timed out") from None
        except dns.exception.DNSException as exc:   # SERVFAIL or REFUSED from every server, bad answers
            raise TemporaryRoutingError(name, f"{rdtype} lookup failed: {exc}") from None


class Clock(Protocol):
    """What the router needs of appliance.clock's clocks."""

    def now(self) -> datetime:
        """Return the current time as an aware datetime."""
        ...


@dataclass(frozen=True)
class _Target:
    preference: int
    hops: tuple[Hop, ...]


@dataclass(frozen=True)
class _Entry:
    expires: datetime
    targets: tuple[_Target, ...] = ()
    error: RoutingError | None = None


@dataclass(eq=False)
class Router:
    """Finds where to deliver mail for a domain: the transport map, else DNS, cached by TTL.

    Answers are kept for their TTL within [min_ttl, max_ttl]; NXDOMAIN and domains without
    a mail host for ``negative_ttl``, temporary failures for ``failure_ttl`` (so a burst of
    recipients waits on one timeout, not one each). Concurrent lookups of a domain share
    one query. MX-derived hops use ``default_port``; tests point it at their sinks.
    """

    backend: DnsBackend
    clock: Clock
    transport: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    default_port: int = SMTP_PORT
    min_ttl: int = 60
    max_ttl: int = 86400
    negative_ttl: int = 300
    failure_ttl: int = 30
    rng: random.Random = field(default_factory=random.Random)
    _cache: dict[str, _Entry] = field(default_factory=dict, init=False, repr=False)
    _inflight: dict[str, asyncio.Task[_Entry]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self.transport = {_normalize(domain): relay for domain, relay in self.transport.items()}

    async def next_hops(self, domain: str) -> list[Hop]:
        """Return the hops for a domain, best first, or raise a RoutingError."""
        domain = _normalize(domain)
        relay = self.transport.get(domain) or self.transport.get("*")
        if relay is not None:
            return [Hop(host=relay[0], address=relay[0], port=relay[1], preference=0)]
        entry = self._cache.get(domain)
        if entry is None or entry.expires <= self.clock.now():
            task = self._inflight.get(domain)
            if task is None:
                task = self._inflight[domain] = asyncio.create_task(self._resolve(domain))
                task.add_done_callback(functools.partial(self._settle, domain))
            # Shielded: a caller that gives up must not cancel the query the others wait on.
            entry = await asyncio.shield(task)
        if entry.error is not None:
            raise copy.copy(entry.error)   # a fresh exception per caller, not one traceback grown by all
        targets = list(entry.targets)
        self.rng.shuffle(targets)
        targets.sort(key=lambda t: t.preference)   # stable: equal preferences stay shuffled (RFC 5321 §5.1)
        return [hop for target in targets for hop in target.hops]

    def _settle(self, domain: str, task: asyncio.Task[_Entry]) -> None:
        del self._inflight[domain]
        if not task.cancelled() and task.exception() is None:
            self._cache[domain] = task.result()

    async def _resolve(self, domain: str) -> _Entry:
        try:
            mx = await self.backend.mx(domain)
        except NoSuchDomain as exc:
            return self._entry(self.negative_ttl, error=exc)
        except TemporaryRoutingError as exc:
            return self._entry(self.failure_ttl, error=exc)
        if [host for _, host in mx.values] == [NULL_MX]:
            return self._entry(self._clamp(mx.ttl), error=NullMx(domain, "publishes a null MX: it takes no mail"))
        # No MX at all: the domain itself is the mail host (implicit MX, RFC 5321 §5.1).
        hosts = [(p, h) for p, h in mx.values if h != NULL_MX] or [(0, domain)]
        answers = await asyncio.gather(*(self._addresses(host) for _, host in hosts))
        targets, ttls, failures = [], [mx.ttl], []
        for (preference, host), answer in zip(hosts, answers):
            if isinstance(answer, TemporaryRoutingError):
                failures.append(answer)
            elif isinstance(answer, Records) and answer.values:
                ttls.append(answer.ttl)
                hops = tuple(Hop(host, address, self.default_port, preference) for address in answer.values)
                targets.append(_Target(preference, hops))
        if targets:
            # Hosts that failed for now may answer soon: keep the partial list only briefly.
            return self._entry(self.min_ttl if failures else self._clamp(min(ttls)), targets=tuple(targets))
        if failures:
            return self._entry(self.failure_ttl, error=TemporaryRoutingError(domain, f"mail host {failures[0]}"))
        return self._entry(self.negative_ttl, error=NoMailHost(domain, "no mail host has an address"))

    async def _addresses(self, host: str) -> Records[str] | RoutingError:
        try:
            return await self.backend.addresses(host)
        except (NoSuchDomain, TemporaryRoutingError) as exc:
            return exc

    def _entry(self, ttl: int, **result) -> _Entry:
        return _Entry(expires=self.clock.now() + timedelta(seconds=ttl), **result)

    def _clamp(self, ttl: int) -> int:
        return max(self.min_ttl, min(self.max_ttl, ttl))


def parse_endpoint(text: str, default_port: int) -> tuple[str, int]:
    """Split "host", "host:port", "[v6]:port" or a bare IPv6 address into (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [address]:port, got {text!r}")
        port = rest[1:] or str(default_port)
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:   # a name, an IPv4 address or a bare IPv6 address
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host or host:port, got {text!r}")
    return host, int(port)


def nameservers_from_config(config: Config) -> list[tuple[str, int]]:
    """``[mta] nameservers`` as (IP address, port) pairs; empty means the system's resolvers."""
    nameservers = []
    for entry in config["mta"]["nameservers"]:
        try:
            ip, port = parse_endpoint(entry, DNS_PORT)
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise ConfigError(f"mta.nameservers: {exc}; give an IP address, optionally with :port") from None
        nameservers.append((ip, port))
    return nameservers


def from_config(config: Config, clock: Clock, default_port: int = SMTP_PORT) -> Router:
    """Build the router from ``[mta] nameservers`` and ``[mta] transport``."""
    nameservers = nameservers_from_config(config)
    transport = {}
    for domain, relay in config["mta"]["transport"].items():
        try:
            transport[domain] = parse_endpoint(str(relay), SMTP_PORT)
        except ValueError as exc:
            raise ConfigError(f"mta.transport: {domain}: {exc}") from None
    try:
        backend = DnspythonBackend(nameservers)
    except dns.resolver.NoResolverConfiguration:
        raise ConfigError("mta.nameservers: empty, and the system has no resolver configured") from None
    return Router(backend, clock, transport=transport, default_port=default_port)
