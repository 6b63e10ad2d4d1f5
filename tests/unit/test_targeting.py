"""Targeting rules: the parser, its errors, and resolution against a small roster."""
import random

import pytest

from appliance import db, guardians
from appliance.models import Guardian, GuardianLink, Membership, Student, StudentGroup
from appliance.schools import add_school
from appliance.targeting import (
    MAX_DEPTH, MAX_LENGTH, MAX_TERMS, All, And, Grade, InGroup, Not, Or, RuleError, SchoolClass,
    UnknownGroups, count_audience, guardian_query, parse_rule, student_query)
from tests.conftest import query_plan, statements_sent

G3, G4 = Grade(3), Grade(4)
SOCCER = InGroup("club", "soccer")


# --- parsing -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, rule", [
    ("all", All()),
    ("ALL", All()),
    ("grade:3", G3),
    ("grade:３", G3),                                     # full-width digits, as IMEs type them
    ("class:3-1", SchoolClass(3, "1")),
    ("class:2-A", SchoolClass(2, "A")),
    ("club:soccer", SOCCER),
    ("route:north", InGroup("route", "north")),
    ("group:pta", InGroup("custom", "pta")),
    ("Club:サッカー部", InGroup("club", "サッカー部")),
    ('club:"サッカー部 (男子)"', InGroup("club", "サッカー部 (男子)")),
    ('group:"say \\"hi\\" \\\\ bye"', InGroup("custom", 'say "hi" \\ bye')),
    ("grade:3 OR grade:4 AND club:soccer", Or((G3, And((G4, SOCCER))))),
    ("grade:3 AND grade:4 OR club:soccer", Or((And((G3, G4)), SOCCER))),
    ("NOT grade:3 AND club:soccer", And((Not(G3), SOCCER))),
    ("NOT (grade:3 AND club:soccer)", Not(And((G3, SOCCER)))),
    ("(grade:3 OR grade:4) AND club:soccer", And((Or((G3, G4)), SOCCER))),
    ("grade:3 or grade:4 and not club:soccer", Or((G3, And((G4, Not(SOCCER)))))),
    ("grade:3|grade:4&!club:soccer", Or((G3, And((G4, Not(SOCCER)))))),
    ("NOT NOT all", Not(Not(All()))),
    ("((grade:3))", G3),
    ("\u3000grade:3\u3000AND\tclub:soccer\n", And((G3, SOCCER))),   # ideographic space counts as space
    ("grade:3 AND grade:4 AND club:soccer", And((G3, G4, SOCCER))),
])
def test_parse(text, rule):
    assert parse_rule(text) == rule


@pytest.mark.parametrize("text, message, position", [
    ("", "条件が空です", None),
    ("  \u3000 ", "条件が空です", None),
    ("(grade:3", "「)」がありません", 9),
    ("(grade:3 OR (club:x)", "「)」がありません: 1文字目の「(」", 21),
    ("grade:3)", "対応する「(」のない「)」があります", 8),
    ("colour:red", "不明な種類「colour」: all, grade, class, club, route, group が使えます", 1),
    ("grade:3 OR colour:red", "不明な種類「colour」", 12),
    ("grade:three", "学年は1〜12の数字で書いてください: 「grade:three」", 1),
    ("grade:0", "学年は1〜12", 1),
    ("grade:13", "学年は1〜12", 1),
    ("grade:" + "9" * 40, "学年は1〜12", 1),
    ("class:3", "組は 学年-組 の形で書いてください", 1),
    ("class:3-", "組は 学年-組", 1),
    ("class:x-1", "学年は1〜12", 1),
    ("club:", "「club:」の値がありません", 1),
    ('club:""', "値がありません", 1),
    ("all:x", "all には値を付けません", 1),
    ("soccer", "「soccer」は条件として読めません", 1),
    ("grade:3 AND", "「AND」の後に条件がありません", 12),
    ("NOT", "「NOT」の後に条件がありません", 4),
    ("AND grade:3", "「AND」の前に条件が必要です", 1),
    ("grade:3 OR OR grade:4", "「OR」の前に条件が必要です", 12),
    ("()", "「)」の前に条件が必要です", 2),
    ("grade:3 club:x", "「club:x」の前に AND か OR が必要です", 9),
    ("(grade:3 club:x)", "「club:x」の前に AND、OR か「)」が必要です", 10),
    ('club:"abc', "「\"」（6文字目）を閉じる「\"」がありません", 10),
    ('"abc"', "「\"」で始まる値の前に「種類:」が必要です", 1),
    ('club:"a"b', "「b」は条件として読めません", 9),
])
def test_parse_errors_say_what_and_where(text, message, position):
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert message in str(caught.value)
    assert caught.value.position == position
    if position is not None:
        assert str(caught.value).endswith(f"（{position}文字目）")


def test_hostile_input_is_refused_cleanly():
    with pytest.raises(RuleError, match="長すぎます"):
        parse_rule("(" * 10_000 + "all" + ")" * 10_000)
    with pytest.raises(RuleError, match="長すぎます"):
        parse_rule("x" * 1_000_000)
    with pytest.raises(RuleError, match="入れ子が深すぎます") as caught:
        parse_rule("(" * (MAX_DEPTH + 1) + "all" + ")" * (MAX_DEPTH + 1))
    assert caught.value.position == MAX_DEPTH + 1
    with pytest.raises(RuleError, match="入れ子が深すぎます"):
        parse_rule("NOT " * (MAX_DEPTH + 1) + "all")
    with pytest.raises(RuleError, match="項目が多すぎます"):
        parse_rule(" OR ".join(["all"] * (MAX_TERMS + 1)))


def test_limits_themselves_are_allowed():
    assert parse_rule("(" * MAX_DEPTH + "all" + ")" * MAX_DEPTH) == All()
    assert parse_rule(" OR ".join(["all"] * MAX_TERMS)) == Or((All(),) * MAX_TERMS)
    assert parse_rule("all" + " " * (MAX_LENGTH - 3)) == All()


def test_random_input_only_ever_parses_or_raises_rule_error():
    pieces = ["(", ")", " ", '"', "\\", ":", "-", "&", "|", "!", "AND", "or", "not", "all", "grade",
              "class", "club", "3", "x", "サ", "\u3000"]
    rng = random.Random(20260406)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        try:
            parse_rule(text)
        except RuleError:
            pass


# --- resolution ----------------------------------------------------------------------------

@pytest.fixture
def roster(app):
    """Two schools; students named s1..s6 at A (s4 transferred out, s5 graduated), one at B."""
    school_a = add_school(app, "A", "第一小学校")
    school_b = add_school(app, "B", "第二小学校")
    now = app.clock.now()
    students = {}
    with db.write():
        for name, school, grade, class_name, status in [
                ("s1", school_a, 3, "1", "enrolled"), ("s2", school_a, 3, "2", "enrolled"),
                ("s3", school_a, 4, "1", "enrolled"), ("s4", school_a, 3, "1", "transferred_out"),
                ("s5", school_a, 6, "1", "graduated"), ("s6", school_a, 1, "1", "enrolled"),
                ("b1", school_b, 3, "1", "enrolled")]:
            students[name] = Student.create(school=school, grade=grade, class_name=class_name,
                                            number=len(students) + 1, name=name, status=status,
                                            created_at=now, updated_at=now)
        for school, kind, key, members in [
                (school_a, "club", "soccer", ["s1", "s3", "s4", "s5"]),
                (school_a, "club", "サッカー部", ["s2"]),
                (school_a, "route", "north", ["s1", "s6"]),
                (school_a, "route", "south", ["s2"]),
                (school_a, "custom", "PTA 役員", ["s3"]),
                (school_b, "club", "baseball", ["b1"])]:
            group = StudentGroup.create(school=school, kind=kind, key=key, name=key, created_at=now)
            for member in members:
                Membership.create(group=group, student=students[member])
    ids = {name: student.id for name, student in students.items()}
    guardians.add_guardian(app, "gA", student_ids=[ids["s1"], ids["s3"]], approved=True)   # siblings
    guardians.add_guardian(app, "gB", student_ids=[ids["s2"]], approved=True)
    guardians.add_guardian(app, "gC", student_ids=[ids["s4"], ids["s5"]], approved=True)   # left school
    guardians.add_guardian(app, "gD", student_ids=[ids["s6"]])                             # pending
    rejected = guardians.add_guardian(app, "gE", student_ids=[ids["s6"]])
    GuardianLink.update(status="rejected").where(GuardianLink.guardian == rejected.id).execute()
    guardians.add_guardian(app, "gF", student_ids=[ids["s2"], ids["b1"]], approved=True)   # two schools
    guardians.add_guardian(app, "gG", student_ids=[ids["b1"]], approved=True)
    return school_a, school_b


def resolve(school, text):
    """Return the names of the students and guardians a rule reaches."""
    rule = parse_rule(text)
    students = {s.name for s in Student.select(Student.name).where(Student.id.in_(student_query(school, rule)))}
    reached = {g.name for g in Guardian.select(Guardian.name).where(Guardian.id.in_(guardian_query(school, rule)))}
    return students, reached


@pytest.mark.parametrize("text, students, reached", [
    ("all", {"s1", "s2", "s3", "s6"}, {"gA", "gB", "gF"}),
    ("grade:3", {"s1", "s2"}, {"gA", "gB", "gF"}),
    ("class:3-1", {"s1"}, {"gA"}),
    ("class:3-3", set(), set()),
    ("club:soccer", {"s1", "s3"}, {"gA"}),
    ("club:サッカー部", {"s2"}, {"gB", "gF"}),
    ("route:north", {"s1", "s6"}, {"gA"}),
    ('group:"PTA 役員"', {"s3"}, {"gA"}),
    ("grade:3 AND NOT club:soccer", {"s2"}, {"gB", "gF"}),
    ("club:soccer OR route:south", {"s1", "s2", "s3"}, {"gA", "gB", "gF"}),
    ("NOT (grade:3 OR grade:4)", {"s6"}, set()),
    ("grade:3 AND route:north OR club:soccer", {"s1", "s3"}, {"gA"}),
    ("grade:3 AND (route:north OR club:soccer)", {"s1"}, {"gA"}),
    ("NOT all", set(), set()),
    ("route:north AND NOT grade:1 AND NOT class:4-1", {"s1"}, {"gA"}),
])
def test_resolution(roster, text, students, reached):
    school_a, _ = roster
    assert resolve(school_a, text) == (students, reached)


def test_other_school_sees_only_its_own(roster):
    _, school_b = roster
    assert resolve(school_b, "all") == ({"b1"}, {"gF", "gG"})
    assert resolve(school_b, "club:baseball AND grade:3") == ({"b1"}, {"gF", "gG"})


def test_count_audience_counts_a_guardian_of_siblings_once(roster):
    school_a, _ = roster
    assert count_audience(school_a, parse_rule("all")) == {"students": 4, "guardians": 3}
    assert count_audience(school_a, parse_rule("club:soccer")) == {"students": 2, "guardians": 1}


def test_unknown_groups_are_named_together(roster):
    school_a, _ = roster
    rule = parse_rule("club:soccer OR club:tennis OR route:soccer OR group:x OR club:baseball OR club:tennis")
    with pytest.raises(UnknownGroups) as caught:
        count_audience(school_a, rule)
    assert caught.value.names == ["club:tennis", "route:soccer", "group:x", "club:baseball"]
    assert "club:tennis, route:soccer, group:x, club:baseball" in str(caught.value)


def count_statements(action) -> int:
    """Run action and return how many SQL statements it sent."""
    with statements_sent() as statements:
        action()
    return len(statements)


def make_school(app, code: str, size: int):
    """A school of size students in two clubs and a route, each with an approved guardian."""
    school = add_school(app, code, code)
    now = app.clock.now()
    rows = [{"id": Student.id.default(), "school": school.id, "grade": n % 6 + 1, "class_name": "1",
             "number": n, "name": f"s{n}", "created_at": now, "updated_at": now} for n in range(size)]
    with db.write():
        Student.insert_many(rows).execute()
        for kind, key in [("club", "soccer"), ("club", "chorus"), ("route", "north")]:
            group = StudentGroup.create(school=school, kind=kind, key=key, name=key, created_at=now)
            Membership.insert_many([{"id": Membership.id.default(), "group": group.id, "student": row["id"]}
                                    for row in rows[::2]]).execute()
        for row in rows:
            guardians.add_guardian(app, f"g{row['name']}", student_ids=[row["id"]], approved=True)
    return school


def test_resolution_takes_the_same_number_of_queries_for_any_size(app):
    small, large = make_school(app, "SMALL", 5), make_school(app, "LARGE", 200)
    rule = parse_rule("(club:soccer OR route:north) AND NOT club:chorus OR grade:3 OR class:2-1")
    counts = []
    for school in (small, large):
        counts.append((count_statements(lambda school=school: count_audience(school, rule)),
                       count_statements(lambda school=school: list(guardian_query(school, rule)))))
    assert counts[0] == counts[1]
    assert counts[0] == (3, 2)   # the group check, then one statement per answer
    assert count_audience(large, rule)["guardians"] > count_audience(small, rule)["guardians"]


def test_a_class_is_found_through_the_enrolled_seat_index(app):
    """student_enrolled_seat is a partial index (enrolled children only): with SQLite's planner stability
    guarantee on, or the condition bound in some other form SQLite cannot match, a class became a scan."""
    school = make_school(app, "IDX", 5)
    sql, params = student_query(school, parse_rule("class:2-1")).sql()
    plan = query_plan(sql, params)
    assert any("student_enrolled_seat" in step for step in plan), plan
