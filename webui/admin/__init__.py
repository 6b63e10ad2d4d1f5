"""The staff UI (``/admin``): school staff and the operator. Each module adds its views to ``bp``."""
from flask import Blueprint, g, session

from appliance import staff

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_app_request
def load_user():
    """Put the signed-in user in g.user; a session whose epoch was raised is over."""
    g.user = None
    if "uid" in session:
        g.user = staff.session_user(session["uid"], session.get("epoch", -1))
        if g.user is None:
            session.clear()


from webui.admin import (  # noqa: E402,F401  (views register on bp)
    account, audit_log, compose, enquiries, guardians, home, messages, notices, registration_sheets, replies, roster,
    schools, settings, staff_accounts, system)
