"""Per-destination delivery limits: how hard the MTA may push one receiving domain.

Concurrency starts low and adapts between its bounds (up on success, down on 421s
and timeouts); a session carries at most ``per_session`` messages (docomo accepts
100 recipients a session; Yahoo! JAPAN closes long sessions); ``rate`` caps
messages a second. Carriers and the big free-mail providers have defaults here
that an operator overrides with ``[mta] domains``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DomainPolicy:
    initial_concurrency: int = 2
    max_concurrency: int = 20
    per_session: int = 100
    rate: float = 0.0              # messages a second; 0: unlimited
    dead_after: int = 5            # consecutive failed connections before the domain rests
    dead_for: float = 300.0        # seconds it rests


DEFAULT = DomainPolicy()
CARRIER = DomainPolicy(initial_concurrency=2, max_concurrency=8, per_session=100, rate=200.0)
KNOWN = {
    "docomo.ne.jp": CARRIER,
    "ezweb.ne.jp": CARRIER,
    "au.com": CARRIER,
    "softbank.ne.jp": CARRIER,
    "i.softbank.jp": CARRIER,
    "ymobile.ne.jp": CARRIER,
    "gmail.com": DomainPolicy(initial_concurrency=4, max_concurrency=20, per_session=100),
    "yahoo.co.jp": DomainPolicy(initial_concurrency=2, max_concurrency=10, per_session=20),
    "icloud.com": DomainPolicy(initial_concurrency=2, max_concurrency=10, per_session=50),
    "outlook.jp": DomainPolicy(initial_concurrency=2, max_concurrency=10, per_session=50),
    "hotmail.co.jp": DomainPolicy(initial_concurrency=2, max_concurrency=10, per_session=50),
}


def policy_for(domain: str, overrides: dict[str, dict] | None = None) -> DomainPolicy:
    """Return the limits for a recipient domain: the operator's overrides on top of the defaults."""
    policy = KNOWN.get(domain, DEFAULT)
    if overrides and domain in overrides:
        policy = replace(policy, **overrides[domain])
    return policy
