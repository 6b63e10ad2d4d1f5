"""Sent messages and their follow-up: the list, the figures (live), the per-class table, survey results,
the answers as CSV, and resending to guardians who have not read.

Who sees what: a teacher sees only the messages they wrote; school admins and the
operator see every message of the school except other people's drafts. A message
outside what the user sees answers 404, like another school's. Resending is for
school admins and the operator, and for the message's author.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance import audit
from appliance.errors import InvalidInput
from appliance.followup import (answers_csv, class_read_table, targeted_classes, message_stats, read_percents, resend_unread,
                                survey_results)
from appliance.messages import get_message, visible_messages
from appliance.staff import assigned_classes
from appliance.models import Message
from appliance.targeting import parse_class
from webui.access import TEACHER, access
from webui.admin import bp
from webui.downloads import file_response
from webui.long_pages import off_loop

PAGE_SIZE = 20


def _message_or_404(message_id: str) -> Message:
    return get_message(g.school, message_id, g.user)


def _may_resend(message: Message) -> bool:
    return message.status == "released" and (g.user.role != "teacher" or message.author_id == g.user.id)


@bp.get("/s/<code>/messages")
@access(TEACHER)
def message_index(code: str):
    """The school's messages, newest first, with status and read percentage."""
    page = max(request.args.get("page", 1, type=int), 1)
    rows = list(visible_messages(g.school, g.user).order_by(Message.created_at.desc(), Message.id.desc())
                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    messages = rows[:PAGE_SIZE]
    figures = read_percents([m.id for m in messages if m.status == "released"])
    return render_template("admin/message_index.html", messages=messages, figures=figures, page=page,
                           has_next=len(rows) > PAGE_SIZE, now=g.appliance.clock.now())


@bp.get("/s/<code>/messages/<message_id>")
@access(TEACHER)
def message_show(code: str, message_id: str):
    """One message's follow-up: figures by channel, readers, the per-class table, survey results, its text."""
    message = _message_or_404(message_id)
    classes = targeted_classes(message)
    chosen = _chosen_class(request.args.get("class", ""), classes)
    return render_template("admin/message_show.html", message=message, stats=message_stats(message),
                           classes=classes, chosen=chosen, table=class_read_table(message, chosen) if chosen else [],
                           survey=survey_results(message), may_resend=_may_resend(message))


def _chosen_class(asked: str, classes: list[tuple[int, str, int]]) -> tuple[int, str] | None:
    """The class asked for (?class=3-1), else a teacher's own first class, else the first one."""
    available = [(grade, name) for grade, name, _count in classes]
    seat = parse_class(asked)
    if seat in available:
        return seat
    own = [c for c in assigned_classes(g.user) if c in available]
    return (own or available or [None])[0]


@bp.get("/s/<code>/messages/<message_id>/stats.json")
@access(TEACHER)
def message_stats_json(code: str, message_id: str):
    """The message's figures as JSON, for the page to poll."""
    return message_stats(_message_or_404(message_id))


@bp.get("/s/<code>/messages/<message_id>/answers.csv")
@access(TEACHER)
@off_loop
def message_answers_csv(code: str, message_id: str):
    """The survey answers as CSV for Excel; every export is written to the audit log."""
    message = _message_or_404(message_id)
    body = answers_csv(message)
    audit.record(g.appliance, g.user.login, "message.answers_export", school_id=g.school.id, subject_id=message.id)
    return file_response(body.encode("utf-8"), f"answers-{message.id}.csv", "text/csv; charset=utf-8")


@bp.post("/s/<code>/messages/<message_id>/resend")
@access(TEACHER)
def message_resend(code: str, message_id: str):
    """Send the message again, on the chosen channels, to the guardians who have not read it."""
    message = _message_or_404(message_id)
    if not _may_resend(message):
        abort(403)
    try:
        queued = resend_unread(g.appliance, message, request.form.getlist("channel"), actor=g.user.login)
    except InvalidInput as refused:
        flash(str(refused), "error")
    else:
        if queued:
            flash(_("未読の保護者に再送しました（%(count)s 件）", count=queued), "info")
        else:
            flash(_("再送する宛先はありませんでした（全員が既読か、前の送信を待っています）"), "info")
    return redirect(url_for("admin.message_show", code=code, message_id=message.id))
