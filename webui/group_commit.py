"""Read reports of many taps committed in one transaction, each tap answered once its own is committed.

A burst of first taps is a burst of small writes: one transaction each costs the write
lock, a WAL append and, in every other process, a cold page cache. The front
(webui/front.py) hands each tap's report to :class:`GroupCommit` and waits: the reports
of the taps the event loop takes in during one turn are committed in one transaction at
the start of the next, on the loop's own thread and database connection (so the worker's
own commits leave its page cache warm; a writer thread cost more in hand-offs than it
saved). A report is still committed before its page is answered, so a guardian who saw
"read" acknowledged has a report that is kept (appliance/receipts.py).
"""
from __future__ import annotations

import asyncio

from appliance import receipts


class GroupCommit:
    """The read reports waiting in a worker's event loop, committed together once per turn of the loop."""

    def __init__(self, app):
        self._app = app
        self._waiting: list[tuple[str, str, asyncio.Future]] = []
        self._scheduled = False

    async def record_read(self, message_id: str, guardian_id: str) -> bool:
        """Record a read once it is committed; return whether it was the first (raises what the commit raised)."""
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        self._waiting.append((message_id, guardian_id, committed))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit_waiting)
        return await committed

    def _commit_waiting(self) -> None:
        batch, self._waiting, self._scheduled = self._waiting, [], False
        try:
            first = receipts.record_reads(self._app, [(message_id, guardian_id) for message_id, guardian_id, _ in batch])
        except Exception as failed:     # every tap of the batch is answered by Flask instead
            for *_, committed in batch:
                if not committed.done():
                    committed.set_exception(failed)
        else:
            for (*_, committed), was_first in zip(batch, first):
                if not committed.done():
                    committed.set_result(was_first)
