"""Email ready to leave: due deliveries claimed and rendered, one mail per guardian.

The MTA (or any other sender) takes these and delivers each mail to each of the
guardian's addresses in its own SMTP transaction, then records the outcomes with
:func:`appliance.deliveries.record_outcomes`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from appliance import contacts
from appliance.deliveries import Outcome, claim_due
from appliance.models import Delivery, Guardian, GuardianLink, Message, Recipient, Student
from appliance.relay import render_email


@dataclass(frozen=True)
class Envelope:
    """One SMTP transaction: one delivery row, one address."""

    delivery_id: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass
class OutgoingMail:
    """A guardian's rendered mail and the addresses it goes to."""

    data: bytes
    envelopes: list[Envelope] = field(default_factory=list)


@dataclass
class Batch:
    """What one claim produced: the claimed rows, the mails to send, and outcomes decided already."""

    deliveries: dict[str, Delivery]
    mails: list[OutgoingMail]
    settled: list[Outcome]


def _children_by_guardian(message: Message, guardian_ids: list[str]) -> dict[str, list[str]]:
    rows = (GuardianLink.select(GuardianLink.guardian, Student.name).join(Student)
            .where(GuardianLink.guardian.in_(guardian_ids) & (GuardianLink.status == "approved")
                   & (Student.school == message.school_id) & (Student.status == "enrolled"))
            .order_by(Student.grade.desc()).tuples())
    children: dict[str, list[str]] = defaultdict(list)
    for guardian_id, name in rows:
        children[guardian_id].append(name)
    return children


def claim_mail(app, limit: int) -> Batch:
    """Claim up to `limit` due email deliveries and render one mail per guardian and message."""
    claimed = claim_due(app, "email", limit)
    now = app.clock.now()
    settled = [Outcome(d.id, "expired") for d in claimed
               if d.message.expires_at is not None and d.message.expires_at <= now]
    expired = {o.delivery_id for o in settled}
    live = [d for d in claimed if d.id not in expired]
    recipients = {r.id: r for r in Recipient.select(Recipient, Guardian).join(Guardian)
                  .where(Recipient.id.in_([d.recipient_id for d in live]))}
    addresses = contacts.open_for_delivery(app, [d.contact_id for d in live])
    groups: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    for delivery in live:
        groups[(delivery.message_id, delivery.recipient_id)].append(delivery)
    by_message: dict[str, list[str]] = defaultdict(list)
    for message_id, recipient_id in groups:
        by_message[message_id].append(recipients[recipient_id].guardian_id)
    messages = {d.message_id: d.message for d in live}
    children = {message_id: _children_by_guardian(messages[message_id], guardian_ids)
                for message_id, guardian_ids in by_message.items()}
    mails = []
    for (message_id, recipient_id), deliveries in groups.items():
        guardian = recipients[recipient_id].guardian
        mail = render_email(app, deliveries[0].message, guardian, children[message_id].get(guardian.id, []))
        envelopes = [Envelope(d.id, addresses[d.contact_id]) for d in deliveries]
        mail["To"] = ", ".join(e.address for e in envelopes)
        mails.append(OutgoingMail(mail.as_bytes(), envelopes))
    return Batch({d.id: d for d in claimed}, mails, settled)
