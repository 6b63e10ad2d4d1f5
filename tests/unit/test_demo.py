"""The demo school, the bench data set, and the bulk address writer they use."""
import json
import stat
from collections import Counter

import pytest
from click.testing import CliRunner

from appliance import contacts, db
from appliance.cli import main
from appliance.demo import DEMO_CODE, LOGINS_FILE, seed_demo
from appliance.errors import InvalidInput, LimitReached
from appliance.guardians import add_guardian
from appliance.models import Guardian, GuardianLink, School, StaffUser, Student, StudentGroup
from appliance.runtime import init_data_dir, open_appliance
from appliance.sample_data import ADDRESS_MARKER
from appliance.staff import check_password


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One demo data dir for the module: argon2 makes each seed (four staff hashes) take a second."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    result = seed_demo(init_data_dir(data_dir, environ={}))
    db.close_database()
    return data_dir, result


@pytest.fixture
def demo_app(seeded):
    """The seeded appliance, opened afresh: other tests rebind the database between these."""
    yield open_appliance(seeded[0], environ={})
    db.close_database()


@pytest.fixture
def demo(seeded, demo_app):
    return seeded[1]


def test_demo_school_has_six_grades_of_three_classes(demo):
    school = School.get(School.code == DEMO_CODE)
    assert (demo.created, demo.school_code, demo.grades, demo.classes) == (True, "demo", 6, 18)
    sizes = Counter((s.grade, s.class_name) for s in Student.select().where(Student.school == school))
    assert set(sizes) == {(g, str(c)) for g in range(1, 7) for c in range(1, 4)}
    assert all(17 <= size <= 21 for size in sizes.values())
    assert demo.students == sum(sizes.values())


def test_demo_guardians_are_approved_with_one_to_four_active_addresses(demo):
    assert 200 <= demo.guardians <= demo.students
    assert demo.guardians < demo.addresses <= 4 * demo.guardians
    assert {link.status for link in GuardianLink.select()} == {"approved"}
    summaries = contacts.summarise_contacts([g.id for g in Guardian.select()])
    assert {s.counts["email"] for s in summaries.values()} == {1, 2, 3, 4}
    siblings = Counter(link.guardian_id for link in GuardianLink.select())
    assert max(siblings.values()) >= 3


def test_demo_groups_are_clubs_routes_and_a_committee(demo):
    groups = {(g.kind, g.key): g for g in StudentGroup.select()}
    assert ("club", "サッカー部") in groups and ("route", "北ルート") in groups
    assert ("custom", "図書委員") in groups
    assert all(group.name == key for (_, key), group in groups.items())
    assert groups["route", "北ルート"].memberships.count() > 0


def test_demo_runs_once(demo_app, demo):
    again = seed_demo(demo_app)
    assert not again.created
    assert (again.students, again.guardians, again.addresses, again.logins) == \
        (demo.students, demo.guardians, demo.addresses, demo.logins)
    assert School.select().count() == 1
    assert Student.select().count() == demo.students
    assert StaffUser.select().count() == 4


def test_demo_logins_are_private_and_work(demo_app, demo):
    path = demo_app.data_dir / LOGINS_FILE
    assert demo.logins_file == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {login.role for login in demo.logins} == {"operator", "school_admin", "teacher"}
    for login in demo.logins:
        assert login.password in path.read_text(encoding="utf-8")
        assert check_password(demo_app, StaffUser.get(StaffUser.login == login.login), login.password)


def test_demo_without_its_logins_file_reports_none(demo_app, demo):
    kept = demo.logins_file.with_suffix(".kept")
    demo.logins_file.rename(kept)
    try:
        again = seed_demo(demo_app)
    finally:
        kept.rename(demo.logins_file)
    assert not again.created and again.logins == ()


def test_demo_command_prints_counts_and_logins_but_no_address(seeded):
    result = CliRunner().invoke(main, ["--data-dir", str(seeded[0]), "demo"])
    db.close_database()
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["school"] == {"code": "demo", "name": seeded[1].school_name}
    assert printed["counts"]["classes"] == 18
    assert printed["logins"] == [vars(login) for login in seeded[1].logins]
    assert not ADDRESS_MARKER.search(result.output)


@pytest.fixture
def cli(tmp_path):
    """Run `appliance --data-dir <initialised tmp dir> ...`, returning the result."""
    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    assert runner.invoke(main, ["--data-dir", data_dir, "init"]).exit_code == 0
    yield lambda *args: runner.invoke(main, ["--data-dir", data_dir, *args])
    db.close_database()


def test_bench_seed_small(cli):
    result = cli("bench", "seed", "--schools", "3", "--guardians", "300", "--addresses", "2")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert (printed["schools"], printed["guardians"], printed["addresses"]) == (3, 300, 600)
    assert printed["students"] == Student.select().count() > 300
    assert [s.code for s in School.select().order_by(School.code)] == ["bench001", "bench002", "bench003"]
    assert Guardian.select().count() == 300
    summaries = contacts.summarise_contacts([g.id for g in Guardian.select()])
    assert {s.counts["email"] for s in summaries.values()} == {2}
    for school in School.select():
        classes = {c for (c,) in Student.select(Student.class_name).where(Student.school == school).tuples()}
        assert classes in ({"1", "2", "3"}, {"1", "2", "3", "4"})


def test_bench_seed_refuses_a_second_run(cli):
    assert cli("bench", "seed", "--schools", "1", "--guardians", "5").exit_code == 0
    again = cli("bench", "seed", "--schools", "1", "--guardians", "5")
    assert again.exit_code == 1
    assert "すでにあります" in again.output
    assert Guardian.select().count() == 5


def new_guardian(app, name="佐藤 恵"):
    return add_guardian(app, name, student_ids=[])


def test_bulk_addresses_are_sealed_numbered_and_findable(app):
    first, second = new_guardian(app), new_guardian(app)
    rows = [(first.id, "email", "a.rk0000001@docomo.ne.jp"), (second.id, "email", "b.rk0000002@GMAIL.com"),
            (first.id, "email", "c.rk0000003@au.com")]
    assert contacts.add_contacts_bulk(app, rows, status="active") == 3
    shown = contacts.reveal_contacts(app, first.id, "cli:test")
    assert [(c.position, c.value, c.status) for c in shown] == \
        [(1, "a.rk0000001@docomo.ne.jp", "active"), (2, "c.rk0000003@au.com", "active")]
    assert contacts.find_holders(app, "email", ["b.rk0000002@gmail.com"]) == {"b.rk0000002@gmail.com": {second.id}}


def test_bulk_addresses_refuse_duplicates_and_a_fifth(app):
    guardian = new_guardian(app)
    with pytest.raises(InvalidInput):
        contacts.add_contacts_bulk(app, [(guardian.id, "email", "x@gmail.com")] * 2)
    with pytest.raises(LimitReached):
        contacts.add_contacts_bulk(app, [(guardian.id, "email", f"x{i}@gmail.com") for i in range(5)])
    assert contacts.summarise_contacts([guardian.id])[guardian.id].counts == {}
