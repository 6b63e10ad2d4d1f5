"""Numbered schema migrations: ``NNNN_name.sql`` files applied in order, each exactly once.

A released migration is never edited; a change to the schema is a new file. The
models in :mod:`appliance.models` must match the schema the migrations build (a unit
test compares them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from appliance import db

MIGRATIONS_DIR = Path(__file__).parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migrations shipped with this version, in order."""
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {directory}")
    return found


def applied_versions() -> set[int]:
    """Return the versions already applied to the bound database."""
    conn = db.database
    conn.execute_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return {row[0] for row in conn.execute_sql("SELECT version FROM schema_migrations")}


def migrate(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration, each in its own write transaction; return those applied."""
    done = applied_versions()
    applied = []
    for migration in available_migrations(directory):
        if migration.version in done:
            continue
        script = migration.path.read_text(encoding="utf-8")
        with db.write():
            raw = db.database.connection()
            raw.execute(script)
            db.database.execute_sql(
                "INSERT INTO schema_migrations (version, name, applied_at)"
                " VALUES (?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
                (migration.version, migration.name),
            )
        applied.append(migration)
    return applied
