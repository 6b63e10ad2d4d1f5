"""Following a message up: delivery figures, read reports, survey results, and resending.

Every figure is one indexed aggregate query whatever the message's size (figures for
a 160,000-delivery message: bench/followup_stats.py); none walks the deliveries in
Python. The per-class table and the CSV are the exceptions by nature: they list
children and answers, so they cost what a class list or an export costs.

How the figures count:

- ``recipients`` is the snapshot taken when the message was released (Recipient).
- The channel figures count Delivery rows by their state. A resend adds a row per
  address it reaches, so after a resend a channel's figures are attempts to reach
  an address, not addresses: the channel's ``total`` grows by what was resent, while
  ``read`` and ``read_percent`` (guardians) do not move. A resend never queues a
  second copy to an address that still has one waiting (queued or deferred).
- ``read`` is the guardians with at least one Receipt (a guardian taps as often as
  they like; ``read`` is the only kind the schema has).
- ``answered`` is the guardians with at least one SurveyAnswer; for each guardian
  and question only the newest answer counts (``at``, then id, breaks ties).

Survey answer values are JSON: a single choice is the option's text, a multiple
choice a list of option texts, a free-text answer a string.
"""
from __future__ import annotations

import csv
import io
import json

import peewee

from appliance import audit, db, surveys, targeting
from appliance.clock import to_tokyo
from appliance.deliveries import PENDING_STATES
from appliance.errors import ApplianceError, InvalidInput
from appliance.messages import delivery_rows
from appliance.models import (ContactPoint, Delivery, Guardian, GuardianLink, Message, Receipt, Recipient, Student,
                              SurveyAnswer)

STATES = ("queued", "deferred", "delivered", "bounced", "expired")
CHILD_STATES = ("read", "unread", "no_guardian")
TEXT_ANSWERS_SHOWN = 200    # per question on the page; the CSV has them all
# Excel guesses a cell starting with these is a formula: a guardian's free text must not run as one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The newest answer per guardian and question. Window functions and json_each are
# SQLite's; PostgreSQL has the same window and jsonb_array_elements_text, with
# jsonb_typeof to tell a single choice (a string) from a multiple one (an array).
_CURRENT_ANSWERS = """
WITH ranked AS (
    SELECT question_id, guardian_id, value, at,
           ROW_NUMBER() OVER (PARTITION BY question_id, guardian_id ORDER BY at DESC, id DESC) AS n
    FROM survey_answer WHERE message_id = {p}
), current AS (SELECT question_id, guardian_id, value, at FROM ranked WHERE n = 1)
"""


def message_stats(message: Message) -> dict:
    """Return the message's recipients, deliveries by channel and state, readers and answerers."""
    channels = {channel: dict.fromkeys(STATES + ("total",), 0) for channel in message.channel_list}
    rows = (Delivery.select(Delivery.channel, Delivery.state, peewee.fn.COUNT(peewee.SQL("*")))
            .where(Delivery.message == message.id).group_by(Delivery.channel, Delivery.state).tuples())
    for channel, state, count in rows:
        figures = channels.setdefault(channel, dict.fromkeys(STATES + ("total",), 0))
        figures[state] = count
        figures["total"] += count
    recipients = _count(Recipient.select(peewee.fn.COUNT(peewee.SQL("*"))).where(Recipient.message == message.id))
    read = _count(Receipt.select(peewee.fn.COUNT(Receipt.guardian.distinct())).where(Receipt.message == message.id))
    answered = _count(SurveyAnswer.select(peewee.fn.COUNT(SurveyAnswer.guardian.distinct()))
                      .where(SurveyAnswer.message == message.id))
    return {"message": message.id, "recipients": recipients, "channels": channels, "read": read,
            "read_percent": percent(read, recipients), "answered": answered}


def percent(part: int, whole: int) -> float:
    """Return part of whole in percent, one decimal; 0 when there is no whole."""
    return round(100 * part / whole, 1) if whole else 0.0


def _count(query: peewee.ModelSelect) -> int:
    return query.scalar() or 0


def read_percents(message_ids: list[str]) -> dict[str, dict]:
    """Return recipients, readers and read percent for several messages (a list page's column)."""
    recipients = dict(Recipient.select(Recipient.message, peewee.fn.COUNT(peewee.SQL("*")))
                      .where(Recipient.message.in_(message_ids)).group_by(Recipient.message).tuples())
    readers = dict(Receipt.select(Receipt.message, peewee.fn.COUNT(Receipt.guardian.distinct()))
                   .where(Receipt.message.in_(message_ids)).group_by(Receipt.message).tuples())
    return {mid: {"recipients": recipients.get(mid, 0), "read": readers.get(mid, 0),
                  "read_percent": percent(readers.get(mid, 0), recipients.get(mid, 0))} for mid in message_ids}


def _targeted(message: Message) -> peewee.Node:
    """WHERE over Student: the children the message targets, its rule read against today's roster.

    The snapshot keeps guardians, not children. If the rule no longer reads (a club
    was removed since), the children are those the recipients are guardians of. The
    rule is applied as a condition rather than an IN (...) list so that a filter on one
    class narrows the scan through the (school, grade, class) index.
    """
    try:
        return targeting.student_condition(message.school, targeting.parse_rule(message.audience))
    except ApplianceError:
        return (Student.school == message.school_id) & Student.id.in_(
            GuardianLink.select(GuardianLink.student)
            .join(Recipient, on=(Recipient.guardian == GuardianLink.guardian))
            .where((Recipient.message == message.id) & (GuardianLink.status == "approved")))


def _guardian_has(model, message: Message) -> peewee.Node:
    """EXISTS: one of the child's approved guardians has a `model` row (Recipient, Receipt) for the message."""
    # CROSS JOIN pins the order (the child's links first, then a probe by (message, guardian)):
    # without table statistics SQLite would walk every receipt of the message for each child.
    return peewee.fn.EXISTS(
        GuardianLink.select(peewee.SQL("1"))
        .join(model, peewee.JOIN.CROSS)
        .where((GuardianLink.student == Student.id) & (GuardianLink.status == "approved")
               & (model.guardian == GuardianLink.guardian) & (model.message == message.id)))


def targeted_classes(message: Message) -> list[tuple[int, str, int]]:
    """Return the grade-classes the message targets, each with how many of its children are targeted."""
    return list(Student.select(Student.grade, Student.class_name, peewee.fn.COUNT(Student.id))
                .where(_targeted(message))
                .group_by(Student.grade, Student.class_name).order_by(Student.grade, Student.class_name).tuples())


def class_read_table(message: Message, only: tuple[int, str] | None = None) -> list[dict]:
    """Return per grade-class (or for the one class given) the targeted children, each read / unread /
    no_guardian, with counts.

    A child is ``read`` when at least one of their approved guardians has read the
    message, ``unread`` when they have guardians among the recipients and none has
    read it, ``no_guardian`` when no approved guardian of theirs was a recipient.
    The follow-up page asks for one class at a time: the whole school costs a probe
    per child (~0.4 s for 40,000 children), a class a few milliseconds.
    """
    where = _targeted(message)
    if only is not None:
        where &= (Student.grade == only[0]) & (Student.class_name == only[1])
    rows = (Student.select(Student.grade, Student.class_name, Student.number, Student.name,
                           _guardian_has(Recipient, message).alias("reached"),
                           _guardian_has(Receipt, message).alias("has_read"))
            .where(where).order_by(Student.grade, Student.class_name, Student.number).tuples())
    classes: dict[tuple[int, str], dict] = {}
    for grade, class_name, number, name, reached, has_read in rows:
        entry = classes.setdefault((grade, class_name), {
            "grade": grade, "class_name": class_name, "children": [], **dict.fromkeys(CHILD_STATES, 0)})
        state = "read" if has_read else "unread" if reached else "no_guardian"
        entry[state] += 1
        entry["children"].append({"number": number, "name": name, "state": state})
    for entry in classes.values():
        entry["total"] = len(entry["children"])
        entry["read_percent"] = percent(entry["read"], entry["total"])
    return list(classes.values())


def survey_results(message: Message) -> list[dict]:
    """Return per question: how many answered, counts per option, and the newest free-text answers."""
    questions = surveys.questions_of(message.id)
    if not questions:
        return []
    answered = dict(db.fetch(
        _CURRENT_ANSWERS + "SELECT question_id, COUNT(*) FROM current GROUP BY question_id", (message.id,)))
    chosen: dict[str, dict[str, int]] = {}
    for question_id, option, count in db.fetch(
            _CURRENT_ANSWERS + "SELECT current.question_id, choice.value, COUNT(*) FROM current, json_each(current.value)"
            " AS choice GROUP BY current.question_id, choice.value", (message.id,)):
        chosen.setdefault(question_id, {})[option] = count
    texts: dict[str, list] = {}
    text_ids = [q.id for q in questions if q.kind == "text"]
    if text_ids:        # the newest few of every text question, in one pass over the answers
        for question_id, value in db.fetch(
                _CURRENT_ANSWERS + "SELECT question_id, value FROM (SELECT question_id, value, ROW_NUMBER() OVER"
                " (PARTITION BY question_id ORDER BY at DESC) AS k FROM current"
                f" WHERE question_id IN ({db.placeholders(len(text_ids))})) WHERE k <= {{p}} ORDER BY k",
                (message.id, *text_ids, TEXT_ANSWERS_SHOWN)):
            texts.setdefault(question_id, []).append(json.loads(value))
    results = []
    for question in questions:
        total = answered.get(question.id, 0)
        result = {"position": question.position, "kind": question.kind, "prompt": question.prompt,
                  "answered": total, "options": [], "texts": []}
        if question.kind == "text":
            result["texts"] = texts.get(question.id, [])
        else:
            counts = chosen.get(question.id, {})
            result["options"] = [{"option": option, "count": counts.get(option, 0),
                                  "percent": percent(counts.get(option, 0), total)}
                                 for option in json.loads(question.options)]
        results.append(result)
    return results


def answers_csv(message: Message) -> str:
    """Return the survey answers as CSV for Excel (UTF-8 with BOM): a row per child and answering guardian.

    Columns: grade, class, number, child, guardian name, answered at (Tokyo), one per
    question. A guardian with no targeted child left (transferred since) gets one row
    without a child. Never holds a contact value.
    """
    questions = surveys.questions_of(message.id)
    answers: dict[str, dict] = {}
    answered_at: dict[str, object] = {}
    for question_id, guardian_id, value, at in db.fetch(
            _CURRENT_ANSWERS + "SELECT question_id, guardian_id, value, at FROM current", (message.id,)):
        answers.setdefault(guardian_id, {})[question_id] = json.loads(value)
        answered_at[guardian_id] = max(answered_at.get(guardian_id, at), at)
    names = dict(Guardian.select(Guardian.id, Guardian.name).where(Guardian.id.in_(list(answers))).tuples())
    children: dict[str, list[tuple]] = {}
    for guardian_id, *child in (
            GuardianLink.select(GuardianLink.guardian, Student.grade, Student.class_name, Student.number, Student.name)
            .join(Student)
            .where(GuardianLink.guardian.in_(list(answers)) & (GuardianLink.status == "approved")
                   & _targeted(message))
            .tuples()):
        children.setdefault(guardian_id, []).append(tuple(child))
    rows = []
    for guardian_id, by_question in answers.items():
        at = to_tokyo(SurveyAnswer.at.python_value(answered_at[guardian_id])).strftime("%Y-%m-%d %H:%M")
        cells = [_cell(by_question.get(q.id)) for q in questions]
        for child in children.get(guardian_id) or [("", "", "", "")]:
            rows.append([*child, names.get(guardian_id, ""), at, *cells])
    rows.sort(key=lambda row: (row[0] == "", row[0], str(row[1]), row[2] or 0, row[4]))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["学年", "組", "番号", "児童名", "保護者名", "回答日時"]
                    + [f"Q{q.position} {q.prompt}" for q in questions])
    writer.writerows([_safe(value) for value in row] for row in rows)
    return "\ufeff" + out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    return "、".join(value) if isinstance(value, list) else str(value)


def _safe(value) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def resend_unread(app, message: Message, channels, actor: str) -> int:
    """Queue the message again, on the chosen channels, to the active addresses of recipients who have not read.

    One INSERT ... SELECT, audited; returns how many deliveries were queued. An address
    that still has a delivery of this message waiting is skipped (a second click does
    not send twice).
    """
    now = app.clock.now()
    channels = list(dict.fromkeys(channels))
    if message.status != "released" or message.send_at > now:
        raise InvalidInput("まだ送信されていない連絡は再送できません")
    if message.expires_at is not None and message.expires_at <= now:
        raise InvalidInput("有効期限を過ぎた連絡は再送できません")
    if not channels:
        raise InvalidInput("再送する送信経路を1つ以上選んでください")
    unknown = [c for c in channels if c not in message.channel_list]
    if unknown:
        raise InvalidInput(f"この連絡の送信経路ではありません: {', '.join(unknown)}")
    readers = Receipt.select(Receipt.guardian).where(Receipt.message == message.id)
    waiting = Delivery.select(Delivery.contact).where((Delivery.message == message.id)
                                                      & Delivery.state.in_(PENDING_STATES))
    rows = delivery_rows(message, channels, now, now).where(
        Recipient.guardian.not_in(readers) & ContactPoint.id.not_in(waiting))
    with db.write():
        queued = (Delivery.insert_from(rows, [
            Delivery.id, Delivery.message, Delivery.recipient, Delivery.contact, Delivery.channel,
            Delivery.priority, Delivery.state, Delivery.attempts, Delivery.due_at, Delivery.updated_at])
            .as_rowcount().execute())
        audit.record(app, actor, "message.resend", school_id=message.school_id, subject_id=message.id,
                     detail={"channels": channels, "deliveries": queued})
    return queued
