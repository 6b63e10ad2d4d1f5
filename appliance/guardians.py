"""Guardians and their links to students (registration and approval flows build on this)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance import audit, contacts, db
from appliance.errors import InvalidInput, NotFound
from appliance.ids import uuid7
from appliance.models import Guardian, GuardianLink, School, Student


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


SEARCH_LIMIT = 50
_PHONE_LIKE = re.compile(r"[+0-9０-９\s\-()（）－]+")
_WIDE_DIGITS = str.maketrans("０１２３４５６７８９（）－", "0123456789()-")   # typed on a Japanese IME


@dataclass(frozen=True)
class GuardianSearch:
    """Guardians found (at most SEARCH_LIMIT) and how: 'name', 'email' or 'phone'."""

    by: str
    guardians: list[Guardian]
    children: dict[str, list[GuardianLink]]
    truncated: bool


def search_guardians(app, text: str, *, actor: str) -> GuardianSearch:
    """Find guardians by guardian or child name, or by an exact address or number (through lookup hashes).

    A search by contact value is written to the audit log without the value: knowing who
    holds an address is contact data too.
    """
    text = text.strip()
    if "@" in text:
        by, ids = "email", contacts.find_holders(app, "email", [text])[text]
    elif _PHONE_LIKE.fullmatch(text) and sum(c.isdigit() for c in text) >= 6:
        number = text.translate(_WIDE_DIGITS)
        found = contacts.find_holders(app, "phone", [number])[number] | contacts.find_holders(app, "fax", [number])[number]
        by, ids = "phone", found
    else:
        by, ids = "name", _ids_by_name(text)
    if by != "name":
        audit.record(app, actor, "guardians.search", detail={"by": by, "found": len(ids)})
    guardians = list(Guardian.select().where(Guardian.id.in_(list(ids)))
                     .order_by(Guardian.name, Guardian.id).limit(SEARCH_LIMIT + 1))
    shown = guardians[:SEARCH_LIMIT]
    return GuardianSearch(by, shown, children_of([g.id for g in shown]), len(guardians) > SEARCH_LIMIT)


def _ids_by_name(text: str) -> set[str]:
    if not text:
        return set()
    by_guardian = Guardian.select(Guardian.id).where(Guardian.name.contains(text)).limit(SEARCH_LIMIT + 1)
    by_child = (GuardianLink.select(GuardianLink.guardian).join(Student)
                .where(Student.name.contains(text) | Student.furigana.contains(text)).limit(SEARCH_LIMIT + 1))
    return {gid for (gid,) in by_guardian.tuples()} | {gid for (gid,) in by_child.tuples()}


def children_of(guardian_ids: list[str]) -> dict[str, list[GuardianLink]]:
    """Return guardian id -> links, each with its student and the student's school loaded."""
    children: dict[str, list[GuardianLink]] = {gid: [] for gid in guardian_ids}
    links = (GuardianLink.select(GuardianLink, Student, School).join(Student).join(School)
             .where(GuardianLink.guardian.in_(guardian_ids))
             .order_by(School.code, Student.grade, Student.class_name, Student.number))
    for link in links:
        children[link.guardian_id].append(link)
    return children


def get_guardian(guardian_id: str) -> Guardian:
    """Return a guardian by id, or raise NotFound."""
    guardian = Guardian.get_or_none(Guardian.id == guardian_id)
    if guardian is None:
        raise NotFound("保護者が見つかりません")
    return guardian
