"""Mail from send to server: personalised mail per guardian, charsets, retries, expiry, schedules, leases."""
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy

import pytest

from appliance import contacts, deliveries, tokens
from appliance.config import load_config
from appliance.guardians import add_guardian
from appliance.messages import create_message
from appliance.models import Delivery, DeliveryResult, Guardian, Message
from appliance.schools import add_school
from mta.smtp import SmtpReply
from tests.conftest import add_students, query_plan, statements_sent
from tests.unit.mta_fakes import FakeConnector, deliver


@pytest.fixture
def school(app):
    school = add_school(app, "s1", "さくら小学校")
    older, younger = add_students(app, school, [(3, "1", 1, "山田 一郎"), (1, "2", 4, "山田 花子")])
    add_guardian(app, "山田 太郎", student_ids=[older.id, younger.id],
                 emails=["taro@example.jp", "taro@docomo.ne.jp"], approved=True)
    return school


def _send(app, school, **kwargs):
    return create_message(app, school, audience="all", subject="臨時休校のお知らせ",
                          body="本日は大雪のため臨時休校とします。", **kwargs)


def test_one_personalised_mail_per_address(app, school):
    _send(app, school)
    sink = FakeConnector()
    assert deliver(app, sink) == {"delivered": 2}
    assert sorted(rcpt for _, rcpt, _ in sink.sent) == ["taro@docomo.ne.jp", "taro@example.jp"]
    assert sink.sent[0][2] == sink.sent[1][2]          # one mail per guardian, signed once
    mail = message_from_bytes(sink.sent[0][2], policy=policy.default)
    assert mail["Subject"] == "臨時休校のお知らせ"
    assert sorted(mail["To"].split(", ")) == ["taro@docomo.ne.jp", "taro@example.jp"]
    text = mail.get_body(("plain",)).get_content()
    assert "山田 太郎 様" in text and "山田 一郎さん、山田 花子さん" in text and "大雪" in text
    [link] = [line for line in text.splitlines() if "/r/" in line]
    grant = tokens.resolve_token(app, link.rpartition("/")[2], "read")
    assert grant == tokens.TokenGrant(Guardian.get().id, Message.get().id)
    assert mail["List-Unsubscribe"]
    assert {d.state for d in Delivery.select()} == {"delivered"}
    assert DeliveryResult.select().where(DeliveryResult.outcome == "delivered").count() == 2
    assert deliver(app, sink) == {}


def test_emergency_subject_is_marked(app, school):
    _send(app, school, priority="emergency")
    sink = FakeConnector()
    deliver(app, sink)
    mail = message_from_bytes(sink.sent[0][2], policy=policy.default)
    assert mail["Subject"].startswith("【緊急】") and mail["List-Unsubscribe"] is None


def test_feature_phone_address_gets_its_own_iso_2022_jp_rendering(app, school):
    app = replace(app, config=load_config(app.data_dir, environ={},
                                          overrides={"mta": {"iso2022jp_domains": ["docomo.ne.jp"]}}))
    _send(app, school)
    sink = FakeConnector()
    deliver(app, sink)
    mails = {rcpt: message_from_bytes(data, policy=policy.default) for _, rcpt, data in sink.sent}
    assert mails["taro@docomo.ne.jp"]["To"] == "taro@docomo.ne.jp"
    assert mails["taro@docomo.ne.jp"].get_content_charset() == "iso-2022-jp"
    assert mails["taro@example.jp"]["To"] == "taro@example.jp"
    assert mails["taro@example.jp"].get_content_charset() == "utf-8"
    assert {m["Message-ID"] for m in mails.values()} == {mails["taro@example.jp"]["Message-ID"]}
    assert all("大雪" in m.get_body(("plain",)).get_content() for m in mails.values())


def test_refusals_bounce_and_trouble_defers_then_retries(app, school, clock):
    _send(app, school)
    sink = FakeConnector(replies={"taro@example.jp": SmtpReply(550, "5.1.1 no such user"),
                                  "taro@docomo.ne.jp": SmtpReply(451, "4.3.0 try later")})
    deliver(app, sink)
    states = {d.contact_id: d.state for d in Delivery.select()}
    assert sorted(states.values()) == ["bounced", "deferred"]
    assert deliver(app, FakeConnector()) == {}      # not due again yet
    clock.advance(minutes=1, seconds=1)
    retry = FakeConnector()
    assert deliver(app, retry) == {"delivered": 1}
    assert [rcpt for _, rcpt, _ in retry.sent] == ["taro@docomo.ne.jp"]


def test_expired_mail_is_not_sent_late(app, school, clock):
    _send(app, school, expires_at=clock.now() + timedelta(hours=1))
    clock.advance(hours=2)
    sink = FakeConnector()
    deliver(app, sink)
    assert sink.sent == [] and {d.state for d in Delivery.select()} == {"expired"}


def test_scheduled_mail_waits_for_its_time(app, school, clock):
    _send(app, school, send_at=clock.now() + timedelta(hours=3))
    assert deliver(app, FakeConnector()) == {}
    clock.advance(hours=3)
    assert deliver(app, FakeConnector()) == {"delivered": 2}


def test_emergency_mail_is_claimed_first(app, school, clock):
    _send(app, school)
    clock.advance(seconds=1)
    urgent = _send(app, school, priority="emergency")
    claimed = deliveries.claim_due(app, "email", 2)
    assert {d.message_id for d in claimed} == {urgent.id}


def test_an_mta_killed_mid_batch_loses_nothing(app, school, clock):
    _send(app, school)
    assert len(deliveries.claim_due(app, "email", 10)) == 2   # claimed, then the MTA dies
    assert deliver(app, FakeConnector()) == {}                 # leased: nobody sends it twice
    clock.advance(minutes=5, seconds=1)
    assert deliver(app, FakeConnector()) == {"delivered": 2}   # the lease ran out: sent after all


def test_an_address_is_suspended_only_after_hard_bounces_on_different_messages(app, school, clock):
    refusing = FakeConnector(replies={"taro@example.jp": SmtpReply(550, "5.1.1 no such user")})
    for n in range(3):
        _send(app, school)
        deliver(app, refusing)
        summary = contacts.summarise_contacts([Guardian.get().id])[Guardian.get().id]
        assert summary.suspended == ({"email": 1} if n == 2 else {})
        clock.advance(seconds=1)
    _send(app, school)
    assert deliver(app, FakeConnector()) == {"delivered": 1}      # only the address still active


def test_fresh_mail_is_claimed_before_retries(app, school, clock):
    _send(app, school)
    deliver(app, FakeConnector(replies={"taro@example.jp": SmtpReply(451, "try later"),
                                        "taro@docomo.ne.jp": SmtpReply(451, "try later")}))
    clock.advance(minutes=5)
    fresh = _send(app, school)
    assert {d.message_id for d in deliveries.claim_due(app, "email", 2)} == {fresh.id}


def test_a_claim_reads_the_head_of_the_queue_index_without_sorting(app, school):
    """At 160,000 due rows a sorting claim took 184 ms each (bench/blast.py --profile)."""
    _send(app, school)
    with statements_sent() as statements:
        deliveries.claim_due(app, "email", 10)
    claim = next(s for s in statements if s.sql.startswith('UPDATE "delivery"'))
    plan = query_plan(claim.sql, claim.params)
    assert any("USING INDEX delivery_queue" in step for step in plan)
    assert not any("TEMP B-TREE" in step for step in plan)


def test_the_health_checks_count_of_due_mail_reads_only_the_pending_deliveries(app, school):
    """/healthz counts due mail: a scan of every delivery ever made would grow with the appliance's history."""
    _send(app, school)
    with statements_sent() as statements:
        assert deliveries.count_due(app) > 0
    count = next(s for s in statements if s.sql.startswith("SELECT COUNT"))
    plan = query_plan(count.sql, count.params)
    assert any("USING INDEX delivery_queue" in step or "USING COVERING INDEX delivery_queue" in step for step in plan)
