"""Guardians and their links to students (registration and approval flows build on this)."""
from __future__ import annotations

from collections.abc import Iterable

from appliance import contacts, db
from appliance.errors import InvalidInput
from appliance.models import Guardian, GuardianLink


def add_guardian(app, name: str, *, student_ids: Iterable[str], emails: Iterable[str] = (),
                 relationship: str = "", approved: bool = False) -> Guardian:
    """Create a guardian linked to students, with email addresses (active when approved)."""
    name = name.strip()
    if not name:
        raise InvalidInput("保護者氏名が空です")
    student_ids = list(dict.fromkeys(student_ids))
    now = app.clock.now()
    with db.write():
        guardian = Guardian.create(name=name, created_at=now)
        link_students(app, guardian.id, student_ids, relationship=relationship, approved=approved)
        emails = list(emails)
        if emails:
            contacts.add_contacts(app, guardian.id, "email", emails,
                                  status="active" if approved else "pending")
    return guardian


def link_students(app, guardian_id: str, student_ids: Iterable[str], *, relationship: str = "",
                  approved: bool = False) -> None:
    """Link a guardian to further students (siblings); links already there are left as they are."""
    now = app.clock.now()
    rows = [{"id": GuardianLink.id.default(), "guardian": guardian_id, "student": student_id,
             "relationship": relationship, "status": "approved" if approved else "pending",
             "created_at": now, "decided_at": now if approved else None}
            for student_id in student_ids]
    if rows:
        with db.write():
            GuardianLink.insert_many(rows).on_conflict_ignore().execute()
