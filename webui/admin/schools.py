"""Schools: the operator adds one from the school list (``admin.home_show``)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from appliance import schools
from appliance.errors import InvalidInput
from appliance.models import School
from webui.access import OPERATOR, access
from webui.admin import bp


class SchoolForm(FlaskForm):
    code = StringField(_l("学校コード（半角英数字）"), validators=[DataRequired(), Length(max=32)])
    name = StringField(_l("学校名"), validators=[DataRequired(), Length(max=100)])
    grades = IntegerField(_l("学年数"), default=6,
                          validators=[InputRequired(), NumberRange(min=1, max=12, message=_l("1〜12で入力してください"))])


@bp.app_template_global()
def new_school_form() -> SchoolForm:
    """An empty add-school form for the school list (home_show renders the list without one)."""
    return SchoolForm(formdata=None)


@bp.post("/schools")
@access(OPERATOR)
def school_create():
    """Add a school; errors come back on the school list with what was typed."""
    form = SchoolForm()
    if form.validate_on_submit():
        try:
            school = schools.add_school(g.appliance, form.code.data, form.name.data, grades=form.grades.data,
                                        actor=g.user.login)
        except InvalidInput as error:
            form.code.errors = [*form.code.errors, str(error)]
        else:
            flash(_("学校「%(name)s」を追加しました", name=school.name), "info")
            return redirect(url_for("admin.home_show"))
    return render_template("admin/home.html", schools=School.select().order_by(School.code), school_form=form), 400
