"""Messages: where sending starts.

Creating a message resolves its audience against the roster and snapshots the
result in the same transaction: a Recipient row per targeted guardian and a queued
Delivery row per live contact point of the chosen channels. The channel workers
read due deliveries from the database; later roster changes do not move a message
already created. The snapshot is two INSERT ... SELECT statements, so its cost is
the database's, not a Python loop's (figures: bench/resolve.py).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import peewee

from appliance import audit, db, targeting
from appliance.errors import InvalidInput
from appliance.models import ContactPoint, Delivery, Message, Recipient, SurveyQuestion
from appliance.models.message import CHANNELS, PRIORITIES, PRIORITY_RANK, QUESTION_KINDS

MAX_SUBJECT = 200        # characters; it is a mail subject and a push title
MAX_BODY = 20_000        # characters
MAX_QUESTIONS = 10
MAX_OPTIONS = 20


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
    rule = targeting.parse_rule(audience)
    channels = _check_channels(channels)
    send_at = now if send_at is None else send_at
    _check_message(subject, body, priority, send_at, expires_at)
    questions = _check_questions(questions)
    if author is not None and author.school_id not in (None, school.id):
        raise InvalidInput(f"{author.login} は {school.code} の職員ではありません")
    with db.write():
        guardians = targeting.guardian_query(school, rule)
        message = Message.create(
            school=school, author=author, subject=subject, body=body, audience=audience,
            priority=priority, reply_needed=reply_needed, channels=",".join(channels),
            send_at=send_at, expires_at=expires_at, created_at=now)
        if questions:
            SurveyQuestion.insert_many(
                [{"id": SurveyQuestion.id.default(), "message": message.id, "position": position,
                  "kind": q.kind, "prompt": q.prompt, "options": json.dumps(q.options, ensure_ascii=False),
                  "required": q.required} for position, q in enumerate(questions, 1)]).execute()
        if not _snapshot_recipients(message, guardians):
            raise InvalidInput(f"この条件に当てはまる保護者がいません: {audience}")
        _queue_deliveries(message, channels, send_at, now)
        summary = message_summary(message)
        audit.record(app, actor, "message.create", school_id=school.id, subject_id=message.id,
                     detail={"audience": audience, "priority": priority,
                             "recipients": summary["recipients"], "deliveries": summary["deliveries"]})
    return message


def message_summary(message: Message) -> dict:
    """Return the message's id, its recipient count and its deliveries by channel."""
    by_channel = dict.fromkeys(message.channel_list, 0)
    rows = (Delivery.select(Delivery.channel, peewee.fn.COUNT(Delivery.id))
            .where(Delivery.message == message.id).group_by(Delivery.channel).tuples())
    by_channel.update(rows)
    recipients = Recipient.select().where(Recipient.message == message.id).count()
    return {"message": message.id, "recipients": recipients, "deliveries": by_channel}


def _snapshot_recipients(message: Message, guardians: peewee.ModelSelect) -> int:
    """Insert a Recipient per targeted guardian; return how many."""
    targeted = guardians.alias("targeted")
    query = peewee.Select([targeted], [db.new_keys(), peewee.Value(message.id), targeted.c.guardian_id])
    return (Recipient.insert_from(query, [Recipient.id, Recipient.message, Recipient.guardian])
            .as_rowcount().execute())


def _queue_deliveries(message: Message, channels: list[str], due_at: datetime, now: datetime) -> None:
    """Insert a queued Delivery per active contact point of the recipients on the channels."""
    Delivery.insert_from(_delivery_rows(message, channels, due_at, now), [
        Delivery.id, Delivery.message, Delivery.recipient, Delivery.contact, Delivery.channel,
        Delivery.priority, Delivery.state, Delivery.attempts, Delivery.due_at, Delivery.updated_at]).execute()


def _delivery_rows(message: Message, channels: list[str], due_at: datetime, now: datetime) -> peewee.ModelSelect:
    # The join order is pinned, for it decides the speed: walk this message's recipients and
    # find each one's contact points through contact_point_guardian (guardian_id, kind).
    # Without table statistics SQLite would rather scan contact_point by kind and probe the
    # recipients at random: twice as slow for a whole school, and the cost of the whole
    # table for a single class. CROSS JOIN fixes the order in SQLite; PostgreSQL plans it
    # as a plain join.
    return (Recipient
            .select(db.new_keys(), Recipient.message, Recipient.id, ContactPoint.id, ContactPoint.kind,
                    peewee.Value(PRIORITY_RANK[message.priority]), peewee.Value("queued"), peewee.Value(0),
                    # Bound as the field stores times (naive UTC text), or they would not compare.
                    peewee.Value(due_at, converter=Delivery.due_at.db_value),
                    peewee.Value(now, converter=Delivery.updated_at.db_value))
            .join(ContactPoint, peewee.JOIN.CROSS)
            .where((Recipient.message == message.id) & (ContactPoint.guardian == Recipient.guardian)
                   & (ContactPoint.status == "active") & ContactPoint.kind.in_(channels)))


def _check_channels(channels: Iterable[str]) -> list[str]:
    channels = list(dict.fromkeys(channels))
    if not channels:
        raise InvalidInput("送信経路を1つ以上指定してください")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise InvalidInput(f"不明な送信経路: {', '.join(unknown)}（{', '.join(CHANNELS)} が使えます）")
    return channels


def _check_message(subject: str, body: str, priority: str, send_at: datetime,
                   expires_at: datetime | None) -> None:
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
