"""The guardian side: the message page a mail's link opens (``/r/<token>``), the portal (``/p/``), unsubscribing (``/u/``).

Pages are for a cheap phone in a hurry: light (no page over 30 KB before its
attachments), readable at 320 px, and reading and answering work without JavaScript
(the portal's push registration is the one thing that needs it). Every page is in the
guardian's own language (Japanese first, English from the catalog), escapes all
output and carries a strict Content-Security-Policy. Every POST carries a CSRF token
derived from the capability (:mod:`webui.capability`); the sign-in request, which has
no capability yet, uses the session's Flask-WTF token.
"""
from flask import Blueprint

from webui import capability

bp = Blueprint("guardian", __name__)


@bp.after_request
def guardian_headers(response):
    """Guardian pages and files: a strict CSP (files keep their own, stricter one)."""
    response.headers.setdefault("Content-Security-Policy", capability.CSP)
    response.headers["X-Frame-Options"] = "DENY"
    return response


from webui.guardian import enquiry, message, portal, register, unsubscribe  # noqa: E402,F401  (views register on bp)
