"""Demo and benchmark data sets: sample rosters (appliance.sample_data) written in bulk.

:func:`seed_demo` makes one school a person can click through, with staff logins;
:func:`seed_bench` makes many large schools for the benchmarks in ``bench/``.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from appliance import coconet, contacts, db, guardians, roster
from appliance.config import CONFIG_FILE
from appliance.errors import InvalidInput
from appliance.ids import uuid7
from appliance.models import GuardianLink, Membership, School, Student, StudentGroup
from appliance.sample_data import SampleGenerator, SampleSchool
from appliance.schools import add_school
from appliance.staff import add_staff_user, set_assignments

DEMO_CODE = "demo"
DEMO_NAME = "さくら市立さくら小学校"
DEMO_SEED = "renraku-demo"
DEMO_GUARDIANS = 240            # about 19 children a class in 6 grades x 3 classes
DEMO_STAFF = (                  # role, login, name shown in the UI, the class a teacher has
    ("operator", "demo-operator", "サポートデスク", None),
    ("school_admin", "demo-admin", "教頭", None),
    ("teacher", "demo-teacher1", "1年1組担任", "1-1"),
    ("teacher", "demo-teacher2", "1年2組担任", "1-2"),
)
LOGINS_FILE = "demo-logins.txt"
SINK_SETTINGS = """

# Added by `appliance demo`: every domain goes to the capture sink, so no mail
# leaves this machine. Remove this section to deliver for real.
[mta]
transport = {{ "*" = "{sink}" }}
"""

BENCH_PREFIX = "bench"
# Demo addresses are numbered from 1, bench ones from here, so both data sets can
# share a data dir without two guardians holding the same address.
BENCH_FIRST_SERIAL = 1_000_000
BENCH_TOWNS = ("桜台", "緑町", "東山", "若葉", "旭", "本町", "青葉", "泉", "日の出", "松原",
               "梅が丘", "大池", "川端", "宮前", "富士見")


@dataclass(frozen=True)
class DemoLogin:
    role: str
    login: str
    password: str


@dataclass(frozen=True)
class DemoResult:
    created: bool                   # False: the demo school was there already
    school_code: str
    school_name: str
    grades: int
    classes: int
    students: int
    guardians: int
    addresses: int
    logins_file: Path
    logins: tuple[DemoLogin, ...]   # read back from logins_file on later runs; empty if it is gone


@dataclass(frozen=True)
class BenchResult:
    schools: int
    students: int
    guardians: int
    addresses: int
    groups: int
    memberships: int


def seed_demo(app) -> DemoResult:
    """Create the demo school, its roster and staff logins once; later runs report what is there."""
    logins_file = app.data_dir / LOGINS_FILE
    school = School.get_or_none(School.code == DEMO_CODE)
    if school is not None:
        return _demo_result(school, False, logins_file, _read_logins(logins_file))
    plan = SampleGenerator(DEMO_SEED).make_school(grades=6, classes=3, guardians=DEMO_GUARDIANS)
    # One transaction: a run that fails leaves nothing behind, so the next one starts afresh.
    with db.write():
        school = add_school(app, DEMO_CODE, DEMO_NAME, grades=plan.grades)
        store_sample_roster(app, school, plan)
        logins = tuple(_add_demo_staff(app, school))
        _write_logins(logins_file, school, logins)
    return _demo_result(school, True, logins_file, logins)


@dataclass(frozen=True)
class DrillResult:
    event_id: str
    dashboard_path: str             # the staff dashboard, under [web] base_url
    guardian_url: str               # the CoCo-net link of the collected child's guardian
    handed_over: str                # the child handed over
    by_state: dict[str, int]


def run_drill(app, school_code: str = DEMO_CODE, actor: str = "demo-admin") -> DrillResult:
    """Run a CoCo-net drill: open an event, mark 1-1 protected in the gym, hand a child over."""
    school = School.get_or_none(School.code == school_code)
    if school is None:
        raise InvalidInput(f"学校 {school_code} がありません。先に appliance demo を実行してください")
    event = coconet.open_event(app, school, kind="drill", title="避難訓練（CoCo-net）",
                               body="これは訓練です。児童は体育館に避難しました。", actor=actor)
    coconet.set_class_state(app, event, 1, "1", "protected", place="体育館", actor=actor)
    child = next(s for s in roster.class_students(school, 1, "1") if coconet.guardians_of(s))
    guardian = coconet.guardians_of(child)[0]
    coconet.record_pickup(app, event, child, guardian_id=guardian.id, note="訓練", actor=actor)
    return DrillResult(event.id, f"/admin/s/{school.code}/coconet/{event.id}/",
                       coconet.guardian_link(app, guardian.id), child.name, coconet.dashboard(event).by_state)


def route_mail_to_sink(app) -> bool:
    """Make every mail of this data dir go to the capture sink; return False if [mta] is set by hand.

    The demo's guardians have addresses on real domains (docomo.ne.jp, gmail.com ...):
    nothing may leave the machine, so the transport map sends every domain to the sink.
    """
    if app.config["mta"]["transport"].get("*") == app.config["sink"]["bind"]:
        return True
    toml_path = app.data_dir / CONFIG_FILE
    text = toml_path.read_text(encoding="utf-8")
    if any(line.strip() == "[mta]" for line in text.splitlines()):
        return False
    toml_path.write_text(text.rstrip("\n") + SINK_SETTINGS.format(sink=app.config["sink"]["bind"]), encoding="utf-8")
    return True


def _read_logins(path: Path) -> tuple[DemoLogin, ...]:
    """Return the logins written by seed_demo, or none if the file is gone."""
    if not path.exists():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(DemoLogin(*line.split("\t")) for line in lines if line and not line.startswith("#"))


def seed_bench(app, *, schools: int, guardians: int, addresses: int, seed: int = 1) -> BenchResult:
    """Create schools bench001... holding this many guardians in all, each with this many addresses."""
    if schools < 1 or guardians < schools:
        raise InvalidInput("学校数は1以上、保護者数は学校数以上で指定してください")
    if not 1 <= addresses <= contacts.MAX_PER_KIND["email"]:
        raise InvalidInput(f"アドレス数は1〜{contacts.MAX_PER_KIND['email']}で指定してください")
    if School.select().where(School.code.startswith(BENCH_PREFIX)).exists():
        raise InvalidInput("ベンチマーク用の学校がすでにあります。新しいデータディレクトリで実行してください")
    generator = SampleGenerator(seed, first_serial=BENCH_FIRST_SERIAL)
    students = addresses_made = groups = memberships = 0
    for number, quota in enumerate(_split(generator, guardians, schools), start=1):
        plan = generator.make_school(grades=6, classes=generator.rng.choice((3, 4)), guardians=quota,
                                     addresses=addresses)
        with db.write():
            school = add_school(app, f"{BENCH_PREFIX}{number:03d}", _bench_school_name(number),
                                grades=plan.grades)
            store_sample_roster(app, school, plan)
        students += len(plan.students)
        addresses_made += sum(len(g.emails) for g in plan.guardians)
        groups += len(plan.groups)
        memberships += sum(len(s.groups) for s in plan.students)
    return BenchResult(schools, students, guardians, addresses_made, groups, memberships)


def store_sample_roster(app, school: School, plan: SampleSchool) -> None:
    """Write a sample roster into a school: groups, students, memberships, approved guardians, addresses."""
    now = app.clock.now()
    group_ids = {group: uuid7() for group in plan.groups}
    student_ids = [uuid7() for _ in plan.students]
    with db.write():
        db.insert_rows(StudentGroup, [StudentGroup.id, StudentGroup.school, StudentGroup.kind, StudentGroup.key,
                                      StudentGroup.name, StudentGroup.created_at],
                       [(gid, school.id, kind, key, key, now) for (kind, key), gid in group_ids.items()])
        db.insert_rows(Student, [Student.id, Student.school, Student.student_number, Student.grade,
                                 Student.class_name, Student.number, Student.name, Student.furigana,
                                 Student.status, Student.created_at, Student.updated_at],
                       [(sid, school.id, f"{n:05d}", s.grade, s.class_name, s.number, s.name.name,
                         s.name.furigana, "enrolled", now, now)
                        for n, (sid, s) in enumerate(zip(student_ids, plan.students), start=1)])
        db.insert_rows(Membership, [Membership.id, Membership.group, Membership.student],
                       [(uuid7(), group_ids[group], sid)
                        for sid, s in zip(student_ids, plan.students) for group in s.groups])
        guardians.add_guardians(app, [
            guardians.NewGuardian(g.name.name, [student_ids[child] for child in g.children], g.emails,
                                  g.relationship) for g in plan.guardians], approved=True)


def _add_demo_staff(app, school: School):
    for role, login, display_name, class_name in DEMO_STAFF:
        password = secrets.token_urlsafe(12)
        user = add_staff_user(app, login=login, password=password, role=role, display_name=display_name,
                              school=None if role == "operator" else school)
        if class_name:
            set_assignments(app, user, classes=[class_name], actor="demo")
        yield DemoLogin(role, login, password)


def _write_logins(path: Path, school: School, logins: tuple[DemoLogin, ...]) -> None:
    lines = [f"# {school.name} ({school.code}) のデモ用ログイン: 役割, ログイン名, パスワード (タブ区切り)",
             "# パスワードはここにしか残りません。このファイルは他人に見せないでください。"]
    lines += [f"{login.role}\t{login.login}\t{login.password}" for login in logins]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)   # a file left from an earlier, failed run may have had looser bits
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _demo_result(school: School, created: bool, logins_file: Path,
                 logins: tuple[DemoLogin, ...]) -> DemoResult:
    in_school = Student.school == school
    classes = Student.select(Student.grade, Student.class_name).where(in_school).distinct().count()
    guardian_ids = [gid for (gid,) in GuardianLink.select(GuardianLink.guardian).join(Student)
                    .where(in_school).distinct().tuples()]
    summaries = contacts.summarise_contacts(guardian_ids).values()
    return DemoResult(
        created=created, school_code=school.code, school_name=school.name, grades=school.grades,
        classes=classes, students=Student.select().where(in_school).count(),
        guardians=len(guardian_ids), addresses=sum(s.counts.get("email", 0) for s in summaries),
        logins_file=logins_file, logins=logins)


def _split(generator: SampleGenerator, total: int, parts: int) -> list[int]:
    """Share total out over parts, at least one each, unevenly as real school sizes are."""
    weights = [generator.rng.uniform(0.7, 1.3) for _ in range(parts)]
    spare = total - parts
    shares = [1 + int(spare * w / sum(weights)) for w in weights]
    for i in range(total - sum(shares)):
        shares[i] += 1
    return shares


def _bench_school_name(number: int) -> str:
    town = BENCH_TOWNS[(number - 1) % len(BENCH_TOWNS)]
    lap = (number - 1) // len(BENCH_TOWNS) + 1
    return f"ベンチ市立{town}{'' if lap == 1 else f'第{lap}'}小学校"
