"""Who sent an inbound mail, as far as DNS can tell: DKIM (dkimpy) and SPF (RFC 7208, pyspf) results.

Both ask DNS through one injected look-up (:data:`Lookup`): ``mta.resolver.DnsLookup`` on
``[mta] nameservers`` in production, a fake in unit tests. Its contract:
``lookup(name, rdtype)`` with a name without the final dot and a type ("TXT", "A", "AAAA",
"MX", "PTR") returns the answers, for TXT one ``bytes`` per record (its strings joined), for
A/AAAA the address text, for MX ``(preference, exchange)``, for PTR the name; ``[]`` when
the name does not exist or has no such records; and raises :class:`DnsFailure` when DNS
gives no answer (time-out, SERVFAIL). A failure makes the result ``temperror``: it never
reaches the SMTP client as an error.

Results are written as Authentication-Results entries (RFC 8601) naming domains only, never
an address: the school sees them beside a reply.
"""
from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable
from email.message import Message

import dkim
import spf

log = logging.getLogger(__name__)

Lookup = Callable[[str, str], list]
SPF_SECONDS = 20        # the whole SPF check's DNS time (RFC 7208 §4.6.4 asks for at least 20 s)
MAX_SIGNATURES = 5      # DKIM signatures checked per mail; more are ignored

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")
_LOOKUP: contextvars.ContextVar[Lookup] = contextvars.ContextVar("spf_lookup")


class DnsFailure(Exception):
    """DNS gave no answer (time-out, SERVFAIL, no server reachable): try again later."""


def dkim_results(raw: bytes, message: Message, lookup: Lookup) -> list[str]:
    """One ``dkim=`` entry per DKIM signature (the first few), or ``dkim=none``."""
    results = []
    for index, signature in enumerate((message.get_all("DKIM-Signature") or [])[:MAX_SIGNATURES]):
        domain = _tag(str(signature), "d")
        try:
            verdict = "pass" if dkim.DKIM(raw, timeout=5).verify(idx=index, dnsfunc=_dkim_txt(lookup)) else "fail"
        except DnsFailure:      # passed through dkimpy, which would call its own time-out a failed signature
            verdict = "temperror"
        except dkim.ValidationError:     # dkimpy raises for a body changed in transit
            verdict = "fail"
        except (dkim.DKIMException, ValueError, IndexError, UnicodeError):
            verdict = "permerror"
        except Exception:       # whatever else the key look-up raised: the mail is still taken
            log.warning("DKIM check failed", exc_info=True)
            verdict = "temperror"
        results.append(f"dkim={verdict} header.d={domain or 'unknown'}")
    return results or ["dkim=none"]


def spf_result(lookup: Lookup, client_ip: str, mail_from: str, helo: str) -> str:
    """The ``spf=`` entry: check_host of the client for the MAIL FROM domain, or the HELO name for a bounce."""
    domain = mail_from.strip().strip("<>").rpartition("@")[2].lower().rstrip(".") if "@" in mail_from else ""
    identity, prop = (domain, "smtp.mailfrom") if domain else (helo.strip().lower().rstrip("."), "smtp.helo")
    if not _DOMAIN.fullmatch(identity):
        return "spf=none"       # no domain to ask about (an address literal, a bare name)
    token = _LOOKUP.set(lookup)
    try:
        # pyspf asks DNS only through this module global (its own calls dnspython's deprecated
        # query on the system resolver): point it at the look-up of the check running here.
        spf.DNSLookup = _pyspf_dns
        result, _code, _text = spf.query(i=client_ip, s=mail_from if domain else "", h=helo,
                                         querytime=SPF_SECONDS).check()
    except spf.TempError:
        result = "temperror"
    except spf.PermError:       # e.g. a client address pyspf cannot read
        result = "permerror"
    except Exception:
        log.warning("SPF check failed", exc_info=True)
        result = "temperror"
    finally:
        _LOOKUP.reset(token)
    return f"spf={result} {prop}={identity}"


def _pyspf_dns(name: str, qtype: str, strict: bool = True, timeout: float = SPF_SECONDS) -> list:
    """pyspf's DNSLookup: ((name, type), value) pairs, TXT values as a tuple of strings."""
    try:
        answers = _LOOKUP.get()(name.rstrip("."), qtype)
    except DnsFailure as exc:
        raise spf.TempError(f"DNS {exc}") from None
    return [((name, qtype), (answer,) if qtype in ("TXT", "SPF") else answer) for answer in answers]


def _dkim_txt(lookup: Lookup) -> Callable:
    """dkimpy's dnsfunc: the first TXT record of a name, or None (DnsFailure passes through)."""
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        answers = lookup(name.decode("ascii", "replace").rstrip("."), "TXT")
        return answers[0] if answers else None
    return dnsfunc


def _tag(signature: str, name: str) -> str:
    match = re.search(rf"(?:^|;)\s*{name}\s*=\s*([^;\s]+)", " ".join(signature.split()))
    return re.sub(r"[^A-Za-z0-9.-]", "", match[1])[:253] if match else ""
