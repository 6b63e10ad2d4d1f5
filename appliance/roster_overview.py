"""What staff see of the roster: classes, their students, groups, and the state of guardians' registration.

Registration state of a student: ``registered`` when at least one guardian's link is
approved (messages reach them), else ``pending`` when one awaits the school's
decision, else ``none`` (rejected links count as none). Addresses are counted over
the approved guardians (those messages go to), through contacts.summarise_contacts:
counts and states, never values. An address "bounces" when its contact point is
``suspended``: the MTA suspends an address after hard bounces on several messages
(deliveries.SUSPEND_AFTER_BOUNCES), and messages skip it until it is fixed. A single
bounce is a delivery figure of that message, not a state of the address.

A class page costs a fixed number of indexed queries, whatever the school's size.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import peewee

from appliance.contacts import ContactSummary, summarise_contacts
from appliance.models import Guardian, GuardianLink, Membership, School, Student, StudentGroup
from appliance.targeting import class_key

STATES = ("registered", "pending", "none")
_EMAIL = "email"


@dataclass(frozen=True)
class ClassSummary:
    """One class: how many enrolled students, and how many are registered, pending or without guardians."""

    grade: int
    class_name: str
    students: int
    registered: int
    pending: int

    @property
    def none(self) -> int:
        return self.students - self.registered - self.pending


@dataclass(frozen=True)
class StudentRow:
    """A student in a class list."""

    id: str
    number: int
    name: str
    furigana: str
    groups: tuple[str, ...]
    state: str
    addresses: int
    bouncing: int


@dataclass
class ClassOverview:
    """A class list with its summary line."""

    grade: int
    class_name: str
    students: list[StudentRow] = field(default_factory=list)

    def count(self, state: str) -> int:
        """Return how many students are in a registration state."""
        return sum(1 for s in self.students if s.state == state)

    @property
    def addresses(self) -> int:
        return sum(s.addresses for s in self.students)

    @property
    def bouncing(self) -> int:
        return sum(s.bouncing for s in self.students)


@dataclass(frozen=True)
class GuardianRow:
    """One of a student's guardians: name, relationship, link state, contact counts by kind."""

    link_id: str
    name: str
    relationship: str
    status: str                  # the link's: pending, approved, rejected
    requested_at: datetime
    decided_at: datetime | None
    contacts: ContactSummary

    @property
    def addresses(self) -> int:
        return self.contacts.counts.get(_EMAIL, 0)

    @property
    def bouncing(self) -> int:
        return self.contacts.suspended.get(_EMAIL, 0)


@dataclass(frozen=True)
class Group:
    id: str
    kind: str
    key: str
    name: str


@dataclass(frozen=True)
class StudentDetail:
    """A student's page: groups and guardians (never an address)."""

    groups: list[Group]
    guardians: list[GuardianRow]

    @property
    def state(self) -> str:
        return _state({g.status for g in self.guardians})


def _state(statuses: set[str]) -> str:
    if "approved" in statuses:
        return "registered"
    return "pending" if "pending" in statuses else "none"


def class_summaries(school: School) -> list[ClassSummary]:
    """Return every class with enrolled students and its registration counts, in one aggregate query."""
    def has_link(status: str) -> peewee.Node:
        return peewee.fn.EXISTS(GuardianLink.select(GuardianLink.id).where(
            (GuardianLink.student == Student.id) & (GuardianLink.status == status)))

    approved = has_link("approved")
    rows = (Student.select(Student.grade, Student.class_name, peewee.fn.COUNT(Student.id),
                           peewee.fn.SUM(peewee.Case(None, [(approved, 1)], 0)),
                           peewee.fn.SUM(peewee.Case(None, [(~approved & has_link("pending"), 1)], 0)))
            .where((Student.school == school) & (Student.status == "enrolled"))
            .group_by(Student.grade, Student.class_name).tuples())
    return sorted((ClassSummary(*row) for row in rows), key=lambda c: class_key(c.grade, c.class_name))


def class_overview(school: School, grade: int, class_name: str) -> ClassOverview:
    """Return a class's enrolled students with groups, registration state and address counts."""
    students = list(Student.select(Student.id, Student.number, Student.name, Student.furigana)
                    .where((Student.school == school) & (Student.status == "enrolled")
                           & (Student.grade == grade) & (Student.class_name == class_name))
                    .order_by(Student.number).tuples())
    ids = [sid for sid, *_ in students]
    groups = _groups_of(ids)
    links = list(GuardianLink.select(GuardianLink.student, GuardianLink.guardian, GuardianLink.status)
                 .where(GuardianLink.student.in_(ids)).tuples())
    statuses: dict[str, set[str]] = defaultdict(set)
    approved: dict[str, list[str]] = defaultdict(list)
    for student_id, guardian_id, status in links:
        statuses[student_id].add(status)
        if status == "approved":
            approved[student_id].append(guardian_id)
    summaries = summarise_contacts(list({g for gs in approved.values() for g in gs}))
    overview = ClassOverview(grade, class_name)
    for sid, number, name, furigana in students:
        mine = [summaries[g] for g in approved[sid]]
        overview.students.append(StudentRow(
            sid, number, name, furigana, tuple(g.name for g in groups[sid]), _state(statuses[sid]),
            sum(s.counts.get(_EMAIL, 0) for s in mine), sum(s.suspended.get(_EMAIL, 0) for s in mine)))
    return overview


def student_detail(student: Student) -> StudentDetail:
    """Return a student's groups and guardians with their link state and contact counts."""
    links = list(GuardianLink.select(GuardianLink.id, GuardianLink.guardian, Guardian.name,
                                     GuardianLink.relationship, GuardianLink.status, GuardianLink.created_at,
                                     GuardianLink.decided_at)
                 .join(Guardian).where(GuardianLink.student == student)
                 .order_by(GuardianLink.created_at, GuardianLink.id).tuples())
    summaries = summarise_contacts([guardian_id for _, guardian_id, *_ in links])
    guardians = [GuardianRow(link_id, name, relationship, status, created, decided, summaries[guardian_id])
                 for link_id, guardian_id, name, relationship, status, created, decided in links]
    return StudentDetail(_groups_of([student.id])[student.id], guardians)


def _groups_of(student_ids: list[str]) -> dict[str, list[Group]]:
    """Return student id -> their clubs, routes and custom groups, in one query."""
    groups: dict[str, list[Group]] = defaultdict(list)
    rows = (Membership.select(Membership.student, StudentGroup.id, StudentGroup.kind, StudentGroup.key,
                              StudentGroup.name)
            .join(StudentGroup).where(Membership.student.in_(student_ids))
            .order_by(StudentGroup.kind, StudentGroup.name).tuples())
    for student_id, *group in rows:
        groups[student_id].append(Group(*group))
    return groups
