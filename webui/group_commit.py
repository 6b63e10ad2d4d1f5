"""The facts of many guardians' requests committed in one transaction, each answered once its own are committed.

A burst of guardians is a burst of small writes: every tap on a notice's link records a
read report, every opening of CoCo-net a read report of its own. One transaction each
costs the write lock, a WAL append and, in every other process, a cold page cache; and
during a send the MTA holds the lock for its own batches. So the front (webui/front.py)
hands the writes of the requests it runs in its event loop to :class:`GroupCommit` and
waits: while one transaction commits on the worker's writer thread, the writes that
arrive meanwhile wait together and go in the next, which starts no sooner than
:data:`GATHER_SECONDS` after the last one did. The loop never waits for the lock
itself: it goes on answering, and what it takes in makes the next transaction bigger.
A fact is still committed before its page is answered, so a guardian who saw "read"
acknowledged has a report that is kept (appliance/receipts.py).

A write is a function that inserts rows inside the caller's transaction, with its rows:
the writer calls each function once with the rows of every request waiting, one prepared
statement for all (a tap's read report alone cost the writer 50% more).

A Flask view writes such a fact through :func:`before_answer`: with the front's other
writes when the front runs the request in its loop, at once otherwise (tests, threads).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import request

from appliance import db

# The environ key under which the front collects a request's writes (a list of Write).
WRITES = "renraku.writes_before_answer"
Insert = Callable[[list[tuple]], object]     # inserts rows inside the caller's write transaction
Write = tuple[Insert, list[tuple]]
# The least time between the starts of two of a worker's transactions. Each commit costs the write lock,
# a WAL append of every page it changed, and the next read of every other connection a cold page cache.
# Committing as soon as the last one was done, a burst's transactions held ~3 writes each (5,400 a worker
# in 20 s bursts of bench/guardian_burst.py); gathered for 10 ms, ~12 (1,700), and a CoCo-net opening took
# ~15% less of the machine. A write waits at most this much longer; a lone one does not wait.
GATHER_SECONDS = 0.01


def before_answer(insert: Insert, rows: list[tuple]) -> None:
    """Have ``insert(rows)`` committed before the answer goes out."""
    later = request.environ.get(WRITES)
    if later is None:
        with db.write():
            insert(rows)
    else:
        later.append((insert, rows))


class GroupCommit:
    """One writer thread per worker, committing the writes that wait, all together."""

    def __init__(self, gather_seconds: float = GATHER_SECONDS):
        self._gather = gather_seconds
        self._waiting: list[tuple[list[Write], asyncio.Future]] = []     # a request's writes, its answer
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
        self._committing: asyncio.Task | None = None
        self._started = float("-inf")      # when the last transaction started, in the loop's time

    async def commit(self, writes: list[Write]) -> None:
        """Run the writes in the next transaction; return once it is committed (or raise its error)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((writes, done))
        if self._committing is None:
            self._committing = loop.create_task(self._commit_waiting())
        await done

    async def _commit_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                await asyncio.sleep(self._started + self._gather - loop.time())   # if past: a turn of the loop
                self._started = loop.time()
                batch, self._waiting = self._waiting, []
                try:
                    await loop.run_in_executor(self._writer, _run, [write for writes, _ in batch for write in writes])
                except Exception as error:      # every request of the batch is answered by Flask instead
                    failed = error
                else:
                    failed = None
                for _, done in batch:
                    if done.done():             # its request went away (cancelled)
                        continue
                    if failed is None:
                        done.set_result(None)
                    else:
                        done.set_exception(failed)
        finally:
            self._committing = None

    def close(self) -> None:
        """Close the writer thread's database connection and stop the thread."""
        self._writer.submit(db.close_database).result()
        self._writer.shutdown(wait=True)


def _run(writes: list[Write]) -> None:
    rows_of: dict[Insert, list[tuple]] = {}
    for insert, rows in writes:
        rows_of.setdefault(insert, []).extend(rows)
    with db.write():
        for insert, rows in rows_of.items():
            insert(rows)
