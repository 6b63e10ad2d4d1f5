"""Fixtures shared by both tiers: a fresh data dir and appliance per test, staff accounts, web clients."""
import html
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from appliance import db
from appliance.cli import main
from appliance.clock import FrozenClock
from appliance.demo import store_sample_roster
from appliance.guardians import add_guardian
from appliance.models import GuardianLink, School, Student
from appliance.runtime import init_data_dir
from appliance.sample_data import SampleGenerator
from appliance.schools import add_school
from appliance.staff import add_staff_user
from webui import create_app

# Hypothesis keeps its example database in the working directory unless told otherwise;
# tests never write into the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "renraku-hypothesis"))

# Cheap argon2 parameters: tests hash many passwords; verification reads them from each hash.
TEST_OVERRIDES = {"site": {"name": "test-site"},
                  "passwords": {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}}
# The same for `appliance` run in-process, through the environment as the CLI reads its settings
# (APPLIANCE_<SECTION>__<KEY>); APPLIANCE_DATA_DIR unset: --data-dir decides.
CLI_ENV = {"APPLIANCE_DATA_DIR": None,
           **{f"APPLIANCE_PASSWORDS__{key.upper()}": str(value) for key, value in TEST_OVERRIDES["passwords"].items()}}
START = datetime(2026, 4, 6, 0, 0, tzinfo=timezone.utc)   # 09:00 in Tokyo, first day of term


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(tmp_path, clock):
    """An initialised appliance in a temporary data dir, with a frozen clock."""
    appliance = init_data_dir(tmp_path / "data", environ={}, overrides=TEST_OVERRIDES,
                              clock=clock)
    yield appliance
    db.close_database()


PASSWORD = "correct horse battery"   # every test account's password


@dataclass
class Staff:
    """Two schools and one account of each role (school_admin and teacher at school A)."""

    school: object          # "sch-a"
    other_school: object    # "sch-b"
    operator: object
    admin: object
    teacher: object
    other_admin: object     # school_admin of sch-b


@pytest.fixture
def staff(app):
    school = add_school(app, "sch-a", "第一小学校")
    other = add_school(app, "sch-b", "第二小学校")
    return Staff(
        school=school, other_school=other,
        operator=add_staff_user(app, login="op", password=PASSWORD, role="operator", display_name="運用担当"),
        admin=add_staff_user(app, login="admin-a", password=PASSWORD, role="school_admin", school=school,
                             display_name="教頭"),
        teacher=add_staff_user(app, login="teacher-a", password=PASSWORD, role="teacher", school=school,
                               display_name="担任"),
        other_admin=add_staff_user(app, login="admin-b", password=PASSWORD, role="school_admin", school=other))


def hidden(page: str, name: str) -> str:
    """The value of the page's (first) form input of this name."""
    return html.unescape(re.search(rf'name="{name}"[^>]*value="([^"]+)"', page)[1])


def csrf_token(page: str) -> str:
    """The CSRF token a page's form carries."""
    return hidden(page, "csrf_token")


class WebClient(FlaskClient):
    """A test client that signs in and posts forms with a real CSRF token, as a browser does."""

    def csrf(self) -> str:
        return csrf_token(self.get("/status").get_data(as_text=True))    # every page carries one (language switch)

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        return self.post(url, data={"csrf_token": self.csrf(), **(data or {})}, **kwargs)

    def sign_in(self, login: str, password: str = PASSWORD, totp: str = ""):
        return self.post_form("/admin/login", {"login": login, "password": password, "totp": totp})


@pytest.fixture
def web(app):
    """The Flask app over the test appliance, CSRF and all."""
    flask_app = create_app({"APPLIANCE": app, "DATA_DIR": app.data_dir, "TESTING": True})
    flask_app.test_client_class = WebClient
    return flask_app


@pytest.fixture
def client(web):
    return web.test_client()


@pytest.fixture
def signed_in(web, staff):
    """Return a function: login name -> a client signed in as that account."""

    def make(login: str) -> WebClient:
        new = web.test_client()
        assert new.sign_in(login).status_code == 302
        return new

    return make


@pytest.fixture
def roster(app, staff):
    """School sch-a filled with a sample roster: 6 grades x 2 classes, 60 approved guardians with
    1-4 addresses each (every address carries the marker rk + 7 digits). Returns the plan."""
    plan = SampleGenerator("tests").make_school(grades=6, classes=2, guardians=60)
    store_sample_roster(app, staff.school, plan)
    return plan


def add_students(app, school, seats) -> list[Student]:
    """Students created now at these (grade, class_name, number, name) seats of the school."""
    now = app.clock.now()
    with db.write():
        return [Student.create(school=school, grade=grade, class_name=class_name, number=number, name=name,
                               created_at=now, updated_at=now) for grade, class_name, number, name in seats]


def seat(grade: int, class_name: str, number: int, school: str = "sch-a") -> Student:
    """The enrolled student at this seat (grade, class, number) of a school."""
    return Student.get((Student.school == School.get(School.code == school)) & (Student.grade == grade)
                       & (Student.class_name == class_name) & (Student.number == number)
                       & (Student.status == "enrolled"))


@pytest.fixture
def pending(app, roster, clock):
    """A new guardian who registered for 1-1-1 (with an address) and awaits approval: their GuardianLink."""
    child = seat(1, "1", 1)
    clock.advance(minutes=5)
    guardian = add_guardian(app, "申請 花子", student_ids=[child.id], emails=["new.rk9999999@example.jp"],
                            relationship="母")
    return GuardianLink.get(GuardianLink.guardian == guardian)


@pytest.fixture
def cli(tmp_path):
    """Run `appliance --data-dir DIR ...` against a fresh data dir with schools S1 and S2;
    cli.password_file holds a password for `user add`."""
    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    password = tmp_path / "password"
    password.write_text("a long enough password\n", encoding="utf-8")

    def run(*args):
        return runner.invoke(main, ["--data-dir", data_dir, *args], env=CLI_ENV)

    for args in (["init"], ["school", "add", "S1", "第一小学校"], ["school", "add", "S2", "第二小学校"]):
        assert run(*args).exit_code == 0
    run.password_file = str(password)
    yield run
    db.close_database()


def ok(result):
    """The JSON a `cli` command printed, after checking it succeeded."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


ROSTER = ("学年,組,出席番号,氏名,ふりがな,学籍番号,部活動,通学路,保護者氏名,メール1\r\n"
          "3,1,1,山田 太郎,やまだ たろう,1001,サッカー部,北,山田 春子,haruko@example.jp\r\n"
          "5,2,1,山田 花子,やまだ はなこ,1003,,北,山田 春子,haruko@example.jp\r\n"
          "6,1,1,鈴木 一郎,すずき いちろう,1002,,南,,\r\n")


@pytest.fixture
def roster_file(tmp_path):
    """A CP932 roster CSV for `appliance roster import`: three students, one guardian for two of them."""
    path = tmp_path / "roster.csv"
    path.write_bytes(ROSTER.encode("cp932"))
    return str(path)


@pytest.fixture
def families(app):
    """A school with two families and a message with a survey (tests/unit/guardian_fixtures.py)."""
    from tests.unit.guardian_fixtures import make_families    # here: guardian_fixtures imports this module
    return make_families(app)


@contextmanager
def statements_sent() -> Iterator[list]:
    """The statements peewee sends while the block runs (its query events: ``.sql``, ``.params``)."""
    statements = []
    hooks = db.database.obj.query_hooks
    hooks.append(statements.append)
    try:
        yield statements
    finally:
        hooks.remove(statements.append)


def query_plan(sql: str, params=()) -> list[str]:
    """SQLite's plan for a statement, one line per step (EXPLAIN QUERY PLAN)."""
    return [row[3] for row in db.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params)]
