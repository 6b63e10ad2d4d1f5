"""The operator's enquiry desk: guardians' enquiries, open and closed; how to reach one is shown on its own page.

Operator only: the list shows no contact data, and opening one enquiry (which shows
how to reach the guardian) is written to the audit log (:mod:`appliance.enquiries`).
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance import enquiries
from appliance.errors import NotFound
from webui.access import OPERATOR, access
from webui.admin import bp


@bp.get("/enquiries")
@access(OPERATOR)
def enquiry_index():
    """Enquiries in one state (open by default), without contact data."""
    status = request.args.get("status", "open")
    if status not in enquiries.STATES:
        abort(404)
    return render_template("admin/enquiry_index.html", status=status, enquiries=enquiries.list_enquiries(status),
                           counts=enquiries.count_enquiries())


@bp.get("/enquiries/<enquiry_id>")
@access(OPERATOR)
def enquiry_show(enquiry_id: str):
    """One enquiry with how to reach the guardian (audited)."""
    try:
        shown = enquiries.reveal_enquiry(g.appliance, enquiry_id, actor=g.user.login)
    except NotFound:
        abort(404)
    return render_template("admin/enquiry_show.html", shown=shown)


@bp.post("/enquiries/<enquiry_id>/status")
@access(OPERATOR)
def enquiry_update(enquiry_id: str):
    """Close or reopen an enquiry."""
    status = request.form.get("status", "")
    if status not in enquiries.STATES:
        abort(400)
    try:
        enquiries.set_enquiry_status(g.appliance, enquiry_id, status, actor=g.user.login)
    except NotFound:
        abort(404)
    flash(_("対応済みにしました") if status == "closed" else _("未対応に戻しました"), "ok")
    return redirect(url_for("admin.enquiry_index", status="open"), 303)
