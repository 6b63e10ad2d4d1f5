"""Enquiries: a stuck guardian's message to the operator's desk, kept apart from every school.

They come from the web form (``/help``) or by mail to :data:`MAIL_LOCAL` at the mail domain
(the inbound server, :mod:`appliance.inbound`). Neither is acknowledged by mail: the address
is nobody's confirmed address, and the operator answers in person.

How to reach the guardian (an address or a number, as they typed it) is contact data:
it is sealed like a contact point (AES-GCM with the contacts key, bound to the
enquiry's id), listed nowhere, and opened only for the operator on one enquiry's page,
which is written to the audit log. The school a guardian names is kept as a reference
so the operator knows whom to call; no school role has a page that reads this table.
"""
from __future__ import annotations

from dataclasses import dataclass

import peewee

from appliance import audit, db
from appliance.errors import InvalidInput, NotFound
from appliance.ids import uuid7
from appliance.models import Enquiry, School

STATES = ("open", "closed")
NAME_MAX, REACH_MAX, BODY_MAX = 60, 200, 2000
LIST_LIMIT = 200
MAIL_LOCAL = "help"         # enquiries by mail: help@<mail domain> (fixed, like entry-CODE@)
MAIL_NAME = "（メールでのお問い合わせ）"     # the name of a mail enquiry whose From line gives none
_KIND = "enquiry"     # the sealer's binding: a sealed value opens only on the row it was written for


def enquiry_address(app) -> str:
    """Return the address guardians mail enquiries to."""
    return f"{MAIL_LOCAL}@{app.config['mail']['domain']}"


def submit_enquiry(app, *, name: str, reach: str, school_id: str, body: str, via: str = "web") -> Enquiry:
    """Store a guardian's enquiry (open) with how to reach them sealed; raise InvalidInput naming the problem."""
    name, reach, body = " ".join(name.split()), reach.strip(), body.strip()
    for value, label, limit in ((name, "お名前", NAME_MAX), (reach, "連絡先", REACH_MAX), (body, "お問い合わせ内容", BODY_MAX)):
        if not value:
            raise InvalidInput(f"{label}を入力してください")
        if len(value) > limit:
            raise InvalidInput(f"{label}は{limit}文字までです")
    school = School.get_or_none(School.id == school_id) if school_id else None
    if school_id and school is None:
        raise InvalidInput("学校を一覧から選んでください")
    enquiry_id = uuid7()
    with db.write():
        enquiry = Enquiry.create(id=enquiry_id, school=school, name=name, body=body, created_at=app.clock.now(),
                                 reach_sealed=app.sealer.seal(enquiry_id, _KIND, reach))
        audit.record(app, "guardian:enquiry", "enquiry.create", school_id=school.id if school else None,
                     subject_id=enquiry_id, detail={"via": via})
    return enquiry


def list_enquiries(status: str, *, limit: int = LIST_LIMIT) -> list[Enquiry]:
    """Return enquiries in a state, oldest open first (newest closed first), with their school; no contact data."""
    if status not in STATES:
        raise InvalidInput("状態の指定が正しくありません")
    order = Enquiry.created_at if status == "open" else Enquiry.created_at.desc()
    return list(Enquiry.select(Enquiry.id, Enquiry.school, Enquiry.name, Enquiry.body, Enquiry.status,
                               Enquiry.created_at, Enquiry.closed_at, Enquiry.closed_by)
                .where(Enquiry.status == status).order_by(order, Enquiry.id).limit(limit))


def count_enquiries() -> dict[str, int]:
    """Return how many enquiries are in each state."""
    counts = dict.fromkeys(STATES, 0)
    for status, count in Enquiry.select(Enquiry.status, peewee.fn.COUNT(Enquiry.id)).group_by(Enquiry.status).tuples():
        counts[status] = count
    return counts


@dataclass(frozen=True)
class RevealedEnquiry:
    enquiry: Enquiry
    reach: str


def reveal_enquiry(app, enquiry_id: str, *, actor: str) -> RevealedEnquiry:
    """Return one enquiry with how to reach the guardian, for the operator; the view is audited."""
    enquiry = Enquiry.get_or_none(Enquiry.id == enquiry_id)
    if enquiry is None:
        raise NotFound("お問い合わせが見つかりません")
    audit.record(app, actor, "enquiry.view", subject_id=enquiry.id)
    return RevealedEnquiry(enquiry, app.sealer.open(enquiry.id, _KIND, enquiry.reach_sealed))


def set_enquiry_status(app, enquiry_id: str, status: str, *, actor: str) -> None:
    """Close or reopen an enquiry; audited."""
    if status not in STATES:
        raise InvalidInput("状態の指定が正しくありません")
    closed = status == "closed"
    with db.write():
        changed = (Enquiry.update(status=status, closed_at=app.clock.now() if closed else None,
                                  closed_by=actor if closed else None)
                   .where(Enquiry.id == enquiry_id).execute())
        if not changed:
            raise NotFound("お問い合わせが見つかりません")
        audit.record(app, actor, f"enquiry.{'close' if closed else 'reopen'}", subject_id=enquiry_id)
