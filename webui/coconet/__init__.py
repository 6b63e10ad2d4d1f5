"""CoCo-net on the web: staff pages under ``/admin/s/<code>/coconet/`` and the guardian's page at ``/c/<token>``."""
from flask import Blueprint

bp = Blueprint("coconet", __name__)

from webui.coconet import guardian, staff  # noqa: E402,F401  (views register on bp)
