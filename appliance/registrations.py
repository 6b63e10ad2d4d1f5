"""Guardian registrations a school decides: pending links to its students, approved or rejected.

A registration (made by the QR sheet or an empty mail) is a pending GuardianLink. Only
approved links are followed by targeting, so approving one is what lets messages reach
that guardian about that child; rejecting keeps the row as the record of the decision.
Staff see the child, the guardian's name and relationship and when it was asked for:
never an address.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from appliance import audit, db
from appliance.errors import InvalidInput, NotFound
from appliance.models import Guardian, GuardianLink, School, Student

DECISIONS = {"approve": "approved", "reject": "rejected"}


@dataclass(frozen=True)
class PendingRegistration:
    """One link awaiting the school's decision, as staff may see it."""

    link_id: str
    student_id: str
    grade: int
    class_name: str
    number: int
    student_name: str
    guardian_name: str
    relationship: str
    requested_at: datetime


def pending_registrations(school: School, *, limit: int = 500) -> list[PendingRegistration]:
    """Return the pending links to the school's enrolled students, oldest first, in one query."""
    rows = (GuardianLink.select(GuardianLink.id, Student.id, Student.grade, Student.class_name, Student.number,
                                Student.name, Guardian.name, GuardianLink.relationship, GuardianLink.created_at)
            .join(Student).switch(GuardianLink).join(Guardian)
            .where((Student.school == school) & (Student.status == "enrolled")
                   & (GuardianLink.status == "pending"))
            .order_by(GuardianLink.created_at, GuardianLink.id).limit(limit).tuples())
    return [PendingRegistration(*row) for row in rows]


def count_pending(school: School) -> int:
    """Return how many registrations of the school's enrolled students await a decision."""
    return (GuardianLink.select().join(Student)
            .where((Student.school == school) & (Student.status == "enrolled")
                   & (GuardianLink.status == "pending")).count())


def decide_link(app, school: School, link_id: str, decision: str, *, actor: str) -> GuardianLink:
    """Approve or reject a pending link to one of the school's students; audited."""
    status = DECISIONS.get(decision)
    if status is None:
        raise InvalidInput("承認か却下を選んでください")
    with db.write():
        link = (GuardianLink.select().join(Student)
                .where((GuardianLink.id == link_id) & (Student.school == school)).first())
        if link is None:
            raise NotFound("この登録申請は見つかりません")
        if link.status != "pending":
            raise InvalidInput("この登録申請はすでに処理されています")
        link.status, link.decided_at = status, app.clock.now()
        link.save(only=[GuardianLink.status, GuardianLink.decided_at])
        audit.record(app, actor, f"registration.{decision}", school_id=school.id, subject_id=link.id,
                     detail={"student_id": link.student_id, "guardian_id": link.guardian_id})
    return link
