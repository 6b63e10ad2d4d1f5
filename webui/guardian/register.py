"""Registration pages: the code from the sheet (``/e/<code>``, what the QR code opens), the mailed link, siblings.

``/e/`` takes the code, the guardian's name, relationship and address and mails a
link (:mod:`appliance.registration`); the link ``/e/ok/<token>`` shows the child and
a button (GET never completes: mail scanners open links) and asks the name and
relationship when the registration came by empty mail. A signed-in guardian adds a
sibling with its code at ``/p/children/new``. Wrong codes count against the client
address (:data:`appliance.registration.CODE_GUESSES`).

The registration form has no capability yet, so it carries the session's CSRF token
(like the sign-in request); the link's page derives its token from the link, and the
portal's form from the sign-in (:mod:`webui.capability`).
"""
from __future__ import annotations

from flask import g, request
from flask_babel import lazy_gettext as _l

from appliance import registration
from appliance.errors import InvalidInput
from webui import capability
from webui.access import PUBLIC, access
from webui.guardian import bp
from webui.guardian import portal as portal_views
from webui.i18n import browser_locale

LINK_PURPOSE = "registration-link"
# The stored value stays Japanese (staff read it); the label follows the page's language.
RELATIONSHIPS = {"母": _l("母"), "父": _l("父"), "祖母": _l("祖母"), "祖父": _l("祖父"), "その他": _l("その他")}
assert tuple(RELATIONSHIPS) == registration.RELATIONSHIPS


def render_page(template: str, status: int = 200, **context):
    """A public guardian page (no sign-in) in the browser's language, private and never stored."""
    return capability.private_page(browser_locale(), template, status, relationships=RELATIONSHIPS, **context)


@bp.get("/e/")
@bp.get("/e/<entry_code>")       # not <code>: that names a school in every staff URL
@access(PUBLIC)
def registration_new(entry_code: str = ""):
    """The registration form; the sheet's QR code opens it with the code filled in and the child named."""
    found, error = None, ""
    if entry_code:
        try:
            found = registration.find_code(g.appliance, entry_code, client=capability.client())
        except InvalidInput as refused:
            error = str(refused)
    return render_page("guardian/register.html", code=entry_code, found=found, code_error=error, form={})


@bp.post("/e/")
@access(PUBLIC)
def registration_create():
    """Take the form: mail the address a link that completes the registration."""
    form = request.form
    try:
        registration.register_by_web(g.appliance, form.get("code", ""), form.get("name", ""),
                                     form.get("relationship", ""), form.get("address", ""), client=capability.client())
    except registration.CodeRefused as refused:
        return render_page("guardian/register.html", 400, code=form.get("code", ""), code_error=str(refused), form=form)
    except InvalidInput as refused:
        return render_page("guardian/register.html", 400, code=form.get("code", ""), error=str(refused), form=form)
    return render_page("guardian/register_sent.html")


@bp.get("/e/ok/<token>")
@access(PUBLIC)
def registration_link_show(token: str):
    """The mailed link: the child, and a button (with name and relationship if still missing)."""
    capability.resolve(token, "register")
    return _link_page(token)


@bp.post("/e/ok/<token>")
@capability.checks_form_token
@access(PUBLIC)
def registration_link_update(token: str):
    """Complete the registration: the address is confirmed and the school is asked to approve."""
    capability.check_form_token(LINK_PURPOSE, token)
    capability.resolve(token, "register")        # counted against guessing like every link
    try:
        registration.complete(g.appliance, token, guardian_name=request.form.get("name", ""),
                              relationship=request.form.get("relationship", ""))
    except InvalidInput as refused:
        return _link_page(token, 400, error=str(refused), form=request.form)
    return render_page("guardian/register_link.html", completed=True)


def _link_page(token: str, status: int = 200, **context):
    try:
        shown = registration.pending(g.appliance, token)
    except InvalidInput as refused:     # done, replaced by a newer mail, or the code went meanwhile
        return render_page("guardian/register_link.html", 409 if status == 200 else status, closed=str(refused))
    return render_page("guardian/register_link.html", status, shown=shown, token=token,
                 link_form_token=capability.form_token(LINK_PURPOSE, token), **{"form": {}, **context})


@bp.get("/p/children/new")
@access(PUBLIC)
@portal_views.guardian_only
def child_new():
    """A signed-in guardian adds a sibling with the code on the child's sheet."""
    return portal_views._render("guardian/register_child.html", relationships=RELATIONSHIPS, form={})


@bp.post("/p/children")
@capability.checks_form_token
@access(PUBLIC)
@portal_views.guardian_only
def child_create():
    """Link the child of the code to the signed-in guardian, pending the school's approval."""
    form = request.form
    try:
        registration.link_by_code(g.appliance, g.guardian.id, form.get("code", ""), form.get("relationship", ""),
                                  client=capability.client())
    except InvalidInput as refused:
        return portal_views._render("guardian/register_child.html", 400, relationships=RELATIONSHIPS, form=form,
                                    error=str(refused))
    return portal_views._back("guardian.portal_show", "child")
