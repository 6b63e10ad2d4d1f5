"""Guardians and their links to students (registration and approval flows build on this)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance import contacts, db
from appliance.errors import InvalidInput
from appliance.ids import uuid7
from appliance.models import Guardian, GuardianLink


@dataclass(frozen=True)
class NewGuardian:
    """A guardian to create: name, the students they are guardian of, their email addresses."""

    name: str
    student_ids: Sequence[str]
    emails: Sequence[str] = ()
    relationship: str = ""


def add_guardians(app, new: Sequence[NewGuardian], *, approved: bool = False) -> list[str]:
    """Create guardians with their links and addresses in bulk (active when approved); return their ids."""
    if any(not guardian.name.strip() for guardian in new):
        raise InvalidInput("保護者氏名が空です")
    now = app.clock.now()
    status = "approved" if approved else "pending"
    ids = [uuid7() for _ in new]
    with db.write():
        db.insert_rows(Guardian, [Guardian.id, Guardian.name, Guardian.created_at],
                       [(gid, guardian.name.strip(), now) for gid, guardian in zip(ids, new)])
        db.insert_rows(GuardianLink, _LINK_FIELDS,
                       [(uuid7(), gid, student_id, guardian.relationship, status, now, now if approved else None)
                        for gid, guardian in zip(ids, new) for student_id in dict.fromkeys(guardian.student_ids)])
        contacts.add_contacts_bulk(app, [(gid, "email", email) for gid, guardian in zip(ids, new)
                                         for email in guardian.emails],
                                   status="active" if approved else "pending")
    return ids


def add_guardian(app, name: str, *, student_ids: Iterable[str], emails: Iterable[str] = (),
                 relationship: str = "", approved: bool = False) -> Guardian:
    """Create one guardian linked to students, with email addresses (active when approved)."""
    [guardian_id] = add_guardians(app, [NewGuardian(name, list(student_ids), list(emails), relationship)],
                                  approved=approved)
    return Guardian.get_by_id(guardian_id)


def link_students(app, guardian_id: str, student_ids: Iterable[str], *, relationship: str = "",
                  approved: bool = False) -> None:
    """Link a guardian to further students (siblings); links already there are left as they are."""
    now = app.clock.now()
    rows = [{"id": uuid7(), "guardian": guardian_id, "student": student_id,
             "relationship": relationship, "status": "approved" if approved else "pending",
             "created_at": now, "decided_at": now if approved else None}
            for student_id in student_ids]
    if rows:
        with db.write():
            GuardianLink.insert_many(rows).on_conflict_ignore().execute()


_LINK_FIELDS = [GuardianLink.id, GuardianLink.guardian, GuardianLink.student, GuardianLink.relationship,
                GuardianLink.status, GuardianLink.created_at, GuardianLink.decided_at]
