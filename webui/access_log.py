"""The web UI's access log, without the capabilities in guardians' links.

A link's token (``/r/``, ``/c/``, ``/u/``, ``/p/in/``, ``/p/confirm/``, ``/e/ok/``) or a
registration code (``/e/<code>``) is the key to a guardian's page: whoever reads the log
(journald, a support bundle) could open it. The front (webui/front.py) writes one line
per request in gunicorn's access log format and replaces the secret with ``…`` in each
value that could carry one: the request line, the referrer and the user agent.
"""
from __future__ import annotations

import re
import time

from appliance.tokens import PATHS

# Longest first, so /e/ok/<token> is not read as the code "ok".
_PREFIXES = sorted({*PATHS.values(), "e"}, key=len, reverse=True)
_SECRET = re.compile(r"/(" + "|".join(map(re.escape, _PREFIXES)) + r")/[^/?#\s]+")


def redact(text: str) -> str:
    """Return a request line or path with the secret part of any guardian link replaced."""
    return _SECRET.sub(lambda found: f"/{found.group(1)}/…", text)


def client_address(scope: dict) -> str:
    """The address of the request's client as the connection gives it ("" when the server has none)."""
    return scope["client"][0] if scope.get("client") else ""


def line(scope: dict, status: int, length: int) -> str:
    """One request's line, as gunicorn's default format has it: ``h l u t "r" s b "f" "a"``."""
    query = scope["query_string"]
    target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
    request = f'{scope["method"]} {target} HTTP/{scope["http_version"]}'
    client = client_address(scope) or "-"
    headers = dict(scope["headers"])
    referrer = headers.get(b"referer", b"-").decode("latin-1")
    agent = headers.get(b"user-agent", b"-").decode("latin-1")
    return (f'{client} - - {time.strftime("[%d/%b/%Y:%H:%M:%S %z]")} "{redact(request)}" {status} '
            f'{length if length else "-"} "{redact(referrer)}" "{redact(agent)}"')
