"""Benchmark: resolve an audience and snapshot a message for a large school.

Run with ``.venv/bin/python bench/resolve.py``. Builds a throw-away data dir with one
school of 40,000 enrolled students, each with one approved guardian holding 4 active
email addresses, then times ``count_audience`` and ``create_message`` for ``all`` and
for a narrower rule. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager

from appliance import db
from appliance.ids import uuid7
from appliance.messages import create_message, message_summary
from appliance.models import ContactPoint, Guardian, GuardianLink, Membership, Student, StudentGroup
from appliance.runtime import init_data_dir
from appliance.schools import add_school
from appliance.targeting import count_audience, parse_rule

GRADES = 6
CLASS_SIZE = 40
ADDRESSES = 4
NARROW_RULE = "grade:3 AND NOT club:soccer"


def build_fixture(app, school, students: int) -> None:
    """Bulk-insert the roster, groups, guardians, links and sealed addresses (not timed)."""
    now = app.clock.now()
    student_rows, guardian_rows, link_rows, contact_rows = [], [], [], []
    for i in range(students):
        seat = i // GRADES
        student_id, guardian_id = uuid7(), uuid7()
        student_rows.append((student_id, school.id, i % GRADES + 1, str(seat // CLASS_SIZE + 1),
                             seat % CLASS_SIZE + 1, f"児童{i}", now, now))
        guardian_rows.append((guardian_id, f"保護者{i}", now))
        link_rows.append((uuid7(), guardian_id, student_id, "approved", now, now))
        for position in range(1, ADDRESSES + 1):
            value = f"parent{i}.{position}@example.jp"
            contact_rows.append((uuid7(), guardian_id, "email", position,
                                 app.sealer.seal(guardian_id, "email", value),
                                 app.sealer.lookup("email", value), "active", now, now))
    groups = {key: uuid7() for key in ("soccer", "chorus")}
    group_rows = [(group_id, school.id, "club", key, key, now) for key, group_id in groups.items()]
    member_rows = [(uuid7(), groups["soccer" if n % 2 else "chorus"], row[0])
                   for n, row in enumerate(student_rows) if n % 5 == 0]
    S, G, L, C = Student, Guardian, GuardianLink, ContactPoint
    with db.write():
        db.insert_rows(S, [S.id, S.school, S.grade, S.class_name, S.number, S.name, S.created_at,
                           S.updated_at], student_rows)
        db.insert_rows(StudentGroup, [StudentGroup.id, StudentGroup.school, StudentGroup.kind,
                                      StudentGroup.key, StudentGroup.name, StudentGroup.created_at], group_rows)
        db.insert_rows(Membership, [Membership.id, Membership.group, Membership.student], member_rows)
        db.insert_rows(G, [G.id, G.name, G.created_at], guardian_rows)
        db.insert_rows(L, [L.id, L.guardian, L.student, L.status, L.created_at, L.decided_at], link_rows)
        db.insert_rows(C, [C.id, C.guardian, C.kind, C.position, C.sealed, C.lookup, C.status, C.created_at,
                           C.confirmed_at], contact_rows)


REPEATS = 3   # the machines are noisy: each send is timed on its own


@contextmanager
def timed(label: str):
    """Print the block's wall-clock and CPU seconds (CPU shows what a busy machine hides)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    print(f"{label:<48} {time.perf_counter() - wall:7.3f} s  (cpu {time.process_time() - cpu:.3f} s)")


def run(students: int) -> None:
    """Build the fixture in a temporary data dir and print the figures."""
    with tempfile.TemporaryDirectory(prefix="renraku-bench-") as data_dir:
        app = init_data_dir(data_dir, environ={}, overrides={"site": {"name": "bench"}})
        school = add_school(app, "BENCH", "ベンチ小学校", grades=GRADES)
        print(f"cpus: {os.cpu_count()}, students: {students}, guardians: {students}, "
              f"addresses per guardian: {ADDRESSES}")
        with timed("fixture (bulk insert, not part of the figures)"):
            build_fixture(app, school, students)
        # A fresh box has its WAL checkpointed; the fixture's would otherwise be paid for below.
        db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        for text in ("all", NARROW_RULE):
            rule = parse_rule(text)
            print(f"\nrule: {text}")
            with timed("count_audience"):
                counts = count_audience(school, rule)
            print(f"  students {counts['students']}, guardians {counts['guardians']}")
            for attempt in range(1, REPEATS + 1):
                with timed(f"create_message (send {attempt} of {REPEATS})"):
                    message = create_message(app, school, audience=text, subject="ベンチマーク",
                                             body="本文", actor="bench")
            summary = message_summary(message)
            print(f"  recipients {summary['recipients']}, deliveries {summary['deliveries']}")
        db.close_database()


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40_000)
    run(parser.parse_args().students)


if __name__ == "__main__":
    main()
