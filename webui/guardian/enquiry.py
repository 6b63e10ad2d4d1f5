"""The enquiry form for a guardian who is stuck (``/help``): it lands in the operator's list, never a school's.

The page also gives the address that takes enquiries by mail (:mod:`appliance.inbound`).

No capability yet, so the form carries the session's CSRF token; submissions are
limited per client address (:data:`ENQUIRIES`) so the desk cannot be flooded.
"""
from __future__ import annotations

from flask import g, request
from flask_babel import gettext as _

from appliance import enquiries, ratelimit
from appliance.errors import InvalidInput
from appliance.models import School
from webui import capability
from webui.access import PUBLIC, access
from webui.guardian import bp
from webui.guardian.register import render_page

ENQUIRIES = ratelimit.Limit("enquiry", 5, 3600)


def _form(status: int = 200, **context):
    schools = list(School.select(School.id, School.name).order_by(School.name))
    return render_page("guardian/enquiry.html", status, schools=schools,
                       address=enquiries.enquiry_address(g.appliance), **{"form": {}, **context})


@bp.get("/help")
@access(PUBLIC)
def enquiry_new():
    """The enquiry form: name, how to reach them, the school, the message."""
    return _form()


@bp.post("/help")
@access(PUBLIC)
def enquiry_create():
    """Store the enquiry for the operator's desk."""
    form = request.form
    if not g.appliance.limiter.hit(ENQUIRIES, capability.client()):
        return _form(429, form=form, error=_("操作が多すぎます。しばらく待ってからお試しください"))
    try:
        enquiries.submit_enquiry(g.appliance, name=form.get("name", ""), reach=form.get("reach", ""),
                                 school_id=form.get("school", ""), body=form.get("body", ""))
    except InvalidInput as refused:
        return _form(400, form=form, error=str(refused))
    return render_page("guardian/enquiry.html", sent=True)
