"""Benchmark: the follow-up figures of a 160,000-delivery message.

Run with ``.venv/bin/python bench/followup_stats.py``. Builds the school of
bench/resolve.py (40,000 students, one guardian each with 4 addresses), sends one
message with a two-question survey to all of them, spreads the deliveries over the
states, lets 60% of guardians read (some twice) and 30% answer, then times each
figure the follow-up page and its polling ask for. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import tempfile

from resolve import build_fixture, timed

from appliance import db
from appliance.followup import (answers_csv, class_read_table, targeted_classes, message_stats, read_percents, resend_unread,
                                survey_results)
from appliance.ids import uuid7
from appliance.messages import Question, create_message
from appliance.models import Delivery, Receipt, Recipient, SurveyAnswer, SurveyQuestion
from appliance.runtime import init_data_dir
from appliance.schools import add_school

REPEATS = 5
# Of every 20 deliveries: 15 delivered, 2 deferred, 1 bounced, 1 expired, 1 still queued.
STATE_CYCLE = ["delivered"] * 15 + ["deferred"] * 2 + ["bounced", "expired", "queued"]


def seed_facts(app, message) -> None:
    """Spread delivery states, add receipts (60% of guardians, a third of them twice) and answers (30%)."""
    now = app.clock.now()
    delivery_ids = [d for (d,) in Delivery.select(Delivery.id).where(Delivery.message == message.id).tuples()]
    guardian_ids = [g for (g,) in Recipient.select(Recipient.guardian).where(Recipient.message == message.id).tuples()]
    single, multiple = SurveyQuestion.select().where(SurveyQuestion.message == message.id).order_by(
        SurveyQuestion.position)
    readers = guardian_ids[: len(guardian_ids) * 6 // 10]
    answerers = guardian_ids[: len(guardian_ids) * 3 // 10]
    with db.write():
        db.execute_many(Delivery, 'UPDATE {table} SET "state" = {p} WHERE "id" = {p}', [Delivery.state, Delivery.id],
                        [(STATE_CYCLE[n % len(STATE_CYCLE)], d) for n, d in enumerate(delivery_ids)])
        db.insert_rows(Receipt, [Receipt.id, Receipt.message, Receipt.guardian, Receipt.site, Receipt.at],
                       [(uuid7(), message.id, g, app.site, now) for g in readers + readers[::3]])
        db.insert_rows(SurveyAnswer, [SurveyAnswer.id, SurveyAnswer.message, SurveyAnswer.guardian,
                                      SurveyAnswer.question, SurveyAnswer.value, SurveyAnswer.site, SurveyAnswer.at],
                       [(uuid7(), message.id, g, q.id, value, app.site, now)
                        for n, g in enumerate(answerers)
                        for q, value in ((single, json.dumps(["はい", "いいえ"][n % 2])),
                                         (multiple, json.dumps(["受付", "撮影"][: n % 2 + 1])))])


def run(students: int) -> None:
    """Build the fixture in a temporary data dir and print the figures."""
    with tempfile.TemporaryDirectory(prefix="renraku-bench-") as data_dir:
        app = init_data_dir(data_dir, environ={}, overrides={"site": {"name": "bench"}})
        school = add_school(app, "BENCH", "ベンチ小学校", grades=6)
        with timed("fixture (roster, send, facts; not part of the figures)"):
            build_fixture(app, school, students)
            message = create_message(app, school, audience="all", subject="ベンチマーク", body="本文", actor="bench",
                                     questions=[Question("single", "出席", ("はい", "いいえ")),
                                                Question("multiple", "係", ("受付", "片付け", "撮影"))])
            seed_facts(app, message)
        db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        stats = message_stats(message)
        print(f"recipients {stats['recipients']}, read {stats['read']} ({stats['read_percent']}%), "
              f"answered {stats['answered']}, email {stats['channels']['email']}")
        for attempt in range(1, REPEATS + 1):
            with timed(f"message_stats (poll {attempt} of {REPEATS})"):
                message_stats(message)
        with timed("read_percents (the list page's column)"):
            read_percents([message.id])
        with timed("targeted_classes (the page's class links)"):
            classes = targeted_classes(message)
        with timed("class_read_table, one class (what the page shows)"):
            one = class_read_table(message, classes[0][:2])
        print(f"  {len(classes)} classes; the first has {one[0]['total']} children")
        with timed("class_read_table, the whole school"):
            whole = class_read_table(message)
        print(f"  {sum(c['total'] for c in whole)} children")
        with timed("survey_results"):
            survey_results(message)
        with timed("answers_csv"):
            size = len(answers_csv(message).encode())
        print(f"  {size:,} bytes")
        with timed("resend_unread (email)"):
            queued = resend_unread(app, message, ["email"], actor="bench")
        print(f"  {queued} deliveries queued")
        with timed("message_stats after the resend"):
            message_stats(message)
        db.close_database()


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40_000)
    run(parser.parse_args().students)


if __name__ == "__main__":
    main()
