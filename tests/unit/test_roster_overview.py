"""The roster as staff see it: classes, registration states, address counts (never addresses)."""
import logging

from appliance import contacts, roster_overview
from appliance.guardians import add_guardian
from appliance.models import ContactPoint, GuardianLink, Student
from appliance.roster_overview import class_key
from tests.conftest import seat


def test_class_summaries_cover_every_class_with_counts_that_add_up(staff, roster):
    summaries = roster_overview.class_summaries(staff.school)
    assert [(c.grade, c.class_name) for c in summaries] == [(g, c) for g in range(1, 7) for c in ("1", "2")]
    assert sum(c.students for c in summaries) == len(roster.students)
    registered = (Student.select().join(GuardianLink)
                  .where(GuardianLink.status == "approved").distinct().count())
    assert sum(c.registered for c in summaries) == registered
    assert all(c.pending == 0 and c.none == c.students - c.registered for c in summaries)


def test_class_overview_states_and_counts(app, staff, roster):
    first = seat(1, "1", 1)
    # Make the first child's family fully known: drop their links, add one approved guardian
    # with two addresses (one suspended after bounces) and one pending guardian.
    GuardianLink.delete().where(GuardianLink.student == first).execute()
    parent = add_guardian(app, "既存 太郎", student_ids=[first.id], approved=True,
                          emails=["a.rk1000001@example.jp", "b.rk1000002@example.jp"])
    contacts.suspend([ContactPoint.get((ContactPoint.guardian == parent) & (ContactPoint.position == 2)).id])
    add_guardian(app, "申請 花子", student_ids=[first.id], emails=["c.rk1000003@example.jp"])
    overview = roster_overview.class_overview(staff.school, 1, "1")
    row = overview.students[0]
    assert (row.id, row.number, row.state, row.addresses, row.bouncing) == (first.id, 1, "registered", 2, 1)
    assert [s.number for s in overview.students] == sorted(s.number for s in overview.students)
    assert overview.count("registered") + overview.count("pending") + overview.count("none") == len(overview.students)


def test_a_child_with_only_a_pending_guardian_is_pending_and_counts_no_address(app, staff, roster):
    child = seat(2, "1", 1)
    GuardianLink.delete().where(GuardianLink.student == child).execute()
    add_guardian(app, "申請 花子", student_ids=[child.id], emails=["c.rk1000003@example.jp"])
    row = roster_overview.class_overview(staff.school, 2, "1").students[0]
    assert (row.state, row.addresses, row.bouncing) == ("pending", 0, 0)
    [summary] = [c for c in roster_overview.class_summaries(staff.school) if (c.grade, c.class_name) == (2, "1")]
    assert summary.pending == 1


def test_student_detail_lists_groups_and_guardians_without_values(app, staff, roster):
    child = seat(3, "2", 1)
    GuardianLink.delete().where(GuardianLink.student == child).execute()
    add_guardian(app, "申請 花子", student_ids=[child.id], emails=["c.rk1000003@example.jp"], relationship="母")
    detail = roster_overview.student_detail(child)
    [guardian] = detail.guardians
    assert (guardian.name, guardian.relationship, guardian.status, guardian.addresses) == ("申請 花子", "母", "pending", 1)
    assert detail.state == "pending"
    assert "rk1000003" not in repr(detail)
    assert {g.name for g in detail.groups} == {
        key for kind, key in roster.students[[i for i, s in enumerate(roster.students)
                                             if (s.grade, s.class_name, s.number) == (3, "2", 1)][0]].groups}


def test_a_class_page_costs_a_fixed_number_of_queries(staff, roster, caplog):
    caplog.set_level(logging.DEBUG, logger="peewee")
    roster_overview.class_overview(staff.school, 1, "1")
    small = len(caplog.records)
    caplog.clear()
    roster_overview.class_overview(staff.school, 6, "2")
    assert len(caplog.records) == small <= 5 and small > 0


def test_classes_sort_numerically_then_by_letter():
    assert sorted([(1, "10"), (1, "A"), (1, "2"), (0, "B")], key=lambda c: class_key(*c)) == [
        (0, "B"), (1, "2"), (1, "10"), (1, "A")]
