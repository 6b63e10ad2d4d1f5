"""Email ready to leave: due deliveries claimed and rendered, one mail per guardian.

The MTA takes these and delivers each mail to each of the guardian's addresses in
its own SMTP transaction, then records the outcomes with
:func:`appliance.deliveries.record_outcomes`.
"""
from __future__ import annotations

from dataclasses import dataclass

from appliance.deliveries import Claimed, Outcome, claim_due
from appliance.mail import RenderedMail, render_deliveries


@dataclass
class Batch:
    """What one claim produced: the claimed rows, the mails to send, and outcomes decided already."""

    deliveries: dict[str, Claimed]
    mails: list[RenderedMail]
    settled: list[Outcome]


def claim_mail(app, limit: int) -> Batch:
    """Claim up to `limit` due email deliveries; expire the stale ones and render the rest."""
    claimed = claim_due(app, "email", limit)
    now = app.clock.now()
    settled = [Outcome(d.id, "expired") for d in claimed
               if d.message.expires_at is not None and d.message.expires_at <= now]
    expired = {o.delivery_id for o in settled}
    mails = render_deliveries(app, [d for d in claimed if d.id not in expired])
    return Batch({d.id: d for d in claimed}, mails, settled)
