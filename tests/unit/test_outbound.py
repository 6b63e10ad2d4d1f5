"""The outbound engine with injected routing and SMTP: outcomes, domains, dead hops, crash safety."""
import asyncio

import pytest

from appliance.guardians import add_guardian
from appliance.messages import create_message
from appliance.models import Delivery, DeliveryResult
from appliance.schools import add_school
from mta.outbound import Outbound
from mta.smtp import SmtpReply
from tests.conftest import add_students
from tests.unit.mta_fakes import FakeConnector, NoMail, StaticRouter, deliver


@pytest.fixture
def school(app):
    school = add_school(app, "s1", "さくら小学校")
    students = add_students(app, school, [(1, "1", n, f"生徒{n}") for n in range(1, 31)])
    for n, student in enumerate(students):
        add_guardian(app, f"保護者{n}", student_ids=[student.id], approved=True,
                     emails=[f"g{n}@a.example", f"g{n}@b.example", f"g{n}@c.example"])
    return school


def send(app, school, **kwargs):
    return create_message(app, school, audience="all", subject="お知らせ", body="本文です。", **kwargs)


def test_every_address_gets_its_mail_once_with_a_verp_sender(app, school):
    send(app, school)
    connector = FakeConnector()
    counts = deliver(app, connector, batch=25)
    assert counts["delivered"] == 90 and len(connector.sent) == 90
    assert len({rcpt for _, rcpt, _ in connector.sent}) == 90
    sender, rcpt, _ = connector.sent[0]
    delivery = Delivery.get(Delivery.id == sender[2:].split("@")[0])
    assert sender.endswith("@renraku.example")
    assert {d.state for d in Delivery.select()} == {"delivered"}
    assert DeliveryResult.select().count() == 90
    assert delivery.state == "delivered"
    # Sessions are reused: far fewer connections than mails.
    assert connector.opened < 30


def test_replies_map_to_outcomes(app, school):
    send(app, school)
    connector = FakeConnector(replies={"g1@a.example": SmtpReply(550, "5.1.1 no such user"),
                                       "g2@a.example": SmtpReply(451, "4.7.1 try later")})
    counts = deliver(app, connector)
    assert (counts["delivered"], counts["bounced"], counts["deferred"]) == (88, 1, 1)
    bounced = DeliveryResult.get(DeliveryResult.outcome == "bounced")
    assert "no such user" in bounced.detail


def test_a_domain_that_does_not_answer_is_deferred_not_lost(app, school, clock):
    send(app, school)
    counts = deliver(app, FakeConnector(down={"mx.b.example"}))
    assert (counts["delivered"], counts["deferred"]) == (60, 30)
    clock.advance(minutes=2)
    retry = FakeConnector()
    assert deliver(app, retry)["delivered"] == 30
    assert {rcpt.split("@")[1] for _, rcpt, _ in retry.sent} == {"b.example"}


def test_unroutable_domains_bounce_or_defer_by_permanence(app, school):
    send(app, school)
    router = StaticRouter({"a.example": NoMail("null MX"), "b.example": TimeoutError("dns timeout")})
    counts = deliver(app, FakeConnector(), router=router)
    assert (counts["bounced"], counts["deferred"], counts["delivered"]) == (30, 30, 30)


def test_expired_mail_is_marked_not_sent(app, school, clock):
    from datetime import timedelta
    send(app, school, expires_at=clock.now() + timedelta(minutes=30))
    clock.advance(hours=1)
    connector = FakeConnector()
    assert deliver(app, connector)["expired"] == 90 and connector.sent == []


def test_signing_happens_once_per_guardian_mail(app, school):
    send(app, school)
    signed = []

    def sign(datas):
        signed.extend(datas)
        return [b"DKIM-Signature: test\r\n" + data for data in datas]

    connector = FakeConnector()
    deliver(app, connector, sign=sign)
    assert len(signed) == 30
    assert all(data.startswith(b"DKIM-Signature: test") for _, _, data in connector.sent)


def test_the_job_announced_before_a_421_goes_out_on_another_session(app, school):
    """A session pipelines the next job's envelope with each content; when the server closes (421),
    that job never got its content, so it goes back to its domain's queue, not to the retry queue."""
    send(app, school)
    connector = FakeConnector(replies={"g1@a.example": SmtpReply(421, "4.3.2 closing")})
    outbound = Outbound(app, router=StaticRouter(), connector=connector)
    # Were the job lost instead, it would stay in flight and the run would never be idle.
    counts = asyncio.run(asyncio.wait_for(outbound.run(until_idle=True), 20))
    assert (counts["delivered"], counts["deferred"]) == (89, 1)
    assert DeliveryResult.select().where(DeliveryResult.outcome == "deferred").get().detail.startswith("421")
