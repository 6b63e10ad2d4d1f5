"""The message list and follow-up pages: figures, per-class table, survey, CSV, resend, and who sees what."""
import json

import pytest

from appliance import db
from appliance.followup import message_stats
from appliance.messages import Question, create_message
from appliance.staff import set_assignments
from appliance.models import AuditEntry, Delivery, Message, Receipt, Recipient, SurveyAnswer, SurveyQuestion
from appliance.sample_data import ADDRESS_MARKER

QUESTIONS = [Question("single", "出席しますか", ("はい", "いいえ")), Question("text", "ご意見")]
SCRIPT = "<script>alert(1)</script>"


def send(app, staff, author, **fields):
    values = {"audience": "all", "subject": "運動会", "body": "晴天なら実施します。"} | fields
    return create_message(app, staff.school, author=author, **values)


@pytest.fixture
def sent(app, staff, roster):
    """An admin's message with a survey to the whole sample school: 20 readers, 2 answers (one a <script>),
    the addresses of one reader and three non-readers delivered, the rest queued."""
    message = send(app, staff, staff.admin, subject=f"運動会 {SCRIPT}", questions=QUESTIONS,
                   channels=("email",))
    guardian_ids = [g for (g,) in Recipient.select(Recipient.guardian).where(Recipient.message == message.id)
                    .order_by(Recipient.guardian).tuples()]
    questions = {q.position: q.id for q in SurveyQuestion.select().where(SurveyQuestion.message == message.id)}
    now = app.clock.now()
    with db.write():
        for guardian_id in guardian_ids[:20]:
            Receipt.create(message=message.id, guardian=guardian_id, site=app.site, at=now)
        for position, value in ((1, "はい"), (2, SCRIPT)):
            SurveyAnswer.create(message=message.id, guardian=guardian_ids[0], question=questions[position],
                                value=json.dumps(value), site=app.site, at=now)
        # Delivered: the first reader's addresses and those of the last three guardians (who have not read).
        done = (Delivery.select(Delivery.id).join(Recipient, on=Delivery.recipient == Recipient.id)
                .where((Delivery.message == message.id)
                       & Recipient.guardian.in_([guardian_ids[0], *guardian_ids[-3:]])))
        Delivery.update(state="delivered").where(Delivery.id.in_(done)).execute()
    return message


def url(message, tail=""):
    return f"/admin/s/sch-a/messages/{message.id}{tail}"


def no_address_in(text):
    assert ADDRESS_MARKER.search(text) is None


def test_the_list_shows_status_send_time_recipients_and_read_percent(signed_in, sent):
    page = signed_in("admin-a").get("/admin/s/sch-a/messages").get_data(as_text=True)
    recipients = message_stats(sent)["recipients"]
    assert url(sent) in page and "2026/04/06 09:00" in page
    assert f'<td class="num">{recipients}</td>' in page
    assert f"{round(100 * 20 / recipients, 1)}%" in page
    assert SCRIPT not in page and "&lt;script&gt;" in page
    no_address_in(page)


def test_the_list_pages_newest_first(app, staff, signed_in, roster, clock):
    for n in range(21):
        send(app, staff, staff.admin, subject=f"連絡{n:02d}", audience="class:1-1")
        clock.advance(minutes=1)
    admin = signed_in("admin-a")
    first = admin.get("/admin/s/sch-a/messages").get_data(as_text=True)
    assert first.index("連絡20") < first.index("連絡19") and "連絡00" not in first and "page=2" in first
    second = admin.get("/admin/s/sch-a/messages?page=2").get_data(as_text=True)
    assert "連絡00" in second and "連絡01" not in second and "page=1" in second


def test_drafts_link_to_their_review_or_the_follow_up_page(app, staff, signed_in, roster):
    set_assignments(app, staff.teacher, classes=["1-1"], actor="test")
    draft = send(app, staff, staff.teacher, subject="下書きの連絡")
    with db.write():
        Message.update(status="draft").where(Message.id == draft.id).execute()
    page = signed_in("teacher-a").get("/admin/s/sch-a/messages").get_data(as_text=True)
    assert "下書きの連絡" in page and "下書き" in page
    # Other people's drafts are theirs alone, even for a school admin.
    assert "下書きの連絡" not in signed_in("admin-a").get("/admin/s/sch-a/messages").get_data(as_text=True)


def test_the_follow_up_page_shows_figures_classes_survey_and_text(signed_in, sent):
    response = signed_in("admin-a").get(url(sent))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    stats = message_stats(sent)
    assert f'data-stat="recipients">{stats["recipients"]}<' in page
    assert 'data-stat="read">20<' in page
    assert f'data-stat="channels.email.delivered">{stats["channels"]["email"]["delivered"]}<' in page
    assert "1年1組" in page and "既読あり" in page
    assert "出席しますか" in page and "width: 100.0%" in page
    assert "晴天なら実施します。" in page and "followup.js" in page
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    no_address_in(page)


def test_stats_json_is_the_figures(signed_in, sent):
    response = signed_in("admin-a").get(url(sent, "/stats.json"))
    assert response.status_code == 200 and response.is_json
    assert response.get_json() == message_stats(sent)
    no_address_in(response.get_data(as_text=True))


def test_answers_csv_has_the_answers_and_no_address(signed_in, sent):
    response = signed_in("admin-a").get(url(sent, "/answers.csv"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff学年,組,番号,児童名,保護者名,回答日時,Q1 出席しますか,Q2 ご意見")
    assert "はい" in text and SCRIPT in text
    no_address_in(text)
    assert AuditEntry.get(AuditEntry.action == "message.answers_export").subject_id == sent.id


def test_resend_reaches_only_those_who_have_not_read(signed_in, sent):
    before = message_stats(sent)["channels"]["email"]["total"]
    unread_addresses = (Delivery.select().join(Recipient, on=Delivery.recipient == Recipient.id)
                        .where((Delivery.message == sent.id) & (Delivery.state == "delivered")
                               & Recipient.guardian.not_in(Receipt.select(Receipt.guardian)
                                                           .where(Receipt.message == sent.id))).count())
    admin = signed_in("admin-a")
    response = admin.post_form(url(sent, "/resend"), {"channel": "email"})
    assert response.status_code == 302 and response.headers["Location"].endswith(url(sent))
    # Only addresses no longer waiting (delivered) of guardians who have not read are queued again.
    assert unread_addresses >= 3
    assert message_stats(sent)["channels"]["email"]["total"] == before + unread_addresses
    assert "件）" in admin.get(url(sent)).get_data(as_text=True)
    entry = AuditEntry.get(AuditEntry.action == "message.resend")
    assert (entry.actor, json.loads(entry.detail)["deliveries"]) == ("admin-a", unread_addresses)


def test_resend_without_a_channel_says_so(signed_in, sent):
    admin = signed_in("admin-a")
    page = admin.post_form(url(sent, "/resend"), {}, follow_redirects=True).get_data(as_text=True)
    assert "送信経路を1つ以上選んでください" in page


def test_another_schools_message_is_not_found(app, staff, signed_in, sent):
    other = signed_in("admin-b")
    assert other.get(url(sent)).status_code == 404                                   # not their school
    assert other.get(f"/admin/s/sch-b/messages/{sent.id}").status_code == 404       # id from another school
    assert other.get(f"/admin/s/sch-b/messages/{sent.id}/stats.json").status_code == 404
    assert other.get(f"/admin/s/sch-b/messages/{sent.id}/answers.csv").status_code == 404
    assert other.post_form(f"/admin/s/sch-b/messages/{sent.id}/resend", {"channel": "email"}).status_code == 404
    assert Delivery.select().where(Delivery.message == sent.id).count() == message_stats(sent)["channels"][
        "email"]["total"]


def test_a_teacher_sees_and_resends_only_their_own_messages(app, staff, signed_in, sent):
    set_assignments(app, staff.teacher, classes=["1-1"], actor="test")
    own = send(app, staff, staff.teacher, subject="担任からの連絡", audience="class:1-1")
    teacher = signed_in("teacher-a")
    page = teacher.get("/admin/s/sch-a/messages").get_data(as_text=True)
    assert "担任からの連絡" in page and "運動会" not in page
    assert teacher.get(url(sent)).status_code == 404
    assert teacher.get(url(sent, "/stats.json")).status_code == 404
    assert teacher.post_form(url(sent, "/resend"), {"channel": "email"}).status_code == 404
    assert teacher.get(url(own)).status_code == 200
    assert teacher.post_form(url(own, "/resend"), {"channel": "email"}).status_code == 302
    assert AuditEntry.get(AuditEntry.action == "message.resend").actor == "teacher-a"


def test_the_operator_follows_up_any_school(signed_in, sent):
    operator = signed_in("op")
    assert operator.get(url(sent)).status_code == 200
    no_address_in(operator.get(url(sent, "/answers.csv")).get_data(as_text=True))


def test_pages_in_english(signed_in, sent):
    admin = signed_in("admin-a")
    admin.post_form("/admin/lang", {"lang": "en"})
    page = admin.get(url(sent)).get_data(as_text=True)
    assert "Delivered" in page and "配信済み" not in page


def test_the_class_table_shows_one_class_at_a_time(app, staff, signed_in, sent):
    """Bug guard (bench/webui_latency.py): listing every child of a 40,000-child school on each
    request cost over a second; the page lists the chosen class and links the others."""
    admin = signed_in("admin-a")
    first = admin.get(url(sent)).get_data(as_text=True)
    assert first.count('<section class="class-read">') == 1 and "<h3>1年1組</h3>" in first
    assert "class=6-2" in first                                     # every class is one tap away
    chosen = admin.get(url(sent, "?class=6-2")).get_data(as_text=True)
    assert "<h3>6年2組</h3>" in chosen and "<h3>1年1組</h3>" not in chosen
    assert "<h3>1年1組</h3>" in admin.get(url(sent, "?class=9-9")).get_data(as_text=True)   # unknown: the first


def test_a_teacher_lands_on_their_own_class(app, staff, signed_in, roster):
    set_assignments(app, staff.teacher, classes=["2-2"], actor="test")
    own = send(app, staff, staff.teacher, audience="class:2-2")
    page = signed_in("teacher-a").get(url(own)).get_data(as_text=True)
    assert "<h3>2年2組</h3>" in page
