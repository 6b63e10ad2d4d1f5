"""Counters that slow down guessing (link tokens, sign-in requests), shared by every worker process.

Several gunicorn workers answer guardians, so a counter in process memory would be
one per worker and forgotten on restart. The counters live in a small SQLite file of
their own in the data dir (``[ratelimit] path``), like huey's queue: local to the
site, never replicated, since an attacker is slowed where they knock. A counter is
keyed by a keyed hash of what it counts (a client address, a mail address), so the
file holds no address in the clear, and counts within fixed windows: one upsert per
counted event and one indexed read per check of a subject this thread has not read
since anything was counted.

Every guardian's tap is checked, and during a burst hardly anyone is counted: a read of
the file cost a tap ~45 us of its worker's loop (7 us alone; its transaction's locks
included). So each counted event also writes a new random mark into a small shared file
beside the counters (``<path>-mark``, mapped into memory by every process), and each
thread keeps the counts it has read while the mark stays the same: checking a subject
again reads eight bytes of memory. A new subject (a phone's own address) is read as
before. The mark is written after the count is committed, and read before the count
is, so a count kept is never older than the last event any process finished counting.
Counts change only through :meth:`RateLimiter.hit`: a row edited by hand is seen once
anything is counted or its window passes.

PostgreSQL path: the same two statements on an unlogged table, and the mark a row of it
read with each check (a file is one host's).
"""
from __future__ import annotations

import hashlib
import hmac
import mmap
import os
import sqlite3
import threading
from dataclasses import dataclass

_SCHEMA = ("CREATE TABLE IF NOT EXISTS hit (bucket TEXT PRIMARY KEY, window INTEGER NOT NULL,"
           " count INTEGER NOT NULL) WITHOUT ROWID")
_HIT = ("INSERT INTO hit (bucket, window, count) VALUES (?, ?, 1) ON CONFLICT (bucket) DO UPDATE SET"
        " count = CASE WHEN window = excluded.window THEN count + 1 ELSE 1 END, window = excluded.window"
        " RETURNING count")
_READ = "SELECT count FROM hit WHERE bucket = ? AND window = ?"


@dataclass(frozen=True)
class Limit:
    """At most `count` events per `seconds`-long window."""

    name: str
    count: int
    seconds: int


# Mobile carriers put many phones behind one address (CGNAT): the limit is far above
# what families sharing an address reach with expired links, far below guessing.
TOKEN_GUESSES = Limit("token", 60, 600)
SIGN_IN_MAILS = Limit("signin", 3, 3600)        # per mail address: a sign-in link mailed
SIGN_IN_REQUESTS = Limit("signin-client", 20, 3600)
COUNTS_KEPT = 4096          # counts a thread keeps while nothing is counted (cleared on reaching it)


class RateLimiter:
    """Fixed-window counters in one SQLite file and their change mark (mapped here); one connection and the
    counts it read per thread, opened on first use."""

    def __init__(self, path, key: bytes, clock):
        self._path, self._key, self._clock = str(path), key, clock
        self._local = threading.local()
        self._mark = _shared_mark(f"{self._path}-mark")

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=5, isolation_level=None)
            conn.execute("PRAGMA journal_mode=wal")
            conn.execute("PRAGMA synchronous=off")     # losing a counter on power loss costs nothing
            conn.execute(_SCHEMA)
            self._local.conn = conn
            self._local.counts, self._local.mark = {}, None
        return conn

    def _bucket(self, limit: Limit, subject: str) -> tuple[str, int]:
        # Keyed BLAKE2b (a MAC, one C call): a check runs on every guardian's tap.
        digest = hashlib.blake2b(f"{limit.name}\n{subject}".encode(), key=self._key, digest_size=16).hexdigest()
        return digest, int(self._clock.now().timestamp()) // limit.seconds

    def exceeded(self, limit: Limit, subject: str) -> bool:
        """Whether the subject already used up its window (checked before the work it limits)."""
        conn, mark = self._connection(), self._mark[:]
        local = self._local
        if mark != local.mark or len(local.counts) >= COUNTS_KEPT:     # something was counted since
            local.counts, local.mark = {}, mark
        bucket = self._bucket(limit, subject)
        count = local.counts.get(bucket)
        if count is None:
            row = conn.execute(_READ, bucket).fetchone()
            count = local.counts[bucket] = row[0] if row else 0
        return count >= limit.count

    def hit(self, limit: Limit, subject: str) -> bool:
        """Count one event; return whether the subject is still within the limit."""
        [(count,)] = self._connection().execute(_HIT, self._bucket(limit, subject)).fetchall()   # committed
        # After the commit: every process reads the counts again. Another may read a mark half written; it
        # differs from the one it kept all the same.
        self._mark[:] = os.urandom(len(self._mark))
        return count <= limit.count


def _shared_mark(path: str) -> mmap.mmap:
    """The change mark shared by every process using the counters: eight bytes of a file, mapped."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < 8:
            os.ftruncate(fd, 8)
        return mmap.mmap(fd, 8)
    finally:
        os.close(fd)


def open_limiter(app) -> RateLimiter:
    """Return the appliance's rate limiter (its file in the data dir, a key derived from the token key)."""
    key = hmac.new(app.token_key, b"renraku rate limit buckets", hashlib.sha256).digest()
    return RateLimiter(app.config.path("ratelimit", "path"), key, app.clock)
