"""Roster maintenance: year rollover, transfers, club and route changes, and finding a student.

A student is named by a reference staff already use: the seat ``3-1-12`` (grade,
class, number; enrolled students only), the school's 学籍番号, or the student's ID.
Guardians, their links and contact points are never touched here: a family keeps
its registration through rollovers and moves between this appliance's schools.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from datetime import timedelta

from appliance import audit, db, guardians
from appliance.clock import school_year
from appliance.errors import InvalidInput, NotFound
from appliance.models import GuardianLink, Membership, School, Student, StudentGroup
from appliance.models.guardian import LINK_STATUSES
from appliance.roster_import import RosterImportError, name_key, parse_roster
from appliance.schools import get_school
from appliance.targeting import GROUP_WORDS, class_key, parse_class

_SEAT = re.compile(r"^(\d+)-(.+)-(\d+)$")


def find_student(school: School, ref: str) -> Student:
    """Return the school's student for a seat "G-C-N", a 学籍番号 or an ID, or raise NotFound."""
    text = unicodedata.normalize("NFKC", ref).strip()
    seat = _SEAT.match(text)
    student = None
    if seat:
        student = Student.get_or_none(
            (Student.school == school) & (Student.status == "enrolled") & (Student.grade == int(seat[1]))
            & (Student.class_name == seat[2]) & (Student.number == int(seat[3])))
    if student is None:
        student = Student.get_or_none((Student.school == school)
                                      & ((Student.student_number == text) | (Student.id == text)))
    if student is None:
        raise NotFound(f"{school.name}に生徒「{ref}」はいません（学年-組-番号、学籍番号、ID のいずれかで指定してください）")
    return student


def school_classes(school: School) -> list[tuple[int, str]]:
    """Return the school's classes with enrolled students, as (grade, class name), in class order."""
    rows = (Student.select(Student.grade, Student.class_name)
            .where((Student.school == school) & (Student.status == "enrolled")).distinct().tuples())
    return sorted(rows, key=lambda row: class_key(*row))


def class_students(school: School, grade: int, class_name: str) -> list[Student]:
    """Return a class's enrolled students in seat order."""
    return list(Student.select().where((Student.school == school) & (Student.status == "enrolled")
                                       & (Student.grade == grade) & (Student.class_name == class_name))
                .order_by(Student.number))


def find_class(school: School, class_ref: str) -> list[Student]:
    """Return the enrolled students of a class given as "G-C", or raise NotFound if it has none."""
    parsed = parse_class(class_ref)
    students = class_students(school, *parsed) if parsed else []
    if not students:
        raise NotFound(f"{school.name}に組「{class_ref.strip()}」の児童生徒はいません（学年-組 で指定してください）")
    return students


def find_student_anywhere(ref: str) -> Student:
    """Return a student of any school on this appliance: "SCHOOLCODE:REF" or an ID."""
    code, colon, rest = ref.partition(":")
    if colon:
        return find_student(get_school(code.strip()), rest)
    student = Student.get_or_none(Student.id == ref.strip())
    if student is None:
        raise NotFound(f"生徒「{ref}」はいません（ほかの学校の生徒は「学校コード:学年-組-番号」か ID で指定してください）")
    return student


# Rollover is done in March or early April: it may move a school into the school
# year that starts within this many days.
PROMOTE_AHEAD = timedelta(days=31)


def already_promoted(app, school: School) -> bool:
    """Return whether the school's roster already belongs to the coming (or current) school year."""
    return school.school_year + 1 > school_year(app.clock.now() + PROMOTE_AHEAD)


def promote_students(app, school: School, *, classes: bytes | None = None, force: bool = False,
                     actor: str = "cli") -> dict[str, int]:
    """Year rollover: every enrolled student moves up a grade and the top grade graduates.

    Classes are kept unless ``classes`` (a roster file of the new grades) is given: each
    grade it names is seated from it, every promoted student of that grade on one line.
    A second rollover in the same school year is refused unless ``force`` is given, so a
    repeated command cannot move everyone up twice.
    """
    new_year = school.school_year + 1
    if already_promoted(app, school) and not force:
        raise InvalidInput(f"{school.name}の名簿はすでに{school.school_year}年度のものです。"
                           "もう一度進級させる場合は --force を付けてください")
    with db.write():
        School.update(school_year=new_year).where(School.id == school.id).execute()
        school.school_year = new_year
        enrolled = list(Student.select().where((Student.school == school) & (Student.status == "enrolled")))
        staying = [s for s in enrolled if s.grade < school.grades]
        seats = _plan_classes(school, staying, classes) if classes is not None else {}
        now = app.clock.now()
        graduated = (Student.update(status="graduated", updated_at=now)
                     .where((Student.school == school) & (Student.status == "enrolled")
                            & (Student.grade >= school.grades)).execute())
        # Seats are unique among enrolled students: moving the highest grade first always
        # moves into a grade that has just been emptied.
        for grade in range(school.grades - 1, 0, -1):
            (Student.update(grade=grade + 1, updated_at=now)
             .where((Student.school == school) & (Student.status == "enrolled") & (Student.grade == grade))
             .execute())
        # Within a re-seated grade, students first step aside to negative numbers.
        db.execute_many(Student, 'UPDATE {table} SET "number" = -"number" WHERE "id" = {p}', [Student.id],
                 [(sid,) for sid in seats])
        db.execute_many(Student, 'UPDATE {table} SET "class_name" = {p}, "number" = {p} WHERE "id" = {p}',
                 [Student.class_name, Student.number, Student.id],
                 [(class_name, number, sid) for sid, (class_name, number) in seats.items()])
        summary = {"school_year": new_year, "promoted": len(staying), "graduated": graduated,
                   "reassigned": len(seats)}
        audit.record(app, actor, "roster.promote", school_id=school.id, detail=summary)
    return summary


def _plan_classes(school: School, staying: list[Student], data: bytes) -> dict[str, tuple[str, int]]:
    """Return student id -> (class, number) from a new-class file, or raise with every mismatch."""
    roster = parse_roster(data, school)
    errors = list(roster.errors)
    by_number = {s.student_number: s for s in staying if s.student_number}
    by_name: dict[tuple, list[Student]] = defaultdict(list)
    for s in staying:
        by_name[s.grade + 1, name_key(s.name), name_key(s.furigana)].append(s)
    seats: dict[str, tuple[str, int]] = {}
    lines: dict[str, int] = {}
    for row in roster.rows:
        student = by_number.get(row.student_number)
        if student is None:
            candidates = [s for s in by_name[row.grade, name_key(row.name), name_key(row.furigana)]
                          if not (row.student_number and s.student_number)]
            if len(candidates) > 1:
                errors.append((row.line, f"{row.grade}年に進級する「{row.name}」が複数います。学籍番号で指定してください"))
                continue
            student = candidates[0] if candidates else None
        if student is None:
            errors.append((row.line, f"{row.grade}年に進級する生徒に「{row.name}」（{row.furigana}）はいません"))
        elif student.grade + 1 != row.grade:
            errors.append((row.line, f"「{row.name}」は進級後{student.grade + 1}年生です（ファイルでは{row.grade}年）"))
        elif student.id in lines:
            errors.append((row.line, f"{lines[student.id]}行目と同じ生徒です"))
        else:
            seats[student.id] = (row.class_name, row.number)
            lines[student.id] = row.line
    grades = {row.grade for row in roster.rows}
    errors += [(None, f"{s.grade + 1}年に進級する「{s.name}」（いまの{s.seat}）がファイルにありません")
               for s in staying if s.grade + 1 in grades and s.id not in seats]
    if errors:
        raise RosterImportError(errors)
    return seats


def transfer_out(app, school: School, ref: str, *, actor: str = "cli") -> Student:
    """Mark an enrolled student transferred out, at once; memberships and links stay as history."""
    with db.write():
        student = find_student(school, ref)
        if student.status != "enrolled":
            raise InvalidInput(f"生徒「{ref}」は在籍していません（{student.status}）")
        student.status, student.updated_at = "transferred_out", app.clock.now()
        student.save(only=[Student.status, Student.updated_at])
        audit.record(app, actor, "roster.transfer_out", school_id=school.id, subject_id=student.id)
    return student


def transfer_in(app, school: School, *, grade: int, class_name: str, number: int, name: str,
                furigana: str = "", student_number: str | None = None,
                guardians_from: Student | None = None, actor: str = "cli") -> Student:
    """Enrol a new student; with ``guardians_from``, link that student's approved guardians too."""
    class_name = unicodedata.normalize("NFKC", class_name).strip()
    name, furigana = name.strip(), furigana.strip()
    student_number = unicodedata.normalize("NFKC", student_number or "").strip() or None
    if not 1 <= grade <= school.grades:
        raise InvalidInput(f"学年は1〜{school.grades}で指定してください: {grade}")
    if number < 1:
        raise InvalidInput(f"出席番号は1以上で指定してください: {number}")
    if not class_name or not name:
        raise InvalidInput("組と氏名は必須です")
    now = app.clock.now()
    with db.write():
        seated = Student.get_or_none((Student.school == school) & (Student.status == "enrolled")
                                     & (Student.grade == grade) & (Student.class_name == class_name)
                                     & (Student.number == number))
        if seated:
            raise InvalidInput(f"{grade}年{class_name}組{number}番にはすでに「{seated.name}」が在籍しています")
        if student_number and Student.select().where(
                (Student.school == school) & (Student.student_number == student_number)).exists():
            raise InvalidInput(f"学籍番号「{student_number}」はすでに使われています")
        student = Student.create(school=school, grade=grade, class_name=class_name, number=number, name=name,
                                 furigana=furigana, student_number=student_number, created_at=now, updated_at=now)
        linked = []
        if guardians_from is not None:
            linked = [gid for (gid,) in GuardianLink.select(GuardianLink.guardian).where(
                (GuardianLink.student == guardians_from) & (GuardianLink.status == "approved")).tuples()]
            for guardian_id in linked:
                guardians.link_students(app, guardian_id, [student.id], approved=True)
        audit.record(app, actor, "roster.transfer_in", school_id=school.id, subject_id=student.id,
                     detail={"guardians_from": guardians_from.id if guardians_from else None,
                             "guardians_linked": len(linked)})
    return student


def parse_group(spec: str) -> tuple[str, str]:
    """Split "club:NAME" into (StudentGroup kind, key), with the words audience rules use."""
    word, colon, key = spec.partition(":")
    word, key = word.strip().lower(), key.strip()
    if not colon or word not in GROUP_WORDS or not key:
        raise InvalidInput(f"グループは「種類:名前」（種類は {', '.join(GROUP_WORDS)}）で指定してください: {spec!r}")
    return GROUP_WORDS[word], key


def join_group(app, school: School, ref: str, spec: str, *, actor: str = "cli") -> bool:
    """Add an enrolled student to a club, route or custom group (made if missing); return whether it changed."""
    kind, key = parse_group(spec)
    with db.write():
        student = find_student(school, ref)
        if student.status != "enrolled":
            raise InvalidInput(f"生徒「{ref}」は在籍していません（{student.status}）")
        group, _ = StudentGroup.get_or_create(school=school, kind=kind, key=key,
                                              defaults={"name": key, "created_at": app.clock.now()})
        if Membership.select().where((Membership.group == group) & (Membership.student == student)).exists():
            return False
        Membership.create(group=group, student=student)
        audit.record(app, actor, "roster.join", school_id=school.id, subject_id=student.id,
                     detail={"group": f"{kind}:{key}"})
    return True


def leave_group(app, school: School, ref: str, spec: str, *, actor: str = "cli") -> bool:
    """Take a student out of a group; return whether they were in it."""
    kind, key = parse_group(spec)
    with db.write():
        student = find_student(school, ref)
        group = StudentGroup.get_or_none((StudentGroup.school == school) & (StudentGroup.kind == kind)
                                         & (StudentGroup.key == key))
        if group is None:
            raise NotFound(f"{school.name}にグループ「{kind}:{key}」はありません")
        removed = Membership.delete().where(
            (Membership.group == group) & (Membership.student == student)).execute()
        if removed:
            audit.record(app, actor, "roster.leave", school_id=school.id, subject_id=student.id,
                         detail={"group": f"{kind}:{key}"})
    return bool(removed)


def describe_student(student: Student) -> dict:
    """Return what staff may see of a student: seat, name, status, groups and guardian counts (no contacts)."""
    groups = (StudentGroup.select(StudentGroup.kind, StudentGroup.key, StudentGroup.name)
              .join(Membership).where(Membership.student == student)
              .order_by(StudentGroup.kind, StudentGroup.key).tuples())
    links = Counter(status for (status,) in GuardianLink.select(GuardianLink.status)
                    .where(GuardianLink.student == student).tuples())
    return {"id": student.id, "school": student.school.code, "seat": student.seat, "grade": student.grade,
            "class": student.class_name, "number": student.number, "name": student.name,
            "furigana": student.furigana, "student_number": student.student_number, "status": student.status,
            "groups": [{"kind": kind, "key": key, "name": name} for kind, key, name in groups],
            "guardians": {status: links[status] for status in LINK_STATUSES}}
