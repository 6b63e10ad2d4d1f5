"""The guardian's CoCo-net page: their own children and the notices, tiny, without JavaScript.

Caching: the page is personal (a child's state), so it is ``private``: a shared proxy
must not store it, even though the token in the URL would keep families apart, since
a stored copy of a child's safety is out of the school's hands. It is ``no-cache``
because every opening must reach us to be recorded as a read report; a strong ETag
lets the phone revalidate and get a 304 of a few hundred bytes when nothing changed,
which is what helps on a congested network. The page is the same for anyone holding
the link: no cookie is set and it is rendered in the guardian's own language, so it
varies on nothing else.

CSRF without a session and the rate limit on link guessing: :mod:`webui.capability`,
shared with the guardian's message pages.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from flask import g, make_response, redirect, request, url_for
from markupsafe import Markup

from appliance import coconet
from appliance.errors import ApplianceError
from webui import capability
from webui.access import PUBLIC, access
from webui.group_commit import before_answer
from webui.i18n import render_in
from webui.coconet import bp

FORM_PURPOSE = "coconet-form"
# Inline, so the page is one request on a congested network; the CSP allows exactly this text.
INLINE_CSS = (Path(__file__).parent.parent / "static" / "coconet-guardian.css").read_text(encoding="utf-8")


@bp.get("/c/<token>")
@access(PUBLIC)
def guardian_show(token: str):
    """The page a guardian's link opens; each opening is recorded."""
    view = _view(token)
    rows = coconet.check_rows(g.appliance, view, "open")
    if rows:
        before_answer(partial(coconet.insert_checks, rows))
    return _page(view, token)


@bp.post("/c/<token>")
@capability.checks_form_token
@access(PUBLIC)
def guardian_check(token: str):
    """Record "確認しました" or a short reply, then show the page again."""
    view = _view(token)
    capability.check_form_token(FORM_PURPOSE, token)
    kind = "reply" if "reply" in request.form else "confirm"
    try:
        coconet.record_check(g.appliance, view, kind, event_id=request.form.get("event_id"),
                             body=request.form.get("reply", ""))
    except ApplianceError as refused:
        return _page(view, token, error=str(refused), status=400)
    return redirect(url_for("coconet.guardian_show", token=token, _anchor="done"), 303)


def _view(token: str) -> coconet.GuardianView:
    grant = capability.resolve(token, "coconet")     # InvalidToken: one 404 for every reason
    return coconet.guardian_view(grant.guardian_id)


def _page(view: coconet.GuardianView, token: str, *, error: str = "", status: int = 200):
    html = render_in(view.locale, "coconet/guardian.html", view=view, token=token,
                     form_token=capability.form_token(FORM_PURPOSE, token), inline_css=Markup(INLINE_CSS),
                     error=error, states=coconet.STATES, reply_limit=coconet.MAX_REPLY)
    response = capability.private_headers(make_response(html, status), view.locale, inline_style=INLINE_CSS)
    if status == 200:
        response.add_etag()
        response.make_conditional(request)
    return response
