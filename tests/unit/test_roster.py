"""Roster maintenance: finding students, year rollover, transfers, clubs and routes."""
import json

import pytest

from appliance import roster
from appliance.errors import InvalidInput, NotFound
from appliance.guardians import add_guardian
from appliance.models import AuditEntry, ContactPoint, GuardianLink, Membership, Student, StudentGroup
from appliance.roster_import import RosterImportError, import_roster
from appliance.schools import add_school

HEADER = "学年,組,出席番号,氏名,ふりがな,学籍番号,部活動"
ROSTER = [
    "1,1,1,佐藤 蓮,さとう れん,101,",
    "1,1,2,鈴木 葵,すずき あおい,102,",
    "1,2,1,高橋 湊,たかはし みなと,103,",
    "5,1,1,田中 結衣,たなか ゆい,501,合唱部",
    "6,1,1,伊藤 樹,いとう いつき,601,サッカー部",
]


def csv_bytes(*lines, header=HEADER) -> bytes:
    return "\r\n".join([header, *lines]).encode("cp932")


@pytest.fixture
def school(app, clock):
    school = add_school(app, "S1", "第一小学校", grades=6)
    import_roster(app, school, csv_bytes(*ROSTER))
    clock.advance(days=340)   # March: the time of year rollover is done
    return school


def by_number():
    return {s.student_number: s for s in Student.select()}


def test_find_student_by_seat_student_number_or_id(school):
    ren = by_number()["101"]
    for ref in ("1-1-1", "１－１－１", "101", ren.id):
        assert roster.find_student(school, ref).id == ren.id


def test_find_student_unknown_ref_is_a_japanese_not_found(school):
    with pytest.raises(NotFound, match="生徒「9-9-9」はいません"):
        roster.find_student(school, "9-9-9")


def test_find_student_anywhere_takes_a_school_code(app, school):
    assert roster.find_student_anywhere("S1:501").student_number == "501"
    assert roster.find_student_anywhere(by_number()["501"].id).student_number == "501"
    with pytest.raises(NotFound):
        roster.find_student_anywhere("501")


def test_promote_moves_grades_graduates_the_top_and_keeps_classes_and_guardians(app, school):
    guardian = add_guardian(app, "田中 母", student_ids=[by_number()["501"].id], emails=["tanaka@example.jp"],
                            approved=True)
    summary = roster.promote_students(app, school)
    assert summary == {"school_year": 2027, "promoted": 4, "graduated": 1, "reassigned": 0}
    students = by_number()
    assert {n: (s.seat, s.status) for n, s in students.items()} == {
        "101": ("2-1-1", "enrolled"), "102": ("2-1-2", "enrolled"), "103": ("2-2-1", "enrolled"),
        "501": ("6-1-1", "enrolled"), "601": ("6-1-1", "graduated")}
    assert GuardianLink.get(GuardianLink.guardian == guardian).status == "approved"
    assert ContactPoint.select().count() == 1
    assert Membership.select().count() == 2
    entry = AuditEntry.get(AuditEntry.action == "roster.promote")
    assert json.loads(entry.detail) == summary


def test_a_second_promote_in_the_same_school_year_needs_force(app, school, clock):
    roster.promote_students(app, school)
    clock.advance(days=20)    # April, the new school year
    with pytest.raises(InvalidInput, match="2027年度"):
        roster.promote_students(app, school)
    assert by_number()["101"].grade == 2
    assert roster.promote_students(app, school, force=True)["school_year"] == 2028
    assert by_number()["101"].grade == 3


def test_promote_with_a_class_file_seats_each_promoted_grade(app, school):
    classes = csv_bytes(
        "2,2,1,佐藤 蓮,さとう れん,101,",        # by 学籍番号
        "2,1,1,鈴木　葵,すずき あおい,,",          # by name and furigana (full-width space)
        "2,1,2,高橋 湊,たかはし みなと,,",
    )
    assert roster.promote_students(app, school, classes=classes)["reassigned"] == 3
    students = by_number()
    assert (students["101"].seat, students["102"].seat, students["103"].seat) == ("2-2-1", "2-1-1", "2-1-2")
    assert students["501"].seat == "6-1-1"    # grade 6 is not in the file: its classes are kept


@pytest.mark.parametrize("lines, expected", [
    (["2,1,1,佐藤 蓮,さとう れん,101,", "2,1,2,鈴木 葵,すずき あおい,,", "2,2,1,山本 陽菜,やまもと ひな,,"],
     [(4, "2年に進級する生徒に「山本 陽菜」（やまもと ひな）はいません"),
      (None, "2年に進級する「高橋 湊」（いまの1-2-1）がファイルにありません")]),
    (["3,1,1,佐藤 蓮,さとう れん,101,"],
     [(2, "「佐藤 蓮」は進級後2年生です（ファイルでは3年）")]),
    (["2,1,1,佐藤 蓮,さとう れん,,", "2,1,2,佐藤 蓮,さとう れん,101,", "2,1,3,鈴木 葵,すずき あおい,,",
      "2,2,1,高橋 湊,たかはし みなと,,"],
     [(3, "2行目と同じ生徒です")]),
    (["2,1,1,佐藤 蓮,さとう れん,101,", "2,1,1,鈴木 葵,すずき あおい,,", "2,2,1,高橋 湊,たかはし みなと,,"],
     [(3, "2年1組1番は2行目と重複しています")]),
])
def test_promote_class_file_mismatches_are_errors_and_nothing_changes(app, school, lines, expected):
    before = {s.id: (s.seat, s.status) for s in Student.select()}
    with pytest.raises(RosterImportError) as caught:
        roster.promote_students(app, school, classes=csv_bytes(*lines))
    assert caught.value.errors == expected
    assert {s.id: (s.seat, s.status) for s in Student.select()} == before
    assert not AuditEntry.select().where(AuditEntry.action == "roster.promote").exists()


def test_promote_class_file_with_twins_needs_student_numbers(app, school):
    import_roster(app, school, csv_bytes("1,1,3,佐藤 蓮,さとう れん,104,"))
    lines = ["2,1,1,佐藤 蓮,さとう れん,,", "2,1,2,鈴木 葵,すずき あおい,,", "2,2,1,高橋 湊,たかはし みなと,,"]
    with pytest.raises(RosterImportError) as caught:
        roster.promote_students(app, school, classes=csv_bytes(*lines))
    assert (2, "2年に進級する「佐藤 蓮」が複数います。学籍番号で指定してください") in caught.value.errors


def test_promote_class_file_may_swap_seats_within_a_grade(app, school):
    classes = csv_bytes("2,1,2,佐藤 蓮,さとう れん,101,", "2,1,1,鈴木 葵,すずき あおい,102,",
                        "2,2,1,高橋 湊,たかはし みなと,103,")
    roster.promote_students(app, school, classes=classes)
    assert (by_number()["101"].seat, by_number()["102"].seat) == ("2-1-2", "2-1-1")


def test_transfer_out_stops_the_student_at_once_and_keeps_history(app, school):
    student = roster.transfer_out(app, school, "5-1-1")
    assert Student.get_by_id(student.id).status == "transferred_out"
    assert Membership.select().where(Membership.student == student.id).count() == 1
    with pytest.raises(NotFound):
        roster.find_student(school, "5-1-1")     # seats name enrolled students only
    with pytest.raises(InvalidInput, match="在籍していません"):
        roster.transfer_out(app, school, "501")


def test_transfer_in_enrols_and_brings_approved_guardians_from_another_school(app, school):
    other = add_school(app, "S2", "第二小学校", grades=6)
    sibling = by_number()["501"]
    approved = add_guardian(app, "田中 母", student_ids=[sibling.id], emails=["m@example.jp"], approved=True)
    add_guardian(app, "田中 父", student_ids=[sibling.id], emails=["f@example.jp"], approved=False)
    student = roster.transfer_in(app, other, grade=3, class_name="２", number=4, name=" 田中 陽翔 ",
                                 furigana="たなか はると", student_number="3001",
                                 guardians_from=roster.find_student_anywhere("S1:5-1-1"))
    assert (student.seat, student.name, student.status) == ("3-2-4", "田中 陽翔", "enrolled")
    assert student.school.code == "S2"
    links = list(GuardianLink.select().where(GuardianLink.student == student.id))
    assert [(link.guardian_id, link.status) for link in links] == [(approved.id, "approved")]
    assert roster.describe_student(student)["guardians"] == {"pending": 0, "approved": 1, "rejected": 0}


@pytest.mark.parametrize("options, message", [
    ({"grade": 1, "class_name": "1", "number": 1}, "1年1組1番にはすでに「佐藤 蓮」が在籍しています"),
    ({"grade": 1, "class_name": "1", "number": 9, "student_number": "101"}, "学籍番号「101」はすでに使われています"),
    ({"grade": 7, "class_name": "1", "number": 9}, "学年は1〜6で指定してください"),
    ({"grade": 1, "class_name": "1", "number": 0}, "出席番号は1以上で指定してください"),
])
def test_transfer_in_refuses_bad_seats(app, school, options, message):
    with pytest.raises(InvalidInput, match=message):
        roster.transfer_in(app, school, name="山本 陽菜", **options)


def test_join_and_leave_groups(app, school):
    assert roster.join_group(app, school, "1-1-1", "route:北口") is True
    assert roster.join_group(app, school, "1-1-1", "route:北口") is False
    group = StudentGroup.get(StudentGroup.key == "北口")
    assert (group.kind, group.name) == ("route", "北口")
    assert roster.describe_student(roster.find_student(school, "101"))["groups"] == [
        {"kind": "route", "key": "北口", "name": "北口"}]
    assert roster.leave_group(app, school, "101", "route:北口") is True
    assert roster.leave_group(app, school, "101", "route:北口") is False
    assert [e.action for e in AuditEntry.select().where(AuditEntry.action.startswith("roster.j")
                                                        | AuditEntry.action.startswith("roster.l"))] == [
        "roster.join", "roster.leave"]


@pytest.mark.parametrize("spec", ["北口", "grade:3", "club:", ":x"])
def test_group_spec_must_name_a_kind_and_key(app, school, spec):
    with pytest.raises(InvalidInput, match="種類:名前"):
        roster.join_group(app, school, "101", spec)


def test_leaving_an_unknown_group_is_not_found(app, school):
    with pytest.raises(NotFound, match="club:囲碁部"):
        roster.leave_group(app, school, "101", "club:囲碁部")


def test_describe_student_never_shows_contact_values(app, school):
    add_guardian(app, "田中 母", student_ids=[by_number()["501"].id], emails=["secret@example.jp"], approved=True)
    shown = roster.describe_student(roster.find_student(school, "501"))
    assert shown["seat"] == "5-1-1" and shown["groups"][0]["key"] == "合唱部"
    assert "secret" not in json.dumps(shown, ensure_ascii=False)
