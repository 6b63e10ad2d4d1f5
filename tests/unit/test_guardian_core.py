"""The guardian side's core: answer validation, read reports, replies, quiet hours, system mail, the portal."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from appliance import contacts, db, portal, quiet_hours, receipts, replies, surveys, tokens
from appliance.clock import TOKYO
from appliance.errors import InvalidInput, LimitReached, NotFound
from appliance.messages import create_message
from appliance.models import ContactPoint, Delivery, Guardian, Message, Receipt, SurveyAnswer
from tests.unit.guardian_fixtures import PDF, PNG, issued_token, make_families


def form(**fields):
    return {name: value if isinstance(value, list) else [value] for name, value in fields.items()}


# --- answers ---------------------------------------------------------------------------------------

def test_answers_are_stored_in_the_format_the_follow_up_reads(app, families):
    changed = surveys.record_answers(app, families.message.id, families.taro.id,
                                     form(q1="出席", q2=["遠足", "運動会"], q3="  アレルギーあり  "))
    assert changed == 3
    values = {a.question.position: json.loads(a.value) for a in SurveyAnswer.select()}
    assert values == {1: "出席", 2: ["運動会", "遠足"], 3: "アレルギーあり"}    # multiple: in the question's order


@pytest.mark.parametrize("sent, error", [
    (form(q2="運動会"), "この質問には回答が必要です"),                 # required single missing
    (form(q1="遅刻"), "選択肢にない回答です"),
    (form(q1=["出席", "欠席"]), "選択肢は1つだけ選んでください"),
    (form(q1="出席", q2=["遠足", "遠足"]), "同じ選択肢が重複しています"),
    (form(q1="出席", q3="あ" * 1001), "1000文字まで"),
])
def test_answers_are_validated_against_the_question_types(app, families, sent, error):
    with pytest.raises(surveys.AnswerErrors) as refused:
        surveys.record_answers(app, families.message.id, families.taro.id, sent)
    assert any(error in text for text in refused.value.errors.values())
    assert SurveyAnswer.select().count() == 0


def test_changing_an_answer_adds_a_row_only_for_what_changed(app, clock, families):
    surveys.record_answers(app, families.message.id, families.taro.id, form(q1="出席", q2="遠足"))
    clock.advance(hours=1)
    assert surveys.record_answers(app, families.message.id, families.taro.id, form(q1="欠席", q2="遠足")) == 1
    current = surveys.current_answers(families.message.id, families.taro.id)
    by_value = {json.dumps(a.value, ensure_ascii=False): a.at for a in current.values()}
    assert by_value == {'"欠席"': clock.now(), '["遠足"]': clock.now() - timedelta(hours=1)}
    assert SurveyAnswer.select().count() == 3


def test_a_closed_survey_takes_no_answers(app, clock):
    families = make_families(app, expires_at=clock.now() + timedelta(days=1))
    clock.advance(days=2)
    with pytest.raises(InvalidInput, match="回答期限"):
        surveys.record_answers(app, families.message.id, families.taro.id, form(q1="出席"))


def test_only_recipients_answer_and_each_sees_only_their_own(app, families):
    other = create_message(app, families.school, audience="grade:2", subject="x", body="y")
    surveys.record_answers(app, families.message.id, families.hanako.id, form(q1="欠席"))
    assert surveys.current_answers(families.message.id, families.taro.id) == {}
    with pytest.raises(NotFound):
        replies.record_reply(app, other.id, families.taro.id, "not mine")


# --- read reports --------------------------------------------------------------------------------

def read(app, message, guardian) -> None:
    with db.write():
        receipts.insert_reads(receipts.read_rows(app, message.id, guardian.id))


def test_a_read_report_is_recorded_once_however_often_the_link_is_tapped(app, clock, families):
    read(app, families.message, families.taro)
    first = clock.now()
    clock.advance(minutes=5)
    read(app, families.message, families.taro)
    with db.write():        # taps of the same guardian committed together
        receipts.insert_reads([*receipts.read_rows(app, families.message.id, families.taro.id),
                               *receipts.read_rows(app, families.message.id, families.taro.id)])
    assert Receipt.select().count() == 1 and receipts.read_at(families.message.id, families.taro.id) == first


# --- replies -------------------------------------------------------------------------------------

def test_a_reply_keeps_images_and_pdf_checked_by_content(app, families):
    reply = replies.record_reply(app, families.message.id, families.taro.id, "よろしくお願いします",
                                 [("photo", PNG), ("letter.pdf", PDF)])
    [view] = replies.guardian_replies(families.message.id, families.taro.id)
    assert view.reply.id == reply.id and reply.via == "web" and reply.auth_results == ""
    assert sorted(f.filename for f in view.files) == ["letter.pdf", "photo.png"]
    assert replies.message_replies(families.message)[0].guardian_name == "山田 太郎"


@pytest.mark.parametrize("files, error", [
    ([("evil.png", b"<script>alert(1)</script>")], "送れない種類"),
    ([("big.pdf", b"%PDF-" + b"0" * (1024 * 1024))], "合計1.0MBまで"),
    ([("a.png", PNG)] * 4, "3個まで"),
])
def test_reply_files_are_refused_before_anything_is_stored(app, families, files, error):
    with pytest.raises(InvalidInput, match=error):
        replies.record_reply(app, families.message.id, families.taro.id, "本文", files)
    assert replies.guardian_replies(families.message.id, families.taro.id) == []


def test_a_mail_reply_goes_through_the_same_function_with_its_authentication_results(app, families):
    reply = replies.record_reply(app, families.message.id, families.hanako.id, "メールで返信", via="mail",
                                 auth_results="mx.example; dkim=pass header.d=example.jp")
    assert reply.via == "mail" and "dkim=pass" in reply.auth_results


# --- quiet hours ---------------------------------------------------------------------------------

def tokyo(hour, minute=0, day=6):
    return datetime(2026, 4, day, hour, minute, tzinfo=TOKYO).astimezone(timezone.utc)


@pytest.mark.parametrize("at, quiet, due", [
    (tokyo(22), (21, 7), tokyo(7, day=7)),     # overnight window, evening
    (tokyo(6, 30), (21, 7), tokyo(7)),         # overnight window, early morning
    (tokyo(7), (21, 7), tokyo(7)),             # the end hour itself is not quiet
    (tokyo(13), (12, 14), tokyo(14)),          # a daytime window
    (tokyo(15), (12, 14), tokyo(15)),
    (tokyo(22), (None, None), tokyo(22)),
])
def test_quiet_end(at, quiet, due):
    assert quiet_hours.quiet_end(at, *quiet) == due


def test_routine_mail_waits_for_quiet_hours_and_emergency_mail_does_not(app, clock, families):
    portal.set_preferences(app, families.taro.id, locale="ja", quiet_from=21, quiet_until=7)
    clock.advance(hours=13)                                     # 22:00 in Tokyo
    routine = create_message(app, families.school, audience="all", subject="お知らせ", body="本文")
    urgent = create_message(app, families.school, audience="all", subject="休校", body="本文", priority="emergency")
    due = {(d.message_id, d.recipient.guardian_id): d.due_at for d in Delivery.select()}
    assert due[(routine.id, families.taro.id)] == tokyo(7, day=7)
    assert due[(routine.id, families.hanako.id)] == clock.now()
    assert due[(urgent.id, families.taro.id)] == clock.now()


def test_preferences_are_checked(app, families):
    for bad in [dict(locale="fr", quiet_from=None, quiet_until=None), dict(locale="ja", quiet_from=21, quiet_until=None),
                dict(locale="ja", quiet_from=5, quiet_until=5), dict(locale="ja", quiet_from=24, quiet_until=3)]:
        with pytest.raises(InvalidInput):
            portal.set_preferences(app, families.taro.id, **bad)
    portal.set_preferences(app, families.taro.id, locale="en", quiet_from=None, quiet_until=None)
    assert Guardian.get_by_id(families.taro.id).locale == "en"


# --- system mail and the portal -----------------------------------------------------------------

def system_messages():
    return list(Message.select().where(Message.kind == "system"))


def test_a_sign_in_request_queues_one_system_mail_to_that_address_and_the_link_works_once(app, families):
    assert portal.request_sign_in(app, "taro@EXAMPLE.jp") == 1
    [message] = system_messages()
    [delivery] = Delivery.select().where(Delivery.message == message.id)
    assert delivery.priority == 0 and delivery.contact.guardian_id == families.taro.id
    assert contacts.open_for_delivery(app, [delivery.contact_id]) == {delivery.contact_id: "taro@example.jp"}
    token = issued_token(app, "signin", families.taro.id, message.id)
    assert portal.sign_in(app, token) == families.taro.id
    with pytest.raises(tokens.InvalidToken):
        portal.sign_in(app, token)


def test_an_unknown_address_gets_nothing_and_an_address_gets_only_a_few_links(app, families):
    assert portal.request_sign_in(app, "nobody@example.jp") == 0
    sent = [portal.request_sign_in(app, "hanako@example.jp") for _ in range(5)]
    assert sent == [1, 1, 1, 0, 0] and len(system_messages()) == 3


def test_a_new_address_waits_for_its_confirmation_and_the_fifth_is_refused(app, families):
    point = portal.add_address(app, families.hanako.id, "new@example.jp")
    assert point.status == "pending"
    [message] = system_messages()
    assert message.link_scope == "confirm" and Delivery.get(Delivery.message == message.id).contact_id == point.id
    token = issued_token(app, "confirm", families.hanako.id, message.id)
    assert portal.confirm_address(app, token) == families.hanako.id
    assert ContactPoint.get_by_id(point.id).status == "active"
    portal.add_address(app, families.hanako.id, "third@example.jp")
    portal.add_address(app, families.hanako.id, "fourth@example.jp")
    with pytest.raises(LimitReached, match="4件まで"):
        portal.add_address(app, families.hanako.id, "fifth@example.jp")


def test_the_last_working_address_cannot_be_removed_and_another_guardians_is_not_found(app, families):
    [own] = contacts.own_contacts(app, families.hanako.id, "email")
    with pytest.raises(InvalidInput, match="最後"):
        portal.remove_address(app, families.hanako.id, own.id)
    with pytest.raises(NotFound):
        portal.remove_address(app, families.taro.id, own.id)
    taro_first = contacts.own_contacts(app, families.taro.id, "email")[0]
    portal.remove_address(app, families.taro.id, taro_first.id)
    assert [c.value for c in contacts.own_contacts(app, families.taro.id, "email")] == ["taro@docomo.ne.jp"]


def test_the_portal_lists_notices_newest_first_with_their_state_and_never_system_mail(app, clock, families):
    portal.request_sign_in(app, "taro@example.jp")
    clock.advance(minutes=1)
    later = create_message(app, families.school, audience="all", subject="二通目", body="本文")
    read(app, families.message, families.taro)
    received = portal.received_messages(app, families.taro.id)
    assert [r.message.id for r in received] == [later.id, families.message.id]
    assert [r.read for r in received] == [False, True] and "/r/" in received[0].link
    assert [c.name for c in portal.children(families.taro.id)] == ["山田 一郎", "山田 花子"]
