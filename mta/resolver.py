"""DNS look-ups for checking inbound mail (DKIM keys, SPF policies) on ``[mta] nameservers``.

:class:`DnsLookup` is the look-up :mod:`appliance.mail_auth` describes, on dnspython's
blocking resolver: the inbound router runs in a worker thread, never on the event loop.
"""
from __future__ import annotations

from collections.abc import Sequence

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from appliance.config import Config, ConfigError
from appliance.mail_auth import DnsFailure
from mta.routing import make_resolver, nameservers_from_config

# Not DNS failures but names DNS cannot hold (too long, empty labels): nothing is there.
_NO_SUCH_NAME = (dns.resolver.NXDOMAIN, dns.exception.SyntaxError, dns.name.NameTooLong)


class DnsLookup:
    """``lookup(name, rdtype) -> answers`` on the given nameservers, or the system's."""

    def __init__(self, nameservers: Sequence[tuple[str, int]] = (), lifetime: float = 5.0):
        self._resolver = make_resolver(dns.resolver.Resolver, nameservers, lifetime)

    def __call__(self, name: str, rdtype: str) -> list:
        try:
            answer = self._resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except _NO_SUCH_NAME:
            return []
        except dns.exception.DNSException as exc:       # time-out, SERVFAIL or refusal from every server
            raise DnsFailure(f"{rdtype} {name}: {exc.__class__.__name__}") from None
        return [_value(rdata) for rdata in answer.rrset or ()]


def _value(rdata):
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings)
    if rdata.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return rdata.address
    if rdata.rdtype == dns.rdatatype.MX:
        return rdata.preference, rdata.exchange.to_text(omit_final_dot=True)
    if rdata.rdtype == dns.rdatatype.PTR:
        return rdata.target.to_text(omit_final_dot=True)
    return rdata.to_text()


def lookup_from_config(config: Config) -> DnsLookup:
    """The look-up on ``[mta] nameservers`` (the system's resolvers when empty)."""
    try:
        return DnsLookup(nameservers_from_config(config))
    except dns.resolver.NoResolverConfiguration:
        raise ConfigError("mta.nameservers: empty, and the system has no resolver configured") from None
