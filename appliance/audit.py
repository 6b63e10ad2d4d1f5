"""The audit log: who did what, when, from which site. Never holds contact data."""
from __future__ import annotations

import json

from appliance import db
from appliance.models import AuditEntry


def record(app, actor: str, action: str, *, school_id: str | None = None,
           subject_id: str | None = None, detail: dict | None = None) -> AuditEntry:
    """Append one entry to the audit log."""
    with db.write():
        return AuditEntry.create(
            at=app.clock.now(), actor=actor, action=action, school_id=school_id,
            subject_id=subject_id, detail=json.dumps(detail or {}, ensure_ascii=False),
            site=app.site)
