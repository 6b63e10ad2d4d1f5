"""``GET /healthz`` and ``/status``: what the appliance is doing right now."""
from flask import Blueprint, current_app, jsonify, render_template

from appliance.health import check_health
from webui.access import PUBLIC, access

bp = Blueprint("health", __name__)


def _status() -> dict:
    return check_health(current_app.extensions["appliance"], current_app.extensions["queue"])


@bp.get("/healthz")
@access(PUBLIC)
def health_show():
    """200 while the database serves (mail trouble is reported, not fatal); 503 otherwise."""
    status = _status()
    return jsonify(status), 200 if status["db"]["ok"] else 503


@bp.get("/status")
@access(PUBLIC)
def status_show():
    """The same status, for a person."""
    return render_template("status.html", status=_status())
