"""Drafts, release, approval and the teacher's scope in the core (appliance.messages)."""
import json
from datetime import timedelta

import pytest

from appliance import messages, schools, staff as accounts
from appliance.errors import InvalidInput, NotFound
from appliance.messages import Question, save_draft
from appliance.models import Attachment, AuditEntry, Delivery, Message, Recipient, SurveyQuestion

PDF = b"%PDF-1.4\n" + b"x" * 1000


def draft(app, school, author, **overrides):
    fields = {"audience": "all", "subject": "保護者会のお知らせ", "body": "体育館で行います。"} | overrides
    return save_draft(app, school, author, **fields)


def guardians_of(school, rule):
    return messages.count_reach(school, rule, None)["guardians"]


def test_a_draft_keeps_survey_and_attachments_and_targets_nobody(app, staff, roster):
    message = draft(app, staff.school, staff.admin, questions=[Question("single", "出席", ("はい", "いいえ"), True)],
                    attachments=[("案内.pdf", "application/octet-stream", PDF)])
    assert message.status == "draft"
    assert Recipient.select().count() == Delivery.select().count() == 0
    assert messages.question_list(message) == [Question("single", "出席", ("はい", "いいえ"), True)]
    [attachment] = messages.attachment_list(message)
    assert (attachment.filename, attachment.content_type, attachment.size) == ("案内.pdf", "application/pdf", len(PDF))


def test_release_snapshots_exactly_the_counted_reach(app, staff, roster):
    message = draft(app, staff.school, staff.admin, audience="grade:2 OR grade:3", channels=["email", "push"])
    reach = messages.count_reach(staff.school, message.audience, staff.admin, message.channel_list)
    released = messages.release_message(app, message, staff.admin)
    assert released.status == "released" and released.decided_by_id is None
    summary = messages.message_summary(released)
    assert summary["recipients"] == reach["guardians"] > 0
    assert summary["deliveries"] == reach["addresses"]
    entry = AuditEntry.get((AuditEntry.subject_id == message.id) & (AuditEntry.action == "message.release"))
    assert json.loads(entry.detail)["recipients"] == reach["guardians"]


def test_releasing_twice_sends_once(app, staff, roster):
    message = draft(app, staff.school, staff.admin)
    messages.release_message(app, message, staff.admin)
    count = Recipient.select().count()
    with pytest.raises(InvalidInput):
        messages.release_message(app, message, staff.admin)
    assert Recipient.select().count() == count


def test_a_send_time_already_past_at_release_means_now(app, staff, roster, clock):
    at = clock.now() + timedelta(hours=1)
    message = draft(app, staff.school, staff.admin, send_at=at)
    clock.advance(hours=2)
    released = messages.release_message(app, message, staff.admin)
    assert released.send_at == clock.now()
    assert {d.due_at for d in Delivery.select()} == {clock.now()}


def test_a_message_whose_expiry_passed_before_release_is_not_sent(app, staff, roster, clock):
    message = draft(app, staff.school, staff.admin, expires_at=clock.now() + timedelta(hours=1))
    clock.advance(hours=2)
    with pytest.raises(InvalidInput, match="有効期限が過ぎています"):
        messages.release_message(app, message, staff.admin)
    assert Message.get_by_id(message.id).status == "draft" and Recipient.select().count() == 0


def test_a_scheduled_message_is_queued_for_its_time(app, staff, roster, clock):
    at = clock.now() + timedelta(days=1)
    messages.release_message(app, draft(app, staff.school, staff.admin, send_at=at), staff.admin)
    assert {d.due_at for d in Delivery.select()} == {at}


def test_a_teachers_audience_is_cut_to_their_classes_whatever_they_write(app, staff, roster):
    accounts.set_assignments(app, staff.teacher, classes=["1-1"], actor="test")
    schools.set_teacher_needs_approval(app, staff.school, False, actor="test")
    teacher = type(staff.teacher).get_by_id(staff.teacher.id)
    assert messages.count_reach(staff.school, "all", teacher) == messages.count_reach(staff.school, "class:1-1", None)
    message = draft(app, staff.school, teacher, audience="all OR grade:5")
    released = messages.release_message(app, message, teacher)
    assert released.status == "released"
    assert messages.message_summary(released)["recipients"] == guardians_of(staff.school, "class:1-1")
    assert guardians_of(staff.school, "all") > guardians_of(staff.school, "class:1-1")


def test_a_teacher_without_classes_reaches_nobody(app, staff, roster):
    with pytest.raises(InvalidInput, match="当てはまる保護者がいません"):
        draft(app, staff.school, staff.teacher)
    assert Message.select().count() == 0


def test_approval_flow(app, staff, roster):
    accounts.set_assignments(app, staff.teacher, classes=["2-1"], actor="test")
    message = draft(app, staff.school, staff.teacher, audience="class:2-1")
    waiting = messages.release_message(app, message, staff.teacher)
    assert waiting.status == "awaiting_approval" and Recipient.select().count() == 0
    assert AuditEntry.select().where(AuditEntry.action == "message.submit").count() == 1
    with pytest.raises(InvalidInput, match="管理者だけ"):
        messages.approve_message(app, waiting, staff.teacher)

    rejected = messages.reject_message(app, waiting, staff.admin, "日付が違います")
    assert (rejected.status, rejected.decided_by_id) == ("rejected", staff.admin.id)
    assert messages.rejection_reason(rejected) == "日付が違います"
    with pytest.raises(InvalidInput):
        messages.release_message(app, rejected, staff.teacher)      # edit it first
    again = draft(app, staff.school, staff.teacher, audience="class:2-1", subject="訂正版", draft=rejected)
    assert again.status == "draft"
    waiting = messages.release_message(app, again, staff.teacher)
    released = messages.approve_message(app, waiting, staff.admin)
    assert (released.status, released.decided_by_id) == ("released", staff.admin.id)
    assert messages.message_summary(released)["recipients"] == guardians_of(staff.school, "class:2-1")


def test_a_rejection_needs_a_reason(app, staff, roster):
    accounts.set_assignments(app, staff.teacher, classes=["2-1"], actor="test")
    waiting = messages.release_message(app, draft(app, staff.school, staff.teacher), staff.teacher)
    with pytest.raises(InvalidInput, match="理由"):
        messages.reject_message(app, waiting, staff.admin, "  ")
    assert Message.get_by_id(waiting.id).status == "awaiting_approval"


def test_teachers_touch_only_their_own_drafts(app, staff, roster):
    theirs = draft(app, staff.school, staff.admin)
    accounts.set_assignments(app, staff.teacher, classes=["2-1"], actor="test")
    with pytest.raises(NotFound):
        messages.release_message(app, theirs, staff.teacher)
    with pytest.raises(NotFound):
        draft(app, staff.school, staff.teacher, draft=theirs)
    with pytest.raises(NotFound):
        messages.get_message(staff.other_school, theirs.id, staff.operator)


def test_a_refused_attachment_stores_nothing(app, staff, roster):
    with pytest.raises(InvalidInput, match="添付できない種類"):
        draft(app, staff.school, staff.admin, questions=[Question("text", "ご意見")],
              attachments=[("ok.pdf", "application/pdf", PDF), ("run.exe", "application/pdf", b"MZ\x90")])
    assert Message.select().count() == SurveyQuestion.select().count() == Attachment.select().count() == 0


def test_editing_a_draft_replaces_the_survey_and_keeps_chosen_attachments(app, staff, roster):
    first = draft(app, staff.school, staff.admin, questions=[Question("text", "ご意見")],
                  attachments=[("a.pdf", "", PDF), ("b.pdf", "", PDF)])
    drop = next(a.id for a in messages.attachment_list(first) if a.filename == "b.pdf")
    edited = draft(app, staff.school, staff.admin, draft=first, questions=[Question("text", "ご質問")],
                   remove_attachments=[drop], attachments=[("c.pdf", "", PDF)])
    assert [q.prompt for q in messages.question_list(edited)] == ["ご質問"]
    assert sorted(a.filename for a in messages.attachment_list(edited)) == ["a.pdf", "c.pdf"]
