"""The unsubscribe link ``/u/<token>`` every routine mail carries (List-Unsubscribe): stop routine mail, or restart it.

GET only shows what stopping means (routine notices stop coming by email; emergency
notices still come; the portal turns it back on) and a button: mail scanners follow
links, so a GET never changes anything. A POST with the page's form token (derived
from the link, :mod:`webui.capability`) stops it, or restarts it from the page that
says it is stopped. RFC 8058 one-click: a mail provider's unsubscribe button POSTs
``List-Unsubscribe=One-Click`` to the same URL from its own servers, with neither our
form nor a cookie; the unguessable token in the URL authorises it as it does every
link, and the answer is a 200 page (RFC 8058 forbids a redirect). Either way it is
idempotent. The token grants one guardian (:mod:`appliance.routine_mail`).
"""
from __future__ import annotations

from flask import abort, g, request

from appliance import portal, routine_mail
from webui import capability
from webui.access import PUBLIC, access
from webui.guardian import bp

FORM_PURPOSE = "unsubscribe-form"


def _page(token: str, guardian_id: str, done: str = ""):
    guardian = portal.get_guardian(guardian_id)
    return capability.private_page(guardian.locale, "guardian/unsubscribe.html", token=token,
                                   enabled=guardian.routine_mail, done=done,
                                   form_token=capability.form_token(FORM_PURPOSE, token))


@bp.get("/u/<token>")
@access(PUBLIC)
def unsubscribe_show(token: str):
    """What stopping routine mail means, and the button (or, when stopped, the button that restarts it)."""
    grant = capability.resolve(token, "unsubscribe")          # InvalidToken: one 404 for every reason
    return _page(token, grant.guardian_id)


@bp.post("/u/<token>")
@capability.checks_form_token
@access(PUBLIC)
def unsubscribe_update(token: str):
    """Stop routine mail (the page's button, or a provider's one-click POST), or restart it from the page."""
    grant = capability.resolve(token, "unsubscribe")
    if "form_token" in request.form:
        capability.check_form_token(FORM_PURPOSE, token)
        enabled = request.form.get("routine_mail") == "on"
    elif request.form.get("List-Unsubscribe") == "One-Click":
        enabled = False
    else:
        abort(400)
    routine_mail.set_routine_mail(g.appliance, grant.guardian_id, enabled)
    return _page(token, grant.guardian_id, done="started" if enabled else "stopped")
