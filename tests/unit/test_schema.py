"""Migrations build the schema the models describe; every replicated table has a UUID key."""
import re
import threading
import time
import uuid

import apsw

from appliance import db, migrations
from appliance.ids import uuid7
from appliance.models import ALL_MODELS
from appliance.models.base import FACTS, OWNED


def _columns(table):
    return {row[1]: row for row in db.database.execute_sql(f"PRAGMA table_info({table})")}


def test_migrate_is_idempotent(app):
    assert migrations.migrate() == []
    assert migrations.applied_versions() == {m.version for m in migrations.available_migrations()}


def test_models_match_the_migrated_schema(app):
    tables = {row[0] for row in db.database.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {m._meta.table_name for m in ALL_MODELS} | {"schema_migrations"} == tables
    for model in ALL_MODELS:
        columns = _columns(model._meta.table_name)
        assert set(columns) == {f.column_name for f in model._meta.sorted_fields}, model.__name__
        for field in model._meta.sorted_fields:
            not_null = bool(columns[field.column_name][3]) or columns[field.column_name][5]
            assert not_null == (not field.null), f"{model.__name__}.{field.name} nullability"


def test_every_table_has_a_primary_key(app):
    for (table,) in db.database.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table'"):
        assert any(col[5] for col in _columns(table).values()), table


def test_every_replicated_table_has_a_uuid_text_key(app):
    for model in ALL_MODELS:
        assert model._meta.replication in (OWNED, FACTS), f"{model.__name__} declares no replication kind"
        key = _columns(model._meta.table_name)["id"]
        assert key[2] == "TEXT" and key[5] == 1, model.__name__
        made = model._meta.primary_key.default()
        assert uuid.UUID(made).version == 7


def test_uuid7_is_time_ordered_and_versioned():
    earlier, later = uuid7(1_700_000_000_000), uuid7(1_700_000_000_001)
    assert earlier < later
    parsed = uuid.UUID(earlier)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert re.fullmatch(r"[0-9a-f-]{36}", uuid7())


def test_database_runs_in_wal_with_foreign_keys(app):
    assert db.database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1


def test_keys_made_in_sql_are_uuid7_unique_rising_and_time_ordered(app):
    expression, params = db.database.get_sql_context().sql(db.new_keys(1_700_000_000_000)).query()
    counting = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)"
    keys = [row[0] for row in db.database.execute_sql(f"{counting} SELECT {expression} FROM n", params)]
    assert len(set(keys)) == len(keys) and keys == sorted(keys)
    for key in keys[:5000:7]:
        parsed = uuid.UUID(key)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == key
    assert uuid7(1_699_999_999_999) < keys[0] and keys[-1] < uuid7(1_700_000_000_001)


def test_a_writer_waits_for_a_busy_lock_in_short_steps_and_gives_up_at_the_timeout(app):
    schedule = db._busy_schedule(2.0)
    assert schedule[0] == db.BUSY_FIRST_WAIT and max(schedule) == db.BUSY_LONGEST_WAIT
    assert 2.0 <= sum(schedule) < 2.0 + db.BUSY_LONGEST_WAIT

    other = apsw.Connection(str(app.config.path("db", "path")))
    other.execute("BEGIN IMMEDIATE")                  # another process's write, holding the lock
    release = threading.Timer(0.05, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    with db.write():                                  # waits for the release instead of failing
        db.database.execute_sql("CREATE TABLE busy_probe (id TEXT PRIMARY KEY)")
    assert time.monotonic() - started >= 0.04
    release.join()
    other.close()
