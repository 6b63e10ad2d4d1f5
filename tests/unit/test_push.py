"""The push worker through its sender interface: outcomes, removal of gone devices, retries, TTL and urgency."""
import json
import os
import stat

import pytest

from appliance import push
from appliance.errors import InvalidInput, LimitReached
from appliance.messages import create_message
from appliance.models import ContactPoint, Delivery, DeliveryResult
from tests.unit.guardian_fixtures import make_families


class FakeSender:
    """Answers each endpoint with the status given for it (201 by default) and keeps what was sent."""

    def __init__(self, statuses=None):
        self.statuses = statuses or {}
        self.sent = []

    def send(self, subscription, payload, *, ttl, urgency):
        self.sent.append((subscription["endpoint"], json.loads(payload), ttl, urgency))
        return push.PushResponse(self.statuses.get(subscription["endpoint"], 201), "fake")


def subscription(n: int) -> str:
    return json.dumps({"endpoint": f"https://fcm.googleapis.com/fcm/send/device{n}",
                       "keys": {"p256dh": "B" * 87, "auth": "A" * 22}})


@pytest.fixture
def families(app):
    families = make_families(app)
    for n in (1, 2):
        push.add_device(app, families.taro.id, subscription(n), f"端末{n}")
    return families


def send(app, families, **options):
    return create_message(app, families.school, audience="all", subject="台風のため休校", body="本文",
                          channels=["push"], **options)


def test_vapid_keys_are_made_once_and_private(app):
    first = push.init_keys(app)
    path = app.config.path("push", "vapid_key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert push.init_keys(app) == first and len(first) == 87      # an uncompressed P-256 point, base64url


def test_a_notification_carries_school_subject_link_with_urgency_and_ttl(app, families):
    routine, urgent = send(app, families), send(app, families, priority="emergency")
    sender = FakeSender()
    assert push.send_due(app, sender) == 4
    by_urgency = {urgency: (payload, ttl) for _, payload, ttl, urgency in sender.sent}
    payload, ttl = by_urgency["high"]
    assert payload["emergency"] is True and payload["tag"] == urgent.id and payload["title"] == "さくら小学校"
    assert payload["body"] == "台風のため休校" and "/r/" in payload["url"] and ttl == 86400
    assert by_urgency["normal"][0]["tag"] == routine.id
    assert {d.state for d in Delivery.select().where(Delivery.channel == "push")} == {"delivered"}


def test_ttl_follows_the_messages_expiry(app, clock, families):
    from datetime import timedelta
    send(app, families, expires_at=clock.now() + timedelta(hours=2))
    sender = FakeSender()
    push.send_due(app, sender)
    assert {ttl for _, _, ttl, _ in sender.sent} == {7200}


def test_gone_subscriptions_are_removed_and_busy_services_retried(app, clock, families):
    send(app, families)
    sender = FakeSender({"https://fcm.googleapis.com/fcm/send/device1": 410,
                         "https://fcm.googleapis.com/fcm/send/device2": 429})
    push.send_due(app, sender)
    states = {d.contact.label: d.state for d in Delivery.select().where(Delivery.channel == "push")}
    assert states == {"端末1": "bounced", "端末2": "deferred"}
    assert [d.label for d in push.devices(app, families.taro.id)] == ["端末2"]
    assert "subscription removed" in DeliveryResult.get(DeliveryResult.outcome == "bounced").detail
    assert push.send_due(app, sender) == 0                  # not due again until the back-off passes
    sender.statuses.clear()
    clock.advance(minutes=2)
    assert push.send_due(app, sender) == 1
    states = {d.contact.label: d.state for d in Delivery.select().where(Delivery.channel == "push")}
    assert states == {"端末1": "bounced", "端末2": "delivered"}


def test_no_answer_and_server_errors_are_deferred_other_client_errors_bounce():
    assert push.outcome_for(push.PushResponse(None)) == "deferred"
    assert push.outcome_for(push.PushResponse(503)) == "deferred"
    assert push.outcome_for(push.PushResponse(400)) == "bounced"
    assert push.outcome_for(push.PushResponse(201)) == "delivered"


def test_a_push_not_sent_within_a_day_expires(app, clock, families):
    send(app, families)
    clock.advance(days=1, minutes=1)
    sender = FakeSender()
    push.send_due(app, sender)
    assert sender.sent == [] and {d.state for d in Delivery.select().where(Delivery.channel == "push")} == {"expired"}


def test_devices_are_limited_to_four_and_to_known_push_services(app, families):
    for n in (3, 4):
        push.add_device(app, families.taro.id, subscription(n), "x")
    with pytest.raises(LimitReached):
        push.add_device(app, families.taro.id, subscription(5), "x")
    for bad in ('{"endpoint": "https://169.254.169.254/latest", "keys": {"p256dh": "' + "B" * 87 + '", "auth": "'
                + "A" * 22 + '"}}', "not json", '{"endpoint": "https://fcm.googleapis.com/x"}'):
        with pytest.raises(InvalidInput):
            push.add_device(app, families.hanako.id, bad, "x")
    assert ContactPoint.select().where(ContactPoint.kind == "push").count() == 4
