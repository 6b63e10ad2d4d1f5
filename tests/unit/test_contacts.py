"""Contact points: sealed at rest, found by keyed hash, limited to 4, counted for schools, audited for operators."""
import pytest
from cryptography.exceptions import InvalidTag

from appliance import contacts, db
from appliance.errors import InvalidInput, LimitReached
from appliance.guardians import add_guardian
from appliance.models import AuditEntry, ContactPoint
from appliance.schools import add_school
from tests.conftest import add_students


@pytest.fixture
def guardian(app):
    school = add_school(app, "s1", "第一小学校")
    [student] = add_students(app, school, [(1, "1", 1, "山田 花子")])
    return add_guardian(app, "山田 太郎", student_ids=[student.id], approved=True)


def test_values_are_sealed_at_rest(app, guardian):
    contacts.add_contact(app, guardian.id, "email", "taro@example.jp", status="active")
    raw = db.database.execute_sql("SELECT sealed, lookup FROM contact_point").fetchone()
    assert b"taro@example.jp" not in bytes(raw[0]) and "taro" not in raw[1]


def test_sealed_value_does_not_open_for_another_guardian(app, guardian):
    point = contacts.add_contact(app, guardian.id, "email", "taro@example.jp")
    with pytest.raises(InvalidTag):
        app.sealer.open("someone-else", "email", point.sealed)


def test_carrier_addresses_that_break_rfc_are_accepted(app, guardian):
    point = contacts.add_contact(app, guardian.id, "email", "taro..yamada.@DoCoMo.ne.jp")
    assert contacts.open_for_delivery(app, [point.id]) == {point.id: "taro..yamada.@docomo.ne.jp"}


@pytest.mark.parametrize("value", ["", "no-at-sign", "a b@example.jp", "taro@", "@example.jp",
                                   "太郎@example.jp", "taro@example"])
def test_bad_addresses_are_refused(app, guardian, value):
    with pytest.raises(InvalidInput):
        contacts.add_contact(app, guardian.id, "email", value)


def test_fifth_address_is_refused_and_duplicates_too(app, guardian):
    contacts.add_contacts(app, guardian.id, "email", [f"a{i}@example.jp" for i in range(4)])
    with pytest.raises(LimitReached, match="4件"):
        contacts.add_contact(app, guardian.id, "email", "a5@example.jp")
    with pytest.raises(InvalidInput, match="すでに"):
        contacts.add_contact(app, guardian.id, "email", "A0@EXAMPLE.JP".replace("A0", "a0"))
    assert ContactPoint.select().count() == 4


def test_schools_get_counts_never_values(app, guardian):
    points = contacts.add_contacts(app, guardian.id, "email", ["a@example.jp", "b@example.jp"], status="active")
    with db.write():
        ContactPoint.update(status="suspended").where(ContactPoint.id == points[1].id).execute()
    summary = contacts.summarise_contacts([guardian.id])[guardian.id]
    assert summary.counts == {"email": 2} and summary.suspended == {"email": 1}
    assert "example.jp" not in repr(summary)


def test_operator_view_is_audited(app, guardian):
    contacts.add_contact(app, guardian.id, "email", "taro@example.jp")
    revealed = contacts.reveal_contacts(app, guardian.id, actor="operator1")
    assert [c.value for c in revealed] == ["taro@example.jp"]
    entry = AuditEntry.get(AuditEntry.action == "contacts.view")
    assert entry.actor == "operator1" and entry.subject_id == guardian.id
    assert "taro" not in entry.detail


def test_find_holders_of_many_values_at_once(app, guardian):
    contacts.add_contacts(app, guardian.id, "email", ["a@example.jp", "b@example.jp"])
    assert contacts.find_holders(app, "email", [" a@example.JP", "c@example.jp"]) == {
        " a@example.JP": {guardian.id}, "c@example.jp": set()}
