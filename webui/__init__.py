"""The web UI: ``create_app()`` for gunicorn (``webui:create_app()``) and for tests.

The admin, guardian, CoCo-net and peer blueprints arrive with their issues; today
the app answers the health check and shows what the appliance is doing.
"""
from __future__ import annotations

from flask import Flask

from appliance import db
from appliance.config import resolve_data_dir
from appliance.runtime import open_appliance
from appliance.tasks import create_queue


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask app for the data dir in APPLIANCE_DATA_DIR (or test_config["DATA_DIR"])."""
    test_config = test_config or {}
    data_dir = test_config.get("DATA_DIR") or resolve_data_dir(None)
    appliance = test_config.get("APPLIANCE") or open_appliance(data_dir)
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=appliance.config["web"]["secret_key"]
        or appliance.config.path("keys", "web_secret").read_bytes(),
    )
    app.config.update({k: v for k, v in test_config.items() if k.isupper()})
    app.json.ensure_ascii = False
    app.extensions["appliance"] = appliance
    app.extensions["queue"] = create_queue(appliance)

    @app.teardown_appcontext
    def close_connection(_exc):
        # peewee keeps one connection per thread; reopened on next use.
        db.close_database()

    from webui import health
    app.register_blueprint(health.bp)
    return app


