"""The audit log: who did what, when, from which site. Never holds contact data."""
from __future__ import annotations

import json
from dataclasses import dataclass

from appliance import db
from appliance.errors import NotFound
from appliance.models import AuditEntry


def record(app, actor: str, action: str, *, school_id: str | None = None,
           subject_id: str | None = None, detail: dict | None = None) -> AuditEntry:
    """Append one entry to the audit log."""
    with db.write():
        return AuditEntry.create(
            at=app.clock.now(), actor=actor, action=action, school_id=school_id,
            subject_id=subject_id, detail=json.dumps(detail or {}, ensure_ascii=False),
            site=app.site)


@dataclass(frozen=True)
class AuditPage:
    """One page of the log, newest first; ``next_before`` is the id to continue from (None at the end)."""

    entries: list[AuditEntry]
    next_before: str | None


def page_entries(*, before: str | None = None, school_id: str | None = None, actor: str = "",
                 action_prefix: str = "", limit: int = 50) -> AuditPage:
    """Return the entries older than the entry ``before`` (keyset on at, id: no OFFSET), filtered."""
    query = AuditEntry.select()
    if before:
        anchor = AuditEntry.get_or_none(AuditEntry.id == before)
        if anchor is None:
            raise NotFound("監査ログの続きの位置が見つかりません")
        query = query.where((AuditEntry.at < anchor.at)
                            | ((AuditEntry.at == anchor.at) & (AuditEntry.id < anchor.id)))
    if school_id:
        query = query.where(AuditEntry.school_id == school_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action_prefix:
        query = query.where(AuditEntry.action.startswith(action_prefix))
    entries = list(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit + 1))
    more = len(entries) > limit
    return AuditPage(entries[:limit], entries[limit - 1].id if more else None)
