"""Read reports of many taps committed in one transaction, each tap answered once its own is committed.

A burst of first taps is a burst of small writes: one transaction each costs the write
lock, a WAL append and, in every other process, a cold page cache. The front
(webui/front.py) hands each tap's report to :class:`GroupCommit` and waits: while one
transaction commits on the worker's writer thread, the taps that arrive meanwhile wait
together and go in the next. The loop never waits for the write lock itself, which the
MTA holds for its own batches during a send: it goes on reading taps, and they make the
next transaction bigger. A report is still committed before its page is answered, so a guardian who saw
"read" acknowledged has a report that is kept (appliance/receipts.py).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from appliance import receipts


class GroupCommit:
    """One writer thread per worker, committing the read reports that wait, all together."""

    def __init__(self, app):
        self._app = app
        self._waiting: list[tuple[str, str, asyncio.Future]] = []
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
        self._committing: asyncio.Task | None = None

    async def record_read(self, message_id: str, guardian_id: str) -> bool:
        """Record a read once it is committed; return whether it was the first (raises what the commit raised)."""
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        self._waiting.append((message_id, guardian_id, committed))
        if self._committing is None:
            self._committing = loop.create_task(self._commit_waiting())
        return await committed

    async def _commit_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    first = await loop.run_in_executor(self._writer, receipts.record_reads, self._app,
                                                       [(message_id, guardian_id) for message_id, guardian_id, _ in batch])
                except Exception as failed:     # every tap of the batch is answered by Flask instead
                    for *_, committed in batch:
                        if not committed.done():
                            committed.set_exception(failed)
                else:
                    for (*_, committed), was_first in zip(batch, first):
                        if not committed.done():
                            committed.set_result(was_first)
        finally:
            self._committing = None
