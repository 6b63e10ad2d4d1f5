"""Staff accounts: the operator manages every account (``/admin/staff``), a school_admin the
teachers and admins of their own school (``/admin/s/<code>/staff``).

One set of views serves both: each is registered twice, as ``staff_<action>`` (OPERATOR)
and ``school_staff_<action>`` (SCHOOL_ADMIN). The scope is ``g.school`` on the school
routes (set by the access rule) and None, every account, on the operator's. Generated
passwords are shown once, in the answer to the POST that made them, and never stored.
"""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from appliance import staff, staff_accounts
from appliance.errors import InvalidInput
from appliance.models import School
from appliance.targeting import class_key, parse_class
from webui.access import OPERATOR, SCHOOL_ADMIN, access
from webui.admin import bp

ROLE_LABELS = {"operator": _l("運用担当"), "school_admin": _l("学校管理者"), "teacher": _l("教員")}


class StaffForm(FlaskForm):
    role = SelectField(_l("役割"))
    school = SelectField(_l("学校"))
    login = StringField(_l("ログイン名（半角、空白なし）"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("表示名（氏名）"), validators=[DataRequired(), Length(max=100)])


def _scope() -> School | None:
    return g.get("school")


def staff_url(action: str, **values) -> str:
    """Return the URL of a staff action in the current scope (operator or one school)."""
    if _scope() is None:
        return url_for(f"admin.staff_{action}", **values)
    return url_for(f"admin.school_staff_{action}", code=_scope().code, **values)


def _form() -> StaffForm:
    form = StaffForm()
    form.role.choices = [(role, ROLE_LABELS[role]) for role in staff_accounts.roles_for(_scope())]
    if _scope() is None:
        form.school.choices = [("", _("なし（運用担当）"))] + [
            (s.code, f"{s.code} {s.name}") for s in School.select().order_by(School.code)]
    else:
        del form.school     # a school_admin's accounts are in their school: nothing to choose
    return form


def _render(template: str, status: int = 200, **context):
    return render_template(template, staff_url=staff_url, role_labels=ROLE_LABELS, scope=_scope(),
                           now=g.appliance.clock.now(), **context), status


def index(code: str | None = None):
    """Every account in scope: role, school, disabled, locked, TOTP; the operator filters by school."""
    chosen = None
    if _scope() is None and request.args.get("school"):
        chosen = School.get_or_none(School.code == request.args["school"])
    schools = School.select().order_by(School.code) if _scope() is None else []
    return _render("admin/staff_index.html", users=staff_accounts.list_accounts(_scope(), school=chosen),
                   schools=schools, chosen=chosen)


def new(code: str | None = None):
    """The form for a new account."""
    return _render("admin/staff_new.html", form=_form())


def create(code: str | None = None):
    """Create the account and show its generated password once."""
    form = _form()
    if form.validate_on_submit():
        school = _scope() or School.get_or_none(School.code == form.school.data)
        try:
            user, password = staff_accounts.create_account(
                g.appliance, _scope(), role=form.role.data, school=school, login=form.login.data,
                display_name=form.display_name.data, actor=g.user.login)
        except InvalidInput as error:
            flash(str(error), "error")
        else:
            return _show_page(user, new_password=password)
    return _render("admin/staff_new.html", 400, form=form)


def show(user_id: str, code: str | None = None):
    """One account: its state, the actions on it, and a teacher's classes and clubs."""
    return _show_page(staff_accounts.get_account(_scope(), user_id))


def _show_page(user, *, new_password: str | None = None, status: int = 200):
    context = {}
    if user.role == "teacher":
        current = staff_accounts.assignments_of(user)
        context = {"assigned": current,
                   "classes": sorted(set(staff_accounts.school_classes(user.school)) | set(current["class"]),
                                     key=_class_order),
                   "clubs": staff_accounts.school_clubs(user.school)}
    return _render("admin/staff_show.html", status, user=user, new_password=new_password, **context)


def _class_order(value: str) -> tuple:
    return class_key(*(parse_class(value) or (0, value)))


def _other_account(user_id: str):
    user = staff_accounts.get_account(_scope(), user_id)
    if user.id == g.user.id:
        raise InvalidInput(_("ご自身のアカウントはアカウント画面で変更してください"))
    return user


def disable(user_id: str, code: str | None = None):
    """Disable the account: it cannot sign in, and every session of it ends."""
    staff.set_disabled(g.appliance, _other_account(user_id), True, actor=g.user.login)
    flash(_("アカウントを無効にしました。ログイン中の端末もログアウトされました"), "info")
    return redirect(staff_url("show", user_id=user_id))


def enable(user_id: str, code: str | None = None):
    """Enable the account again."""
    staff.set_disabled(g.appliance, _other_account(user_id), False, actor=g.user.login)
    flash(_("アカウントを有効にしました"), "info")
    return redirect(staff_url("show", user_id=user_id))


def password_reset(user_id: str, code: str | None = None):
    """Give the account a new generated password, shown once; its sessions end."""
    user = _other_account(user_id)
    password = staff_accounts.reset_password(g.appliance, user, actor=g.user.login)
    return _show_page(user, new_password=password)


def assignments_update(user_id: str, code: str | None = None):
    """Replace a teacher's classes and clubs (what they may compose to)."""
    user = staff_accounts.get_account(_scope(), user_id)
    if user.role != "teacher":
        raise InvalidInput(_("担当クラス・部活動は教員のアカウントにだけ設定できます"))
    staff.set_assignments(g.appliance, user, classes=request.form.getlist("classes"),
                          clubs=request.form.getlist("clubs"), actor=g.user.login)
    flash(_("担当クラス・部活動を保存しました"), "info")
    return redirect(staff_url("show", user_id=user_id))


_ACTIONS = (  # action, path below the base, method, view
    ("index", "", "GET", index),
    ("new", "/new", "GET", new),
    ("create", "", "POST", create),
    ("show", "/<user_id>", "GET", show),
    ("disable", "/<user_id>/disable", "POST", disable),
    ("enable", "/<user_id>/enable", "POST", enable),
    ("password_reset", "/<user_id>/password", "POST", password_reset),
    ("assignments_update", "/<user_id>/assignments", "POST", assignments_update),
)
for _prefix, _base, _rule in (("staff_", "/staff", OPERATOR), ("school_staff_", "/s/<code>/staff", SCHOOL_ADMIN)):
    for _action, _path, _method, _view in _ACTIONS:
        bp.add_url_rule(_base + _path, _prefix + _action, access(_rule)(_view), methods=[_method])
