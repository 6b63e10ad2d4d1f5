"""The outbound MTA: due email from the database, delivered directly, every result a fact.

Like Postfix's queue manager it keeps a bounded active queue in memory (``active``
deliveries at most), fed from the database in priority order (emergency first,
fresh mail before retries); each recipient domain gets its own queue, sessions and
limits (mta.policy). A delivery is recorded only after the server's reply: a kill
at any moment loses nothing (claims are leases, see appliance.deliveries), and the
only mail that can go twice is what was in flight or replied to within the last
result write (``WRITE_INTERVAL``).
"""
from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from appliance import deliveries, outbox
from appliance.deliveries import Outcome
from mta.policy import DomainPolicy, policy_for
from mta.smtp import Connector, HopUnavailable, Session, SmtpReply

WRITE_INTERVAL = 0.3   # seconds between result writes
SESSION_IDLE = 3.0     # seconds an open session waits for more mail before QUIT
JOBS_PER_SESSION = 20  # a further session opens only while this many jobs wait for each open one
STATUS_INTERVAL = 2.0  # seconds between status file writes (health reads it)
IDLE_POLL = 1.0        # seconds between database polls when nothing is due


@dataclass(frozen=True)
class Job:
    delivery_id: str
    address: str
    data: bytes


class DomainQueue:
    """One recipient domain: its waiting jobs, open sessions and adaptive concurrency."""

    def __init__(self, outbound: Outbound, domain: str, policy: DomainPolicy):
        self.outbound, self.domain, self.policy = outbound, domain, policy
        self.jobs: collections.deque[Job] = collections.deque()
        self.sessions = 0
        self.concurrency = policy.initial_concurrency
        self.successes = 0
        self.failed_connects = 0
        self.dead_until = 0.0
        self.next_send = 0.0
        self.arrived = asyncio.Event()

    def put(self, job: Job) -> None:
        """Queue a job and open sessions up to the current concurrency."""
        if time.monotonic() < self.dead_until:
            self.outbound.settle(job, "deferred", f"{self.domain}: not answering, resting")
            return
        self.jobs.append(job)
        self.arrived.set()
        self.spawn()

    async def _next_job(self) -> Job | None:
        """The next job, waiting briefly for the feeder so an open session is reused."""
        if not self.jobs:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), SESSION_IDLE)
            except TimeoutError:
                return None
        return self.jobs.popleft() if self.jobs else None

    def spawn(self) -> None:
        # Few long sessions beat many short ones: a session costs as much as several mails.
        while (self.jobs and self.sessions < self.concurrency and not self.outbound.stopping
               and (self.sessions == 0 or len(self.jobs) > self.sessions * JOBS_PER_SESSION)):
            self.sessions += 1
            self.outbound.start(self._session())

    def settle_all(self, outcome: str, detail: str) -> None:
        while self.jobs:
            self.outbound.settle(self.jobs.popleft(), outcome, detail)

    async def _session(self) -> None:
        try:
            session = await self._connect()
            if session is not None:
                try:
                    await self._send_some(session)
                finally:
                    await session.close()
        finally:
            self.sessions -= 1
            self.spawn()

    async def _connect(self) -> Session | None:
        try:
            hops = await self.outbound.router.next_hops(self.domain)
        except Exception as exc:  # noqa: BLE001 - routing errors are typed by permanence
            permanent = getattr(exc, "permanent", False)
            self.settle_all("bounced" if permanent else "deferred", f"{self.domain}: {exc}")
            return None
        for hop in hops:
            try:
                session = await self.outbound.connector.open(hop.address, hop.port, hop.host)
            except SmtpReply as exc:       # a 5xx greeting: this hop will not take mail
                last = f"{hop.host}: {exc}"
                continue
            except HopUnavailable as exc:
                last = f"{hop.host}: {exc}"
                continue
            self.failed_connects = 0
            return session
        self.failed_connects += 1
        self.concurrency = max(1, self.concurrency // 2)
        if self.failed_connects >= self.policy.dead_after or self.sessions <= 1:
            # Nobody else is trying: defer what waits rather than spin on a dead domain.
            if self.failed_connects >= self.policy.dead_after:
                self.dead_until = time.monotonic() + self.policy.dead_for
            self.settle_all("deferred", last if hops else f"{self.domain}: no hop")
        return None

    async def _send_some(self, session: Session) -> None:
        sent = 0
        job = await self._next_job()
        while job is not None:
            if self.policy.rate > 0:
                await self._pace()
            sent += 1
            # The next job, if one waits, is announced with this one's content (one write a mail).
            following = self.jobs.popleft() if self.jobs and sent < self.policy.per_session else None
            then = None if following is None else (self.outbound.sender_for(following), following.address)
            try:
                reply = await session.send(self.outbound.sender_for(job), job.address, job.data, then)
            except SmtpReply as exc:
                self.outbound.settle(job, "bounced" if exc.permanent else "deferred", str(exc))
                if exc.code == 421:       # the server is closing: slow down, rest if it goes on
                    self._put_back(following)
                    self.concurrency = max(1, self.concurrency // 2)
                    self.failed_connects += 1
                    if self.failed_connects >= self.policy.dead_after:
                        self.dead_until = time.monotonic() + self.policy.dead_for
                        self.settle_all("deferred", f"{self.domain}: {exc}")
                    return
            except HopUnavailable as exc:
                # The reply was lost: the mail may have arrived. Retrying risks one duplicate,
                # not retrying risks a lost notice; the notice matters more.
                self.outbound.settle(job, "deferred", str(exc))
                self._put_back(following)
                self.concurrency = max(1, self.concurrency // 2)
                return
            else:
                self.outbound.settle(job, "delivered", reply)
                self.successes += 1
                if self.successes % (10 * self.concurrency) == 0 and self.concurrency < self.policy.max_concurrency:
                    self.concurrency += 1
                    self.spawn()
            if following is None and sent < self.policy.per_session:
                following = await self._next_job()
            job = following

    def _put_back(self, job: Job | None) -> None:
        """Return an announced job whose content was never sent: another session takes it."""
        if job is not None:
            self.jobs.appendleft(job)
            self.arrived.set()

    async def _pace(self) -> None:
        if self.policy.rate <= 0:
            return
        now = time.monotonic()
        wait = self.next_send - now
        self.next_send = max(now, self.next_send) + 1 / self.policy.rate
        if wait > 0:
            await asyncio.sleep(wait)


class Outbound:
    """Feeds the active queue from the database, runs the domains, writes results."""

    def __init__(self, app, *, router, connector: Connector,
                 sign: Callable[[list[bytes]], list[bytes]] | None = None,
                 active: int = 5000, batch: int = 1000, status_path: Path | None = None):
        self.app, self.router, self.connector, self.sign = app, router, connector, sign
        self.status_path = status_path
        self.active, self.batch = active, batch
        self.bounce_domain = app.config["mta"]["bounce_domain"] or app.config["mail"]["domain"]
        self.overrides = app.config["mta"]["domains"]
        self.in_flight: dict[str, deliveries.Claimed] = {}
        self.results: list[Outcome] = []
        self.domains: dict[str, DomainQueue] = {}
        self.tasks: set[asyncio.Task] = set()
        self.counts: collections.Counter = collections.Counter()
        self.stopping = False
        self.failure: Exception | None = None     # what broke a signing task, raised by run()

    def sender_for(self, job: Job) -> str:
        """The VERP envelope sender: a bounce names the delivery it is about."""
        return f"b-{job.delivery_id}@{self.bounce_domain}"

    def start(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def settle(self, job: Job, outcome: str, detail: str = "") -> None:
        """Note a job's outcome; it is written with the next batch of results."""
        self.results.append(Outcome(job.delivery_id, outcome, detail))

    async def _feed(self) -> int:
        room = min(self.batch, self.active - len(self.in_flight))
        if room <= 0:
            return 0
        batch = await asyncio.to_thread(outbox.claim_mail, self.app, room)
        self.in_flight.update(batch.deliveries)
        self.results.extend(batch.settled)
        if batch.mails and self.sign is not None:
            # Signed beside the next claims, not before them: the signing processes and the
            # claims then keep both cores busy while the sessions drain the active queue.
            self.start(self._sign_and_queue(batch.mails))
        else:
            self._queue(batch.mails)
        return len(batch.deliveries)

    async def _sign_and_queue(self, mails: list[outbox.RenderedMail]) -> None:
        try:
            signed = await asyncio.to_thread(self.sign, [mail.data for mail in mails])
        except Exception as exc:  # noqa: BLE001 - raised again by run(), as a failed claim is
            self.failure = exc
            return
        self._queue([replace(mail, data=data) for mail, data in zip(mails, signed)])

    def _queue(self, mails: list[outbox.RenderedMail]) -> None:
        for mail in mails:
            for delivery_id, address in mail.envelopes:
                domain = address.rpartition("@")[2]
                if domain not in self.domains:
                    self.domains[domain] = DomainQueue(self, domain, policy_for(domain, self.overrides))
                self.domains[domain].put(Job(delivery_id, address, mail.data))

    async def _write(self) -> None:
        if not self.results:
            return
        results, self.results = self.results, []
        claimed = {o.delivery_id: self.in_flight[o.delivery_id] for o in results}
        await asyncio.to_thread(deliveries.record_outcomes, self.app, claimed, results)
        for outcome in results:
            self.in_flight.pop(outcome.delivery_id, None)
            self.counts[outcome.outcome] += 1

    def _write_status(self, stopped: bool = False) -> None:
        now, wall = time.monotonic(), self.app.clock.now()
        status = {
            "updated": wall.isoformat(),
            "stopped": stopped,
            "in_flight": len(self.in_flight),
            "resting": {d.domain: (wall + timedelta(seconds=d.dead_until - now)).isoformat()
                        for d in self.domains.values() if d.dead_until > now},
            "concurrency": {d.domain: d.concurrency for d in self.domains.values() if d.sessions},
            "since_start": dict(self.counts),
        }
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.status_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.status_path)

    async def _write_loop(self, stop: asyncio.Event) -> None:
        last_status = 0.0
        while not stop.is_set() or self.results:
            await self._write()
            if self.status_path is not None and time.monotonic() - last_status >= STATUS_INTERVAL:
                await asyncio.to_thread(self._write_status)
                last_status = time.monotonic()
            try:
                await asyncio.wait_for(stop.wait(), WRITE_INTERVAL)
            except TimeoutError:
                pass

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> collections.Counter:
        """Deliver until stopped (or, with until_idle, until nothing is due or in flight); return counts."""
        stop = stop or asyncio.Event()
        writing = asyncio.Event()
        writer = asyncio.get_running_loop().create_task(self._write_loop(writing))
        try:
            while not stop.is_set():
                if self.failure is not None:
                    raise self.failure
                if await self._feed():
                    continue
                if until_idle and not self.in_flight and not self.results:
                    break
                try:
                    await asyncio.wait_for(stop.wait(), 0.05 if self.in_flight else IDLE_POLL)
                except TimeoutError:
                    pass
        finally:
            # Stop opening sessions, then cancel until none is left: a cancelled session
            # would otherwise hand its domain's queue to a new one that nobody records.
            self.stopping = True
            while self.tasks:
                for task in list(self.tasks):
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)
            writing.set()
            await writer
            if self.in_flight:
                # Claimed but never tried: due again at once after a restart, not in 5 minutes.
                await asyncio.to_thread(deliveries.release, self.app, list(self.in_flight))
            if self.status_path is not None:
                await asyncio.to_thread(self._write_status, True)
        return self.counts
