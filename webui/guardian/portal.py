"""The guardian's portal under ``/p/``: sign-in by a mailed link, children, messages, addresses, devices, settings.

After the sign-in link is used, the guardian holds a signed cookie (``renraku_guardian``,
path ``/p``, 30 days) naming them and a random sign-in id; nothing is kept in a
worker's memory. The portal's forms carry a CSRF token derived from that sign-in id
(:mod:`webui.capability`), so a cross-site POST cannot forge one.
"""
from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Response, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from appliance import contacts, portal, push, ratelimit
from appliance.errors import InvalidInput, NotFound
from webui import capability
from webui.access import PUBLIC, access
from webui.guardian import bp
from webui.i18n import browser_locale

COOKIE = "renraku_guardian"
COOKIE_AGE = timedelta(days=30)
FORM_PURPOSE = "portal-form"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="guardian-portal")


def _signed_in() -> tuple[str, str] | None:
    """Return (guardian id, sign-in id) from the cookie, or None."""
    try:
        data = _serializer().loads(request.cookies.get(COOKIE, ""), max_age=int(COOKIE_AGE.total_seconds()))
        return data["g"], data["s"]
    except (BadSignature, KeyError, TypeError):
        return None


def guardian_only(view):
    """The portal's pages: a signed-in guardian (else the sign-in page); g.guardian and g.portal_sid set."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        found = _signed_in()
        guardian = None
        if found:
            try:
                guardian = portal.get_guardian(found[0])
            except NotFound:
                guardian = None
        if guardian is None:
            return redirect(url_for("guardian.portal_signin_new"))
        g.guardian, g.portal_sid = guardian, found[1]
        if request.method == "POST":
            capability.check_form_token(FORM_PURPOSE, g.portal_sid)
        return view(*args, **kwargs)

    return guarded


def _render(template: str, status: int = 200, locale: str | None = None, **context):
    locale = locale or (g.guardian.locale if g.get("guardian") else browser_locale())
    form_token = capability.form_token(FORM_PURPOSE, g.portal_sid) if g.get("portal_sid") else ""
    return capability.private_page(locale, template, status, form_token=form_token, **context)


def _back(endpoint: str, message: str):
    return redirect(url_for(endpoint, done=message), 303)


# --- sign-in ---------------------------------------------------------------------------------

@bp.get("/p/signin")
@access(PUBLIC)
def portal_signin_new():
    """Ask for a sign-in link by mail."""
    return _render("guardian/signin.html")


@bp.post("/p/signin")
@access(PUBLIC)
def portal_signin_create():
    """Mail a sign-in link if the address is known; the answer is the same either way."""
    client = capability.client()
    if not g.appliance.limiter.hit(ratelimit.SIGN_IN_REQUESTS, client):
        return _render("guardian/signin.html", 429, error=_("操作が多すぎます。しばらく待ってからお試しください"))
    address = request.form.get("address", "")
    try:
        portal.request_sign_in(g.appliance, address)
    except InvalidInput as refused:
        return _render("guardian/signin.html", 400, error=str(refused), address=address)
    return _render("guardian/signin_sent.html")


@bp.get("/p/in/<token>")
@access(PUBLIC)
def portal_session_new(token: str):
    """The sign-in link: a button, so that a mail scanner opening the link does not use it up."""
    capability.resolve(token, "signin")
    return _render("guardian/signin_link.html", token=token,
                   link_form_token=capability.form_token(FORM_PURPOSE + "-signin", token))


@bp.post("/p/in/<token>")
@capability.checks_form_token
@access(PUBLIC)
def portal_session_create(token: str):
    """Use the sign-in link: set the portal cookie and go to the portal."""
    capability.check_form_token(FORM_PURPOSE + "-signin", token)
    guardian_id = portal.sign_in(g.appliance, token)
    response = redirect(url_for("guardian.portal_show"), 303)
    value = _serializer().dumps({"g": guardian_id, "s": secrets.token_urlsafe(16)})
    response.set_cookie(COOKIE, value, max_age=int(COOKIE_AGE.total_seconds()), path="/p", httponly=True,
                        samesite="Lax", secure=g.appliance.config["web"]["base_url"].startswith("https:"))
    return response


@bp.post("/p/signout")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def portal_session_delete():
    """Sign out on this device."""
    response = redirect(url_for("guardian.portal_signin_new"), 303)
    response.delete_cookie(COOKIE, path="/p")
    return response


# --- the portal --------------------------------------------------------------------------------

@bp.get("/p/")
@access(PUBLIC)
@guardian_only
def portal_show():
    """The guardian's children and the messages they received, newest first."""
    return _render("guardian/portal.html", children=portal.children(g.guardian.id),
                   received=portal.received_messages(g.appliance, g.guardian.id))


@bp.get("/p/settings")
@access(PUBLIC)
@guardian_only
def settings_show():
    """Language, quiet hours and routine mail."""
    return _render("guardian/settings.html", hours=range(24), done=request.args.get("done", ""))


@bp.post("/p/settings")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def settings_update():
    """Save language, quiet hours and routine mail."""
    form = request.form
    try:
        quiet = [int(form[k]) if form.get(k, "").isdigit() else None for k in ("quiet_from", "quiet_until")]
        portal.set_preferences(g.appliance, g.guardian.id, locale=form.get("locale", ""), quiet_from=quiet[0],
                               quiet_until=quiet[1], routine_mail={"on": True, "off": False}.get(form.get("routine_mail")))
    except InvalidInput as refused:
        return _render("guardian/settings.html", 400, hours=range(24), error=str(refused))
    return _back("guardian.settings_show", "saved")


@bp.get("/p/addresses")
@access(PUBLIC)
@guardian_only
def address_index():
    """The guardian's addresses: which work, which wait for confirmation, which bounce."""
    return _addresses_page(200, done=request.args.get("done", ""))


def _addresses_page(status: int, **extra):
    return _render("guardian/addresses.html", status, addresses=contacts.own_contacts(g.appliance, g.guardian.id, "email"),
                   limit=contacts.MAX_PER_KIND["email"], **extra)


@bp.post("/p/addresses")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def address_create():
    """Add an address; a confirmation link is mailed to it."""
    address = request.form.get("address", "")
    try:
        portal.add_address(g.appliance, g.guardian.id, address)
    except InvalidInput as refused:
        return _addresses_page(400, error=str(refused), address=address)
    return _back("guardian.address_index", "added")


@bp.post("/p/addresses/<contact_id>/remove")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def address_delete(contact_id: str):
    """Remove an address (not the last working one)."""
    try:
        portal.remove_address(g.appliance, g.guardian.id, contact_id)
    except InvalidInput as refused:
        return _addresses_page(400, error=str(refused))
    return _back("guardian.address_index", "removed")


@bp.post("/p/addresses/<contact_id>/confirm")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def address_confirmation_create(contact_id: str):
    """Mail the confirmation link again (a new address, or one that bounced)."""
    try:
        portal.resend_confirmation(g.appliance, g.guardian.id, contact_id)
    except InvalidInput as refused:
        return _addresses_page(400, error=str(refused))
    return _back("guardian.address_index", "sent")


@bp.get("/p/confirm/<token>")
@access(PUBLIC)
def address_confirmation_show(token: str):
    """The link in a confirmation mail: a button that confirms the address."""
    capability.resolve(token, "confirm")
    return _render("guardian/confirm.html", token=token,
                   link_form_token=capability.form_token(FORM_PURPOSE + "-confirm", token))


@bp.post("/p/confirm/<token>")
@capability.checks_form_token
@access(PUBLIC)
def address_confirmation_update(token: str):
    """Confirm the address the link was mailed to."""
    capability.check_form_token(FORM_PURPOSE + "-confirm", token)
    capability.resolve(token, "confirm")        # counted against guessing like every link
    guardian_id = portal.confirm_address(g.appliance, token)
    return _render("guardian/confirm.html", locale=portal.get_guardian(guardian_id).locale, confirmed=True)


@bp.get("/p/devices")
@access(PUBLIC)
@guardian_only
def device_index():
    """The guardian's push devices, and (with JavaScript) registering this one."""
    return _devices_page(done=request.args.get("done", ""))


@bp.post("/p/devices")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def device_create():
    """Register this browser's push subscription (sent by guardian.js) under a name."""
    try:
        push.add_device(g.appliance, g.guardian.id, request.form.get("subscription", ""), request.form.get("name", ""))
    except InvalidInput as refused:
        return _devices_page(400, error=str(refused))
    return _back("guardian.device_index", "added")


def _devices_page(status: int = 200, **extra):
    return _render("guardian/devices.html", status, devices=push.devices(g.appliance, g.guardian.id),
                   limit=contacts.MAX_PER_KIND["push"], vapid_key=push.public_key(g.appliance) or "", **extra)


@bp.post("/p/devices/<contact_id>/remove")
@capability.checks_form_token
@access(PUBLIC)
@guardian_only
def device_delete(contact_id: str):
    """Remove a device: it gets no more notifications."""
    push.remove_device(g.appliance, g.guardian.id, contact_id)
    return _back("guardian.device_index", "removed")


# --- the PWA -------------------------------------------------------------------------------------

@bp.get("/p/manifest.webmanifest")
@access(PUBLIC)
def manifest_show():
    """The web app manifest: the portal installs as a small app."""
    response = current_app.response_class(render_template("guardian/manifest.webmanifest"),
                                          mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/p/sw.js")
@access(PUBLIC)
def service_worker_show() -> Response:
    """The service worker, served from /p/ so that its scope is the portal: shows pushes, opens their page."""
    script = (Path(current_app.static_folder) / "guardian-sw.js").read_bytes()
    return Response(script, mimetype="text/javascript", headers={"Cache-Control": "no-cache"})
