"""A guardian's survey answers: validated against the questions, recorded as facts, changeable until the survey closes.

Values are stored as :mod:`appliance.followup` reads them (JSON): a single choice is
the option's text (a string), a multiple choice a list of option texts in the
question's order, a free-text answer a string. Each submission inserts a row only for
the questions whose answer changed, so the newest row's time is when the guardian
last changed that answer (what the school sees). An optional question left blank
keeps the answer given before: an insert-only record cannot take an answer back.

A survey closes when its message expires (``Message.expires_at``); without an expiry
it stays open.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from appliance import db
from appliance.errors import InvalidInput, NotFound
from appliance.ids import uuid7
from appliance.models import Message, Recipient, SurveyAnswer, SurveyQuestion

MAX_TEXT = 1000     # characters of a free-text answer


class AnswerErrors(InvalidInput):
    """Some answers were refused: ``errors`` maps question id -> the message to show beside it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("回答に不備があります。各質問の表示を確認してください")
        self.errors = errors


@dataclass(frozen=True)
class Answer:
    """A guardian's current answer to one question."""

    value: object        # str for single and text, list[str] for multiple
    at: datetime


def field_name(question: SurveyQuestion) -> str:
    """The form field that carries a question's answer."""
    return f"q{question.position}"


def questions_of(message_id: str) -> list[SurveyQuestion]:
    """Return a message's questions in order."""
    return list(SurveyQuestion.select().where(SurveyQuestion.message == message_id).order_by(SurveyQuestion.position))


def validate_answers(questions: Sequence[SurveyQuestion], form: Mapping[str, Sequence[str]]) -> dict[str, object]:
    """Return question id -> value for the answered questions, or raise AnswerErrors.

    ``form`` maps a field name to every value sent for it (a multiple choice sends several).
    """
    values, errors = {}, {}
    for question in questions:
        sent = [v for v in form.get(field_name(question), []) if isinstance(v, str)]
        options = json.loads(question.options)
        try:
            value = _check(question.kind, options, sent)
        except InvalidInput as refused:
            errors[question.id] = str(refused)
            continue
        if value in (None, "", []):
            if question.required:
                errors[question.id] = "この質問には回答が必要です"
            continue
        values[question.id] = value
    if errors:
        raise AnswerErrors(errors)
    return values


def _check(kind: str, options: list[str], sent: list[str]) -> object:
    if kind == "text":
        if len(sent) > 1:
            raise InvalidInput("回答は1つにしてください")
        text = sent[0].strip() if sent else ""
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"回答は{MAX_TEXT}文字までです（{len(text)}文字）")
        if any(ord(c) < 32 and c not in "\r\n\t" for c in text):
            raise InvalidInput("使えない文字が含まれています")
        return text.replace("\r\n", "\n")
    sent = [v for v in sent if v != ""]
    if any(v not in options for v in sent):
        raise InvalidInput("選択肢にない回答です")
    if kind == "single":
        if len(sent) > 1:
            raise InvalidInput("選択肢は1つだけ選んでください")
        return sent[0] if sent else None
    if len(set(sent)) != len(sent):
        raise InvalidInput("同じ選択肢が重複しています")
    return [option for option in options if option in sent]


def current_answers(message_id: str, guardian_id: str) -> dict[str, Answer]:
    """Return question id -> the guardian's newest answer (only theirs: the guardian is part of the key)."""
    current: dict[str, Answer] = {}
    rows = (SurveyAnswer.select(SurveyAnswer.question, SurveyAnswer.value, SurveyAnswer.at)
            .where((SurveyAnswer.message == message_id) & (SurveyAnswer.guardian == guardian_id))
            .order_by(SurveyAnswer.at, SurveyAnswer.id).tuples())
    for question_id, value, at in rows:
        current[question_id] = Answer(json.loads(value), at)
    return current


def is_open(app, expires_at: datetime | None) -> bool:
    """Whether a survey whose message expires at ``expires_at`` still takes answers."""
    return expires_at is None or app.clock.now() < expires_at


def record_answers(app, message_id: str, guardian_id: str, form: Mapping[str, Sequence[str]]) -> int:
    """Validate and record a guardian's answers to a message's survey; return how many answers changed."""
    sent = (Message.select(Message.expires_at).join(Recipient, on=(Recipient.message == Message.id))
            .where((Message.id == message_id) & (Recipient.guardian == guardian_id)).first())
    if sent is None:
        raise NotFound("このリンクは無効か、有効期限が切れています。")
    if not is_open(app, sent.expires_at):
        raise InvalidInput("このアンケートの回答期限は過ぎました")
    questions = questions_of(message_id)
    if not questions:
        raise InvalidInput("この連絡にはアンケートがありません")
    values = validate_answers(questions, form)
    now = app.clock.now()
    with db.write():
        before = current_answers(message_id, guardian_id)
        rows = [(uuid7(), message_id, guardian_id, question_id, json.dumps(value, ensure_ascii=False), app.site, now)
                for question_id, value in values.items()
                if question_id not in before or before[question_id].value != value]
        db.insert_rows(SurveyAnswer, [SurveyAnswer.id, SurveyAnswer.message, SurveyAnswer.guardian,
                                      SurveyAnswer.question, SurveyAnswer.value, SurveyAnswer.site, SurveyAnswer.at],
                       rows)
    return len(rows)
