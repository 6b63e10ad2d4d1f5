"""The MTA assembled from the appliance's settings: routing, SMTP, DKIM and the engine."""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from appliance import contacts, deliveries
from mta import dkim, routing
from mta.outbound import Outbound
from mta.smtp import SmtpConnector


_signer: dkim.DkimSigner | None = None   # one per signing process
# Signing is throughput work; the event loop (and the web UI beside it) is latency work. A
# session carries one mail per round trip, so a carrier capped at 8 sessions goes only as
# fast as the loop answers: with the signers at the same priority, the scheduler kept the
# loop waiting behind them and docomo.ne.jp's backlog grew until it filled the active queue.
SIGNING_NICENESS = 5


def _start_signing_process(config) -> None:
    global _signer
    _signer = dkim.load_signer(config)
    os.nice(SIGNING_NICENESS)   # added to the MTA's own niceness
    parent = os.getppid()

    def leave_with_parent() -> None:
        # A killed MTA (kill -9, OOM) cannot stop its pool: its signers would wait forever.
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=leave_with_parent, daemon=True).start()


def _sign(data: bytes) -> bytes:
    return _signer.sign(data)


class PoolSigner:
    """Signs batches in worker processes, so RSA uses every core while the event loop speaks SMTP.

    Signing is the blast's largest cost (~1,300 RSA-2048 signatures/s a core here).
    """

    def __init__(self, config, workers: int):
        dkim.load_signer(config)   # fail here, with the command to run, if the key is missing
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_signing_process, initargs=(config,))

    def __call__(self, datas: list[bytes]) -> list[bytes]:
        return list(self._pool.map(_sign, datas, chunksize=max(1, len(datas) // 16)))

    def close(self) -> None:
        """Stop the signing processes."""
        self._pool.shutdown(cancel_futures=True)


@contextmanager
def outbound_for(app, *, smtp_port: int = routing.SMTP_PORT):
    """Yield the outbound engine for this appliance, its signing processes stopped afterwards."""
    signer = PoolSigner(app.config, app.config["mta"]["sign_workers"] or os.cpu_count() or 1)
    helo = app.config["mta"]["helo_name"] or app.config["mail"]["domain"]
    router = routing.from_config(app.config, app.clock, default_port=smtp_port)
    try:
        yield Outbound(app, router=router, connector=SmtpConnector(helo), sign=signer,
                       status_path=app.config.path("mta", "status_file"))
    finally:
        signer.close()


def run_until_signalled(outbound: Outbound) -> dict:
    """Run the engine until SIGTERM or SIGINT; return the outcome counts."""

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await outbound.run(stop)

    return dict(asyncio.run(main()))


def flush(outbound: Outbound) -> dict:
    """Deliver everything due now and return the outcome counts (like `postqueue -f`, but waiting)."""
    return dict(asyncio.run(outbound.run(until_idle=True)))


def status(app) -> dict:
    """Return the queue by state and by recipient domain, the last minute's outcomes, and the MTA's own view."""
    report = deliveries.queue_status(app)
    addresses = contacts.open_for_delivery(app, deliveries.pending_contact_ids("email"))
    report["pending_by_domain"] = dict(Counter(a.rpartition("@")[2] for a in addresses.values()).most_common())
    path = app.config.path("mta", "status_file")
    report["mta"] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    return report
