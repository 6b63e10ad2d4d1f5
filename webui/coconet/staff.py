"""Staff CoCo-net pages: open and close events, roll call by class, a child's card, pickups, notices, dashboard.

Any staff of the school sets states and records pickups (TEACHER: in a disaster whoever
stands by a class calls its roll); opening and closing an event and posting notices
speak for the school to every guardian (SCHOOL_ADMIN). See appliance.coconet.
"""
from __future__ import annotations

from datetime import datetime

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance import coconet, roster
from appliance.clock import TOKYO, parse_time
from appliance.errors import ApplianceError, InvalidInput
from appliance.targeting import parse_class
from webui.access import SCHOOL_ADMIN, TEACHER, access
from webui.coconet import bp
from webui.downloads import file_response
from webui.long_pages import off_loop

PREFIX = "/admin/s/<code>/coconet"


@bp.get(f"{PREFIX}/")
@access(TEACHER)
def event_index(code: str):
    """The school's CoCo-net: the open event (or the form to open one) and the archive."""
    return _index_page()


def _index_page(status: int = 200):
    return render_template("coconet/index.html", current=coconet.current_event(g.school),
                           events=coconet.school_events(g.school), kinds=coconet.KINDS,
                           limits=coconet), status


@bp.post(f"{PREFIX}/")
@access(SCHOOL_ADMIN)
def event_create(code: str):
    """Open an event; by default send the first notice to every guardian on every channel."""
    form = request.form
    try:
        event = coconet.open_event(g.appliance, g.school, kind=form.get("kind", ""), title=form.get("title", ""),
                                   body=form.get("body", ""), send_notice=bool(form.get("send_notice")),
                                   actor=g.user.login, author=g.user)
    except ApplianceError as refused:
        flash(str(refused), "error")
        return _index_page(400)
    flash(_("CoCo-netを開始しました"), "info")
    return redirect(url_for("coconet.event_show", code=code, event_id=event.id), 303)


@bp.get(f"{PREFIX}/<event_id>/")
@access(TEACHER)
def event_show(code: str, event_id: str):
    """The dashboard: children by state, guardians who have and have not checked, who cannot be reached."""
    return _event_page(coconet.find_event(g.school, event_id))


def _event_page(event, status: int = 200):
    return render_template("coconet/event.html", event=event, board=coconet.dashboard(event),
                           notices=coconet.event_notices(event), limits=coconet), status


@bp.post(f"{PREFIX}/<event_id>/close")
@access(SCHOOL_ADMIN)
def event_close(code: str, event_id: str):
    """Close the event; its record stays readable."""
    coconet.close_event(g.appliance, coconet.find_event(g.school, event_id), actor=g.user.login)
    flash(_("CoCo-netを終了しました。記録は残ります"), "info")
    return redirect(url_for("coconet.event_show", code=code, event_id=event_id), 303)


@bp.post(f"{PREFIX}/<event_id>/notices")
@access(SCHOOL_ADMIN)
def notice_create(code: str, event_id: str):
    """Post a notice to every guardian of the school."""
    event = coconet.find_event(g.school, event_id)
    try:
        coconet.post_notice(g.appliance, event, request.form.get("body", ""), actor=g.user.login)
    except InvalidInput as refused:
        flash(str(refused), "error")
        return _event_page(event, 400)
    flash(_("お知らせを掲載しました"), "info")
    return redirect(url_for("coconet.event_show", code=code, event_id=event_id), 303)


@bp.get(f"{PREFIX}/<event_id>/class/<int:grade>/<class_name>")
@access(TEACHER)
def roll_show(code: str, event_id: str, grade: int, class_name: str):
    """A class's roll on a phone: each child with big state buttons, and one form for the whole class."""
    return _roll_page(coconet.find_event(g.school, event_id), grade, class_name)


def _roll_page(event, grade: int, class_name: str, status: int = 200):
    students = roster.class_students(g.school, grade, class_name)
    if not students:
        abort(404)
    return render_template("coconet/roll.html", event=event, grade=grade, class_name=class_name,
                           students=students, states=coconet.current_states(event.id, [s.id for s in students]),
                           limits=coconet), status


@bp.post(f"{PREFIX}/<event_id>/class/<int:grade>/<class_name>")
@access(TEACHER)
def roll_update(code: str, event_id: str, grade: int, class_name: str):
    """Set one child's state (a button on the roll) or the whole class's (the bulk form)."""
    event = coconet.find_event(g.school, event_id)
    form = request.form
    try:
        if form.get("student_id"):
            students = coconet.find_students(g.school, [form["student_id"]])
            if (students[0].grade, students[0].class_name) != (grade, class_name):
                raise InvalidInput(_("この組の児童ではありません"))
            coconet.set_states(g.appliance, event, students, form.get("state", ""), place=form.get("place", ""),
                               note=form.get("note", ""), actor=g.user.login)
        else:
            count = coconet.set_class_state(g.appliance, event, grade, class_name, form.get("state", ""),
                                            place=form.get("place", ""), note=form.get("note", ""),
                                            actor=g.user.login)
            flash(_("%(count)s人の状態を記録しました", count=count), "info")
    except ApplianceError as refused:
        flash(str(refused), "error")
        return _roll_page(event, grade, class_name, 400)
    anchor = f"s-{form['student_id']}" if form.get("student_id") else None
    return redirect(url_for("coconet.roll_show", code=code, event_id=event_id, grade=grade,
                            class_name=class_name, _anchor=anchor), 303)


@bp.get(f"{PREFIX}/<event_id>/student/<student_id>")
@access(TEACHER)
def student_show(code: str, event_id: str, student_id: str):
    """One child: the state form, the pickup form and the history (what a name card's QR code opens)."""
    return _student_page(coconet.find_event(g.school, event_id), coconet.find_student(g.school, student_id))


def _student_page(event, student, status: int = 200):
    return render_template("coconet/student.html", event=event, student=student,
                           history=coconet.student_history(event, student),
                           pickup=coconet.latest_pickups(event.id, [student.id]).get(student.id),
                           guardians=coconet.guardians_of(student), limits=coconet), status


@bp.post(f"{PREFIX}/<event_id>/student/<student_id>")
@access(TEACHER)
def state_create(code: str, event_id: str, student_id: str):
    """Record one child's state."""
    event, student = coconet.find_event(g.school, event_id), coconet.find_student(g.school, student_id)
    form = request.form
    try:
        coconet.set_states(g.appliance, event, [student], form.get("state", ""), place=form.get("place", ""),
                           note=form.get("note", ""), actor=g.user.login)
    except ApplianceError as refused:
        flash(str(refused), "error")
        return _student_page(event, student, 400)
    flash(_("%(name)sさんの状態を記録しました", name=student.name), "info")
    return redirect(url_for("coconet.student_show", code=code, event_id=event_id, student_id=student_id), 303)


@bp.post(f"{PREFIX}/<event_id>/student/<student_id>/pickup")
@access(TEACHER)
def pickup_create(code: str, event_id: str, student_id: str):
    """Register who collected the child (a registered guardian or a named adult) and when."""
    event, student = coconet.find_event(g.school, event_id), coconet.find_student(g.school, student_id)
    form = request.form
    try:
        coconet.record_pickup(g.appliance, event, student, guardian_id=form.get("guardian_id") or None,
                              adult_name=form.get("adult_name", ""), note=form.get("note", ""),
                              collected_at=_tokyo_time(form.get("collected_at", "")), actor=g.user.login)
    except ApplianceError as refused:
        flash(str(refused), "error")
        return _student_page(event, student, 400)
    flash(_("%(name)sさんの引き渡しを記録しました", name=student.name), "info")
    return redirect(url_for("coconet.student_show", code=code, event_id=event_id, student_id=student_id), 303)


@bp.get(f"{PREFIX}/<event_id>/pickups")
@access(TEACHER)
def pickup_index(code: str, event_id: str):
    """The pickup register (引き渡し記録), newest first."""
    event = coconet.find_event(g.school, event_id)
    return render_template("coconet/pickups.html", event=event, pickups=coconet.pickup_register(event))


@bp.get(f"{PREFIX}/<event_id>/print")
@access(TEACHER)
@off_loop
def event_print(code: str, event_id: str):
    """Every child's state on paper, class by class (the backup when power or network fails)."""
    event = coconet.find_event(g.school, event_id)
    return render_template("coconet/print.html", event=event, board=coconet.dashboard(event))


@bp.get(f"{PREFIX}/<event_id>/export.csv")
@access(TEACHER)
@off_loop
def event_export(code: str, event_id: str):
    """The same as CSV (no contact data)."""
    event = coconet.find_event(g.school, event_id)
    stamp = event.opened_at.astimezone(TOKYO).strftime("%Y%m%d-%H%M")
    return file_response(coconet.export_csv(coconet.dashboard(event)).encode("utf-8"),
                         f"coconet-{code}-{stamp}.csv", "text/csv; charset=utf-8")


@bp.get(f"{PREFIX}/card/<card_code>")
@access(TEACHER)
def card_show(code: str, card_code: str):
    """What a name card's QR code opens: the child's state form in the open event."""
    student = coconet.find_student(g.school, card_code)
    event = coconet.current_event(g.school)
    if event is None:
        flash(_("CoCo-netは開始されていません"), "error")
        return redirect(url_for("coconet.event_index", code=code))
    return redirect(url_for("coconet.student_show", code=code, event_id=event.id, student_id=student.id))


@bp.get(f"{PREFIX}/cards")
@access(TEACHER)
def card_index(code: str):
    """Name cards to print, one class at a time: each carries the URL its QR code would hold."""
    classes = roster.school_classes(g.school)
    chosen = request.args.get("class", "")
    seat = parse_class(chosen)
    students = roster.class_students(g.school, *seat) if seat else []
    return render_template("coconet/cards.html", classes=classes, chosen=chosen, students=students,
                           card_code=coconet.card_code)


def _tokyo_time(text: str) -> datetime | None:
    """Read a datetime-local field (Tokyo time); empty means now."""
    if not text.strip():
        return None
    try:
        return parse_time(text.strip())
    except ValueError:
        raise InvalidInput(_("日時の形式が正しくありません")) from None
