"""Where staff land after signing in: the operator's school list or their own school's page."""
from __future__ import annotations

from flask import g, redirect, render_template, url_for

from appliance import coconet, registrations
from appliance.messages import visible_messages
from appliance.models import Message, School
from webui.access import STAFF, TEACHER, access, may
from webui.admin import bp


@bp.get("/")
@access(STAFF)
def home_show():
    """Operators pick a school; everyone else goes to their school."""
    if g.user.role != "operator":
        return redirect(url_for("admin.school_show", code=g.user.school.code))
    return render_template("admin/home.html", schools=School.select().order_by(School.code))


@bp.get("/s/<code>/")
@access(TEACHER)
def school_show(code: str):
    """The school's front page: what to do next, and the latest messages."""
    visible = visible_messages(g.school, g.user)
    recent = visible.order_by(Message.created_at.desc()).limit(10)
    awaiting = visible.where(Message.status == "awaiting_approval").count()
    pending = registrations.count_pending(g.school) if may("admin.registration_index") else 0
    return render_template("admin/school.html", recent=recent, awaiting=awaiting, pending=pending,
                           event=coconet.current_event(g.school), now=g.appliance.clock.now())
