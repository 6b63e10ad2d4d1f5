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
_RECORD = ("INSERT INTO {table} (id, message_id, guardian_id, kind, site, at) SELECT {p}, {p}, {p}, 'read', {p}, {p}"
           " WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE message_id = {p} AND guardian_id = {p})")


def read_rows(app, message_id: str, guardian_id: str) -> list[tuple]:
    """The row of a guardian's read of a message, for :func:`insert_reads`."""
    return [(uuid7(), message_id, guardian_id, app.site, Receipt.at.db_value(app.clock.now()), message_id, guardian_id)]


def insert_reads(rows: list[tuple]) -> None:
    """Inside the caller's write transaction: record each read (rows of :func:`read_rows`) unless there is one.

    The web front commits the reports of many taps in one transaction and one statement
    (webui/group_commit.py).
    """
    db.execute_many(Receipt, _RECORD, None, rows)


def read_at(message_id: str, guardian_id: str):
    """Return when the guardian first reported reading the message, or None."""
    row = (Receipt.select(Receipt.at).where((Receipt.message == message_id) & (Receipt.guardian == guardian_id))
           .order_by(Receipt.at).first())
    return row.at if row else None
