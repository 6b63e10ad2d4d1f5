"""Stopping routine mail: the guardian's choice, the deliveries it skips, /u/<token>, one-click, unsubscribe@, the portal."""
import email
import json
import re

import pytest

from appliance import contacts, db, followup, messages, portal, routine_mail, tokens
from appliance.mail import render_deliveries
from appliance.messages import create_message
from appliance.mime import MailRefused
from appliance.models import Delivery, Guardian, Message, Recipient
from appliance.sample_data import ADDRESS_MARKER
from tests.unit.guardian_fixtures import form_token, issued_token, signed_in_guardian
from tests.unit.mail_fixtures import DOMAIN, inbound_mail, make_router

PUSH = json.dumps({"endpoint": "https://push.example/1", "keys": {"p256dh": "B" * 87, "auth": "A" * 22}})


def _unsubscribe_token(app, guardian, message) -> str:
    return issued_token(app, "unsubscribe", guardian.id, message.id)


def _email_deliveries(message, guardian) -> int:
    return (Delivery.select().join(Recipient)
            .where((Delivery.message == message.id) & (Recipient.guardian == guardian.id)
                   & (Delivery.channel == "email")).count())


def _routine_mail(guardian) -> bool:
    return Guardian.get_by_id(guardian.id).routine_mail


# --- the core ---------------------------------------------------------------------------------------

def test_stopped_routine_mail_makes_no_email_deliveries_but_push_and_emergencies_still_go(app, families):
    contacts.add_contact(app, families.taro.id, "push", PUSH, status="active")
    routine_mail.set_routine_mail(app, families.taro.id, False)
    routine = create_message(app, families.school, audience="all", subject="学級通信", body="本文",
                             channels=["email", "push"])
    assert _email_deliveries(routine, families.taro) == 0 and _email_deliveries(routine, families.hanako) == 1
    assert messages.message_summary(routine) == {"message": routine.id, "recipients": 2,
                                                 "deliveries": {"email": 1, "push": 1}}
    emergency = create_message(app, families.school, audience="all", subject="臨時休校", body="本文",
                               priority="emergency")
    assert _email_deliveries(emergency, families.taro) == 2
    routine_mail.set_routine_mail(app, families.taro.id, True)
    again = create_message(app, families.school, audience="all", subject="学級通信2", body="本文")
    assert _email_deliveries(again, families.taro) == 2


def test_resending_to_those_who_have_not_read_skips_them_too(app, families):
    with db.write():
        Delivery.update(state="delivered").execute()
    routine_mail.set_routine_mail(app, families.taro.id, False)
    assert followup.resend_unread(app, families.message, ["email"], "admin-a") == 1      # hanako's one address


def test_the_choice_is_idempotent_and_records_only_when_it_changed(app, families, clock):
    assert _routine_mail(families.taro) is True and Guardian.get_by_id(families.taro.id).routine_mail_changed_at is None
    assert routine_mail.set_routine_mail(app, families.taro.id, False) is True
    stopped_at = clock.now()
    clock.advance(hours=1)
    assert routine_mail.set_routine_mail(app, families.taro.id, False) is False
    assert Guardian.get_by_id(families.taro.id).routine_mail_changed_at == stopped_at
    assert routine_mail.set_routine_mail(app, families.taro.id, True) is True
    assert Guardian.get_by_id(families.taro.id).routine_mail_changed_at == clock.now()


def test_the_token_in_a_routine_mails_list_unsubscribe_stops_its_guardian(app, families):
    create_message(app, families.school, audience="all", subject="臨時休校", body="本文", priority="emergency")
    mails = [email.message_from_bytes(m.data) for m in render_deliveries(app, Delivery.select())]
    routine = [m for m in mails if "List-Unsubscribe" in m]
    assert len(routine) == 2 and len(mails) == 4          # emergency mail carries none
    header = next(m for m in routine if "taro" in m["To"])["List-Unsubscribe"]
    token = re.search(r"/u/([A-Za-z0-9_-]{22})>", header)[1]
    assert f"subject={token}>" in header
    assert routine_mail.unsubscribe(app, token) == families.taro.id
    assert _routine_mail(families.taro) is False and _routine_mail(families.hanako) is True
    for wrong in ("A" * 22, issued_token(app, "read", families.taro.id, families.message.id)):
        with pytest.raises(tokens.InvalidToken):
            routine_mail.unsubscribe(app, wrong)


def test_portal_preferences_leave_routine_mail_alone_unless_given(app, families):
    portal.set_preferences(app, families.taro.id, locale="ja", quiet_from=None, quiet_until=None, routine_mail=False)
    portal.set_preferences(app, families.taro.id, locale="en", quiet_from=None, quiet_until=None)
    assert _routine_mail(families.taro) is False


def test_reach_counts_only_addresses_that_will_receive_and_how_many_stopped(app, families):
    routine_mail.set_routine_mail(app, families.taro.id, False)
    routine = messages.count_reach(families.school, "all", None, ["email"])
    assert routine["addresses"] == {"email": 1} and routine["routine_mail_stopped"] == 1
    emergency = messages.count_reach(families.school, "all", None, ["email"], "emergency")
    assert emergency["addresses"] == {"email": 3} and "routine_mail_stopped" not in emergency


# --- /u/<token> -------------------------------------------------------------------------------------

def test_opening_the_link_changes_nothing_and_explains_in_a_light_strict_page(app, client, families):
    path = f"/u/{_unsubscribe_token(app, families.taro, families.message)}"
    for _ in range(2):          # a mail scanner, then the guardian
        response = client.get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and _routine_mail(families.taro) is True
    assert "緊急の連絡" in page and "/p/settings" in page and "通常の連絡メールを停止する" in page
    assert len(response.data) < 30 * 1024 and "<script" not in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer" and "no-store" in response.headers["Cache-Control"]
    assert "taro@" not in page and "set-cookie" not in response.headers


def test_the_button_stops_it_twice_safely_and_restarts_it(app, client, families):
    path = f"/u/{_unsubscribe_token(app, families.taro, families.message)}"
    token = form_token(client.get(path).get_data(as_text=True))
    assert client.post(path, data={"routine_mail": "off"}).status_code == 400     # neither our form nor one-click
    for _ in range(2):
        stopped = client.post(path, data={"form_token": token, "routine_mail": "off"})
        assert stopped.status_code == 200 and "通常の連絡メールを停止しました" in stopped.get_data(as_text=True)
    assert _routine_mail(families.taro) is False
    assert "通常の連絡メールは停止中です" in client.get(path).get_data(as_text=True)
    restarted = client.post(path, data={"form_token": token, "routine_mail": "on"})
    assert "再開しました" in restarted.get_data(as_text=True) and _routine_mail(families.taro) is True
    assert client.post(path, data={"form_token": "x" * 22, "routine_mail": "off"}).status_code == 400
    assert _routine_mail(families.taro) is True


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_one_click_post_from_a_mail_provider_stops_it_without_form_or_cookie(app, web, families, content_type):
    """RFC 8058: the provider POSTs List-Unsubscribe=One-Click server to server and must get a 200, not a redirect."""
    path = f"/u/{_unsubscribe_token(app, families.taro, families.message)}"
    provider = web.test_client(use_cookies=False)
    for _ in range(2):
        response = provider.post(path, data={"List-Unsubscribe": "One-Click"}, content_type=content_type)
        assert response.status_code == 200
    assert _routine_mail(families.taro) is False and _routine_mail(families.hanako) is True


def test_unknown_or_expired_links_get_the_guardian_404(app, client, families, clock):
    path = f"/u/{_unsubscribe_token(app, families.taro, families.message)}"
    read_path = families.link(app, families.taro).replace("/r/", "/u/")     # a read token is not an unsubscribe token
    for wrong in ("/u/AAAAAAAAAAAAAAAAAAAAAA", read_path):
        assert client.get(wrong).status_code == 404
        assert client.post(wrong, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    clock.advance(days=91)
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert _routine_mail(families.taro) is True


def test_the_page_is_in_the_guardians_language(app, client, families):
    portal.set_preferences(app, families.taro.id, locale="en", quiet_from=None, quiet_until=None)
    response = client.get(f"/u/{_unsubscribe_token(app, families.taro, families.message)}")
    assert response.headers["Content-Language"] == "en" and "emergency" in response.get_data(as_text=True).lower()


# --- the portal -------------------------------------------------------------------------------------

def test_the_portal_turns_it_back_on_and_off_beside_quiet_hours(app, web, families):
    routine_mail.set_routine_mail(app, families.taro.id, False)
    guardian = signed_in_guardian(app, web)
    assert "通常の連絡メールは停止中です" in guardian.get("/p/").get_data(as_text=True)
    page = guardian.get("/p/settings").get_data(as_text=True)
    assert 'name="routine_mail" value="off" checked' in page and "通知を控える時間" in page
    saved = guardian.post("/p/settings", data={"form_token": form_token(page), "locale": "ja", "routine_mail": "on"})
    assert saved.status_code == 303 and _routine_mail(families.taro) is True
    assert "停止中" not in guardian.get("/p/").get_data(as_text=True)
    guardian.post("/p/settings", data={"form_token": form_token(page), "locale": "ja", "routine_mail": "off"})
    assert _routine_mail(families.taro) is False


# --- the school sees a count, never who -------------------------------------------------------------

def test_the_review_page_shows_how_many_stopped_and_no_address(app, staff, roster, signed_in):
    stopped = [g.id for g in Guardian.select().limit(3)]
    for guardian_id in stopped:
        routine_mail.set_routine_mail(app, guardian_id, False)
    draft = messages.save_draft(app, staff.school, staff.admin, audience="all", subject="学級通信", body="本文")
    page = signed_in("admin-a").get(f"/admin/s/sch-a/messages/{draft.id}/review").get_data(as_text=True)
    assert "通常の連絡メールを停止中の保護者 3 人" in page and not ADDRESS_MARKER.search(page)
    guardian = Guardian.get_by_id(stopped[0])
    message = create_message(app, staff.school, audience="all", subject="お知らせ", body="本文")
    unsubscribe_page = signed_in("admin-a").get(f"/u/{_unsubscribe_token(app, guardian, message)}")
    assert unsubscribe_page.status_code == 200 and not ADDRESS_MARKER.search(unsubscribe_page.get_data(as_text=True))


# --- unsubscribe@ -----------------------------------------------------------------------------------

def test_mail_to_unsubscribe_with_the_token_as_subject_stops_routine_mail(app, families):
    token = _unsubscribe_token(app, families.taro, families.message)
    router = make_router(app)
    assert router.check_recipient(f"unsubscribe@{DOMAIN}").kind == "unsubscribe"
    for subject in (token, f"Re: {token}"):         # again: still a 250
        mail = inbound_mail(f"unsubscribe@{DOMAIN}", "", subject=subject)
        assert router.route_mail("taro@example.jp", f"UNSUBSCRIBE@{DOMAIN}", mail, "192.0.2.1").kind == "unsubscribe"
    assert _routine_mail(families.taro) is False and _routine_mail(families.hanako) is True


@pytest.mark.parametrize("subject", ["", "配信停止", "A" * 22, "stop please"])
def test_mail_to_unsubscribe_without_a_valid_token_is_refused_politely(app, families, subject):
    mail = inbound_mail(f"unsubscribe@{DOMAIN}", "", subject=subject)
    with pytest.raises(MailRefused) as refused:
        make_router(app).route_mail("taro@example.jp", f"unsubscribe@{DOMAIN}", mail, "192.0.2.1")
    assert refused.value.reason == "unsubscribe" and "マイページ" in str(refused.value)
    assert Guardian.select().where(Guardian.routine_mail == False).count() == 0  # noqa: E712


def test_an_expired_token_by_mail_is_refused(app, families, clock):
    token = _unsubscribe_token(app, families.taro, families.message)
    clock.advance(days=91)
    mail = inbound_mail(f"unsubscribe@{DOMAIN}", "", subject=token)
    with pytest.raises(MailRefused):
        make_router(app).route_mail("taro@example.jp", f"unsubscribe@{DOMAIN}", mail, "192.0.2.1")
    assert Message.select().count() == 1 and _routine_mail(families.taro) is True
