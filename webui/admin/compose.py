"""Composing a message: the form, the confirmation step, release and approval, the guardian's preview.

The form is a plain HTML form (a variable number of survey questions, several files)
read by ``_read_form``; the core (appliance.messages) checks everything and keeps
teachers inside their classes and clubs. A bad submission re-renders the form with
everything typed in it; only files must be chosen again (browsers do not refill them).
"""
from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime

from flask import flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from appliance import attachments as files
from appliance import messages, notice_templates
from appliance.clock import parse_time, to_tokyo
from appliance.errors import ApplianceError, InvalidInput
from appliance.mail import render_guardian_mail
from appliance.messages import MAX_QUESTIONS, Question
from appliance.models import StaffAssignment, Student, StudentGroup
from appliance.targeting import RuleError
from webui.access import SCHOOL_ADMIN, TEACHER, access
from webui.admin import bp

FORM_CHANNELS = ("email", "push")      # FAX and phone join once those channels exist
EMPTY_QUESTIONS = 3                    # blocks shown without JavaScript
_URL = re.compile(r"https?://[^\s<>\"'「」『』（）()、。]+")
_BARE = re.compile(r'[\s()"&|!]')


@bp.get("/s/<code>/messages/new")
@access(TEACHER)
def message_new(code: str):
    """The compose form, empty or filled from a notice template (?template=ID)."""
    form = _empty_form()
    template_id = request.args.get("template")
    if template_id:
        template = notice_templates.get_template(g.school, template_id)
        form.update(subject=template.subject, body=template.body, priority=template.priority)
    return _render_form(form)


@bp.post("/s/<code>/messages/new")
@access(TEACHER)
def message_create(code: str):
    """Save the composed message as a draft and go to the confirmation step."""
    return _save(None)


@bp.get("/s/<code>/messages/<message_id>/edit")
@access(TEACHER)
def message_edit(code: str, message_id: str):
    """Edit a draft, or a message sent back by a school_admin."""
    message = messages.get_message(g.school, message_id, g.user)
    messages.check_editable(message, g.school, g.user)
    reason = messages.rejection_reason(message) if message.status == "rejected" else None
    if reason:
        flash(_("差し戻しの理由") + ": " + reason, "error")
    return _render_form(_form_of(message), message)


@bp.post("/s/<code>/messages/<message_id>/edit")
@access(TEACHER)
def message_update(code: str, message_id: str):
    """Save changes to a draft and go back to the confirmation step."""
    message = messages.get_message(g.school, message_id, g.user)
    messages.check_editable(message, g.school, g.user)
    return _save(message)


@bp.get("/s/<code>/messages/<message_id>/review")
@access(TEACHER)
def message_review(code: str, message_id: str):
    """The confirmation step: exactly who will receive it, and how it will look."""
    message = messages.get_message(g.school, message_id, g.user)
    reach, reach_error = None, None
    if message.status != "released":
        try:
            reach = messages.count_reach(g.school, message.audience, message.author, message.channel_list,
                                          message.priority)
        except ApplianceError as error:
            reach_error = str(error)
    return render_template(
        "admin/compose_review.html", message=message, reach=reach, reach_error=reach_error,
        questions=messages.question_list(message), attachments=messages.attachment_list(message),
        format_size=files.format_size, now=g.appliance.clock.now(),
        needs_approval=g.user.role == "teacher" and g.school.teacher_needs_approval,
        reason=messages.rejection_reason(message),
        after_release=_after_release(message))


@bp.post("/s/<code>/messages/<message_id>/release")
@access(TEACHER)
def message_release(code: str, message_id: str):
    """Send the draft (or submit it for approval)."""
    message = messages.get_message(g.school, message_id, g.user)
    try:
        message = messages.release_message(g.appliance, message, g.user)
    except InvalidInput as error:
        flash(str(error), "error")
        return redirect(url_for("admin.message_review", code=code, message_id=message.id))
    if message.status == "awaiting_approval":
        flash(_("承認を依頼しました。学校の管理者が承認すると送信されます"), "info")
        return redirect(url_for("admin.message_review", code=code, message_id=message.id))
    flash(_("送信を受け付けました"), "info")
    return redirect(_after_release(message))


@bp.post("/s/<code>/messages/<message_id>/approve")
@access(SCHOOL_ADMIN)
def message_approve(code: str, message_id: str):
    """Approve a teacher's message: it is sent now (or at its time)."""
    message = messages.get_message(g.school, message_id, g.user)
    try:
        message = messages.approve_message(g.appliance, message, g.user)
    except InvalidInput as error:
        flash(str(error), "error")
        return redirect(url_for("admin.message_review", code=code, message_id=message.id))
    flash(_("承認して送信を受け付けました"), "info")
    return redirect(_after_release(message))


@bp.post("/s/<code>/messages/<message_id>/reject")
@access(SCHOOL_ADMIN)
def message_reject(code: str, message_id: str):
    """Send a teacher's message back with a reason."""
    message = messages.get_message(g.school, message_id, g.user)
    try:
        messages.reject_message(g.appliance, message, g.user, request.form.get("reason", ""))
    except InvalidInput as error:
        flash(str(error), "error")
    else:
        flash(_("差し戻しました"), "info")
    return redirect(url_for("admin.message_review", code=code, message_id=message.id))


@bp.get("/s/<code>/messages/<message_id>/preview")
@access(TEACHER)
def message_preview(code: str, message_id: str):
    """The mail exactly as a guardian reads it (a sample guardian), for the review page's phone frame."""
    message = messages.get_message(g.school, message_id, g.user)
    # The real renderer, with a placeholder guardian and no address: what every guardian gets alike.
    data = render_guardian_mail(g.appliance, message, "preview", "保護者", ["〇〇"], [], "sample")
    mail = email.message_from_bytes(data, policy=email.policy.default)
    return render_template("admin/compose_preview.html", subject=str(mail["subject"]),
                           body=_linked(mail.get_body(("plain",)).get_content()),
                           attachments=messages.attachment_list(message), format_size=files.format_size)


@bp.get("/s/<code>/audience/count")
@access(TEACHER)
def audience_count(code: str):
    """The live count for the compose form: {students, guardians}, or {error, position}."""
    try:
        reach = messages.count_reach(g.school, request.args.get("rule", ""), g.user)
    except RuleError as error:
        return jsonify(error=str(error), position=error.position), 400
    except ApplianceError as error:
        return jsonify(error=str(error)), 400
    return jsonify(students=reach["students"], guardians=reach["guardians"])


def _after_release(message) -> str:
    return url_for("admin.message_show", code=g.school.code, message_id=message.id)


def _save(draft):
    form = _read_form()
    uploads = [(f.filename, f.mimetype, f.read()) for f in request.files.getlist("attachments") if f.filename]
    if "add_question" in request.form:
        form["questions"].append(_blank_question())
        if uploads:
            flash(_("添付ファイルは保存されていません。もう一度選んでください"), "error")
        return _render_form(form, draft)
    try:
        fields = _fields_of(form)
        message = messages.save_draft(g.appliance, g.school, g.user, draft=draft, attachments=uploads,
                                      remove_attachments=request.form.getlist("remove_attachment"), **fields)
    except InvalidInput as error:
        flash(str(error), "error")
        if uploads:
            flash(_("添付ファイルは保存されていません。もう一度選んでください"), "error")
        return _render_form(form, draft), 400
    return redirect(url_for("admin.message_review", code=g.school.code, message_id=message.id))


def _empty_form() -> dict:
    return {"subject": "", "body": "", "audience": "", "picks": [], "combine": "or", "reply_needed": False,
            "channels": ["email"], "send_mode": "now", "send_at": "", "priority": "normal", "expires_at": "",
            "questions": [_blank_question() for _ in range(EMPTY_QUESTIONS)]}


def _blank_question() -> dict:
    return {"kind": "single", "prompt": "", "options": "", "required": False}


def _form_of(message) -> dict:
    """The form's values for a saved message."""
    questions = [{"kind": q.kind, "prompt": q.prompt, "options": "\n".join(q.options), "required": q.required}
                 for q in messages.question_list(message)]
    questions += [_blank_question() for _ in range(max(0, EMPTY_QUESTIONS - len(questions)))]
    later = message.send_at > g.appliance.clock.now()
    return {"subject": message.subject, "body": message.body, "audience": message.audience, "picks": [],
            "combine": "or", "reply_needed": message.reply_needed, "channels": message.channel_list,
            "send_mode": "later" if later else "now", "send_at": _local(message.send_at) if later else "",
            "priority": message.priority, "expires_at": _local(message.expires_at),
            "questions": questions[:MAX_QUESTIONS]}


def _read_form() -> dict:
    """The submitted values, exactly as typed, to show again or to check."""
    data = request.form
    count = min(_int(data.get("question_count"), EMPTY_QUESTIONS), MAX_QUESTIONS)
    questions = [{"kind": data.get(f"q{i}_kind", "single"), "prompt": data.get(f"q{i}_prompt", ""),
                  "options": data.get(f"q{i}_options", ""), "required": bool(data.get(f"q{i}_required"))}
                 for i in range(count)]
    return {"subject": data.get("subject", ""), "body": data.get("body", ""),
            "audience": data.get("audience", ""), "picks": data.getlist("pick"),
            "combine": "and" if data.get("combine") == "and" else "or",
            "reply_needed": data.get("reply_needed") == "1", "channels": data.getlist("channels"),
            "send_mode": "later" if data.get("send_mode") == "later" else "now",
            "send_at": data.get("send_at", ""), "priority": data.get("priority", "normal"),
            "expires_at": data.get("expires_at", ""), "questions": questions}


def _fields_of(form: dict) -> dict:
    """Turn the form's values into save_draft's arguments, or raise InvalidInput."""
    audience = form["audience"].strip()
    if not audience and form["picks"]:
        # Without JavaScript the ticked boxes make the rule on the server.
        audience = f" {form['combine'].upper()} ".join(form["picks"])
        form["audience"] = audience
    if not audience:
        raise InvalidInput(_("宛先を選ぶか、条件を入力してください"))
    send_at = None
    if form["send_mode"] == "later":
        send_at = _time(form["send_at"], _("送信日時"))
        if send_at is None:
            raise InvalidInput(_("送信日時を入力してください"))
        if send_at <= g.appliance.clock.now():
            raise InvalidInput(_("送信日時が過ぎています。「確認後すぐに送信」を選ぶか、先の日時にしてください"))
    questions = [Question(q["kind"], q["prompt"], tuple(line for line in q["options"].splitlines() if line.strip())
                          if q["kind"] != "text" else (), q["required"])
                 for q in form["questions"] if q["prompt"].strip() or q["options"].strip()]
    return {"audience": audience, "subject": form["subject"], "body": form["body"],
            "priority": form["priority"], "reply_needed": form["reply_needed"],
            "channels": [c for c in form["channels"] if c in FORM_CHANNELS], "send_at": send_at,
            "expires_at": _time(form["expires_at"], _("有効期限")), "questions": questions}


def _time(text: str, label: str) -> datetime | None:
    """A datetime-local value, meant in Tokyo time."""
    if not text.strip():
        return None
    try:
        return parse_time(text.strip())
    except ValueError:
        raise InvalidInput(_("%(label)sを読めません: 年月日と時刻を入力してください", label=label)) from None


def _local(moment: datetime | None) -> str:
    return to_tokyo(moment).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdecimal() and len(text) < 4 else default


def _render_form(form: dict, message=None):
    return render_template("admin/compose_form.html", form=form, message=message, picker=_picker(),
                           attachments=messages.attachment_list(message) if message else [],
                           format_size=files.format_size, max_total=files.format_size(files.MAX_TOTAL_BYTES),
                           allowed=files.ALLOWED_NAMES, max_questions=MAX_QUESTIONS, channels=FORM_CHANNELS,
                           templates=notice_templates.list_templates(g.school) if message is None else [])


def _picker() -> list[tuple[str, list[tuple[str, str]]]]:
    """The audience picker's sections: (heading, [(rule term, label)]); a teacher's own classes and clubs only."""
    if g.user.role == "teacher":
        assigned = list(StaffAssignment.select().where(StaffAssignment.staff_user == g.user.id)
                        .order_by(StaffAssignment.kind, StaffAssignment.value))
        return [(_("担当のクラス"), [(_term("class", a.value), a.value) for a in assigned if a.kind == "class"]),
                (_("担当の部活動"), [(_term("club", a.value), a.value) for a in assigned if a.kind == "club"])]
    enrolled = (Student.school == g.school) & (Student.status == "enrolled")
    grades = [grade for (grade,) in Student.select(Student.grade).where(enrolled).distinct()
              .order_by(Student.grade).tuples()]
    classes = list(Student.select(Student.grade, Student.class_name).where(enrolled).distinct()
                   .order_by(Student.grade, Student.class_name).tuples())
    groups = list(StudentGroup.select(StudentGroup.kind, StudentGroup.key, StudentGroup.name)
                  .where(StudentGroup.school == g.school).order_by(StudentGroup.kind, StudentGroup.name).tuples())
    sections = [(_("学校全体"), [("all", _("全校"))]),
                (_("学年"), [(f"grade:{grade}", _("%(grade)s年", grade=grade)) for grade in grades]),
                (_("クラス"), [(_term("class", f"{grade}-{name}"), f"{grade}-{name}") for grade, name in classes])]
    for kind, word, heading in (("club", "club", _("部活動")), ("route", "route", _("通学路")),
                                ("custom", "group", _("グループ"))):
        sections.append((heading, [(_term(word, key), name) for k, key, name in groups if k == kind]))
    return [(heading, items) for heading, items in sections if items]


def _term(word: str, key: str) -> str:
    """A rule term for a group key, quoted when the key has spaces or rule characters."""
    if not _BARE.search(key):
        return f"{word}:{key}"
    return f'{word}:"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _linked(text: str) -> Markup:
    """Escaped text with its http(s) links clickable, nothing else."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        parts += [escape(text[last:match.start()]),
                  Markup('<a href="{0}" target="_blank" rel="noopener noreferrer">{0}</a>').format(match.group())]
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)
