"""Pages opened by a capability link (a guardian's /r/, /c/ and /p/ links): shared checks and headers.

Rate limit: resolving a link is limited per client address with a counter in the
site's rate-limit file (:mod:`appliance.ratelimit`), not in a worker's memory. Only
unknown tokens count (an expired link is a guardian, not a guesser); a client over
the limit gets 429 for every link, valid or not, until its window passes, so guessing
learns nothing from it.

CSRF without a session: feature phones may not keep cookies, so the forms carry a
token derived from the capability (the link's token, or the portal's sign-in id)
under the app's secret key, checked here; these views are exempt from the
session-based check. A forged cross-site POST would need the capability itself.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from typing import NoReturn

from flask import abort, current_app, g, make_response, request

from appliance import ratelimit, tokens
from webui.i18n import render_in

# Guardian pages load nothing from elsewhere and run no inline code. Their icon is an empty data: URL, so a
# phone does not ask for /favicon.ico with every page of a burst (and get a 404 page rendered).
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self';"
       " manifest-src 'self'; worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def client() -> str:
    """The request's client address, as the rate limits count it ("" when the server gives none)."""
    return request.remote_addr or ""


def over_limit(client_address: str | None = None, app=None) -> bool:
    """Whether the client (the request's) has guessed too many links: it gets 429 for any link now."""
    if client_address is None:
        client_address = client()
    return (app or current_app).extensions["appliance"].limiter.exceeded(ratelimit.TOKEN_GUESSES, client_address)


def resolve(token: str, scope: str) -> tokens.TokenGrant:
    """Resolve a link's token for a scope, counting unknown tokens against the client; 429 past the limit."""
    address = client()
    if over_limit(address):
        abort(429)
    try:
        return tokens.resolve_token(g.appliance, token, scope)
    except tokens.InvalidToken as invalid:
        if invalid.reason == "unknown":
            g.appliance.limiter.hit(ratelimit.TOKEN_GUESSES, address)
        raise


def refuse(token: str, scope: str) -> NoReturn:
    """Answer a link a view found nothing for, or a client over the limit: 429, the token's reason (an unknown
    token counted as a guess), or 404 for a valid grant of nothing to show."""
    resolve(token, scope)
    abort(404)


def form_token(purpose: str, capability: str, app=None) -> str:
    """Return the forms' CSRF token for a capability: a MAC of it under the app's secret."""
    key = (app or current_app).config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    mac = hmac.new(key, purpose.encode() + b"\n" + capability.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def checks_form_token(view):
    """Mark a view whose forms carry the capability's form token (it calls check_form_token): create_app
    exempts every marked view from the session-based CSRF check, which a phone without cookies cannot pass."""
    view.checks_form_token = True
    return view


def check_form_token(purpose: str, capability: str) -> None:
    """Answer 400 unless the POST carries the form token of this capability."""
    if not hmac.compare_digest(request.form.get("form_token", ""), form_token(purpose, capability)):
        abort(400)


def private_page(locale: str, template: str, status: int = 200, **context):
    """A guardian page in the guardian's language, never stored by anyone (sign-in, registration, settings)."""
    response = private_headers(make_response(render_in(locale, template, **context), status), locale)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def private_headers(response, locale: str, *, inline_style: str = ""):
    """Set :func:`private_header_items` on a response; return it."""
    response.headers.update(private_header_items(locale, inline_style=inline_style))
    return response


@functools.cache
def _csp(inline_style: str) -> str:
    """The policy, allowing the page's one ``<style>`` by its hash (the same text on every CoCo-net page)."""
    if not inline_style:
        return CSP
    digest = base64.b64encode(hashlib.sha256(inline_style.encode()).digest()).decode()
    return CSP.replace("style-src 'self'", f"style-src 'self' 'sha256-{digest}'")


def private_header_items(locale: str, *, inline_style: str = "") -> dict[str, str]:
    """Headers of a page only its link holder sees: never stored by a shared cache, the link never passed on,
    never framed, nothing loaded from elsewhere (``inline_style``: the one ``<style>`` the page may carry)."""
    return {
        "Content-Security-Policy": _csp(inline_style),
        "X-Frame-Options": "DENY",
        "Cache-Control": "private, no-cache",
        "Content-Language": locale,
        "Referrer-Policy": "no-referrer",       # the link is the capability: never pass it on
        "X-Robots-Tag": "noindex",
    }
