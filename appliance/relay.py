"""Email through a relay: hands due mail to the host in ``[mail] relay``.

This is how mail leaves until the appliance's own MTA exists; in the demo the relay
is the local capture sink. One mail is rendered per guardian (appliance.mail) and sent
to each of their addresses in its own SMTP transaction.
"""
from __future__ import annotations

import smtplib
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

from appliance import tokens
from appliance.deliveries import Outcome, claim_due, record_outcomes
from appliance.mail import render_deliveries, render_guardian_mail
from appliance.models import Guardian, Message

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
    """One guardian's mail from appliance.mail, without To; kept for appliance/outbox.py until it renders in bulk."""
    pair = (guardian.id, message.id)
    read = tokens.issue_tokens(app, "read", [pair])[pair]
    unsubscribe = None if message.priority == "emergency" else tokens.issue_tokens(app, "unsubscribe", [pair])[pair]
    data = render_guardian_mail(app, message, guardian.id, guardian.name, children, [], read, unsubscribe)
    return message_from_bytes(data, policy=policy.default)


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
    sender = f"bounce@{app.config['mail']['domain']}"
    for mail in render_deliveries(app, live):
        for delivery_id, address in mail.envelopes:
            try:
                relay.send(sender, address, mail.data)
                outcomes.append(Outcome(delivery_id, "delivered"))
            except RelayError as exc:
                outcomes.append(Outcome(delivery_id, "bounced" if exc.permanent else "deferred", str(exc)))
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
