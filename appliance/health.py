"""Self-diagnostics: the state of the database, the queue and the MTA, as one mapping."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from appliance import deliveries, migrations

MTA_STALE = timedelta(seconds=30)   # the MTA writes its status at least every few seconds


def _mta_status(app) -> dict:
    path = app.config.path("mta", "status_file")
    due = deliveries.count_due(app)
    try:
        written = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"ok": False, "running": False, "due": due}
    updated = datetime.fromisoformat(written["updated"])
    running = not written["stopped"] and app.clock.now() - updated < MTA_STALE
    return {"ok": running, "running": running, "due": due, "updated": written["updated"],
            "resting_domains": sorted(written["resting"])}


def check_health(app, queue) -> dict:
    """Return {"ok": bool, "db": {...}, "queue": {...}, "mta": {...}} for /healthz and the CLI."""
    status: dict = {}
    try:
        applied = migrations.applied_versions()
        latest = max(m.version for m in migrations.available_migrations())
        status["db"] = {"ok": latest in applied, "schema": max(applied, default=0), "expected": latest}
    except Exception as exc:  # noqa: BLE001 - health must report, never raise
        status["db"] = {"ok": False, "error": type(exc).__name__}
    try:
        status["queue"] = {"ok": True, "pending": queue.pending_count()}
    except Exception as exc:  # noqa: BLE001
        status["queue"] = {"ok": False, "error": type(exc).__name__}
    try:
        status["mta"] = _mta_status(app)
    except Exception as exc:  # noqa: BLE001
        status["mta"] = {"ok": False, "error": type(exc).__name__}
    status["ok"] = all(part["ok"] for part in status.values())
    return status
