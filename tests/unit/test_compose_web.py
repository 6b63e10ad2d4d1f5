"""The compose pages: form, confirmation step, release, approval, preview, live count, privacy."""
import io
import re

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from appliance import messages, staff as accounts
from appliance.attachments import MAX_TOTAL_BYTES
from appliance.models import Attachment, Message, Recipient, School, SurveyQuestion

PDF = b"%PDF-1.4\n" + b"x" * 2000
MARKER = re.compile(r"rk\d{7}")


def compose(client, code="sch-a", files=(), **overrides):
    data = {"subject": "運動会のお知らせ", "body": "晴天なら実施します。\nhttps://example.jp/undokai",
            "audience": "grade:1", "reply_needed": "0", "channels": ["email", "push"], "send_mode": "now",
            "priority": "normal", "question_count": "3", "q0_kind": "single", "q0_prompt": "参加しますか",
            "q0_options": "はい\nいいえ", "q0_required": "1", "q1_kind": "text", "q1_prompt": "",
            "q1_options": "", "q2_kind": "single", "q2_prompt": "", "q2_options": ""} | overrides
    if files:
        data["attachments"] = [FileStorage(io.BytesIO(content), name, content_type="application/pdf")
                               for name, content in files]
    # Encoded here in memory: the test client would spool a large body to a file it never closes.
    boundary, body = encode_multipart(MultiDict({"csrf_token": client.csrf(), **data}))
    return client.post(f"/admin/s/{code}/messages/new", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def review_url(response):
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/review")
    return response.headers["Location"]


def message_of(url):
    return Message.get_by_id(url.split("/")[-2])


def test_compose_review_and_send(signed_in, roster):
    admin = signed_in("admin-a")
    assert admin.get("/admin/s/sch-a/messages/new").status_code == 200
    url = review_url(compose(admin, files=[("案内.pdf", PDF)]))
    message = message_of(url)
    reach = messages.count_reach(message.school, "grade:1", None, ["email", "push"])
    page = admin.get(url).get_data(as_text=True)
    assert f"児童生徒 {reach['students']} 人の保護者 {reach['guardians']} 人に送ります" in page
    assert f"メールアドレス<b>{reach['addresses']['email']}</b>" in page
    assert "参加しますか" in page and "案内.pdf" in page and "/preview" in page
    assert Recipient.select().count() == 0

    response = admin.post_form(url.replace("/review", "/release"))
    assert response.status_code == 302
    message = Message.get_by_id(message.id)
    assert message.status == "released"
    summary = messages.message_summary(message)
    assert summary["recipients"] == reach["guardians"]
    assert summary["deliveries"] == reach["addresses"]
    assert [q.prompt for q in messages.question_list(message)] == ["参加しますか"]
    assert Attachment.get(Attachment.message == message.id).content_type == "application/pdf"


def test_without_javascript_the_ticked_groups_make_the_rule(signed_in, roster):
    admin = signed_in("admin-a")
    url = review_url(compose(admin, audience="", pick=["class:1-1", "class:2-2"], combine="or"))
    assert message_of(url).audience == "class:1-1 OR class:2-2"


def test_add_question_shows_one_more_block_and_keeps_what_was_typed(signed_in, roster):
    admin = signed_in("admin-a")
    response = compose(admin, add_question="1")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'name="q3_prompt"' in page and "参加しますか" in page
    assert Message.select().count() == 0


@pytest.mark.parametrize("files, message", [
    ([("big.pdf", PDF + b"x" * MAX_TOTAL_BYTES)], "合計1.0MBまで"),
    ([("page.pdf", b"<html><script>alert(1)</script></html>")], "添付できない種類"),
])
def test_refused_attachments_store_nothing_and_keep_the_form(signed_in, roster, files, message):
    admin = signed_in("admin-a")
    response = compose(admin, files=files, subject="遠足<b>の</b>お知らせ")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert "遠足&lt;b&gt;の&lt;/b&gt;お知らせ" in page and "参加しますか" in page and "https://example.jp/undokai" in page
    assert Message.select().count() == Attachment.select().count() == SurveyQuestion.select().count() == 0


def test_invalid_fields_are_shown_and_nothing_typed_is_lost(signed_in, roster):
    admin = signed_in("admin-a")
    response = compose(admin, subject="", audience="grade:1 AND")
    assert response.status_code == 400 and "件名が空です" in response.get_data(as_text=True)
    response = compose(admin, audience="grade:1 AND")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "条件がありません" in page and 'value="grade:1 AND"' in page
    response = compose(admin, send_mode="later", send_at="2026-04-06T08:00")
    assert response.status_code == 400 and "送信日時が過ぎています" in response.get_data(as_text=True)
    assert Message.select().count() == 0


def test_a_later_send_time_is_tokyo_time(signed_in, roster):
    admin = signed_in("admin-a")
    url = review_url(compose(admin, send_mode="later", send_at="2026-04-07T07:30", expires_at="2026-04-07T18:00"))
    message = message_of(url)
    assert message.send_at.isoformat() == "2026-04-06T22:30:00+00:00"
    assert "2026/04/07 07:30" in admin.get(url).get_data(as_text=True)


def test_script_in_subject_and_body_is_escaped_everywhere(signed_in, roster):
    admin = signed_in("admin-a")
    url = review_url(compose(admin, subject="<script>alert(1)</script>", body="<script>alert(2)</script>"))
    for page_url in (url, url.replace("/review", "/preview"), url.replace("/review", "/edit")):
        page = admin.get(page_url).get_data(as_text=True)
        assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_the_preview_is_the_guardians_mail_with_safe_links(signed_in, roster):
    admin = signed_in("admin-a")
    url = review_url(compose(admin, body="詳しくは https://example.jp/a?b=1&c=2 を見てください。javascript:alert(1)",
                             priority="emergency"))
    page = admin.get(url.replace("/review", "/preview")).get_data(as_text=True)
    assert "【緊急】運動会のお知らせ" in page and "保護者 様" in page
    assert '<a href="https://example.jp/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">' in page
    assert 'href="javascript' not in page


def test_review_and_preview_never_show_an_address(signed_in, roster):
    for login in ("admin-a", "op"):
        client = signed_in(login)
        url = review_url(compose(client, audience="all"))
        for page_url in (url, url.replace("/review", "/preview"), url.replace("/review", "/edit"),
                         "/admin/s/sch-a/messages/new", "/admin/s/sch-a/audience/count?rule=all"):
            assert not MARKER.search(client.get(page_url).get_data(as_text=True)), page_url
        client.post_form(url.replace("/review", "/release"))
        assert not MARKER.search(client.get(url).get_data(as_text=True))


def test_the_live_count(signed_in, roster):
    admin = signed_in("admin-a")
    school = School.get(School.code == "sch-a")
    answer = admin.get("/admin/s/sch-a/audience/count?rule=grade:2").get_json()
    reach = messages.count_reach(school, "grade:2", None)
    assert answer == {"students": reach["students"], "guardians": reach["guardians"]}
    response = admin.get("/admin/s/sch-a/audience/count?rule=grade:2 OR (club:x")
    assert response.status_code == 400 and response.get_json()["position"] is not None
    response = admin.get("/admin/s/sch-a/audience/count?rule=club:nonesuch")
    assert response.status_code == 400 and "club:nonesuch" in response.get_json()["error"]


def test_a_teacher_is_held_to_their_class_even_with_a_hand_written_rule(app, staff, signed_in, roster):
    accounts.set_assignments(app, staff.teacher, classes=["3-2"], actor="test")
    teacher = signed_in("teacher-a")
    form = teacher.get("/admin/s/sch-a/messages/new").get_data(as_text=True)
    assert 'value="class:3-2"' in form and 'value="class:1-1"' not in form and 'value="grade:1"' not in form
    school = School.get(School.code == "sch-a")
    own = messages.count_reach(school, "class:3-2", None)
    assert teacher.get("/admin/s/sch-a/audience/count?rule=all").get_json() == {
        "students": own["students"], "guardians": own["guardians"]}
    url = review_url(compose(teacher, audience="all"))
    page = teacher.get(url).get_data(as_text=True)
    assert f"保護者 {own['guardians']} 人" in page and "承認を依頼する" in page

    assert teacher.post_form(url.replace("/review", "/release")).status_code == 302
    message = message_of(url)
    assert message.status == "awaiting_approval" and Recipient.select().count() == 0
    assert teacher.post_form(url.replace("/review", "/approve")).status_code == 403

    admin = signed_in("admin-a")
    page = admin.get(url).get_data(as_text=True)
    assert "承認して送信する" in page and "差し戻す" in page
    assert admin.post_form(url.replace("/review", "/approve")).status_code == 302
    released = Message.get_by_id(message.id)
    assert (released.status, released.decided_by_id) == ("released", staff.admin.id)
    assert messages.message_summary(released)["recipients"] == own["guardians"]


def test_a_rejected_message_goes_back_to_its_teacher_with_the_reason(app, staff, signed_in, roster):
    accounts.set_assignments(app, staff.teacher, classes=["3-2"], actor="test")
    teacher = signed_in("teacher-a")
    url = review_url(compose(teacher, audience="class:3-2"))
    teacher.post_form(url.replace("/review", "/release"))
    admin = signed_in("admin-a")
    assert admin.post_form(url.replace("/review", "/reject"), {"reason": ""}).status_code == 302
    assert message_of(url).status == "awaiting_approval"
    admin.post_form(url.replace("/review", "/reject"), {"reason": "<script>日付</script>を確認してください"})
    assert message_of(url).status == "rejected"
    page = teacher.get(url).get_data(as_text=True)
    assert "&lt;script&gt;日付&lt;/script&gt;を確認してください" in page
    assert teacher.get(url.replace("/review", "/edit")).status_code == 200
    assert teacher.post_form(url.replace("/review", "/edit"), {
        "subject": "訂正", "body": "本文", "audience": "class:3-2", "channels": "email", "send_mode": "now",
        "priority": "normal"}).status_code == 302
    assert message_of(url).status == "draft"


def test_without_approval_a_teacher_sends_directly(app, staff, signed_in, roster):
    accounts.set_assignments(app, staff.teacher, classes=["3-2"], actor="test")
    admin = signed_in("admin-a")
    assert admin.get("/admin/s/sch-a/settings").status_code == 200
    admin.post_form("/admin/s/sch-a/settings", {"teacher_needs_approval": "0"})
    assert School.get(School.code == "sch-a").teacher_needs_approval is False
    teacher = signed_in("teacher-a")
    assert teacher.get("/admin/s/sch-a/settings").status_code == 403
    url = review_url(compose(teacher, audience="class:3-2"))
    assert "承認を依頼する" not in teacher.get(url).get_data(as_text=True)
    teacher.post_form(url.replace("/review", "/release"))
    assert message_of(url).status == "released"


def test_teachers_see_only_their_own_drafts(app, staff, signed_in, roster):
    url = review_url(compose(signed_in("admin-a")))
    teacher = signed_in("teacher-a")
    for suffix in ("/review", "/edit", "/preview"):
        assert teacher.get(url.replace("/review", suffix)).status_code == 404
    assert teacher.post_form(url.replace("/review", "/release")).status_code == 404


def test_another_schools_message_answers_404(signed_in, roster):
    url = review_url(compose(signed_in("admin-a")))
    other = signed_in("admin-b")
    for suffix in ("/review", "/edit", "/preview"):
        assert other.get(url.replace("/review", suffix)).status_code == 404
        assert other.get(url.replace("/review", suffix).replace("/s/sch-a/", "/s/sch-b/")).status_code == 404
    for suffix in ("/release", "/approve", "/reject"):
        assert other.post_form(url.replace("/review", suffix).replace("/s/sch-a/", "/s/sch-b/")).status_code == 404
    assert message_of(url).status == "draft"


def test_a_released_message_cannot_be_edited(signed_in, roster):
    admin = signed_in("admin-a")
    url = review_url(compose(admin))
    admin.post_form(url.replace("/review", "/release"))
    assert admin.get(url.replace("/review", "/edit")).status_code == 400
    assert admin.post_form(url.replace("/review", "/release")).status_code == 302    # told, not sent twice
    assert messages.message_summary(message_of(url))["recipients"] == Recipient.select().count()
