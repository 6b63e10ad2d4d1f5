"""Notice templates: school admins keep them; every teacher starts a message from one."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance import notice_templates
from appliance.errors import InvalidInput
from webui.access import SCHOOL_ADMIN, TEACHER, access
from webui.admin import bp


@bp.get("/s/<code>/templates")
@access(TEACHER)
def template_index(code: str):
    """The school's templates, each with a link to start a message from it."""
    return render_template("admin/notice_index.html", templates=notice_templates.list_templates(g.school))


@bp.get("/s/<code>/templates/new")
@access(SCHOOL_ADMIN)
def template_new(code: str):
    """An empty template form."""
    return render_template("admin/notice_form.html", form={"name": "", "subject": "", "body": "",
                                                           "priority": "normal"}, template=None)


@bp.post("/s/<code>/templates/new")
@access(SCHOOL_ADMIN)
def template_create(code: str):
    """Add a template."""
    form = _read_form()
    try:
        notice_templates.add_template(g.appliance, g.school, actor=g.user.login, **form)
    except InvalidInput as error:
        flash(str(error), "error")
        return render_template("admin/notice_form.html", form=form, template=None), 400
    flash(_("ひな形を追加しました"), "info")
    return redirect(url_for("admin.template_index", code=code))


@bp.get("/s/<code>/templates/<template_id>/edit")
@access(SCHOOL_ADMIN)
def template_edit(code: str, template_id: str):
    """Edit a template."""
    template = notice_templates.get_template(g.school, template_id)
    form = {"name": template.name, "subject": template.subject, "body": template.body,
            "priority": template.priority}
    return render_template("admin/notice_form.html", form=form, template=template)


@bp.post("/s/<code>/templates/<template_id>/edit")
@access(SCHOOL_ADMIN)
def template_update(code: str, template_id: str):
    """Save a template's changes."""
    template = notice_templates.get_template(g.school, template_id)
    form = _read_form()
    try:
        notice_templates.update_template(g.appliance, template, actor=g.user.login, **form)
    except InvalidInput as error:
        flash(str(error), "error")
        return render_template("admin/notice_form.html", form=form, template=template), 400
    flash(_("ひな形を保存しました"), "info")
    return redirect(url_for("admin.template_index", code=code))


@bp.post("/s/<code>/templates/<template_id>/delete")
@access(SCHOOL_ADMIN)
def template_delete(code: str, template_id: str):
    """Remove a template."""
    notice_templates.delete_template(g.appliance, notice_templates.get_template(g.school, template_id),
                                     actor=g.user.login)
    flash(_("ひな形を削除しました"), "info")
    return redirect(url_for("admin.template_index", code=code))


def _read_form() -> dict:
    data = request.form
    return {"name": data.get("name", ""), "subject": data.get("subject", ""), "body": data.get("body", ""),
            "priority": "emergency" if data.get("priority") == "emergency" else "normal"}
