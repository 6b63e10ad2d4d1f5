"""Messages: where sending starts.

Staff compose a draft (text, audience, survey, attachments; nobody targeted yet) and
confirm it on a page that reads the saved draft. Releasing it resolves its audience
against the roster and snapshots the result in the same transaction: a Recipient row
per targeted guardian and a queued Delivery row per live contact point of the chosen
channels. The channel workers read due deliveries from the database; later roster
changes do not move a message already released. The snapshot is two INSERT ... SELECT
statements, so its cost is the database's, not a Python loop's (figures: bench/resolve.py).

A teacher's audience is always cut down to their own classes and clubs
(``staff.teacher_scope``), whatever rule they wrote; where the school asks for it, a
teacher's release waits for a school_admin's approval. The CLI's ``send`` creates and
releases in one go (:func:`create_message`), through the same snapshot.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import peewee

from appliance import attachments as files
from appliance import audit, db, quiet_hours, routine_mail, staff, targeting
from appliance.errors import InvalidInput, NotFound
from appliance.models import (
    Attachment, AuditEntry, ContactPoint, Delivery, Guardian, Message, Recipient, StaffUser, SurveyQuestion)
from appliance.models.message import CHANNELS, PRIORITIES, PRIORITY_RANK, QUESTION_KINDS

MAX_SUBJECT = 200        # characters; it is a mail subject and a push title
MAX_BODY = 20_000        # characters
MAX_QUESTIONS = 10
MAX_OPTIONS = 20
MAX_REASON = 500         # characters of a rejection's reason
EDITABLE = ("draft", "rejected")
APPROVERS = ("school_admin", "operator")


@dataclass(frozen=True)
class Question:
    """A survey question as staff write it: single or multiple choice, or free text."""

    kind: str
    prompt: str
    options: tuple[str, ...] = ()
    required: bool = False


def create_message(app, school, *, audience: str, subject: str, body: str, priority: str = "normal",
                   reply_needed: bool = False, send_at: datetime | None = None,
                   expires_at: datetime | None = None, channels: Iterable[str] = ("email",),
                   author=None, questions: Sequence[Question] = (), actor: str = "cli") -> Message:
    """Create a message and, in one transaction, snapshot its recipients and queue its deliveries."""
    now = app.clock.now()
    # Leading space in a body is kept: letters open paragraphs with an ideographic space.
    subject, body, audience = subject.strip(), body.rstrip(), audience.strip()
    rule = audience_rule(audience, author)
    channels = _check_channels(channels)
    send_at = now if send_at is None else send_at
    _check_message(subject, body, priority, send_at, expires_at)
    questions = _check_questions(questions)
    _check_author(school, author)
    with db.write():
        message = Message.create(
            school=school, author=author, subject=subject, body=body, audience=audience,
            priority=priority, reply_needed=reply_needed, channels=",".join(channels),
            send_at=send_at, expires_at=expires_at, created_at=now, status="released")
        _store_questions(message, questions)
        _snapshot(app, message, rule, now, actor, "message.create")
    return message


def save_draft(app, school, author: StaffUser, *, audience: str, subject: str, body: str,
               priority: str = "normal", reply_needed: bool = False, send_at: datetime | None = None,
               expires_at: datetime | None = None, channels: Iterable[str] = ("email",),
               questions: Sequence[Question] = (), attachments: Sequence[tuple[str, str, bytes]] = (),
               remove_attachments: Iterable[str] = (), draft: Message | None = None) -> Message:
    """Create or update a draft, checked as a message is: survey and attachments stored, nobody targeted yet.

    attachments are (filename, claimed type, bytes) to add; remove_attachments the ids
    of the draft's own to drop. send_at None means "when released". Everything is
    checked before anything is written.
    """
    now = app.clock.now()
    subject, body, audience = subject.strip(), body.rstrip(), audience.strip()
    channels = _check_channels(channels)
    _check_message(subject, body, priority, send_at or now, expires_at)
    questions = _check_questions(questions)
    _check_author(school, author)
    kept = []
    if draft is not None:
        check_editable(draft, school, author)
        removed = set(remove_attachments)
        kept = [a for a in attachment_list(draft) if a.id not in removed]
    checked = files.check_files(attachments, already=sum(a.size for a in kept), kept_files=len(kept))
    owner = author if draft is None else draft.author
    if not count_reach(school, audience, owner)["guardians"]:
        raise InvalidInput(f"この条件に当てはまる保護者がいません: {audience}")
    fields = {"subject": subject, "body": body, "audience": audience, "priority": priority,
              "reply_needed": reply_needed, "channels": ",".join(channels), "send_at": send_at or now,
              "expires_at": expires_at, "status": "draft"}
    with db.write():
        if draft is None:
            message = Message.create(school=school, author=author, created_at=now, **fields)
        else:
            message = draft
            _move(message, EDITABLE, **fields)
            SurveyQuestion.delete().where(SurveyQuestion.message == message.id).execute()
            Attachment.delete().where((Attachment.message == message.id)
                                      & Attachment.id.not_in([a.id for a in kept])).execute()
        _store_questions(message, questions)
        for file in checked:
            Attachment.create(message=message, filename=file.filename, content_type=file.content_type,
                              size=file.size, data=file.data)
    return Message.get_by_id(message.id)


def release_message(app, message: Message, user: StaffUser) -> Message:
    """Send a draft now (or at its time); a teacher's waits for approval where the school asks for it."""
    check_editable(message, message.school, user)
    now = app.clock.now()
    if message.status != "draft":
        raise InvalidInput("差し戻された連絡は、編集して保存してから送信してください")
    if user.role == "teacher" and message.school.teacher_needs_approval:
        with db.write():
            _move(message, ("draft",), status="awaiting_approval")
            audit.record(app, user.login, "message.submit", school_id=message.school_id, subject_id=message.id,
                         detail={"audience": message.audience})
    else:
        with db.write():
            _move(message, ("draft",), status="released")
            _snapshot(app, message, audience_rule(message.audience, message.author), now, user.login,
                      "message.release")
    return Message.get_by_id(message.id)


def approve_message(app, message: Message, approver: StaffUser) -> Message:
    """A school_admin (or the operator) approves a teacher's message: it is sent then."""
    _check_approver(message, approver)
    with db.write():
        _move(message, ("awaiting_approval",), status="released", decided_by=approver.id)
        _snapshot(app, message, audience_rule(message.audience, message.author), app.clock.now(), approver.login,
                  "message.approve")
    return Message.get_by_id(message.id)


def reject_message(app, message: Message, approver: StaffUser, reason: str) -> Message:
    """Send a teacher's message back with a reason; they may edit it and submit it again."""
    _check_approver(message, approver)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("差し戻す理由を書いてください")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"理由は{MAX_REASON}文字までです（{len(reason)}文字）")
    with db.write():
        _move(message, ("awaiting_approval",), status="rejected", decided_by=approver.id)
        audit.record(app, approver.login, "message.reject", school_id=message.school_id, subject_id=message.id,
                     detail={"reason": reason})
    return Message.get_by_id(message.id)


def rejection_reason(message: Message) -> str | None:
    """Return why the message was last sent back, or None."""
    entry = (AuditEntry.select().where((AuditEntry.subject_id == message.id) & (AuditEntry.action == "message.reject"))
             .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).first())
    return json.loads(entry.detail).get("reason") if entry else None


def audience_rule(audience: str, author: StaffUser | None) -> targeting.Rule:
    """Parse an audience; a teacher's is cut down to their own classes and clubs, whatever it says."""
    rule = targeting.parse_rule(audience.strip())
    scope = staff.teacher_scope(author) if author is not None else None
    return rule if scope is None else targeting.And((rule, scope))


def count_reach(school, audience: str, author: StaffUser | None, channels: Iterable[str] = (),
                priority: str = "normal") -> dict:
    """Return how many students and guardians the audience reaches for this author, and, for the
    channels given, how many live addresses (or devices) each would be sent to, and for a routine
    message by email how many of the guardians stopped routine mail. Counts only."""
    rule = audience_rule(audience, author)
    reach = targeting.count_audience(school, rule)
    channels = list(channels)
    if channels:
        guardians = targeting.guardian_query(school, rule)
        routine = priority != "emergency"
        reach["addresses"] = dict.fromkeys(channels, 0)
        reach["addresses"].update(
            ContactPoint.select(ContactPoint.kind, peewee.fn.COUNT(ContactPoint.id)).join(Guardian)
            .where(ContactPoint.guardian.in_(guardians) & (ContactPoint.status == "active")
                   & ContactPoint.kind.in_(channels) & (routine_mail.wanted() if routine else peewee.SQL("1")))
            .group_by(ContactPoint.kind).tuples())
        if routine and "email" in channels:
            reach["routine_mail_stopped"] = routine_mail.count_stopped(guardians)
    return reach


def visible_messages(school, user: StaffUser) -> peewee.ModelSelect:
    """Return the school's notices the user may see: a teacher their own; others all but others' drafts."""
    query = Message.select().where((Message.school == school) & (Message.kind == "notice"))
    if user.role == "teacher":
        return query.where(Message.author == user.id)
    return query.where((Message.status != "draft") | (Message.author == user.id))


def get_message(school, message_id: str, user: StaffUser) -> Message:
    """Return one of the school's messages the user may see, or raise NotFound."""
    message = visible_messages(school, user).where(Message.id == message_id).first()
    if message is None:
        raise NotFound("連絡が見つかりません")
    return message


def check_editable(message: Message, school, user: StaffUser) -> None:
    """Raise unless the user may change this message: their school's (a teacher: their own), not yet sent."""
    get_message(school, message.id, user)
    if message.status not in EDITABLE:
        raise InvalidInput("送信済みか承認待ちの連絡は変更できません")


def question_list(message: Message) -> list[Question]:
    """Return the message's survey questions in order."""
    return [Question(q.kind, q.prompt, tuple(json.loads(q.options)), q.required)
            for q in SurveyQuestion.select().where(SurveyQuestion.message == message.id)
            .order_by(SurveyQuestion.position)]


def attachment_list(message: Message) -> list[Attachment]:
    """Return the message's attachments without their bytes."""
    return list(Attachment.select(Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size)
                .where(Attachment.message == message.id).order_by(Attachment.id))


def message_summary(message: Message) -> dict:
    """Return the message's id, its recipient count and its deliveries by channel."""
    by_channel = dict.fromkeys(message.channel_list, 0)
    rows = (Delivery.select(Delivery.channel, peewee.fn.COUNT(Delivery.id))
            .where(Delivery.message == message.id).group_by(Delivery.channel).tuples())
    by_channel.update(rows)
    recipients = Recipient.select().where(Recipient.message == message.id).count()
    return {"message": message.id, "recipients": recipients, "deliveries": by_channel}


def _snapshot(app, message: Message, rule: targeting.Rule, now: datetime, actor: str, action: str) -> None:
    """Inside the caller's transaction: snapshot the recipients, queue the deliveries, audit the counts.

    A send time already past means now.
    """
    due_at = max(message.send_at, now)
    if message.expires_at is not None and message.expires_at <= due_at:
        raise InvalidInput("有効期限が過ぎています。編集して有効期限を直してください")
    if due_at != message.send_at:
        Message.update(send_at=due_at).where(Message.id == message.id).execute()
    if not _snapshot_recipients(message, targeting.guardian_query(message.school, rule)):
        raise InvalidInput(f"この条件に当てはまる保護者がいません: {message.audience}")
    _queue_deliveries(message, message.channel_list, due_at, now)
    summary = message_summary(message)
    audit.record(app, actor, action, school_id=message.school_id, subject_id=message.id,
                 detail={"audience": message.audience, "priority": message.priority,
                         "recipients": summary["recipients"], "deliveries": summary["deliveries"]})


def _snapshot_recipients(message: Message, guardians: peewee.ModelSelect) -> int:
    """Insert a Recipient per targeted guardian; return how many."""
    targeted = guardians.alias("targeted")
    query = peewee.Select([targeted], [db.new_keys(), peewee.Value(message.id), targeted.c.guardian_id])
    return (Recipient.insert_from(query, [Recipient.id, Recipient.message, Recipient.guardian])
            .as_rowcount().execute())


def _queue_deliveries(message: Message, channels: list[str], due_at: datetime, now: datetime) -> None:
    """Insert a queued Delivery per active contact point of the recipients on the channels."""
    Delivery.insert_from(delivery_rows(message, channels, due_at, now), [
        Delivery.id, Delivery.message, Delivery.recipient, Delivery.contact, Delivery.channel,
        Delivery.priority, Delivery.state, Delivery.attempts, Delivery.due_at, Delivery.updated_at]).execute()


def delivery_rows(message: Message, channels: list[str], due_at: datetime, now: datetime) -> peewee.ModelSelect:
    """Return the SELECT of new Delivery rows: one per active contact point of the recipients on the channels."""
    # The join order is pinned, for it decides the speed: walk this message's recipients and
    # find each one's contact points through contact_point_guardian (guardian_id, kind).
    # Without table statistics SQLite would rather scan contact_point by kind and probe the
    # recipients at random: twice as slow for a whole school, and the cost of the whole
    # table for a single class. CROSS JOIN fixes the order in SQLite; PostgreSQL plans it
    # as a plain join.
    # Routine messages wait for the end of a guardian's quiet hours (appliance/quiet_hours.py)
    # and skip the email of those who stopped routine mail (appliance/routine_mail.py): one
    # more key lookup per recipient, in the same statement.
    routine = message.priority != "emergency"
    due = (quiet_hours.due_at_expression(due_at) if routine
           # Bound as the field stores times (naive UTC text), or they would not compare.
           else peewee.Value(due_at, converter=Delivery.due_at.db_value))
    query = (Recipient
             .select(db.new_keys(), Recipient.message, Recipient.id, ContactPoint.id, ContactPoint.kind,
                     peewee.Value(PRIORITY_RANK[message.priority]), peewee.Value("queued"), peewee.Value(0), due,
                     peewee.Value(now, converter=Delivery.updated_at.db_value)))
    if routine:
        query = query.join(Guardian, peewee.JOIN.CROSS).switch(Recipient)
    return (query.join(ContactPoint, peewee.JOIN.CROSS)
            .where((Recipient.message == message.id) & (ContactPoint.guardian == Recipient.guardian)
                   & (ContactPoint.status == "active") & ContactPoint.kind.in_(channels)
                   & (((Guardian.id == Recipient.guardian) & routine_mail.wanted()) if routine else peewee.SQL("1"))))


def _move(message: Message, current: Sequence[str], **changes) -> None:
    """Change a message only while its status is still one of current (two clicks send once)."""
    changed = Message.update(**changes).where((Message.id == message.id) & Message.status.in_(current)).execute()
    if not changed:
        raise InvalidInput("この連絡の状態が変わっています。画面を読み込み直してください")


def _store_questions(message: Message, questions: Sequence[Question]) -> None:
    if questions:
        SurveyQuestion.insert_many(
            [{"id": SurveyQuestion.id.default(), "message": message.id, "position": position,
              "kind": q.kind, "prompt": q.prompt, "options": json.dumps(q.options, ensure_ascii=False),
              "required": q.required} for position, q in enumerate(questions, 1)]).execute()


def _check_author(school, author) -> None:
    if author is not None and author.school_id not in (None, school.id):
        raise InvalidInput(f"{author.login} は {school.code} の職員ではありません")


def _check_approver(message: Message, approver: StaffUser) -> None:
    if approver.role not in APPROVERS or approver.school_id not in (None, message.school_id):
        raise InvalidInput("連絡を承認・差し戻しできるのは学校の管理者だけです")
    if message.status != "awaiting_approval":
        raise InvalidInput("この連絡は承認待ちではありません")

def _check_channels(channels: Iterable[str]) -> list[str]:
    channels = list(dict.fromkeys(channels))
    if not channels:
        raise InvalidInput("送信経路を1つ以上指定してください")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise InvalidInput(f"不明な送信経路: {', '.join(unknown)}（{', '.join(CHANNELS)} が使えます）")
    return channels


def check_text(subject: str, body: str) -> None:
    """Raise InvalidInput unless the subject and body can be sent (also a template's)."""
    if not subject:
        raise InvalidInput("件名が空です")
    if len(subject) > MAX_SUBJECT:
        raise InvalidInput(f"件名は{MAX_SUBJECT}文字までです（{len(subject)}文字）")
    if "\n" in subject or "\r" in subject:
        raise InvalidInput("件名に改行は使えません")
    if not body.strip():
        raise InvalidInput("本文が空です")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"本文は{MAX_BODY}文字までです（{len(body)}文字）")


def _check_message(subject: str, body: str, priority: str, send_at: datetime,
                   expires_at: datetime | None) -> None:
    check_text(subject, body)
    if priority not in PRIORITIES:
        raise InvalidInput(f"優先度は {', '.join(PRIORITIES)} のいずれかです: {priority!r}")
    for moment in (send_at, expires_at):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput("日時にはタイムゾーンが必要です")
    if expires_at is not None and expires_at <= send_at:
        raise InvalidInput("有効期限は送信日時より後にしてください")


def _check_questions(questions: Sequence[Question]) -> list[Question]:
    questions = list(questions)
    if len(questions) > MAX_QUESTIONS:
        raise InvalidInput(f"アンケートの質問は{MAX_QUESTIONS}問までです（{len(questions)}問）")
    checked = []
    for number, question in enumerate(questions, 1):
        prompt = question.prompt.strip()
        options = tuple(option.strip() for option in question.options)
        if question.kind not in QUESTION_KINDS:
            raise InvalidInput(f"質問{number}: 種類は {', '.join(QUESTION_KINDS)} のいずれかです: "
                               f"{question.kind!r}")
        if not prompt:
            raise InvalidInput(f"質問{number}: 質問文が空です")
        if question.kind == "text" and options:
            raise InvalidInput(f"質問{number}: 記述式の質問に選択肢は付けません")
        if question.kind != "text":
            if not 2 <= len(options) <= MAX_OPTIONS:
                raise InvalidInput(f"質問{number}: 選択肢は2〜{MAX_OPTIONS}個にしてください")
            if not all(options) or len(set(options)) != len(options):
                raise InvalidInput(f"質問{number}: 選択肢に空のものか重複があります")
        checked.append(Question(question.kind, prompt, options, question.required))
    return checked
