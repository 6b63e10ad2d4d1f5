"""The database: SQLite in WAL mode through APSW, and the one way to write to it.

Every write goes through :func:`write`, which opens an ``IMMEDIATE`` transaction
(``DEFERRED`` read-then-write transactions fail under several writer processes).
The replication work hooks changeset capture into this same context manager.

PostgreSQL path: the models bind to :data:`database`, a proxy, so a
``playhouse.db_url`` database can be bound instead; ``write()`` then maps to a
plain transaction, and :func:`new_keys` to PostgreSQL 18's ``uuidv7()``.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import peewee
from playhouse.apsw_ext import APSWDatabase


database = peewee.DatabaseProxy()

BUSY_FIRST_WAIT = 0.0001     # seconds; then a tenth of a millisecond more per retry, up to BUSY_LONGEST_WAIT
BUSY_LONGEST_WAIT = 0.005


class _Database(APSWDatabase):
    """APSWDatabase waiting for a busy write lock in short steps.

    SQLite's own busy timeout sleeps 1, 2, 5, 10 ... 100 ms between tries; a guardian's
    read report holds the lock for some 50 us, so under a burst the web workers mostly
    slept (bench/guardian_burst.py: 2 workers, load average near 1, 200 requests/s).
    """

    def _connect(self):
        conn = super()._connect()
        schedule = _busy_schedule(self._timeout)
        conn.set_busy_handler(lambda tries: tries < len(schedule) and (time.sleep(schedule[tries]) or True))
        return conn


def _busy_schedule(timeout: float) -> list[float]:
    waits, total = [], 0.0
    while total < timeout:
        waits.append(min(BUSY_FIRST_WAIT * (len(waits) + 1), BUSY_LONGEST_WAIT))
        total += waits[-1]
    return waits


def open_database(path: str | Path, busy_timeout_ms: int = 10000) -> APSWDatabase:
    """Open (creating if needed) the SQLite file and bind the models to it."""
    db = _Database(
        str(path),
        timeout=busy_timeout_ms / 1000,
        pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",
            "foreign_keys": 1,
        },
    )
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


def new_keys(unix_ms: int | None = None) -> peewee.Node:
    """A SQL expression that gives each row of one INSERT ... SELECT its own UUIDv7.

    RFC 9562 method 1: the statement's millisecond, a 24-bit counter (the row's number
    in the statement, so keys rise and the key index is appended to, not split at
    random) and 48 random bits from SQLite per row. Done in SQL because a Python
    function called per row, with random keys, made a 160,000-delivery send ~40%
    slower. PostgreSQL: ``uuidv7()``.
    """
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    stamp = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
    return peewee.SQL(
        "(? || printf('%03x', (row_number() OVER ()) >> 12 & 4095) || '-8'"
        " || printf('%03x', (row_number() OVER ()) & 4095) || '-' || lower(hex(randomblob(6))))",
        [f"{stamp[:8]}-{stamp[8:]}-7"])


def close_database() -> None:
    """Close this thread's connection, if the proxy is bound and open."""
    if database.obj is not None and not database.is_closed():
        database.close()


def execute_many(model, template: str, fields: list | None, rows: list[tuple]) -> None:
    """Run one prepared statement over many rows, values converted as ``fields`` store them.

    ``{table}`` and ``{p}`` in the template become the quoted table and the driver's
    placeholder. Used instead of insert_many/bulk_update where rows number in the
    thousands: peewee renders those value by value into SQL text, several times slower
    than binding them (40,000 students: ~5 s against under 1 s). ``fields=None``: the
    values are stored as given (the caller converted what needs it, once).
    """
    if rows:
        sql = template.format(table=f'"{model._meta.table_name}"', p=database.param)
        if fields is not None:
            converters = [f.db_value for f in fields]
            rows = [[convert(v) for convert, v in zip(converters, row)] for row in rows]
        database.cursor().executemany(sql, rows)


def plain_rows(query) -> list[tuple]:
    """Run a query and return its rows as the driver gives them, without peewee's conversion.

    Only for columns read as they are stored (text keys, integers, blobs): peewee converts
    every value through its field, ~7 us a row of four columns, and the MTA reads 160,000
    rows of each kind in a blast (raw: ~2 us a row).
    """
    sql, params = query.sql()
    return list(database.execute_sql(sql, params))


def fetch(template: str, params: Iterable = ()) -> list[tuple]:
    """Run a read statement written in plain SQL; return its rows as the driver gives them.

    For the guardians' pages, which run on every tap of a burst, and the pages staff keep
    refreshing: peewee builds a statement's SQL anew on each call (~0.4 ms for a simple
    SELECT, the statement itself ~10 us), and its execute_sql adds ~20 us of its own.
    ``{p}`` in the template becomes the driver's placeholder with a unary plus (``+?``);
    :func:`placeholders` spreads a list. For a bare parameter SQLite may look at the value
    when it plans, and then prepares the statement again at every call, whatever is bound
    (a tap's statement: 95 us instead of 9); for ``+?`` it does not, and an index on the
    compared column is used all the same. Write a LIMIT, and any condition a partial index
    depends on, as literal text: SQLite plans those only from what it can read. (SQLite's
    planner stability guarantee would do the same for every statement, but it also stops
    partial indexes such as ``student_enrolled_seat`` serving conditions written with
    bound values elsewhere: a class's children became a table scan.)
    """
    cursor = database.cursor()        # not execute_sql: its bookkeeping cost a tap more than the statement
    cursor.execute(_statement(template, database.param), tuple(params))
    return cursor.fetchall()


@functools.lru_cache(maxsize=1024)      # templates are constants, or carry an IN list's length
def _statement(template: str, param: str) -> str:
    return template.format(p="+" + param)


def placeholders(count: int) -> str:
    """Return ``{p}, {p}, ...`` for an IN list of ``count`` values, to go into a :func:`fetch` template."""
    return ", ".join(["{p}"] * count)


def insert_rows(model, fields: list, rows: list[tuple], *, converted: bool = False) -> None:
    """Insert many rows (tuples in the order of ``fields``) with one prepared statement.

    ``converted``: the values are already as stored (see execute_many).
    """
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    execute_many(model, f'INSERT INTO {{table}} ({columns}) VALUES ({placeholders(len(fields))})',
                 None if converted else fields, rows)


@contextmanager
def write():
    """Run the block in one IMMEDIATE write transaction (a savepoint when nested)."""
    with database.atomic("IMMEDIATE") as txn:
        yield txn
