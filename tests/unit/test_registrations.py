"""Pending guardian registrations: listing them and the school's decision."""
import json

import pytest

from appliance import registrations
from appliance.errors import InvalidInput, NotFound
from appliance.models import AuditEntry, GuardianLink
from appliance.targeting import count_audience, parse_rule


def test_pending_registrations_list_child_guardian_and_time(staff, pending):
    [row] = registrations.pending_registrations(staff.school)
    assert (row.link_id, row.guardian_name, row.relationship) == (pending.id, "申請 花子", "母")
    assert (row.grade, row.class_name, row.number) == (1, "1", 1)
    assert row.requested_at == pending.created_at
    assert registrations.count_pending(staff.school) == 1
    assert registrations.pending_registrations(staff.other_school) == []


def test_approving_makes_the_guardian_targetable_and_is_audited(app, staff, pending):
    rule = parse_rule("class:1-1")
    before = count_audience(staff.school, rule)["guardians"]
    link = registrations.decide_link(app, staff.school, pending.id, "approve", actor="admin-a")
    assert link.status == "approved" and link.decided_at == app.clock.now()
    assert count_audience(staff.school, rule)["guardians"] == before + 1
    entry = AuditEntry.get(AuditEntry.action == "registration.approve")
    assert (entry.actor, entry.subject_id, entry.school_id) == ("admin-a", pending.id, staff.school.id)
    assert json.loads(entry.detail)["guardian_id"] == pending.guardian_id
    assert registrations.pending_registrations(staff.school) == []


def test_rejecting_keeps_the_guardian_out_of_audiences(app, staff, pending):
    rule = parse_rule("class:1-1")
    before = count_audience(staff.school, rule)["guardians"]
    registrations.decide_link(app, staff.school, pending.id, "reject", actor="admin-a")
    assert GuardianLink.get_by_id(pending.id).status == "rejected"
    assert count_audience(staff.school, rule)["guardians"] == before
    assert AuditEntry.select().where(AuditEntry.action == "registration.reject").count() == 1


def test_a_decided_link_is_not_decided_again(app, staff, pending):
    registrations.decide_link(app, staff.school, pending.id, "reject", actor="admin-a")
    with pytest.raises(InvalidInput, match="すでに処理"):
        registrations.decide_link(app, staff.school, pending.id, "approve", actor="admin-a")
    assert GuardianLink.get_by_id(pending.id).status == "rejected"


def test_another_schools_link_is_not_found(app, staff, pending):
    with pytest.raises(NotFound):
        registrations.decide_link(app, staff.other_school, pending.id, "approve", actor="admin-b")
    assert GuardianLink.get_by_id(pending.id).status == "pending"


def test_an_unknown_decision_is_refused(app, staff, pending):
    with pytest.raises(InvalidInput):
        registrations.decide_link(app, staff.school, pending.id, "maybe", actor="admin-a")
