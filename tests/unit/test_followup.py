"""Following a message up: figures by channel, readers, the per-class table, survey results, CSV, resend."""
import csv
import io
import json
from datetime import timedelta

import pytest

from appliance import contacts, db, guardians
from appliance.errors import InvalidInput
from appliance.followup import answers_csv, class_read_table, message_stats, resend_unread, survey_results
from appliance.messages import Question, create_message
from appliance.models import (AuditEntry, Delivery, Guardian, Membership, Receipt, Student, StudentGroup, SurveyAnswer,
                              SurveyQuestion)
from appliance.schools import add_school

QUESTIONS = [Question("single", "出席しますか", ("はい", "いいえ")),
             Question("multiple", "手伝える係", ("受付", "片付け", "撮影")),
             Question("text", "ご意見")]


@pytest.fixture
def school(app):
    """Grade 3: class 1 s1 (g1: a1, a2, push), s2 (g2: b1, b2), s3 (no guardian; g4 pending);
    class 2 s4 (g3: c1), s5 (g2's second child). Grade 4: s6 (g5: e1), never targeted."""
    school = add_school(app, "A", "第一小学校")
    now = app.clock.now()
    with db.write():
        students = {f"s{n}": Student.create(school=school, grade=grade, class_name=cls, number=number,
                                            name=f"児童{n}", created_at=now, updated_at=now)
                    for n, grade, cls, number in [(1, 3, "1", 1), (2, 3, "1", 2), (3, 3, "1", 3),
                                                  (4, 3, "2", 1), (5, 3, "2", 2), (6, 4, "1", 1)]}
    ids = {name: s.id for name, s in students.items()}
    g1 = guardians.add_guardian(app, "保護者1", student_ids=[ids["s1"]], emails=["a1@example.jp", "a2@example.jp"],
                                approved=True)
    contacts.add_contact(app, g1.id, "push", json.dumps({"endpoint": "https://push.example/1",
                                                       "keys": {"p256dh": "B" * 87, "auth": "A" * 22}}),
                         status="active")
    guardians.add_guardian(app, "保護者2", student_ids=[ids["s2"], ids["s5"]], emails=["b1@example.jp", "b2@example.jp"],
                           approved=True)
    guardians.add_guardian(app, "保護者3", student_ids=[ids["s4"]], emails=["c1@example.jp"], approved=True)
    guardians.add_guardian(app, "保護者4", student_ids=[ids["s3"]], emails=["d1@example.jp"])     # pending
    guardians.add_guardian(app, "保護者5", student_ids=[ids["s6"]], emails=["e1@example.jp"], approved=True)
    return school


def guardian(name):
    return Guardian.get(Guardian.name == name)


def set_states(app, message, states):
    """Give each delivery (found by its address) a state, as the MTA's outcomes would."""
    deliveries = list(Delivery.select().where(Delivery.message == message.id))
    values = contacts.open_for_delivery(app, [d.contact_id for d in deliveries])
    with db.write():
        for delivery in deliveries:
            state = states.get(values[delivery.contact_id], "queued")
            Delivery.update(state=state).where(Delivery.id == delivery.id).execute()


def read(app, message, name, minutes=0):
    with db.write():
        Receipt.create(message=message.id, guardian=guardian(name).id, site=app.site,
                       at=app.clock.now() + timedelta(minutes=minutes))


def answer(app, message, name, position, value, minutes=0):
    question = SurveyQuestion.get((SurveyQuestion.message == message.id) & (SurveyQuestion.position == position))
    with db.write():
        SurveyAnswer.create(message=message.id, guardian=guardian(name).id, question=question.id,
                            value=json.dumps(value, ensure_ascii=False), site=app.site,
                            at=app.clock.now() + timedelta(minutes=minutes))


@pytest.fixture
def message(app, school):
    """To grade 3 by email and push: a1 delivered, a2 bounced, b1 deferred, b2 delivered, c1 expired, push queued."""
    message = create_message(app, school, audience="grade:3", subject="運動会", body="晴天なら実施します。",
                             channels=("email", "push"), questions=QUESTIONS)
    set_states(app, message, {"a1@example.jp": "delivered", "a2@example.jp": "bounced",
                              "b1@example.jp": "deferred", "b2@example.jp": "delivered",
                              "c1@example.jp": "expired"})
    return message


def test_stats_count_deliveries_by_channel_and_state(app, message):
    stats = message_stats(message)
    assert stats["recipients"] == 3
    assert stats["channels"] == {
        "email": {"queued": 0, "deferred": 1, "delivered": 2, "bounced": 1, "expired": 1, "total": 5},
        "push": {"queued": 1, "deferred": 0, "delivered": 0, "bounced": 0, "expired": 0, "total": 1}}
    assert (stats["read"], stats["read_percent"], stats["answered"]) == (0, 0.0, 0)


def test_readers_are_distinct_guardians_however_often_they_tap(app, message):
    read(app, message, "保護者1")
    read(app, message, "保護者1", minutes=5)
    read(app, message, "保護者3")
    stats = message_stats(message)
    assert (stats["read"], stats["read_percent"]) == (2, 66.7)


def test_answered_counts_guardians_not_answers(app, message):
    answer(app, message, "保護者1", 1, "はい")
    answer(app, message, "保護者1", 2, ["受付"])
    answer(app, message, "保護者2", 1, "いいえ")
    assert message_stats(message)["answered"] == 2


def test_class_table_tells_read_unread_and_no_guardian(app, message):
    read(app, message, "保護者1")
    read(app, message, "保護者3")
    table = class_read_table(message)
    assert [(c["grade"], c["class_name"], c["read"], c["unread"], c["no_guardian"], c["total"]) for c in table] == [
        (3, "1", 1, 1, 1, 3), (3, "2", 1, 1, 0, 2)]
    assert [(child["name"], child["state"]) for child in table[0]["children"]] == [
        ("児童1", "read"), ("児童2", "unread"), ("児童3", "no_guardian")]
    assert [(child["name"], child["state"]) for child in table[1]["children"]] == [
        ("児童4", "read"), ("児童5", "unread")]


def test_class_table_survives_a_rule_that_no_longer_reads(app, school):
    with db.write():
        group = StudentGroup.create(school=school, kind="club", key="choir", name="合唱部", created_at=app.clock.now())
        Membership.create(group=group, student=Student.get(Student.name == "児童4"))
    message = create_message(app, school, audience="club:choir", subject="練習", body="本文")
    with db.write():
        Membership.delete().execute()
        group.delete_instance()
    assert [(c["class_name"], c["unread"]) for c in class_read_table(message)] == [("2", 1)]


def test_survey_counts_the_newest_answer_per_guardian(app, message):
    answer(app, message, "保護者1", 1, "はい")
    answer(app, message, "保護者1", 1, "いいえ", minutes=10)      # changed their mind: this one counts
    answer(app, message, "保護者2", 1, "いいえ")
    answer(app, message, "保護者2", 2, ["受付", "撮影"])
    answer(app, message, "保護者3", 2, ["受付"])
    answer(app, message, "保護者2", 3, "雨天時の連絡を早めにお願いします")
    single, multiple, text = survey_results(message)
    assert single["answered"] == 2
    assert [(o["option"], o["count"], o["percent"]) for o in single["options"]] == [
        ("はい", 0, 0.0), ("いいえ", 2, 100.0)]
    assert [(o["option"], o["count"]) for o in multiple["options"]] == [("受付", 2), ("片付け", 0), ("撮影", 1)]
    assert (text["answered"], text["texts"]) == (1, ["雨天時の連絡を早めにお願いします"])


def test_answers_csv_opens_in_excel_and_has_a_row_per_child(app, message):
    answer(app, message, "保護者2", 1, "はい")
    answer(app, message, "保護者2", 2, ["受付", "撮影"], minutes=3)
    answer(app, message, "保護者2", 3, "=HYPERLINK(\"http://evil.example\")")
    answer(app, message, "保護者1", 1, "いいえ")
    text = answers_csv(message)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["学年", "組", "番号", "児童名", "保護者名", "回答日時",
                       "Q1 出席しますか", "Q2 手伝える係", "Q3 ご意見"]
    assert rows[1:] == [
        ["3", "1", "1", "児童1", "保護者1", "2026-04-06 09:00", "いいえ", "", ""],
        ["3", "1", "2", "児童2", "保護者2", "2026-04-06 09:03", "はい", "受付、撮影", "'=HYPERLINK(\"http://evil.example\")"],
        ["3", "2", "2", "児童5", "保護者2", "2026-04-06 09:03", "はい", "受付、撮影", "'=HYPERLINK(\"http://evil.example\")"]]
    assert "@example.jp" not in text


def test_resend_reaches_only_unread_guardians_addresses_not_already_waiting(app, message):
    read(app, message, "保護者1")
    queued = resend_unread(app, message, ["email", "push"], actor="admin-a")
    # g1 has read; g2's b1 is still deferred (waiting), so only b2; g3's c1.
    assert queued == 2
    new = Delivery.select().where((Delivery.message == message.id) & (Delivery.state == "queued")
                                  & (Delivery.channel == "email"))
    assert sorted(contacts.open_for_delivery(app, [d.contact_id for d in new]).values()) == [
        "b2@example.jp", "c1@example.jp"]
    assert message_stats(message)["channels"]["email"]["total"] == 7
    entry = AuditEntry.get(AuditEntry.action == "message.resend")
    assert (entry.actor, entry.subject_id, json.loads(entry.detail)) == (
        "admin-a", message.id, {"channels": ["email", "push"], "deliveries": 2})
    assert resend_unread(app, message, ["email"], actor="admin-a") == 0     # a second click sends nothing twice


def test_resend_refuses_what_cannot_be_resent(app, message, clock):
    with pytest.raises(InvalidInput, match="送信経路を1つ以上"):
        resend_unread(app, message, [], actor="x")
    with pytest.raises(InvalidInput, match="この連絡の送信経路ではありません: fax"):
        resend_unread(app, message, ["fax"], actor="x")
    later = create_message(app, message.school, audience="all", subject="予定", body="本文",
                           send_at=clock.now() + timedelta(days=1))
    with pytest.raises(InvalidInput, match="まだ送信されていない"):
        resend_unread(app, later, ["email"], actor="x")
    expiring = create_message(app, message.school, audience="all", subject="今日", body="本文",
                              expires_at=clock.now() + timedelta(hours=1))
    clock.advance(hours=2)
    with pytest.raises(InvalidInput, match="有効期限"):
        resend_unread(app, expiring, ["email"], actor="x")
