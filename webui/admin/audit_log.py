"""The audit log for the operator: newest first, paged by keyset, filtered by school, actor, action."""
from __future__ import annotations

from flask import render_template, request

from appliance import audit
from appliance.models import School
from webui.access import OPERATOR, access
from webui.admin import bp

PAGE_SIZE = 50


@bp.get("/audit")
@access(OPERATOR)
def audit_index():
    """One page of entries; "older" continues after the last entry shown (no OFFSET)."""
    filters = {key: request.args.get(key, "").strip()[:100] for key in ("school", "actor", "action")}
    schools = list(School.select().order_by(School.code))
    by_code = {s.code: s for s in schools}
    chosen = by_code.get(filters["school"])
    page = audit.page_entries(before=request.args.get("before") or None, school_id=chosen.id if chosen else None,
                              actor=filters["actor"], action_prefix=filters["action"], limit=PAGE_SIZE)
    return render_template("admin/audit_index.html", page=page, filters=filters, schools=schools,
                           codes={s.id: s.code for s in schools}, newest={k: v for k, v in filters.items() if v})
