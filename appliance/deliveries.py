"""The delivery queue in the database: claim what is due, record what happened as facts.

The database, not huey, is the record of due work. A claim moves the rows' due time
forward by a lease instead of locking them; a worker killed mid-batch therefore
loses nothing, and only the rows it had in flight can go out twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee

from appliance import contacts, db
from appliance.ids import uuid7
from appliance.models import Delivery, DeliveryResult, Message

LEASE = timedelta(minutes=5)
RETRY_SCHEDULE = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
                  timedelta(hours=1))
PENDING_STATES = ("queued", "deferred")
# A single 550 at DATA from a carrier is often its filter, not a dead address: an
# address is suspended only after hard bounces on this many different messages.
SUSPEND_AFTER_BOUNCES = 3
# Written out, not bound: SQLite uses the partial index delivery_queue only when the
# query's own text implies the index's WHERE clause.
_PENDING_LITERAL = Delivery.state.in_(peewee.SQL("('queued', 'deferred')"))


@dataclass(frozen=True)
class Outcome:
    """What one attempt at one delivery came to."""

    delivery_id: str
    outcome: str          # delivered, deferred, bounced, expired
    detail: str = ""


@dataclass(slots=True)
class Claimed:
    """A leased delivery: what sending it and recording its outcome need (no full model row: a blast claims 160,000)."""

    id: str
    message_id: str
    recipient_id: str
    contact_id: str
    priority: int
    attempts: int
    message: Message


def claim_due(app, channel: str, limit: int) -> list[Claimed]:
    """Lease up to `limit` due deliveries of a channel, emergency first, oldest due first."""
    now = app.clock.now()
    # Emergency first, then fresh mail before retries (Postfix's active queue), oldest first:
    # the order of the delivery_queue index, so the claim reads its head and sorts nothing.
    head = (Delivery.select(Delivery.id)
            .where((Delivery.channel == channel) & _PENDING_LITERAL & (Delivery.due_at <= now))
            .order_by(Delivery.priority, Delivery.attempts, Delivery.due_at)
            .limit(limit))
    with db.write():
        rows = db.plain_rows(Delivery.update(due_at=now + LEASE, attempts=Delivery.attempts + 1, updated_at=now)
                             .where(Delivery.id.in_(head))
                             .returning(Delivery.id, Delivery.message, Delivery.recipient, Delivery.contact,
                                        Delivery.priority, Delivery.attempts))
    messages = {m.id: m for m in Message.select().where(Message.id.in_(list({r[1] for r in rows})))}
    claimed = [Claimed(*row, messages[row[1]]) for row in rows]
    claimed.sort(key=lambda row: (row.priority, row.attempts, row.id))
    return claimed


_RESULT_FIELDS = [DeliveryResult.id, DeliveryResult.delivery, DeliveryResult.outcome, DeliveryResult.detail,
                  DeliveryResult.site, DeliveryResult.at]


def _suspend_bouncing(contact_ids: list[str]) -> None:
    """Suspend the addresses that have now bounced hard on enough different messages."""
    repeated = (Delivery.select(Delivery.contact)
                .where(Delivery.contact.in_(contact_ids) & (Delivery.state == "bounced"))
                .group_by(Delivery.contact)
                .having(peewee.fn.COUNT(Delivery.message.distinct()) >= SUSPEND_AFTER_BOUNCES))
    contacts.suspend([contact_id for (contact_id,) in repeated.tuples()])


def retry_at(now: datetime, attempts: int) -> datetime:
    """Return when a deferred delivery is tried again after its n-th attempt."""
    return now + RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]


def record_outcomes(app, deliveries: dict[str, Claimed], outcomes: list[Outcome]) -> None:
    """Write each outcome as a fact and move its delivery's cached state, in one transaction."""
    now = app.clock.now()
    # Converted once here, not per row by execute_many: a blast records 160,000 outcomes.
    stored_now = DeliveryResult.at.db_value(now)
    retries = {attempts: Delivery.due_at.db_value(retry_at(now, attempts))
               for attempts in {deliveries[o.delivery_id].attempts for o in outcomes if o.outcome == "deferred"}}
    with db.write():
        db.insert_rows(DeliveryResult, _RESULT_FIELDS,
                       [(uuid7(), o.delivery_id, o.outcome, o.detail[:1000], app.site, stored_now) for o in outcomes],
                       converted=True)
        # One prepared statement for all rows: a blast records thousands a second.
        db.execute_many(Delivery, 'UPDATE {table} SET "state" = {p}, "updated_at" = {p},'
                                  ' "due_at" = COALESCE({p}, "due_at") WHERE "id" = {p}', None,
                        [(o.outcome, stored_now,
                          retries[deliveries[o.delivery_id].attempts] if o.outcome == "deferred" else None,
                          o.delivery_id) for o in outcomes])
        bounced = [deliveries[o.delivery_id].contact_id for o in outcomes if o.outcome == "bounced"]
        if bounced:
            _suspend_bouncing(bounced)


def release(app, delivery_ids: list[str]) -> None:
    """Make claimed deliveries that got no result due again now (the MTA is stopping)."""
    now = app.clock.now()
    with db.write():
        for batch in peewee.chunked(delivery_ids, 500):
            (Delivery.update(due_at=now, updated_at=now)
             .where(Delivery.id.in_(batch) & Delivery.state.in_(PENDING_STATES)).execute())


def count_due(app) -> int:
    """Return how many deliveries of any channel are due now (/healthz: it reads the pending ones only, not the
    whole history of deliveries, through the delivery_queue index)."""
    return Delivery.select().where(_PENDING_LITERAL & (Delivery.due_at <= app.clock.now())).count()


def queue_status(app) -> dict:
    """Return deliveries by channel and state, and the last minute's outcomes, for operators."""
    by_state: dict[str, dict[str, int]] = {}
    rows = (Delivery.select(Delivery.channel, Delivery.state, peewee.fn.COUNT(Delivery.id))
            .group_by(Delivery.channel, Delivery.state).tuples())
    for channel, state, count in rows:
        by_state.setdefault(channel, {})[state] = count
    since = app.clock.now() - timedelta(minutes=1)
    recent = dict(DeliveryResult.select(DeliveryResult.outcome, peewee.fn.COUNT(DeliveryResult.id))
                  .where(DeliveryResult.at >= since).group_by(DeliveryResult.outcome).tuples())
    return {"deliveries": by_state, "last_minute": recent}


def pending_contact_ids(channel: str) -> list[str]:
    """Return the contact points that deliveries of a channel still wait for."""
    return [cid for (cid,) in Delivery.select(Delivery.contact).where(
        (Delivery.channel == channel) & _PENDING_LITERAL).tuples()]
