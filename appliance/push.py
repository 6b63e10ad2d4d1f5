"""Web Push: VAPID keys, guardians' devices (up to 4), and the worker that sends due push deliveries.

Devices are contact points of kind ``push`` (sealed like addresses, read only through
:mod:`appliance.contacts`): the value is the browser's subscription (endpoint and
keys), the label the name the guardian gave the device. A subscription may only point
at a known push service (``[push] endpoint_hosts``): the worker POSTs to it, and a
guardian must not be able to aim the appliance's requests at anything else.

The worker works like the MTA: it claims due ``push`` deliveries from the database
(:func:`appliance.deliveries.claim_due`, emergency first, a lease instead of a lock),
sends each through a :class:`PushSender`, and records every attempt as a
``delivery_result`` fact with :func:`appliance.deliveries.record_outcomes`:

- 2xx: delivered;
- 404 or 410: the push service says the subscription is gone: bounced, and the device
  is removed (its slot is free for a new one);
- 429, 5xx, or no answer: deferred, retried on the shared back-off schedule;
- any other 4xx: bounced (the request itself is wrong; retrying would not help).

A notification is a nudge to open the message page, not the message: it carries the
school, the subject, whether it is an emergency and the link, with ``Urgency: high``
for emergencies (phones wake for it) and ``normal`` otherwise, and a TTL up to the
message's expiry, at most a day; a push not sent within a day of its time is expired.
"""
from __future__ import annotations

import base64
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance import contacts, tokens
from appliance.deliveries import Outcome, claim_due, record_outcomes
from appliance.errors import InvalidInput
from appliance.models import ContactPoint, Delivery, Recipient

MAX_TTL = timedelta(days=1)
MAX_NAME = 40
MAX_SUBJECT = 100       # characters in the notification; the page has the rest


# --- keys -----------------------------------------------------------------------------------------

def init_keys(app) -> str:
    """Make the VAPID key pair (P-256, PEM, mode 0600) unless it exists; return the public key."""
    path = app.config.path("push", "vapid_key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return public_key(app)


def public_key(app) -> str | None:
    """Return the VAPID public key as browsers take it (applicationServerKey), or None before `push init`."""
    path = app.config.path("push", "vapid_key")
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _b64url(raw)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- devices ----------------------------------------------------------------------------------------

def add_device(app, guardian_id: str, subscription: str, name: str) -> ContactPoint:
    """Register a browser's push subscription as one of the guardian's devices (at most 4)."""
    name = " ".join(name.split())[:MAX_NAME] or "端末"
    value = contacts.normalise("push", subscription)
    host = (urlsplit(json.loads(value)["endpoint"]).hostname or "").lower()
    allowed = [h.lower() for h in app.config["push"]["endpoint_hosts"]]
    if not any(host == h or host.endswith("." + h) for h in allowed):
        raise InvalidInput("この通知サービスには対応していません")
    return contacts.add_contact(app, guardian_id, "push", value, status="active", label=name)


def devices(app, guardian_id: str) -> list[contacts.RevealedContact]:
    """Return the guardian's devices (the portal shows their names and states, never the subscription)."""
    return contacts.own_contacts(app, guardian_id, "push")


def remove_device(app, guardian_id: str, contact_id: str) -> None:
    """Remove one of the guardian's devices."""
    contacts.get_own_contact(guardian_id, contact_id, "push")
    contacts.remove_contact(app, guardian_id, contact_id)


# --- sending ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PushResponse:
    """What a push service answered: its HTTP status (None: no answer) and a short detail."""

    status: int | None
    detail: str = ""


class PushSender(Protocol):
    """Sends one encrypted notification to one subscription (the worker's injectable boundary)."""

    def send(self, subscription: dict, payload: bytes, *, ttl: int, urgency: str) -> PushResponse:
        """Encrypt payload for the subscription and POST it with these TTL and Urgency headers."""


class WebPushSender:
    """The real sender: pywebpush (RFC 8291 encryption, RFC 8292 VAPID) over a pooled HTTP session."""

    def __init__(self, app, timeout: float = 10.0):
        # Imported here: the web workers, which only register devices, never load it.
        import requests
        from py_vapid import Vapid
        from pywebpush import WebPushException, webpush

        self._webpush, self._error = webpush, WebPushException
        self._vapid = Vapid.from_file(str(app.config.path("push", "vapid_key")))
        self._subject = app.config["push"]["subject"] or f"mailto:noreply@{app.config['mail']['domain']}"
        self._timeout = timeout
        self._local = threading.local()
        self._session_class = requests.Session
        self._network_errors = (requests.RequestException,)

    def send(self, subscription: dict, payload: bytes, *, ttl: int, urgency: str) -> PushResponse:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._session_class()
        try:
            response = self._webpush(subscription, payload, vapid_private_key=self._vapid,
                                     vapid_claims={"sub": self._subject}, ttl=ttl, headers={"Urgency": urgency},
                                     timeout=self._timeout, requests_session=session)
        except self._error as refused:
            status = refused.response.status_code if refused.response is not None else None
            return PushResponse(status, str(refused).splitlines()[0][:200])
        except self._network_errors as failed:
            return PushResponse(None, f"{type(failed).__name__}: {failed}"[:200])
        return PushResponse(response.status_code, response.reason or "")


def outcome_for(response: PushResponse) -> str:
    """Map a push service's answer to a delivery outcome."""
    status = response.status
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status is None or status == 429 or status >= 500:
        return "deferred"
    return "bounced"


def payload_for(message, link: str) -> bytes:
    """The notification: school, subject, emergency or not, and the message page to open."""
    subject = message.subject if len(message.subject) <= MAX_SUBJECT else message.subject[:MAX_SUBJECT - 1] + "…"
    return json.dumps({"title": message.school.name, "body": subject, "emergency": message.priority == "emergency",
                       "url": link, "tag": message.id}, ensure_ascii=False).encode()


def send_due(app, sender: PushSender, limit: int | None = None) -> int:
    """Claim due push deliveries, send them, record the outcomes; return how many were claimed."""
    claimed = claim_due(app, "push", limit or app.config["push"]["batch"])
    if not claimed:
        return 0
    now = app.clock.now()
    outcomes: list[Outcome] = []
    sendable = []
    for delivery in claimed:
        message = delivery.message
        stale = now >= message.send_at + MAX_TTL or (message.expires_at is not None and message.expires_at <= now)
        if stale:
            outcomes.append(Outcome(delivery.id, "expired"))
        else:
            sendable.append(delivery)
    subscriptions = contacts.open_for_delivery(app, [d.contact_id for d in sendable])
    guardians = dict(Recipient.select(Recipient.id, Recipient.guardian)
                     .where(Recipient.id.in_([d.recipient_id for d in sendable])).tuples())
    links = tokens.issue_tokens(app, "read", {(guardians[d.recipient_id], d.message_id) for d in sendable})

    def attempt(delivery: Delivery) -> tuple[Delivery, PushResponse]:
        message = delivery.message
        expiry = message.send_at + MAX_TTL if message.expires_at is None else min(message.expires_at,
                                                                                  message.send_at + MAX_TTL)
        ttl = max(int((expiry - now).total_seconds()), 0)
        link = tokens.token_url(app, "read", links[(guardians[delivery.recipient_id], delivery.message_id)])
        return delivery, sender.send(json.loads(subscriptions[delivery.contact_id]), payload_for(message, link),
                                     ttl=ttl, urgency="high" if message.priority == "emergency" else "normal")

    gone = []
    with ThreadPoolExecutor(max_workers=app.config["push"]["concurrency"]) as pool:
        for delivery, response in pool.map(attempt, sendable):
            outcome = outcome_for(response)
            detail = f"{response.status or '-'} {response.detail}".strip()
            if response.status in (404, 410):
                gone.append((delivery, delivery.contact_id))
                detail += " (subscription removed)"
            outcomes.append(Outcome(delivery.id, outcome, detail))
    record_outcomes(app, {d.id: d for d in claimed}, outcomes)
    for delivery, contact_id in gone:
        contacts.remove_contact(app, guardians[delivery.recipient_id], contact_id)
    return len(claimed)


def run(app, sender: PushSender, stop: threading.Event, idle: float = 1.0) -> None:
    """Send due push deliveries until stop is set, polling every `idle` seconds when there is nothing due."""
    while not stop.is_set():
        if not send_due(app, sender):
            stop.wait(idle)
