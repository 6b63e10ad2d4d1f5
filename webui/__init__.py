"""The web UI: ``create_app()``, the Flask app that webui/front.py serves under gunicorn, and that tests use.

Blueprints: ``health`` (``/healthz``, ``/status``), ``admin`` (staff, ``/admin``) and
``coconet`` (staff pages under ``/admin/s/<code>/coconet``, the guardian's ``/c/<token>``),
``guardian`` (the message page ``/r/<token>`` and the portal ``/p/``); the peer
blueprint arrives with its issue. Sessions are
signed cookies checked against the database on every request (no state in the
workers' memory); every POST carries a CSRF token.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, redirect, url_for
from flask_wtf.csrf import CSRFProtect

from appliance.config import resolve_data_dir
from appliance.runtime import open_appliance
from appliance.tasks import create_queue
from webui import errors, i18n
from webui.access import PUBLIC, access, may
from webui.skeleton import Skeletons

MAX_REQUEST_BYTES = 2 * 1024 * 1024   # the largest form: 1 MB of attachments, base64 and fields aside
# Every answer's, unless its view set its own (a guardian's page: webui/capability.py).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
                    "Referrer-Policy": "same-origin"}


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask app for the data dir in APPLIANCE_DATA_DIR (or test_config["DATA_DIR"])."""
    test_config = test_config or {}
    data_dir = test_config.get("DATA_DIR") or resolve_data_dir(None)
    # Each worker thread keeps its own database connection from request to request (peewee
    # opens it on first use): closing it after every request cost a reconnect, and closing
    # the last connection checkpoints the WAL, so a burst of guardians' taps wrote the whole
    # WAL back once per request (bench/guardian_burst.py).
    appliance = test_config.get("APPLIANCE") or open_appliance(data_dir)
    web = appliance.config["web"]
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=web["secret_key"] or appliance.config.path("keys", "web_secret").read_bytes(),
        SESSION_COOKIE_NAME="renraku_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web["base_url"].startswith("https:"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        WTF_CSRF_TIME_LIMIT=None,     # the token lives as long as the session (a long compose must not fail)
    )
    app.config.update({k: v for k, v in test_config.items() if k.isupper()})
    app.json.ensure_ascii = False
    app.extensions["appliance"] = appliance
    app.extensions["queue"] = create_queue(appliance)
    app.extensions["ready_pages"] = Skeletons()     # guardians' pages kept ready (webui/skeleton.py)
    csrf = CSRFProtect(app)
    i18n.init_app(app)
    errors.init_app(app)

    @app.before_request
    def bind_appliance():
        g.appliance = appliance

    @app.context_processor
    def navigation():
        return {"may": may}

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if g.get("user") is not None:
            response.headers["Cache-Control"] = "no-store"   # staff pages never sit in a shared cache
        return response

    @app.get("/")
    @access(PUBLIC)
    def root_show():
        """The web root leads to the staff sign-in (guardians arrive by their own links)."""
        return redirect(url_for("admin.home_show"))

    from webui import admin, coconet, guardian, health
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(coconet.bp)
    app.register_blueprint(guardian.bp)
    for view in app.view_functions.values():     # capability pages: their own form token, no cookie needed
        if getattr(view, "checks_form_token", False):
            csrf.exempt(view)
    return app
