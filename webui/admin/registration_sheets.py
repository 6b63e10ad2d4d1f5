"""Registration sheets for a school admin: a class's (or one child's) A4 PDF, issuing the codes it carries.

Printing issues codes: a slot that still has a live code gets a new one only when the
admin ticks the reissue box, which voids the sheets already handed out.
"""
from __future__ import annotations

from flask import g, render_template, request
from flask_babel import gettext as _

from appliance import registration_sheets, roster
from appliance.errors import InvalidInput, NotFound
from webui.access import SCHOOL_ADMIN, access
from webui.admin import bp
from webui.downloads import file_response


def _index(status: int = 200, **context):
    return render_template("admin/registration_sheets.html",
                           classes=registration_sheets.sheet_classes(g.appliance, g.school),
                           **{"form": {}, **context}), status


@bp.get("/s/<code>/registration-sheets")
@access(SCHOOL_ADMIN)
def registration_sheet_index(code: str):
    """Classes with how many children have live codes, and the form that prints sheets."""
    return _index()


@bp.post("/s/<code>/registration-sheets")
@access(SCHOOL_ADMIN)
def registration_sheet_create(code: str):
    """Issue the codes of a class or a child and download their sheets (application/pdf)."""
    form = request.form
    try:
        if form.get("student", "").strip():
            students = [roster.find_student(g.school, form["student"])]
            if students[0].status != "enrolled":
                raise NotFound(_("在籍していない児童生徒です"))
        else:
            students = roster.find_class(g.school, form.get("class", ""))
        pdf = registration_sheets.issue_sheets(g.appliance, g.school, students, actor=g.user.login,
                                               reissue=form.get("reissue") == "1")
    except (InvalidInput, NotFound) as refused:
        return _index(400, form=form, error=str(refused))
    return file_response(pdf, f"registration-{g.school.code}-{form.get('student') or form.get('class')}.pdf",
                         "application/pdf")
