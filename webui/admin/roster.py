"""Roster pages: class lists with registration states, pending registrations, import, rollover, transfers.

School roles see counts and states of guardians' contact points, never a value. Every
student or link taken from the URL is looked up within g.school (404 otherwise).
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, FileSize
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from appliance import registrations, roster, roster_overview
from appliance.errors import InvalidInput, NotFound
from appliance.models import Student, StudentGroup
from appliance.staff import assigned_classes
from appliance.roster_import import RosterImportError, format_error, import_roster
from appliance.targeting import GROUP_WORDS, parse_class
from webui.access import SCHOOL_ADMIN, TEACHER, access, may
from webui.admin import bp

# The importer reads the whole file in memory and has no limit of its own; a class list of
# 2,000 students with four addresses each is about 400 KB.
MAX_ROSTER_BYTES = 1024 * 1024
PAGE = 500     # registrations listed at once, oldest first: deciding them brings up the next
_RULE_WORDS = {kind: word for word, kind in GROUP_WORDS.items()}


def _roster_file(label, required: bool) -> FileField:
    return FileField(label, validators=[
        FileRequired(_l("ファイルを選んでください")) if required else Optional(),
        FileSize(MAX_ROSTER_BYTES, message=_l("ファイルが大きすぎます（1 MB まで）"))])


class ImportForm(FlaskForm):
    file = _roster_file(_l("名簿ファイル（CSV、Shift_JIS または UTF-8）"), required=True)
    with_guardians = BooleanField(_l("保護者とメールアドレスも取り込む（運用担当のみ）"))


class PromoteForm(FlaskForm):
    confirm = StringField(_l("確認のため学校コードを入力してください"), validators=[DataRequired(), Length(max=64)])
    classes = _roster_file(_l("新しい組分けのファイル（任意、名簿と同じ形式）"), required=False)
    force = BooleanField(_l("今年度すでに進級済みですが、もう一度進級させる"))


class TransferInForm(FlaskForm):
    grade = IntegerField(_l("学年"), validators=[InputRequired(), NumberRange(min=1, max=12)])
    class_name = StringField(_l("組"), validators=[DataRequired(), Length(max=20)])
    number = IntegerField(_l("出席番号"), validators=[InputRequired(), NumberRange(min=1, max=999)])
    name = StringField(_l("氏名"), validators=[DataRequired(), Length(max=100)])
    furigana = StringField(_l("ふりがな"), validators=[Optional(), Length(max=100)])
    student_number = StringField(_l("学籍番号（任意）"), validators=[Optional(), Length(max=40)])
    guardians_from = StringField(_l("兄弟姉妹の保護者を引き継ぐ（任意：兄弟姉妹の 学年-組-番号 か学籍番号）"),
                                 validators=[Optional(), Length(max=80)])


class TransferOutForm(FlaskForm):
    confirm = BooleanField(_l("転出の処理をします（連絡はすぐに届かなくなります）"), validators=[DataRequired()])


class JoinForm(FlaskForm):
    kind = SelectField(_l("種類"), choices=[SelectChoice("club", _l("部活動")), SelectChoice("route", _l("通学路")),
                                            SelectChoice("group", _l("グループ"))])
    name = StringField(_l("名前"), validators=[DataRequired(), Length(max=60)])


class ActionForm(FlaskForm):
    """A POST with nothing to fill in but its CSRF token (decisions, leaving a group)."""


def _school_student(student_id: str) -> Student:
    student = Student.get_or_none((Student.id == student_id) & (Student.school == g.school))
    if student is None:
        abort(404)
    return student


def _default_class(classes: list[roster_overview.ClassSummary]) -> tuple[int, str] | None:
    """A teacher starts at their own class; everyone else at the school's first class."""
    seats = [(c.grade, c.class_name) for c in classes]
    if g.user.role == "teacher":
        own = [seat for seat in assigned_classes(g.user) if seat in seats]
        if own:
            return own[0]
    return seats[0] if seats else None


@bp.get("/s/<code>/students")
@access(TEACHER)
def student_index(code: str):
    """One class at a time: students, their groups, guardians' registration state and address counts."""
    classes = roster_overview.class_summaries(g.school)
    grade, class_name = request.args.get("grade", type=int), request.args.get("class", "").strip()
    seat = request.args.get("seat", "")    # the class picker's "G-C"
    if seat:
        grade, class_name = parse_class(seat) or (None, "")
    if grade is not None and not class_name:
        class_name = next((c.class_name for c in classes if c.grade == grade), "")
    chosen = (grade, class_name) if grade is not None and class_name else _default_class(classes)
    overview = roster_overview.class_overview(g.school, *chosen) if chosen else None
    pending = registrations.count_pending(g.school) if may("admin.registration_index") else 0
    return render_template("admin/roster_students.html", classes=classes, overview=overview, pending=pending)


@bp.get("/s/<code>/students/<student_id>")
@access(TEACHER)
def student_show(code: str, student_id: str):
    """A child's groups and guardians: name, relationship, link state, counts of addresses."""
    student = _school_student(student_id)
    return _render_student(student)


def _render_student(student: Student, *, join_form: JoinForm | None = None, status: int = 200):
    detail = roster_overview.student_detail(student)
    return render_template("admin/roster_student.html", student=student, detail=detail,
                           join_form=join_form or JoinForm(), out_form=TransferOutForm(),
                           action_form=ActionForm(), rule_words=_RULE_WORDS), status


@bp.post("/s/<code>/students/<student_id>/transfer-out")
@access(SCHOOL_ADMIN)
def student_transfer_out(code: str, student_id: str):
    """Mark the student transferred out, after the confirmation box is ticked."""
    student = _school_student(student_id)
    if not TransferOutForm().validate_on_submit():
        flash(_("確認の欄にチェックを入れてください"), "error")
        return redirect(url_for("admin.student_show", code=code, student_id=student.id))
    try:
        roster.transfer_out(g.appliance, g.school, student.id, actor=g.user.login)
    except InvalidInput as error:
        flash(str(error), "error")
    else:
        flash(_("%(name)s さんを転出にしました", name=student.name), "info")
    return redirect(url_for("admin.student_show", code=code, student_id=student.id))


@bp.get("/s/<code>/students/transfer-in")
@access(SCHOOL_ADMIN)
def student_transfer_in_new(code: str):
    """The form for a student who moves in."""
    return render_template("admin/roster_transfer_in.html", form=TransferInForm())


@bp.post("/s/<code>/students/transfer-in")
@access(SCHOOL_ADMIN)
def student_transfer_in_create(code: str):
    """Enrol a student who moves in, optionally linking a sibling's approved guardians."""
    form = TransferInForm()
    if form.validate_on_submit():
        try:
            # Guardians come only from a student of this school: another school's families are not
            # this school's to see. Operators may name any school's student ("CODE:REF").
            source = None
            if form.guardians_from.data:
                ref = form.guardians_from.data
                source = (roster.find_student_anywhere(ref) if g.user.role == "operator"
                          else roster.find_student(g.school, ref))
            student = roster.transfer_in(
                g.appliance, g.school, grade=form.grade.data, class_name=form.class_name.data,
                number=form.number.data, name=form.name.data, furigana=form.furigana.data or "",
                student_number=form.student_number.data, guardians_from=source, actor=g.user.login)
        except (InvalidInput, NotFound) as error:    # an unknown sibling is a mistake in the form
            flash(str(error), "error")
        else:
            flash(_("%(name)s さんを転入生として登録しました", name=student.name), "info")
            return redirect(url_for("admin.student_show", code=code, student_id=student.id))
    return render_template("admin/roster_transfer_in.html", form=form), 400


@bp.post("/s/<code>/students/<student_id>/groups")
@access(SCHOOL_ADMIN)
def student_group_create(code: str, student_id: str):
    """Add the student to a club, route or custom group (made if new)."""
    student = _school_student(student_id)
    form = JoinForm()
    if not form.validate_on_submit():
        return _render_student(student, join_form=form, status=400)
    try:
        joined = roster.join_group(g.appliance, g.school, student.id, f"{form.kind.data}:{form.name.data}",
                                   actor=g.user.login)
    except InvalidInput as error:
        flash(str(error), "error")
        return _render_student(student, join_form=form, status=400)
    flash(_("グループに加えました") if joined else _("すでにこのグループに入っています"), "info")
    return redirect(url_for("admin.student_show", code=code, student_id=student.id))


@bp.post("/s/<code>/students/<student_id>/groups/<group_id>/delete")
@access(SCHOOL_ADMIN)
def student_group_delete(code: str, student_id: str, group_id: str):
    """Take the student out of one of their groups."""
    student = _school_student(student_id)
    group = StudentGroup.get_or_none((StudentGroup.id == group_id) & (StudentGroup.school == g.school))
    if group is None or not ActionForm().validate_on_submit():
        abort(404 if group is None else 400)
    roster.leave_group(g.appliance, g.school, student.id, f"{_RULE_WORDS[group.kind]}:{group.key}",
                       actor=g.user.login)
    flash(_("「%(group)s」から外しました", group=group.name), "info")
    return redirect(url_for("admin.student_show", code=code, student_id=student.id))


@bp.get("/s/<code>/registrations")
@access(SCHOOL_ADMIN)
def registration_index(code: str):
    """Registrations awaiting the school's decision, oldest first."""
    pending = registrations.pending_registrations(g.school, limit=PAGE)
    return render_template("admin/registration_index.html", pending=pending,
                           total=registrations.count_pending(g.school) if len(pending) == PAGE else len(pending))


@bp.post("/s/<code>/registrations/<link_id>")
@access(SCHOOL_ADMIN)
def registration_decide(code: str, link_id: str):
    """Approve (messages then reach the guardian) or reject one registration."""
    if not ActionForm().validate_on_submit():
        abort(400)
    decision = request.form.get("decision", "")
    try:
        registrations.decide_link(g.appliance, g.school, link_id, decision, actor=g.user.login)
    except InvalidInput as error:   # NotFound is not one: another school's link is a 404 page
        flash(str(error), "error")
    else:
        flash(_("承認しました") if decision == "approve" else _("却下しました"), "info")
    return redirect(url_for("admin.registration_index", code=code))


@bp.get("/s/<code>/roster/import")
@access(SCHOOL_ADMIN)
def roster_import_new(code: str):
    """The upload form for the school's class list."""
    return render_template("admin/roster_import.html", form=ImportForm())


@bp.post("/s/<code>/roster/import")
@access(SCHOOL_ADMIN)
def roster_import_create(code: str):
    """Import the uploaded class list, all or nothing; show every error by line, or the counts."""
    form = ImportForm()
    if not form.validate_on_submit():
        return render_template("admin/roster_import.html", form=form), 400
    # Addresses in a file are contact data: only the operator may bring them in.
    with_guardians = form.with_guardians.data and g.user.role == "operator"
    try:
        summary = import_roster(g.appliance, g.school, form.file.data.read(), with_guardians=with_guardians,
                                actor=g.user.login)
    except RosterImportError as error:
        return render_template("admin/roster_import.html", form=form,
                               errors=[format_error(e) for e in error.errors]), 400
    except InvalidInput as error:
        flash(str(error), "error")
        return render_template("admin/roster_import.html", form=form), 400
    return render_template("admin/roster_import.html", form=ImportForm(), summary=summary)


@bp.get("/s/<code>/roster/promote")
@access(SCHOOL_ADMIN)
def roster_promote_new(code: str):
    """The year rollover form, saying whether this school year is already done."""
    return _render_promote(PromoteForm())


def _render_promote(form: PromoteForm, *, errors: list[str] = (), status: int = 200):
    return render_template("admin/roster_promote.html", form=form, errors=errors,
                           already=roster.already_promoted(g.appliance, g.school)), status


@bp.post("/s/<code>/roster/promote")
@access(SCHOOL_ADMIN)
def roster_promote_create(code: str):
    """Move every student up a grade once the school's code is typed; twice a year only when forced."""
    form = PromoteForm()
    if not form.validate_on_submit():
        return _render_promote(form, status=400)
    if form.confirm.data.strip() != g.school.code:
        form.confirm.errors.append(_("学校コードが違います"))
        return _render_promote(form, status=400)
    if roster.already_promoted(g.appliance, g.school) and not form.force.data:
        form.force.errors.append(_("今年度はすでに進級済みです。もう一度進級させる場合はチェックを入れてください"))
        return _render_promote(form, status=400)
    classes = form.classes.data.read() if form.classes.data else None
    try:
        summary = roster.promote_students(g.appliance, g.school, classes=classes, force=form.force.data,
                                          actor=g.user.login)
    except RosterImportError as error:
        return _render_promote(form, errors=[format_error(e) for e in error.errors], status=400)
    except InvalidInput as error:
        flash(str(error), "error")
        return _render_promote(form, status=400)
    flash(_("%(year)s年度に進級しました：進級 %(promoted)s 人、卒業 %(graduated)s 人、組替え %(reassigned)s 人",
            year=summary["school_year"], promoted=summary["promoted"], graduated=summary["graduated"],
            reassigned=summary["reassigned"]), "info")
    return redirect(url_for("admin.student_index", code=code))
