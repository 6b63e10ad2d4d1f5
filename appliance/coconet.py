"""CoCo-net, the disaster page: events, children's states, pickups, notices and guardians' checks.

Staff open an event (which can send a first notice on every channel), set each
child's state (one at a time, or a whole class at once), record who collected a
child, and post notices. A guardian's link shows only their own children in the
school's open events and the notices, and records each opening, "確認しました" and
short reply. Everything recorded during an event is a fact (see
:mod:`appliance.models.coconet`): a child's current state is its newest state row.

Roles (enforced by the web layer): any staff of the school sets states, records
pickups and reads the dashboard, since in a disaster whoever stands by a class
calls its roll; opening and closing an event and posting notices speak for the
school to every guardian, so they are for school admins (and the operator).
"""
from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import peewee

from appliance import audit, contacts, db, messages, roster, targeting, tokens
from appliance.clock import to_tokyo
from appliance.errors import InvalidInput, NotFound
from appliance.ids import uuid7
from appliance.models import (CapabilityToken, CoconetCheck, CoconetEvent, CoconetNotice, CoconetPickup, CoconetState, Guardian,
                              GuardianLink, School, Student)
from appliance.models.message import CHANNELS
from appliance.models.roster import seat_of

KINDS = {"earthquake": "地震", "tsunami": "津波", "typhoon": "台風", "flood": "大雨・洪水", "fire": "火災",
         "intruder": "不審者", "drill": "訓練", "other": "その他"}
STATES = {"protected": "学校で保護", "handed_over": "引き渡し済み", "evacuated": "避難",
          "absent": "本日欠席", "unknown": "不明"}
CHECK_KINDS = ("open", "confirm", "reply")
MAX_TITLE = 100
MAX_BODY = 1000
MAX_NOTICE = 300     # characters; the guardian page shows NOTICES_SHOWN of them and stays under 10 KB
NOTICES_SHOWN = 5
MAX_PLACE = 40
MAX_NOTE = 100
MAX_REPLY = 100      # "17:00に迎えに行きます": a short reply, not a letter
MAX_NAME = 40
FIRST_NOTICE = ("児童の安否を確認しています。お手元のCoCo-netのリンク（配布した用紙のQRコード）から、"
                "お子さまの状況と学校からのお知らせをご確認ください。")


# --- events -----------------------------------------------------------------------------------

def open_event(app, school: School, *, kind: str, title: str, body: str = "", send_notice: bool = True,
               actor: str, author=None) -> CoconetEvent:
    """Open an event (CoCo-net on) and, if asked, send an emergency first notice on every channel."""
    title, body = _text(title, MAX_TITLE, "件名", required=True), _text(body, MAX_BODY, "本文")
    if kind not in KINDS:
        raise InvalidInput(f"災害の種類が不明です: {kind!r}")
    with db.write():
        if current_event(school) is not None:
            raise InvalidInput("この学校ではすでに災害対応が始まっています。先に終了してください")
        message = None
        # A school with no guardian yet still opens its page; the message would have no recipient.
        if send_notice and targeting.count_audience(school, targeting.parse_rule("all"))["guardians"]:
            message = messages.create_message(
                app, school, audience="all", subject=title, body=f"{body}\n\n{FIRST_NOTICE}".lstrip(),
                priority="emergency", channels=CHANNELS, author=author, actor=actor)
        event = CoconetEvent.create(school=school, kind=kind, title=title, body=body, message=message,
                                    opened_by=actor, opened_at=app.clock.now())
        if body:
            post_notice(app, event, body, actor=actor)
        audit.record(app, actor, "coconet.open", school_id=school.id, subject_id=event.id,
                     detail={"kind": kind, "message": message.id if message else None})
    return event


def close_event(app, event: CoconetEvent, *, actor: str) -> CoconetEvent:
    """Close an event: the page goes quiet, and its whole record is kept as it was."""
    _check_open(event)
    with db.write():
        event.closed_by, event.closed_at = actor, app.clock.now()
        event.save(only=[CoconetEvent.closed_by, CoconetEvent.closed_at])
        audit.record(app, actor, "coconet.close", school_id=event.school_id, subject_id=event.id)
    return event


def current_event(school: School) -> CoconetEvent | None:
    """Return the school's open event, if any."""
    return CoconetEvent.get_or_none((CoconetEvent.school == school) & CoconetEvent.closed_at.is_null())


def school_events(school: School) -> list[CoconetEvent]:
    """Return the school's events, newest first (the archive)."""
    return list(CoconetEvent.select().where(CoconetEvent.school == school).order_by(CoconetEvent.opened_at.desc()))


def find_event(school: School, event_id: str) -> CoconetEvent:
    """Return one of the school's events, or raise NotFound (another school's event is not found)."""
    event = CoconetEvent.get_or_none((CoconetEvent.id == event_id) & (CoconetEvent.school == school))
    if event is None:
        raise NotFound("災害対応が見つかりません")
    return event


# --- children ---------------------------------------------------------------------------------

def find_student(school: School, student_id: str) -> Student:
    """Return an enrolled child of the school by id (the name card's code), or raise NotFound."""
    student = Student.get_or_none((Student.id == student_id) & (Student.school == school)
                                  & (Student.status == "enrolled"))
    if student is None:
        raise NotFound("児童が見つかりません")
    return student


def find_students(school: School, student_ids: Iterable[str]) -> list[Student]:
    """Return enrolled children of the school by id, or raise NotFound if any is not one."""
    wanted = set(student_ids)
    students = list(Student.select().where(Student.id.in_(list(wanted)) & (Student.school == school)
                                           & (Student.status == "enrolled")))
    if not wanted or len(students) != len(wanted):
        raise NotFound("児童が見つかりません")
    return students


def card_code(student: Student) -> str:
    """Return the stable code printed (as a QR code's URL) on a child's name card: the student's id.

    The id survives rollover and re-seating, and the card's URL opens only for signed-in
    staff of the school, so it needs no secret of its own.
    """
    return student.id


def set_states(app, event: CoconetEvent, students: Iterable[Student], state: str, *, place: str = "",
               note: str = "", actor: str) -> int:
    """Record the same state for one child or many (a class roll) in one statement; return how many."""
    _check_open(event)
    if state not in STATES:
        raise InvalidInput(f"状態が不明です: {state!r}")
    if state == "handed_over":
        raise InvalidInput("引き渡しは、引き取った人と一緒に引き渡しの記録から登録してください")
    place, note = _text(place, MAX_PLACE, "場所"), _text(note, MAX_NOTE, "メモ")
    if state == "evacuated" and not place:
        raise InvalidInput("避難先を入力してください")
    students = list(students)
    if any(s.school_id != event.school_id or s.status != "enrolled" for s in students):
        raise NotFound("児童が見つかりません")
    now = app.clock.now()
    with db.write():
        db.insert_rows(CoconetState, _STATE_FIELDS,
                       [(uuid7(), event.id, s.id, state, place, note, actor, app.site, now) for s in students])
    return len(students)


def set_class_state(app, event: CoconetEvent, grade: int, class_name: str, state: str, *, place: str = "",
                    note: str = "", actor: str) -> int:
    """Record one state for every enrolled child of a class ("all of 3-1 protected in the gym")."""
    students = roster.class_students(event.school, grade, class_name)
    if not students:
        raise NotFound(f"{grade}年{class_name}組の児童が見つかりません")
    return set_states(app, event, students, state, place=place, note=note, actor=actor)


def guardians_of(student: Student) -> list[Guardian]:
    """Return the child's approved guardians (those staff may hand the child over to by name)."""
    return list(Guardian.select().join(GuardianLink)
                .where((GuardianLink.student == student) & (GuardianLink.status == "approved"))
                .order_by(Guardian.name))


def record_pickup(app, event: CoconetEvent, student: Student, *, guardian_id: str | None = None,
                  adult_name: str = "", note: str = "", collected_at: datetime | None = None,
                  actor: str) -> CoconetPickup:
    """Register who collected a child (a registered guardian, or a named other adult); the state follows."""
    _check_open(event)
    if student.school_id != event.school_id or student.status != "enrolled":
        raise NotFound("児童が見つかりません")
    adult_name, note = _text(adult_name, MAX_NAME, "引き取った人の氏名"), _text(note, MAX_NOTE, "メモ")
    if guardian_id:
        if guardian_id not in {g.id for g in guardians_of(student)}:
            raise InvalidInput("この児童の登録された保護者ではありません")
        adult_name = ""
    elif not adult_name:
        raise InvalidInput("引き取った保護者を選ぶか、引き取った人の氏名を入力してください")
    now = app.clock.now()
    collected_at = now if collected_at is None else collected_at
    if collected_at.tzinfo is None:
        raise InvalidInput("日時にはタイムゾーンが必要です")
    if collected_at > now:
        raise InvalidInput("引き渡しの時刻が未来になっています")
    with db.write():
        pickup = CoconetPickup.create(event=event, student=student, guardian=guardian_id or None,
                                      adult_name=adult_name, note=note, collected_at=collected_at,
                                      actor=actor, site=app.site, at=now)
        CoconetState.create(event=event, student=student, state="handed_over", note=note, actor=actor,
                            site=app.site, at=now)
    return pickup


class ChildState(NamedTuple):
    """A child's newest state in an event (a tuple: the dashboard makes one for every child of a school)."""

    state: str
    place: str
    note: str
    actor: str
    at: datetime


class Pickup(NamedTuple):
    """A child's latest pickup in an event: who collected them (a registered guardian or a named adult), when."""

    collector: str
    note: str
    collected_at: datetime


# Plain SQL (db.fetch): the dashboard and the roll call read these on every refresh; a guardian's page reads
# pickups of children handed over. Every state row of the children, oldest first, in the index's order
# (event, student, time, id): a child has a handful, and the last one read is the newest (cheaper than a
# window function).
_CURRENT_STATES = ("SELECT student_id, state, place, note, actor, at FROM coconet_state"
                   " WHERE event_id = {{p}}{only} ORDER BY student_id, at, id")
_LATEST_PICKUPS = (
    "SELECT p.student_id, coalesce(g.name, p.adult_name), p.note, p.collected_at FROM coconet_pickup p"
    " LEFT JOIN guardian g ON g.id = p.guardian_id WHERE p.event_id = {{p}}{only} ORDER BY p.at, p.id")
_utc = CoconetState.at.python_value


def current_states(event_id: str, student_ids: Iterable[str] | None = None) -> dict[str, ChildState]:
    """Return the newest state per child of the event (children never set are absent from the map)."""
    sql, params = _for_children(_CURRENT_STATES, "student_id", event_id, student_ids)
    newest = {row[0]: row for row in db.fetch(sql, params)}
    return {sid: ChildState(state, place, note, actor, _utc(at)) for sid, state, place, note, actor, at
            in newest.values()}


def latest_pickups(event_id: str, student_ids: Iterable[str] | None = None) -> dict[str, Pickup]:
    """Return the latest pickup per child of the event."""
    sql, params = _for_children(_LATEST_PICKUPS, "p.student_id", event_id, student_ids)
    return {sid: Pickup(collector, note, _utc(at)) for sid, collector, note, at in db.fetch(sql, params)}


def _for_children(template: str, column: str, event_id: str, student_ids: Iterable[str] | None) -> tuple[str, list]:
    params = [event_id]
    if student_ids is None:
        return template.format(only=""), params
    ids = list(student_ids)
    return template.format(only=f" AND {column} IN ({db.placeholders(len(ids))})"), params + ids


def pickup_register(event: CoconetEvent) -> list[CoconetPickup]:
    """Return every pickup of the event, newest first (the 引き渡し log)."""
    return list(CoconetPickup.select(CoconetPickup, Student, Guardian).join_from(CoconetPickup, Student)
                .join_from(CoconetPickup, Guardian, peewee.JOIN.LEFT_OUTER)
                .where(CoconetPickup.event == event).order_by(CoconetPickup.at.desc()))


def student_history(event: CoconetEvent, student: Student) -> list[CoconetState]:
    """Return every state recorded for one child in the event, newest first."""
    return list(CoconetState.select().where((CoconetState.event == event) & (CoconetState.student == student))
                .order_by(CoconetState.at.desc(), CoconetState.id.desc()))


# --- notices ----------------------------------------------------------------------------------

def post_notice(app, event: CoconetEvent, body: str, *, actor: str) -> CoconetNotice:
    """Post a notice from the school to every guardian of the school."""
    _check_open(event)
    body = _text(body, MAX_NOTICE, "お知らせ", required=True)
    with db.write():
        return CoconetNotice.create(event=event, body=body, actor=actor, site=app.site, at=app.clock.now())


def event_notices(event: CoconetEvent) -> list[CoconetNotice]:
    """Return the event's notices, newest first."""
    return list(CoconetNotice.select().where(CoconetNotice.event == event)
                .order_by(CoconetNotice.at.desc(), CoconetNotice.id.desc()))


# --- the guardian's page ----------------------------------------------------------------------

# The guardian's page's values are tuples: the web UI keys the pages it keeps ready by such a view with the
# guardian's own values taken out (webui/coconet/guardian.py), so every field counts in its equality.
class ChildView(NamedTuple):
    """One of the guardian's children as the page shows it."""

    name: str
    grade: int
    class_name: str
    state: ChildState | None
    pickup: Pickup | None       # only while the child's state is "handed over"


class NoticeView(NamedTuple):
    """A notice from the school, as the guardian's page shows it."""

    body: str
    at: datetime


class EventView(NamedTuple):
    """One open event of a school where the guardian has a child."""

    event_id: str
    title: str
    opened_at: datetime
    school_name: str
    children: tuple[ChildView, ...]
    notices: tuple[NoticeView, ...]
    older_notices: int
    confirmed_at: datetime | None
    reply: str                  # the guardian's newest reply, "" if none


class GuardianView(NamedTuple):
    """What one guardian's link shows: only their own children, in their schools' open events."""

    guardian_id: str
    guardian_name: str
    locale: str
    events: tuple[EventView, ...]


def guardian_link(app, guardian_id: str) -> str:
    """Return the guardian's CoCo-net link (one per guardian, for mail and the printed sheet)."""
    return guardian_links(app, [guardian_id])[guardian_id]


def guardian_links(app, guardian_ids: Iterable[str]) -> dict[str, str]:
    """Return guardian id -> CoCo-net link, issuing the tokens in one statement."""
    issued = tokens.issue_tokens(app, "coconet", [(gid, None) for gid in guardian_ids])
    return {gid: tokens.token_url(app, "coconet", token) for (gid, _), token in issued.items()}


# Plain SQL (db.fetch): every guardian may open this page within a minute, while mail goes out. One
# statement reads what a link shows: the guardian, each approved enrolled child with its school's open event
# (one at most: coconet_event_open), the child's newest state (the last entry of its index, the row
# found by rowid: one b-tree, not the key's two), the guardian's newest confirmation and reply in
# that event, and how many notices the event has; the notices' text is kept per worker with that count
# (notices are facts, only ever added, so the count names the list). One row per child; a guardian
# without children has one row, its child and event NULL. One statement is one read transaction: no
# BEGIN and COMMIT around it (through peewee they cost an opening ~10% during a burst). Only the pickups
# of children handed over, and the notices when their count changed, are read by statements of their own.
_LINK_VIEW = (
    "SELECT g.id, g.name, g.locale, s.id, s.name, s.grade, s.class_name, e.id, e.title, e.opened_at, sc.name,"
    " st.state, st.place, st.note, st.actor, st.at,"
    " (SELECT max(c.at) FROM coconet_check c WHERE c.event_id = e.id AND c.guardian_id = g.id"
    "  AND c.kind = 'confirm'),"
    " (SELECT c.body FROM coconet_check c WHERE c.event_id = e.id AND c.guardian_id = g.id AND c.kind = 'reply'"
    "  ORDER BY c.at DESC, c.id DESC LIMIT 1),"
    " (SELECT count(*) FROM coconet_notice n WHERE n.event_id = e.id)"
    " FROM capability_token t JOIN guardian g ON g.id = t.guardian_id"
    " LEFT JOIN guardian_link l ON l.guardian_id = g.id AND l.status = 'approved'"
    " LEFT JOIN student s ON s.id = l.student_id AND s.status = 'enrolled'"
    " LEFT JOIN coconet_event e ON e.school_id = s.school_id AND e.closed_at IS NULL"
    " LEFT JOIN school sc ON sc.id = e.school_id"
    " LEFT JOIN coconet_state st ON st.rowid = (SELECT x.rowid FROM coconet_state x WHERE x.event_id = e.id"
    "  AND x.student_id = s.id ORDER BY x.at DESC, x.id DESC LIMIT 1)"
    " WHERE t.token_hash = {p} AND t.scope = 'coconet' AND t.expires_at > {p}"
    " ORDER BY e.opened_at DESC, e.id, s.grade DESC, s.class_name, s.number")
# The newest notices with the count they were read with (a notice may come in meanwhile).
_NOTICES = ("SELECT body, at, (SELECT count(*) FROM coconet_notice WHERE event_id = {p})"
            " FROM coconet_notice WHERE event_id = {p}"
            f" ORDER BY at DESC, id DESC LIMIT {NOTICES_SHOWN}")    # a literal: a bound LIMIT is planned anew
NOTICE_LISTS_KEPT = 256        # events whose notices a worker keeps (all forgotten on reaching it)
_notices_kept: dict[str, tuple[int, tuple[NoticeView, ...]]] = {}      # event -> (count, newest notices)


def link_view(app, token: str) -> GuardianView | None:
    """Return what a guardian's CoCo-net link shows: approved, enrolled children in open events, and notices.

    None if the token is not a live CoCo-net link (:func:`tokens.resolve_token` tells why).
    """
    if not tokens.well_formed(token):
        return None
    rows = db.fetch(_LINK_VIEW, (tokens.digest(token), CapabilityToken.expires_at.db_value(app.clock.now())))
    return _link_view(rows) if rows else None


def _link_view(rows: list[tuple]) -> GuardianView:
    # _LINK_VIEW's columns: 0-2 the guardian, 3 the student's id, 4-6 the child as shown, 7-10 the event, 11-15
    # the child's state, 16-18 the guardian's confirmation and reply and the notices' count.
    guardian_id, name, locale = rows[0][:3]
    by_event: dict[str, list[tuple]] = {}       # in the statement's order
    for row in rows:
        if row[7] is not None:      # else not a child of the guardian's, or no open event at the child's school
            by_event.setdefault(row[7], []).append(row)
    return GuardianView(guardian_id, name, locale, tuple(map(_event_view, by_event.values())))


def _event_view(rows: list[tuple]) -> EventView:
    """One event of a guardian's link from its rows (one a child), with its notices and the pickups of children
    handed over."""
    event_id, title, opened_at, school_name = rows[0][7:11]
    confirmed_at, reply, notice_count = rows[0][16:]
    count, notices = _event_notices(event_id, notice_count)
    handed_over = [row[3] for row in rows if row[11] == "handed_over"]
    pickups = latest_pickups(event_id, handed_over) if handed_over else {}
    children = tuple(ChildView(*row[4:7], _child_state(*row[11:16]), pickups.get(row[3])) for row in rows)
    return EventView(event_id, title, _utc(opened_at), school_name, children, notices, max(count - NOTICES_SHOWN, 0),
                     _utc(confirmed_at) if confirmed_at else None, reply or "")


def _child_state(state: str | None, place: str, note: str, actor: str, at: str) -> ChildState | None:
    return ChildState(state, place, note, actor, _utc(at)) if state else None


def _event_notices(event_id: str, count: int) -> tuple[int, tuple[NoticeView, ...]]:
    """How many notices the event has and the newest of them, kept per worker while the count the link's
    statement read is the one they were read with (else read again: one has come in)."""
    kept = _notices_kept.get(event_id)
    if kept is None or kept[0] != count:
        rows = db.fetch(_NOTICES, (event_id, event_id)) if count else []
        kept = (rows[0][2] if rows else 0, tuple(NoticeView(body, _utc(at)) for body, at, _ in rows))
        if len(_notices_kept) >= NOTICE_LISTS_KEPT:     # a site has an open event a school at most
            _notices_kept.clear()
        _notices_kept[event_id] = kept
    return kept


def record_check(app, view: GuardianView, kind: str, *, event_id: str | None = None, body: str = "") -> int:
    """Record a guardian's read report: an opening (every event shown), or a confirmation or reply to one."""
    rows = check_rows(app, view, kind, event_id=event_id, body=body)
    with db.write():
        insert_checks(rows)
    return len(rows)


def check_rows(app, view: GuardianView, kind: str, *, event_id: str | None = None, body: str = "") -> list[tuple]:
    """Validate a guardian's read report and return its rows as stored, for :func:`insert_checks`."""
    if kind not in CHECK_KINDS:
        raise InvalidInput(f"確認の種類が不明です: {kind!r}")
    if kind == "open":
        event_ids = [ev.event_id for ev in view.events]
    else:
        # The view holds only the guardian's own open events: nothing else can be confirmed.
        if event_id not in {ev.event_id for ev in view.events}:
            raise NotFound("この災害対応は終了したか、見つかりません")
        event_ids = [event_id]
    body = _text(body, MAX_REPLY, "返信", required=kind == "reply") if kind == "reply" else ""
    now, site = CoconetCheck.at.db_value(app.clock.now()), app.site     # as stored: insert_checks converts nothing
    return [(uuid7(), eid, view.guardian_id, kind, body, site, now) for eid in event_ids]


def insert_checks(rows: list[tuple]) -> None:
    """Inside the caller's write transaction: insert read reports made by :func:`check_rows` (values as stored).

    The web front commits the openings of many guardians in one transaction (webui/group_commit.py).
    """
    db.insert_rows(CoconetCheck, _CHECK_FIELDS, rows, converted=True)


# --- the school's dashboard -------------------------------------------------------------------

class BoardChild(NamedTuple):
    """A child as the dashboard, the print view and the CSV list them: only the columns shown."""

    id: str
    grade: int
    class_name: str
    number: int
    name: str

    @property
    def seat(self) -> str:
        """The child's place as staff say it: grade-class-number."""
        return seat_of(self.grade, self.class_name, self.number)


@dataclass
class ChildRow:
    """One child on the dashboard, the print view and the CSV (never a contact point)."""

    student: BoardChild
    state: ChildState | None
    pickup: Pickup | None
    guardians: int          # approved guardians
    checked: str            # "confirmed", "opened" or "" (none of the guardians has opened the page)
    reachable: bool         # at least one guardian has a working channel


@dataclass
class Dashboard:
    """The school's figures for one event."""

    event: CoconetEvent
    rows: list[ChildRow]
    by_state: dict[str, int]
    guardians: int
    checked: int
    confirmed: int
    replies: list[tuple[str, CoconetCheck]]   # (guardian name, their newest reply), newest first

    @property
    def not_checked(self) -> int:
        """Guardians who have not opened the page during this event."""
        return self.guardians - self.checked

    @property
    def unreachable(self) -> list[ChildRow]:
        """Children none of whose guardians has a working channel (call them, or wait at the gate)."""
        return [row for row in self.rows if not row.reachable]

    def classes(self) -> list[tuple[int, str, Counter]]:
        """Return (grade, class, states counted) per class, in order."""
        counts: dict[tuple[int, str], Counter] = defaultdict(Counter)
        for row in self.rows:
            counts[row.student.grade, row.student.class_name][row.state.state if row.state else "unknown"] += 1
        return [(grade, name, counted) for (grade, name), counted in sorted(counts.items())]


# Plain SQL (db.fetch): in a disaster every staff member keeps the dashboard open and refreshes it, and peewee
# made a model of each child at ~10 us (a school of 1,333 children: 15 ms of a 47 ms dashboard).
_SCHOOL_CHILDREN = ("SELECT id, grade, class_name, number, name FROM student WHERE school_id = {p}"
                    " AND status = 'enrolled' ORDER BY grade, class_name, number")
_SCHOOL_LINKS = ("SELECT l.student_id, l.guardian_id FROM guardian_link l JOIN student s ON s.id = l.student_id"
                 " WHERE s.school_id = {p} AND s.status = 'enrolled' AND l.status = 'approved'")
_EVENT_CHECKS = "SELECT DISTINCT guardian_id, kind FROM coconet_check WHERE event_id = {p}"


def dashboard(event: CoconetEvent) -> Dashboard:
    """Return children by state, who has checked, and who cannot be reached, for one event."""
    students = [BoardChild(*row) for row in db.fetch(_SCHOOL_CHILDREN, (event.school_id,))]
    states, pickups = current_states(event.id), latest_pickups(event.id)
    links = defaultdict(set)
    for student_id, guardian_id in db.fetch(_SCHOOL_LINKS, (event.school_id,)):
        links[student_id].add(guardian_id)
    guardian_ids = set().union(*links.values()) if links else set()
    checks = defaultdict(set)
    for guardian_id, kind in db.fetch(_EVENT_CHECKS, (event.id,)):
        checks[kind].add(guardian_id)
    opened = set().union(*checks.values()) & guardian_ids if checks else set()
    confirmed = checks["confirm"] & guardian_ids
    # Whether a channel works, never what it is.
    working = contacts.reachable_in_school(event.school_id)
    rows = []
    for student in students:
        family = links[student.id]
        checked = ("confirmed" if not family.isdisjoint(confirmed) else "opened" if not family.isdisjoint(opened)
                   else "")
        state = states.get(student.id)
        pickup = pickups.get(student.id) if state and state.state == "handed_over" else None
        rows.append(ChildRow(student, state, pickup, len(family), checked, not family.isdisjoint(working)))
    by_state = Counter(row.state.state if row.state else "unknown" for row in rows)
    replies = _newest_replies(event, guardian_ids)
    return Dashboard(event, rows, {state: by_state[state] for state in STATES}, len(guardian_ids),
                     len(opened), len(confirmed), replies)


def _newest_replies(event: CoconetEvent, guardian_ids: set[str]) -> list[tuple[str, CoconetCheck]]:
    newest: dict[str, tuple[str, CoconetCheck]] = {}
    for check in (CoconetCheck.select(CoconetCheck, Guardian).join(Guardian)
                  .where((CoconetCheck.event == event) & (CoconetCheck.kind == "reply"))
                  .order_by(CoconetCheck.at, CoconetCheck.id)):
        if check.guardian_id in guardian_ids:
            newest[check.guardian_id] = (check.guardian.name, check)
    return sorted(newest.values(), key=lambda pair: pair[1].at, reverse=True)


CSV_HEADER = ("学年", "組", "出席番号", "氏名", "状態", "場所", "メモ", "記録者", "記録日時",
              "引き取った人", "引き渡し日時", "保護者の確認", "連絡手段")
_CHECKED = {"confirmed": "確認済み", "opened": "閲覧のみ", "": "未確認"}


def export_csv(board: Dashboard) -> str:
    """Return the paper backup as CSV (UTF-8 with BOM, for Excel): one row per child, no contact data."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in board.rows:
        s, state, pickup = row.student, row.state, row.pickup
        writer.writerow([
            s.grade, s.class_name, s.number, s.name, STATES[state.state if state else "unknown"],
            state.place if state else "", state.note if state else "", state.actor if state else "",
            _tokyo(state.at) if state else "", pickup.collector if pickup else "",
            _tokyo(pickup.collected_at) if pickup else "", _CHECKED[row.checked],
            "あり" if row.reachable else "なし"])
    return out.getvalue()


# --- helpers ----------------------------------------------------------------------------------

_STATE_FIELDS = [CoconetState.id, CoconetState.event, CoconetState.student, CoconetState.state,
                 CoconetState.place, CoconetState.note, CoconetState.actor, CoconetState.site, CoconetState.at]
_CHECK_FIELDS = [CoconetCheck.id, CoconetCheck.event, CoconetCheck.guardian, CoconetCheck.kind,
                 CoconetCheck.body, CoconetCheck.site, CoconetCheck.at]


def _check_open(event: CoconetEvent) -> None:
    if not event.is_open:
        raise InvalidInput("この災害対応は終了しています。記録は閲覧のみできます")


def _text(value: str | None, limit: int, label: str, *, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{label}を入力してください")
    if len(value) > limit:
        raise InvalidInput(f"{label}は{limit}文字までです（{len(value)}文字）")
    return value


def _tokyo(moment: datetime) -> str:
    return to_tokyo(moment).strftime("%Y/%m/%d %H:%M")
