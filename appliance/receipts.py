"""Read reports (閲覧報告): one tap on the link in a message records that the guardian read it.

A read report is a fact (insert-only, any site may write it, merged by union). It is
written once per guardian and message: the first tap inserts the row, later taps find
it and write nothing, so a guardian tapping ten times, a phone retrying a request or
a reload are all the same report, and a burst of taps costs reads, not writes. It is
committed before the page is answered, so a report the guardian saw acknowledged is
never lost. Two sites may each record the first tap during a split; figures count
distinct guardians, so the union changes nothing.
"""
from __future__ import annotations

from appliance import db
from appliance.ids import uuid7
from appliance.models import Receipt

# Plain SQL: this runs on every tap of a 40,000-guardian burst.
_RECORD = ("INSERT INTO receipt (id, message_id, guardian_id, kind, site, at) SELECT {p}, {p}, {p}, 'read', {p}, {p}"
           " WHERE NOT EXISTS (SELECT 1 FROM receipt WHERE message_id = {p} AND guardian_id = {p})")


def insert_read(app, message_id: str, guardian_id: str) -> bool:
    """Inside the caller's write transaction: record a read unless there is one; return whether it was the first.

    The web front commits the reports of many taps in one transaction (webui/group_commit.py).
    """
    cursor = db.database.execute_sql(_RECORD.format(p=db.database.param),
                                     (uuid7(), message_id, guardian_id, app.site, Receipt.at.db_value(app.clock.now()),
                                      message_id, guardian_id))
    return db.database.rows_affected(cursor) > 0


def read_at(message_id: str, guardian_id: str):
    """Return when the guardian first reported reading the message, or None."""
    row = (Receipt.select(Receipt.at).where((Receipt.message == message_id) & (Receipt.guardian == guardian_id))
           .order_by(Receipt.at).first())
    return row.at if row else None
