"""The web app's skeleton: health check, front page, and an access rule on every view."""
import pytest

from webui import create_app


@pytest.fixture
def client(app):
    flask_app = create_app({"APPLIANCE": app, "DATA_DIR": app.data_dir, "TESTING": True})
    return flask_app.test_client()


def test_healthz_reports_db_queue_and_mta(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["db"]["ok"] is True
    assert set(body) == {"ok", "db", "queue", "mta"}
    assert body["mta"] == {"ok": False, "running": False, "due": 0}   # no MTA runs in the unit tier


def test_front_page_is_japanese(client):
    page = client.get("/").get_data(as_text=True)
    assert 'lang="ja"' in page and "データベース" in page


def test_every_view_declares_its_access_rule(app):
    flask_app = create_app({"APPLIANCE": app, "DATA_DIR": app.data_dir})
    missing = [name for name, view in flask_app.view_functions.items()
               if name != "static" and not hasattr(view, "access_rule")]
    assert missing == []
