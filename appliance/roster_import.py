"""Roster import: the class list a school office exports from Excel as CSV.

Encoding is detected: a UTF-8 BOM means UTF-8; otherwise the file must read wholly
as UTF-8 or wholly as Shift_JIS (CP932, what Japanese Excel writes).

Line 1 holds the headers, in Japanese or English, in any order; surrounding spaces
and full-width letters and digits are tolerated in headers and in grade, class and
number cells ("３" is 3)::

    学年        grade           required: 1 to the school's number of grades
    組          class           required: "1", "2", "A" ...
    出席番号    number          required: 1 or more
    氏名        name            required
    ふりがな    furigana        required column; a cell may be left empty
    学籍番号    student_number  optional: the school's stable number for the student
    部活動      clubs           optional
    通学路      routes          optional
    保護者氏名  guardian_name   read only when importing guardians
    メール1〜4  email1..email4  read only when importing guardians

A cell may name several clubs or routes separated by ";" (full-width "；" and "、"
too): ``サッカー部;合唱部``. Clubs and routes are groups keyed by that text, made on
first use. Blank lines are skipped.

Re-importing is idempotent. A row is the same student as an enrolled one with its
学籍番号; without one (or when no enrolled student has it yet and the seated one has
none), the student in the same seat with the same name. Changed fields are updated;
memberships follow the file exactly for each group column the file has; enrolled
students missing from the file are left alone and counted. A 学籍番号 held by a
graduated or transferred student is refused rather than reused, so an old record
(and its guardians) is never turned into a new child.

With guardians, rows with the same guardian name and first address are one guardian
of siblings; an existing guardian with that name and first address is linked rather
than duplicated. Addresses of existing guardians are theirs to keep: the file does
not change them.

The import is all or nothing: every error is collected with its line number and
:class:`RosterImportError` is raised before anything is written.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

import peewee

from appliance import audit, contacts, db, guardians
from appliance.errors import InvalidInput
from appliance.models import Guardian, GuardianLink, Membership, School, Student, StudentGroup

MAX_EMAILS = contacts.MAX_PER_KIND["email"]

# The first label of each column is the one error messages use.
COLUMNS = {
    "grade": ("学年", "grade"),
    "class": ("組", "class"),
    "number": ("出席番号", "number"),
    "name": ("氏名", "name"),
    "furigana": ("ふりがな", "furigana"),
    "student_number": ("学籍番号", "student_number"),
    "clubs": ("部活動", "clubs"),
    "routes": ("通学路", "routes"),
    "guardian_name": ("保護者氏名", "guardian_name"),
    **{f"email{i}": (f"メール{i}", f"email{i}") for i in range(1, MAX_EMAILS + 1)},
}
REQUIRED_COLUMNS = ("grade", "class", "number", "name", "furigana")
GROUP_COLUMNS = {"clubs": "club", "routes": "route"}
EMAIL_COLUMNS = tuple(f"email{i}" for i in range(1, MAX_EMAILS + 1))

_LABELS = {label.lower(): column for column, labels in COLUMNS.items() for label in labels}
_SEPARATORS = re.compile(r"[;；、]")
_DIGITS = re.compile(r"^[0-9]+$")

LineError = tuple[int | None, str]   # (line, message); no line for whole-file errors


class RosterImportError(InvalidInput):
    """A roster file has errors; ``errors`` lists each (line, message), and nothing was written."""

    def __init__(self, errors: list[LineError]):
        self.errors = sorted(errors, key=lambda e: (e[0] is None, e[0] or 0))   # whole-file errors last
        lines = "\n".join(format_error(e) for e in self.errors)
        super().__init__(f"名簿に{len(self.errors)}件の誤りがあります。何も変更していません。\n{lines}")


def format_error(error: LineError) -> str:
    """Return one error as staff read it: '3行目: ...'."""
    line, message = error
    return message if line is None else f"{line}行目: {message}"


def name_key(text: str) -> str:
    """Return a name as compared: width-folded and without spaces ("山田　太郎" is "山田 太郎")."""
    return "".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class RosterRow:
    """One student's line of the file, validated."""

    line: int
    grade: int
    class_name: str
    number: int
    name: str
    furigana: str
    student_number: str | None
    groups: dict[str, tuple[str, ...]]      # kind -> keys, for each group column in the file
    guardian_name: str = ""
    emails: tuple[str, ...] = ()            # normalised; the first one keys the guardian

    @property
    def seat(self) -> tuple[int, str, int]:
        return (self.grade, self.class_name, self.number)


@dataclass
class ParsedRoster:
    """A whole file: its valid rows, the columns it has, and every error found."""

    rows: list[RosterRow] = field(default_factory=list)
    columns: frozenset[str] = frozenset()
    errors: list[LineError] = field(default_factory=list)


def decode_roster(data: bytes) -> tuple[str, list[LineError]]:
    """Return the file's text, and an error for each line with bytes no detected encoding reads."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return "", [(1, "UTF-16 のファイルは読めません。Excel で「CSV（コンマ区切り）」として保存してください")]
    if data.startswith(codecs.BOM_UTF8):
        return _decode_lines(data[len(codecs.BOM_UTF8):], "utf-8")
    for encoding in ("utf-8", "cp932"):
        try:
            return data.decode(encoding), []
        except UnicodeDecodeError:
            pass
    # Neither reads all of it: blame the lines of the one that reads more (CP932 on a tie,
    # as Excel writes it). Splitting on LF is safe: it is never part of a CP932 character.
    return min((_decode_lines(data, e) for e in ("cp932", "utf-8")), key=lambda found: len(found[1]))


def _decode_lines(data: bytes, encoding: str) -> tuple[str, list[LineError]]:
    lines, errors = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode(encoding))
        except UnicodeDecodeError:
            errors.append((number, "読み取れない文字があります（Shift_JIS か UTF-8 で保存してください）"))
            lines.append(raw.decode(encoding, "replace"))
    return "\n".join(lines), errors


def parse_roster(data: bytes, school: School, *, with_guardians: bool = False) -> ParsedRoster:
    """Decode and validate a roster file in memory, collecting every error with its line."""
    text, errors = decode_roster(data)
    bad_lines = {line for line, _ in errors}
    records = _read_records(text, errors)
    if not records or not any(cell.strip() for cell in records[0][2]):
        return ParsedRoster(errors=errors or [(1, "見出しの行がありません")])
    if 1 in bad_lines:
        return ParsedRoster(errors=errors)
    header = records[0][2]
    positions, header_errors = _read_header(header, with_guardians)
    errors += header_errors
    if any(column not in positions for column in REQUIRED_COLUMNS):
        return ParsedRoster(errors=errors)

    rows: list[RosterRow] = []
    for first_line, last_line, cells in records[1:]:
        if not any(cell.strip() for cell in cells):
            continue
        if bad_lines and bad_lines & set(range(first_line, last_line + 1)):
            continue   # already reported as unreadable
        if any(cell.strip() for cell in cells[len(header):]):
            errors.append((first_line, "見出しより多くの列に値があります"))
            continue
        values = {column: (cells[i] if i < len(cells) else "").strip() for column, i in positions.items()}
        row, row_errors = _read_row(first_line, values, school)
        errors += [(first_line, message) for message in row_errors]
        if row is not None:
            rows.append(row)
    errors += _check_duplicates(rows)
    return ParsedRoster(rows=rows, columns=frozenset(positions), errors=errors)


def _read_records(text: str, errors: list[LineError]) -> list[tuple[int, int, list[str]]]:
    """Return (first line, last line, cells) per CSV record; a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records, last_line = [], 0
    try:
        for cells in reader:
            records.append((last_line + 1, reader.line_num, cells))
            last_line = reader.line_num
    except csv.Error as exc:
        errors.append((last_line + 1, f"CSV として読めません（{exc}）"))
    return records


def _read_header(header: list[str], with_guardians: bool) -> tuple[dict[str, int], list[LineError]]:
    positions: dict[str, int] = {}
    errors: list[LineError] = []
    for index, cell in enumerate(header):
        label = unicodedata.normalize("NFKC", cell).strip().lower()
        if not label:
            continue   # Excel leaves empty header cells after the last column
        column = _LABELS.get(label)
        if column is None:
            errors.append((1, f"見出し「{cell.strip()}」は使えません"))
        elif column in positions:
            errors.append((1, f"見出し「{cell.strip()}」が二度あります"))
        else:
            positions[column] = index
    errors += [(1, f"必須の見出し「{COLUMNS[c][0]}」がありません") for c in REQUIRED_COLUMNS if c not in positions]
    if not with_guardians:
        positions = {c: i for c, i in positions.items() if c != "guardian_name" and c not in EMAIL_COLUMNS}
    return positions, errors


def _read_row(line: int, values: dict[str, str], school: School) -> tuple[RosterRow | None, list[str]]:
    errors = []
    grade, number = _read_count(values["grade"]), _read_count(values["number"])
    for column in ("grade", "class", "number", "name"):
        if not values[column]:
            errors.append(f"{COLUMNS[column][0]}が入力されていません")
        elif column == "grade" and not (grade and grade <= school.grades):
            errors.append(f"学年「{values['grade']}」は1〜{school.grades}の数字で入力してください")
        elif column == "number" and not number:
            errors.append(f"出席番号「{values['number']}」は1以上の数字で入力してください")
    guardian_name = values.get("guardian_name", "")
    given = [column for column in EMAIL_COLUMNS if values.get(column)]
    emails = []
    for column in given:
        try:
            emails.append(contacts.normalise("email", values[column]))
        except InvalidInput:
            # The address itself is left out: error output gets pasted into tickets.
            errors.append(f"{COLUMNS[column][0]}のメールアドレスの形式が正しくありません")
    if len(set(emails)) != len(emails):
        errors.append("同じメールアドレスが二度書かれています")
    if guardian_name and not given:
        errors.append("保護者氏名がありますがメールアドレスがありません")
    if given and not guardian_name:
        errors.append("メールアドレスがありますが保護者氏名がありません")
    if errors:
        return None, errors
    groups = {kind: _split_keys(values[column]) for column, kind in GROUP_COLUMNS.items() if column in values}
    return RosterRow(line=line, grade=grade, class_name=unicodedata.normalize("NFKC", values["class"]),
                     number=number, name=values["name"], furigana=values["furigana"],
                     student_number=unicodedata.normalize("NFKC", values.get("student_number", "")) or None,
                     groups=groups, guardian_name=guardian_name, emails=tuple(emails)), []


def _read_count(text: str) -> int | None:
    text = unicodedata.normalize("NFKC", text).strip()
    if not _DIGITS.match(text) or int(text) == 0:
        return None
    return int(text)


def _split_keys(cell: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(key.strip() for key in _SEPARATORS.split(cell) if key.strip()))


def _check_duplicates(rows: list[RosterRow]) -> list[LineError]:
    errors: list[LineError] = []
    seats: dict[tuple, int] = {}
    numbers: dict[str, int] = {}
    for row in rows:
        if row.seat in seats:
            errors.append((row.line, f"{_seat_text(row.seat)}は{seats[row.seat]}行目と重複しています"))
        seats.setdefault(row.seat, row.line)
        if row.student_number and row.student_number in numbers:
            errors.append((row.line, f"学籍番号「{row.student_number}」は{numbers[row.student_number]}行目と重複しています"))
        numbers.setdefault(row.student_number, row.line)
    for (name, _), (emails, members) in _families(rows).items():
        if len(emails) > MAX_EMAILS:
            errors.append((members[-1].line, f"保護者「{name}」のメールアドレスが兄弟姉妹の行と合わせて"
                                             f"{MAX_EMAILS}件を超えます"))
    return errors


def _families(rows: list[RosterRow]) -> dict[tuple[str, str], tuple[list[str], list[RosterRow]]]:
    """Group rows by guardian: the same name and first address are one guardian of siblings."""
    families: dict[tuple[str, str], tuple[list[str], list[RosterRow]]] = {}
    for row in rows:
        if row.emails:
            emails, members = families.setdefault((row.guardian_name, row.emails[0]), ([], []))
            emails.extend(e for e in row.emails if e not in emails)
            members.append(row)
    return families


def _seat_text(seat: tuple[int, str, int]) -> str:
    grade, class_name, number = seat
    return f"{grade}年{class_name}組{number}番"


# The student columns a roster row sets, in the order the plan's tuples hold them.
_STUDENT_VALUES = [Student.grade, Student.class_name, Student.number, Student.name, Student.furigana,
                   Student.student_number]
_NEW_STUDENT = [Student.id, Student.school, Student.status, Student.created_at, Student.updated_at,
                *_STUDENT_VALUES]
_NEW_GROUP = [StudentGroup.id, StudentGroup.school, StudentGroup.kind, StudentGroup.key, StudentGroup.name,
              StudentGroup.created_at]
_NEW_MEMBERSHIP = [Membership.id, Membership.group, Membership.student]


@dataclass
class _Plan:
    """What an import will write (rows as tuples in the orders above), worked out before writing."""

    new_groups: list[tuple] = field(default_factory=list)
    new_students: list[tuple] = field(default_factory=list)
    changed_students: list[tuple] = field(default_factory=list)   # values, updated_at, id
    moved_ids: list[str] = field(default_factory=list)
    new_memberships: list[tuple] = field(default_factory=list)
    gone_memberships: list[str] = field(default_factory=list)
    student_ids: dict[int, str] = field(default_factory=dict)     # line -> student id
    counts: dict[str, int] = field(default_factory=dict)


def import_roster(app, school: School, data: bytes, *, with_guardians: bool = False,
                  actor: str = "cli") -> dict[str, int]:
    """Import a roster file into a school, all or nothing; return counts of what happened."""
    roster = parse_roster(data, school, with_guardians=with_guardians)
    with db.write():
        plan = _plan_import(app, school, roster)
        _write_plan(plan)
        summary = dict(plan.counts)
        summary["guardians_created"], summary["guardians_existing"] = (
            _write_guardians(app, school, roster.rows, plan.student_ids) if with_guardians else (0, 0))
        audit.record(app, actor, "roster.import", school_id=school.id, detail=summary)
    return summary


def _plan_import(app, school: School, roster: ParsedRoster) -> _Plan:
    errors = list(roster.errors)
    students = list(Student.select(Student.id, Student.status, *_STUDENT_VALUES)
                    .where(Student.school == school).namedtuples())
    enrolled = [s for s in students if s.status == "enrolled"]
    by_number = {s.student_number: s for s in enrolled if s.student_number}
    retired_numbers = {s.student_number for s in students if s.status != "enrolled" and s.student_number}
    by_seat = {(s.grade, s.class_name, s.number): s for s in enrolled}

    matches: dict[int, tuple] = {}           # line -> existing student
    matched_lines: dict[str, int] = {}       # student id -> line
    for row in roster.rows:
        if row.student_number in retired_numbers:
            errors.append((row.line, f"学籍番号「{row.student_number}」は卒業・転出した生徒のものです"))
            continue
        current = by_number.get(row.student_number) if row.student_number else None
        seated = by_seat.get(row.seat)
        if current is None and seated and name_key(seated.name) == name_key(row.name) and not (
                row.student_number and seated.student_number):
            current = seated
        if current is None:
            continue
        if current.id in matched_lines:
            errors.append((row.line, f"{matched_lines[current.id]}行目と同じ生徒です"))
            continue
        matches[row.line] = current
        matched_lines[current.id] = row.line
    for row in roster.rows:
        seated = by_seat.get(row.seat)
        if seated and seated.id not in matched_lines:
            errors.append((row.line, f"{_seat_text(row.seat)}にはファイルにない在籍中の生徒（{seated.name}）がいます"))
    if errors:
        raise RosterImportError(errors)

    kinds = [GROUP_COLUMNS[c] for c in GROUP_COLUMNS if c in roster.columns]
    groups = {(kind, key): gid for gid, kind, key in StudentGroup.select(
        StudentGroup.id, StudentGroup.kind, StudentGroup.key).where(StudentGroup.school == school).tuples()}
    memberships: dict[str, dict[str, str]] = defaultdict(dict)    # student id -> group id -> membership id
    if kinds:
        for mid, student_id, group_id in (Membership.select(Membership.id, Membership.student, Membership.group)
                                          .join(StudentGroup)
                                          .where((StudentGroup.school == school) & StudentGroup.kind.in_(kinds))
                                          .tuples()):
            memberships[student_id][group_id] = mid

    now = app.clock.now()
    plan = _Plan()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for row in roster.rows:
        current = matches.get(row.line)
        student_id = current.id if current else Student.id.default()
        plan.student_ids[row.line] = student_id
        wanted = set()
        for kind, keys in row.groups.items():
            for key in keys:
                if (kind, key) not in groups:
                    groups[kind, key] = StudentGroup.id.default()
                    plan.new_groups.append((groups[kind, key], school.id, kind, key, key, now))
                wanted.add(groups[kind, key])
        held = memberships.get(student_id, {})
        plan.new_memberships += [(Membership.id.default(), g, student_id) for g in wanted - held.keys()]
        plan.gone_memberships += [mid for g, mid in held.items() if g not in wanted]
        values = (row.grade, row.class_name, row.number, row.name, row.furigana,
                  row.student_number or (current.student_number if current else None))
        if current is None:
            plan.new_students.append((student_id, school.id, "enrolled", now, now, *values))
            counts["created"] += 1
            continue
        fields_changed = values != tuple(getattr(current, f.name) for f in _STUDENT_VALUES)
        if fields_changed:
            plan.changed_students.append((*values, now, student_id))
            if (current.grade, current.class_name, current.number) != row.seat:
                plan.moved_ids.append(student_id)
        counts["updated" if fields_changed or wanted != held.keys() else "unchanged"] += 1
    counts["not_in_file"] = len(enrolled) - len(matches)
    counts["groups_created"] = len(plan.new_groups)
    plan.counts = counts
    return plan


def _write_plan(plan: _Plan) -> None:
    db.insert_rows(StudentGroup, _NEW_GROUP, plan.new_groups)
    # Seats are unique among enrolled students and checked row by row, so students who
    # change seat first step aside to negative numbers, which no real seat uses.
    db.execute_many(Student, 'UPDATE {table} SET "number" = -"number" WHERE "id" = {p}', [Student.id],
              [(sid,) for sid in plan.moved_ids])
    assignments = ", ".join(f'"{f.column_name}" = {{p}}' for f in [*_STUDENT_VALUES, Student.updated_at])
    db.execute_many(Student, f'UPDATE {{table}} SET {assignments} WHERE "id" = {{p}}',
              [*_STUDENT_VALUES, Student.updated_at, Student.id], plan.changed_students)
    db.insert_rows(Student, _NEW_STUDENT, plan.new_students)
    db.execute_many(Membership, 'DELETE FROM {table} WHERE "id" = {p}', [Membership.id],
              [(mid,) for mid in plan.gone_memberships])
    db.insert_rows(Membership, _NEW_MEMBERSHIP, plan.new_memberships)


def _write_guardians(app, school: School, rows: list[RosterRow], student_ids: dict[int, str]) -> tuple[int, int]:
    families = {key: (emails, [student_ids[row.line] for row in members])
                for key, (emails, members) in _families(rows).items()}
    by_first = contacts.find_holders(app, "email", [first for _, first in families])
    holders = {key: by_first[key[1]] for key in families}
    names: dict[str, str] = {}
    for batch in peewee.chunked(sorted(set().union(*holders.values())), 500):
        names.update(Guardian.select(Guardian.id, Guardian.name).where(Guardian.id.in_(batch)).tuples())
    linked = set(GuardianLink.select(GuardianLink.guardian, GuardianLink.student).join(Student)
                 .where(Student.school == school).tuples())
    new: list[guardians.NewGuardian] = []
    existing = 0
    for (name, first), (emails, students) in families.items():
        same = sorted(g for g in holders[name, first] if names[g] == name)   # UUIDv7: oldest first
        if same:
            missing = [s for s in students if (same[0], s) not in linked]
            if missing:
                guardians.link_students(app, same[0], missing, approved=True)
            existing += 1
        else:
            new.append(guardians.NewGuardian(name, students, emails))
    guardians.add_guardians(app, new, approved=True)
    return len(new), existing
