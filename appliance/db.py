"""The database: SQLite in WAL mode through APSW, and the one way to write to it.

Every write goes through :func:`write`, which opens an ``IMMEDIATE`` transaction
(``DEFERRED`` read-then-write transactions fail under several writer processes).
The replication work hooks changeset capture into this same context manager.

PostgreSQL path: the models bind to :data:`database`, a proxy, so a
``playhouse.db_url`` database can be bound instead; ``write()`` then maps to a
plain transaction, and the ``uuid7()`` SQL function below to PostgreSQL 18's
``uuidv7()``.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import peewee
from playhouse.apsw_ext import APSWDatabase

from appliance.ids import uuid7

database = peewee.DatabaseProxy()


def open_database(path: str | Path, busy_timeout_ms: int = 10000) -> APSWDatabase:
    """Open (creating if needed) the SQLite file and bind the models to it."""
    db = APSWDatabase(
        str(path),
        timeout=busy_timeout_ms / 1000,
        pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",
            "foreign_keys": 1,
        },
    )
    # Lets a single INSERT ... SELECT give every new row its own key.
    db.register_function(lambda: uuid7(), "uuid7", 0)
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


def close_database() -> None:
    """Close this thread's connection, if the proxy is bound and open."""
    if database.obj is not None and not database.is_closed():
        database.close()


@contextmanager
def write():
    """Run the block in one IMMEDIATE write transaction (a savepoint when nested)."""
    with database.atomic("IMMEDIATE") as txn:
        yield txn
