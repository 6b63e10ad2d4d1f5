"""The guardian's CoCo-net page: their own children and the notices, tiny, without JavaScript.

Caching: the page is personal (a child's state), so it is ``private``: a shared proxy
must not store it, even though the token in the URL would keep families apart, since
a stored copy of a child's safety is out of the school's hands. It is ``no-cache``
because every opening must reach us to be recorded as a read report; a strong ETag
lets the phone revalidate and get a 304 of a few hundred bytes when nothing changed,
which is what helps on a congested network. The page is the same for anyone holding
the link: no cookie is set and it is rendered in the guardian's own language, so it
varies on nothing else.

CSRF without a session: feature phones may not keep cookies, so the forms carry a
token derived from the link's token under the app's secret key, checked here (the
views are exempt from the session-based check). A forged cross-site POST would need
the link itself, which is the capability.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from flask import abort, current_app, g, make_response, redirect, render_template, request, url_for
from flask_babel import force_locale

from appliance import coconet, tokens
from appliance.errors import ApplianceError
from webui.access import PUBLIC, access
from webui.coconet import bp


@bp.get("/c/<token>")
@access(PUBLIC)
def guardian_show(token: str):
    """The page a guardian's link opens; each opening is recorded."""
    view = _view(token)
    coconet.record_check(g.appliance, view, "open")
    return _page(view, token)


@bp.post("/c/<token>")
@access(PUBLIC)
def guardian_check(token: str):
    """Record "確認しました" or a short reply, then show the page again."""
    view = _view(token)
    if not hmac.compare_digest(request.form.get("form_token", ""), form_token(token)):
        abort(400)
    kind = "reply" if "reply" in request.form else "confirm"
    try:
        coconet.record_check(g.appliance, view, kind, event_id=request.form.get("event_id"),
                             body=request.form.get("reply", ""))
    except ApplianceError as refused:
        return _page(coconet.guardian_view(view.guardian_id), token, error=str(refused), status=400)
    return redirect(url_for("coconet.guardian_show", token=token, _anchor="done"), 303)


def form_token(token: str) -> str:
    """Return the forms' CSRF token for a link: a MAC of the link's token under the app's secret."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    mac = hmac.new(key, b"coconet-form\n" + token.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _view(token: str) -> coconet.GuardianView:
    grant = tokens.resolve_token(g.appliance, token, "coconet")     # InvalidToken: one 404 for every reason
    return coconet.guardian_view(grant.guardian_id)


def _page(view: coconet.GuardianView, token: str, *, error: str = "", status: int = 200):
    with force_locale(view.locale):
        html = render_template("coconet/guardian.html", view=view, token=token, form_token=form_token(token),
                               error=error, states=coconet.STATES, reply_limit=coconet.MAX_REPLY)
    response = make_response(html, status)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Content-Language"] = view.locale
    response.headers["Referrer-Policy"] = "no-referrer"     # the link is the capability: never pass it on
    response.headers["X-Robots-Tag"] = "noindex"
    if status == 200:
        response.add_etag()
        response.make_conditional(request)
    return response


@bp.record_once
def _exempt_from_session_csrf(state) -> None:
    state.app.extensions["csrf"].exempt(guardian_check)
