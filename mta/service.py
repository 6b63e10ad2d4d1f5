"""The MTA assembled from the appliance's settings: routing, SMTP, DKIM and the engine."""
from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter

from appliance import contacts, deliveries
from mta import dkim, routing
from mta.outbound import Outbound
from mta.smtp import AioConnector


def build_outbound(app, *, smtp_port: int = routing.SMTP_PORT) -> Outbound:
    """Return the outbound engine for this appliance (refuses to run without its DKIM key)."""
    signer = dkim.load_signer(app.config, app.clock)
    helo = app.config["mta"]["helo_name"] or app.config["mail"]["domain"]
    router = routing.from_config(app.config, app.clock, default_port=smtp_port)
    return Outbound(app, router=router, connector=AioConnector(helo), sign=signer.sign,
                    status_path=app.config.path("mta", "status_file"))


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
