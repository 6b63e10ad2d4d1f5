"""gunicorn's access log without the capabilities in guardians' links.

A link's token (``/r/``, ``/c/``, ``/u/``, ``/p/in/``, ``/p/confirm/``, ``/e/ok/``) or a
registration code (``/e/<code>``) is the key to a guardian's page: whoever reads the log
(journald, a support bundle) could open it. The log keeps each request's shape and
replaces the secret with ``…``. ``appliance web`` runs gunicorn with this logger.
"""
from __future__ import annotations

import re

from gunicorn.glogging import Logger

from appliance.tokens import PATHS

# Longest first, so /e/ok/<token> is not read as the code "ok".
_PREFIXES = sorted({*PATHS.values(), "e"}, key=len, reverse=True)
_SECRET = re.compile(r"/(" + "|".join(map(re.escape, _PREFIXES)) + r")/[^/?#\s]+")


def redact(text: str) -> str:
    """Return a request line or path with the secret part of any guardian link replaced."""
    return _SECRET.sub(lambda found: f"/{found.group(1)}/…", text)


class RedactingLogger(Logger):
    """gunicorn's logger with no guardian's capability in any value a log format can name."""

    def atoms(self, resp, req, environ, request_time):
        # Every string: besides the request line, path and referrer, gunicorn offers each
        # header and environ value ({raw_uri}e, {referer}i ...) to a configured format.
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
