"""Self-diagnostics: the state of the database, the queue and mail, as one mapping."""
from __future__ import annotations

from appliance import deliveries, migrations
from appliance.relay import relay_reachable


def check_health(app, queue) -> dict:
    """Return {"ok": bool, "db": {...}, "queue": {...}, "mta": {...}} for /healthz and the CLI."""
    status: dict = {}
    try:
        applied = migrations.applied_versions()
        latest = max(m.version for m in migrations.available_migrations())
        status["db"] = {"ok": latest in applied, "schema": max(applied, default=0), "expected": latest}
    except Exception as exc:  # health must report, never raise
        status["db"] = {"ok": False, "error": type(exc).__name__}
    try:
        status["queue"] = {"ok": True, "pending": queue.pending_count()}
    except Exception as exc:
        status["queue"] = {"ok": False, "error": type(exc).__name__}
    relay_address = app.config["mail"]["relay"]
    try:
        due = deliveries.count_due(app)
    except Exception as exc:
        status["mta"] = {"ok": False, "error": type(exc).__name__}
    else:
        reachable = relay_reachable(relay_address)
        status["mta"] = {"ok": reachable, "mode": "relay", "relay": relay_address, "due": due}
    status["ok"] = all(part["ok"] for part in status.values())
    return status
