"""The school's settings page (school admins): whether teachers' messages need approval."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance import schools
from webui.access import SCHOOL_ADMIN, access
from webui.admin import bp


@bp.get("/s/<code>/settings")
@access(SCHOOL_ADMIN)
def school_settings(code: str):
    """The school's settings."""
    return render_template("admin/settings.html")


@bp.post("/s/<code>/settings")
@access(SCHOOL_ADMIN)
def school_settings_update(code: str):
    """Save the school's settings."""
    schools.set_teacher_needs_approval(g.appliance, g.school, request.form.get("teacher_needs_approval") == "1",
                                       actor=g.user.login)
    flash(_("設定を保存しました"), "info")
    return redirect(url_for("admin.school_settings", code=code))
