"""Quiet hours: a guardian's routine messages released inside them become due when they end.

Applied where deliveries are made (the snapshot's INSERT ... SELECT), not where they are
claimed: the claim reads the head of the queue index and must stay blind to
guardians, while the snapshot already walks each recipient once. The due time is one
SQL CASE over the guardian's two columns with every possible end (whole Tokyo hours,
24 of them) bound as values, so a 160,000-delivery send still costs one statement and
a key lookup per guardian. Emergency messages, and system mail, ignore quiet hours.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import peewee

from appliance.clock import TOKYO
from appliance.models import Delivery, Guardian


def quiet_end(moment: datetime, quiet_from: int | None, quiet_until: int | None) -> datetime:
    """Return when a delivery due at moment may go: moment itself, or the end of the quiet hours it falls in."""
    if quiet_from is None or quiet_until is None or not _inside(_hour(moment), quiet_from, quiet_until):
        return moment
    return _next_hour(moment, quiet_until)


def due_at_expression(moment: datetime) -> peewee.Node:
    """SQL for the due time of a routine delivery released at moment, per the row's Guardian columns."""
    hour = _hour(moment)
    inside = (((Guardian.quiet_from < Guardian.quiet_until) & (Guardian.quiet_from <= hour)
               & (Guardian.quiet_until > hour))
              | ((Guardian.quiet_from > Guardian.quiet_until)
                 & ((Guardian.quiet_from <= hour) | (Guardian.quiet_until > hour))))
    ends = peewee.Case(Guardian.quiet_until, [(until, _stored(_next_hour(moment, until))) for until in range(24)],
                       _stored(moment))
    return peewee.Case(None, [(Guardian.quiet_from.is_null(False) & inside, ends)], _stored(moment))


def _stored(moment: datetime) -> peewee.Node:
    # Bound as the field stores times (naive UTC text), or they would not compare.
    return peewee.Value(moment, converter=Delivery.due_at.db_value)


def _hour(moment: datetime) -> int:
    return moment.astimezone(TOKYO).hour


def _inside(hour: int, quiet_from: int, quiet_until: int) -> bool:
    if quiet_from < quiet_until:
        return quiet_from <= hour < quiet_until
    return hour >= quiet_from or hour < quiet_until


def _next_hour(moment: datetime, hour: int) -> datetime:
    """The first time after moment that is hour:00 in Tokyo."""
    local = moment.astimezone(TOKYO)
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(moment.tzinfo)
