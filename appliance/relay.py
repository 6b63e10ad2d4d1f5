"""Email through a relay: hands due mail to the host in ``[mail] relay``.

This is how mail leaves until the appliance's own MTA exists; in the demo the relay
is the local capture sink. One message is rendered per guardian and sent to each of
their addresses in its own SMTP transaction.
"""
from __future__ import annotations

import smtplib
import socket
from collections import defaultdict
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from appliance import contacts
from appliance.clock import to_tokyo
from appliance.deliveries import Outcome, claim_due, record_outcomes
from appliance.models import Guardian, GuardianLink, Message, Recipient, Student

BATCH = 500


class RelayError(Exception):
    """The relay refused or could not take a message; permanent for 5xx replies."""

    def __init__(self, detail: str, permanent: bool):
        super().__init__(detail)
        self.permanent = permanent


class SmtpRelay:
    """Sends through one SMTP connection, opened on first use and reused for the batch."""

    def __init__(self, address: str, timeout: float = 30):
        host, _, port = address.rpartition(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self._smtp: smtplib.SMTP | None = None

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        """Send one message to one recipient, or raise RelayError."""
        try:
            if self._smtp is None:
                self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            self._smtp.sendmail(sender, [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients[recipient]
            raise RelayError(f"{code} {text.decode(errors='replace')}", permanent=code >= 500) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise RelayError(f"{exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise RelayError(f"relay unreachable: {exc}", permanent=False) from None

    def close(self) -> None:
        """Quit the connection if one is open."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None


def render_email(app, message: Message, guardian: Guardian, children: list[str]) -> EmailMessage:
    """Return the personalised mail one guardian receives (without the To header)."""
    mail = EmailMessage()
    domain = app.config["mail"]["domain"]
    mail["From"] = formataddr((app.config["mail"]["from_name"], f"noreply@{domain}"))
    mail["Subject"] = ("【緊急】" if message.priority == "emergency" else "") + message.subject
    mail["Date"] = format_datetime(to_tokyo(app.clock.now()))
    mail["Message-ID"] = make_msgid(idstring=f"{message.id}.{guardian.id}", domain=domain)
    mail["Auto-Submitted"] = "auto-generated"
    greeting = f"{guardian.name} 様"
    if children:
        greeting += f"（{'、'.join(children)} さんの保護者様）"
    mail.set_content(f"{greeting}\n\n{message.body}\n")
    return mail


def _children_by_guardian(message: Message, guardian_ids: list[str]) -> dict[str, list[str]]:
    rows = (GuardianLink.select(GuardianLink.guardian, Student.name).join(Student)
            .where(GuardianLink.guardian.in_(guardian_ids) & (GuardianLink.status == "approved")
                   & (Student.school == message.school_id) & (Student.status == "enrolled"))
            .order_by(Student.grade.desc()).tuples())
    children: dict[str, list[str]] = defaultdict(list)
    for guardian_id, name in rows:
        children[guardian_id].append(name)
    return children


def deliver_due(app, relay: SmtpRelay, batch: int = BATCH) -> int:
    """Send one batch of due email deliveries through the relay; return how many were handled."""
    claimed = claim_due(app, "email", batch)
    if not claimed:
        return 0
    now = app.clock.now()
    by_id = {d.id: d for d in claimed}
    outcomes = [Outcome(d.id, "expired") for d in claimed
                if d.message.expires_at is not None and d.message.expires_at <= now]
    live = [d for d in claimed if d.id not in {o.delivery_id for o in outcomes}]
    recipients = {r.id: r for r in Recipient.select(Recipient, Guardian).join(Guardian)
                  .where(Recipient.id.in_([d.recipient_id for d in live]))}
    addresses = contacts.open_for_delivery(app, [d.contact_id for d in live])
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for delivery in live:
        groups[(delivery.message_id, delivery.recipient_id)].append(delivery)
    children_cache: dict[str, dict[str, list[str]]] = {}
    sender = f"bounce@{app.config['mail']['domain']}"
    for (message_id, recipient_id), deliveries in groups.items():
        message = deliveries[0].message
        guardian = recipients[recipient_id].guardian
        if message_id not in children_cache:
            ids = [recipients[d.recipient_id].guardian_id for d in live if d.message_id == message_id]
            children_cache[message_id] = _children_by_guardian(message, ids)
        mail = render_email(app, message, guardian, children_cache[message_id].get(guardian.id, []))
        for delivery in deliveries:
            del mail["To"]
            mail["To"] = addresses[delivery.contact_id]
            try:
                relay.send(sender, addresses[delivery.contact_id], mail.as_bytes())
                outcomes.append(Outcome(delivery.id, "delivered"))
            except RelayError as exc:
                outcomes.append(Outcome(delivery.id, "bounced" if exc.permanent else "deferred", str(exc)))
    record_outcomes(app, by_id, outcomes)
    return len(claimed)


def relay_reachable(address: str, timeout: float = 0.5) -> bool:
    """Return whether the relay accepts TCP connections (for health checks)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False
