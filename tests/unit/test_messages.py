"""Creating a message: validation, and the snapshot of recipients and deliveries in one transaction."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from appliance import audit, contacts, db, guardians
from appliance.errors import InvalidInput
from appliance.messages import MAX_QUESTIONS, MAX_SUBJECT, Question, create_message, message_summary
from appliance.models import (
    AuditEntry, ContactPoint, Delivery, Guardian, Message, Recipient, Student, StudentGroup, SurveyQuestion)
from appliance.schools import add_school
from appliance.staff import add_staff_user
from appliance.targeting import UnknownGroups
from tests.conftest import query_plan, statements_sent


@pytest.fixture
def school(app):
    """Grade 3: s1 (guardian g1), s2 (g2, who also has s3 in grade 4); g3 has s3 and no contacts;
    g4's link is pending. Contacts: g1 2 active emails, 1 suspended email, 1 active push;
    g2 1 active and 1 pending email; g4 1 email."""
    school = add_school(app, "A", "第一小学校")
    now = app.clock.now()
    with db.write():
        s1, s2, s3 = (Student.create(school=school, grade=grade, class_name="1", number=n, name=f"s{n}",
                                     created_at=now, updated_at=now)
                      for n, grade in [(1, 3), (2, 3), (3, 4)])
        StudentGroup.create(school=school, kind="club", key="empty", name="部員なし", created_at=now)
    g1 = guardians.add_guardian(app, "g1", student_ids=[s1.id], emails=["a1@example.jp", "a2@example.jp"],
                                approved=True)
    contacts.add_contact(app, g1.id, "email", "a3@example.jp", status="suspended")
    contacts.add_contact(app, g1.id, "push", json.dumps({"endpoint": "https://push.example/1",
                                                       "keys": {"p256dh": "B" * 87, "auth": "A" * 22}}),
                         status="active")
    g2 = guardians.add_guardian(app, "g2", student_ids=[s2.id, s3.id], emails=["b1@example.jp"], approved=True)
    contacts.add_contact(app, g2.id, "email", "b2@example.jp")
    guardians.add_guardian(app, "g3", student_ids=[s3.id], approved=True)
    guardians.add_guardian(app, "g4", student_ids=[s1.id], emails=["d1@example.jp"])
    return school


def send(app, school, **overrides):
    fields = {"audience": "all", "subject": "運動会のお知らせ", "body": "晴天なら実施します。"} | overrides
    return create_message(app, school, **fields)


def names_of(guardian_ids):
    return {g.name for g in Guardian.select().where(Guardian.id.in_(list(guardian_ids)))}


def test_snapshot_has_a_recipient_per_guardian_and_a_delivery_per_active_contact(app, school):
    message = send(app, school)
    recipients = list(Recipient.select().where(Recipient.message == message.id))
    assert names_of(r.guardian_id for r in recipients) == {"g1", "g2", "g3"}
    deliveries = list(Delivery.select().where(Delivery.message == message.id))
    contact_values = contacts.open_for_delivery(app, [d.contact_id for d in deliveries])
    assert sorted(contact_values.values()) == ["a1@example.jp", "a2@example.jp", "b1@example.jp"]
    by_recipient = {r.id: r.guardian_id for r in recipients}
    for delivery in deliveries:
        contact = ContactPoint.get_by_id(delivery.contact_id)
        assert contact.guardian_id == by_recipient[delivery.recipient_id]
        assert (delivery.channel, delivery.state, delivery.attempts) == ("email", "queued", 0)
        assert delivery.due_at == delivery.updated_at == app.clock.now()
    keys = [r.id for r in recipients] + [d.id for d in deliveries]
    assert len(set(keys)) == len(keys)
    assert all(uuid.UUID(key).version == 7 for key in keys)
    assert message_summary(message) == {"message": message.id, "recipients": 3, "deliveries": {"email": 3}}
    assert (message.send_at, message.priority, message.reply_needed) == (app.clock.now(), "normal", False)


def test_deliveries_are_found_by_walking_the_recipients(app, school):
    """The join order that keeps a whole-school snapshot fast without table statistics (bench/resolve.py)."""
    with statements_sent() as statements:
        send(app, school)
    insert = next(s for s in statements if s.sql.startswith('INSERT INTO "delivery"'))
    plan = query_plan(insert.sql, insert.params)
    walk = [step for step in plan if step.startswith(("SCAN t", "SEARCH t"))]
    assert "recipient" in walk[0]
    # A routine message reads each recipient's quiet hours by the guardian's key, once per recipient.
    assert "sqlite_autoindex_guardian_1 (id=?)" in walk[1]
    assert "COVERING INDEX contact_point_guardian (guardian_id=? AND kind=? AND status=?)" in walk[2]


def test_snapshot_does_not_follow_later_roster_changes(app, school):
    message = send(app, school, audience="grade:3")
    guardians.add_guardian(app, "late", student_ids=[Student.get(Student.name == "s1").id],
                           emails=["late@example.jp"], approved=True)
    assert message_summary(message)["recipients"] == 2


def test_channels_choose_contact_kinds(app, school):
    message = send(app, school, channels=["email", "push", "fax", "email"])
    assert message.channel_list == ["email", "push", "fax"]
    assert message_summary(message)["deliveries"] == {"email": 3, "push": 1, "fax": 0}
    push_only = send(app, school, channels=["push"])
    assert message_summary(push_only) == {"message": push_only.id, "recipients": 3, "deliveries": {"push": 1}}


def test_narrow_audience(app, school):
    message = send(app, school, audience="grade:4")
    assert names_of(r.guardian_id for r in message.recipients) == {"g2", "g3"}
    assert message_summary(message)["deliveries"] == {"email": 1}


def test_emergency_with_reply_and_a_scheduled_time(app, school):
    at = app.clock.now() + timedelta(days=1, hours=2)
    message = send(app, school, priority="emergency", reply_needed=True, send_at=at,
                   expires_at=at + timedelta(hours=6))
    stored = Message.get_by_id(message.id)
    assert (stored.priority, stored.reply_needed, stored.send_at, stored.expires_at) == (
        "emergency", True, at, at + timedelta(hours=6))
    assert {d.due_at for d in stored.deliveries} == {at}
    # Bound into SQL exactly as the field stores it, so the queue's comparisons hold.
    raw = db.database.execute_sql("SELECT DISTINCT delivery.due_at, message.send_at FROM delivery"
                                  " JOIN message ON message.id = delivery.message_id").fetchall()
    assert raw == [(Delivery.due_at.db_value(at), Message.send_at.db_value(at))]


def test_body_keeps_its_leading_ideographic_space(app, school):
    assert send(app, school, body="\u3000保護者の皆様\n\n").body == "\u3000保護者の皆様"


def test_survey_questions_are_stored_in_order(app, school):
    message = send(app, school, questions=[
        Question("single", " 出席しますか ", (" はい", "いいえ "), required=True),
        Question("text", "連絡事項")])
    rows = list(SurveyQuestion.select().where(SurveyQuestion.message == message.id)
                .order_by(SurveyQuestion.position))
    assert [(q.position, q.kind, q.prompt, json.loads(q.options), q.required) for q in rows] == [
        (1, "single", "出席しますか", ["はい", "いいえ"], True), (2, "text", "連絡事項", [], False)]


def test_audit_entry_records_the_counts(app, school):
    message = send(app, school, actor="cli:tanaka")
    entry = AuditEntry.get(AuditEntry.subject_id == message.id)
    assert (entry.actor, entry.action, entry.school_id) == ("cli:tanaka", "message.create", school.id)
    assert json.loads(entry.detail) == {"audience": "all", "priority": "normal", "recipients": 3,
                                        "deliveries": {"email": 3}}


def test_author_must_belong_to_the_school(app, school):
    other = add_school(app, "B", "第二小学校")
    teacher = add_staff_user(app, login="sato", password="x" * 12, role="teacher", school=other)
    with pytest.raises(InvalidInput, match="sato は A の職員ではありません"):
        send(app, school, author=teacher)
    operator = add_staff_user(app, login="op", password="x" * 12, role="operator")
    assert send(app, school, author=operator).author_id == operator.id


def question(kind="single", prompt="質問", options=("はい", "いいえ")):
    return Question(kind, prompt, options)


@pytest.mark.parametrize("overrides, message", [
    ({"subject": "  "}, "件名が空です"),
    ({"subject": "あ" * (MAX_SUBJECT + 1)}, f"件名は{MAX_SUBJECT}文字まで"),
    ({"subject": "件名\r\nBcc: x@example.jp"}, "件名に改行は使えません"),
    ({"body": "\n\u3000"}, "本文が空です"),
    ({"priority": "urgent"}, "優先度は emergency, normal のいずれか"),
    ({"channels": []}, "送信経路を1つ以上"),
    ({"channels": ["email", "sms"]}, "不明な送信経路: sms"),
    ({"send_at": datetime(2026, 4, 7, 9, 0)}, "タイムゾーンが必要です"),
    ({"expires_at": datetime(2026, 4, 6, 0, 0, tzinfo=timezone.utc)}, "有効期限は送信日時より後に"),
    ({"audience": "grade:3 AND"}, "「AND」の後に条件がありません"),
    ({"audience": "class:4-1 AND grade:3"}, "当てはまる保護者がいません"),
    ({"audience": "club:empty"}, "当てはまる保護者がいません"),
    ({"questions": [question()] * (MAX_QUESTIONS + 1)}, f"{MAX_QUESTIONS}問まで"),
    ({"questions": [question(), question(kind="rating")]}, "質問2: 種類は single, multiple, text"),
    ({"questions": [question(prompt=" ")]}, "質問1: 質問文が空です"),
    ({"questions": [question(options=("はい",))]}, "選択肢は2〜"),
    ({"questions": [question(kind="multiple", options=("a", "a"))]}, "空のものか重複"),
    ({"questions": [question(kind="text")]}, "記述式の質問に選択肢は付けません"),
])
def test_invalid_messages_are_refused_and_nothing_is_written(app, school, overrides, message):
    with pytest.raises(InvalidInput, match=message):
        send(app, school, **overrides)
    assert Message.select().count() == Recipient.select().count() == Delivery.select().count() == 0
    assert SurveyQuestion.select().count() == 0


def test_unknown_group_is_refused(app, school):
    with pytest.raises(UnknownGroups, match="club:tennis"):
        send(app, school, audience="club:tennis OR grade:3")
    assert Message.select().count() == 0


def test_a_failure_late_in_the_transaction_rolls_everything_back(app, school, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "record", fail)
    with pytest.raises(RuntimeError):
        send(app, school, questions=[question()])
    for model in (Message, SurveyQuestion, Recipient, Delivery):
        assert model.select().count() == 0
    assert not AuditEntry.select().where(AuditEntry.action == "message.create").exists()
