"""The web UI's access log keeps every request's shape and none of the guardians' link keys."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from webui.access_log import RedactingLogger, redact

TOKEN = "P3YwmpRaYuErmE8jWZPZ7A"


@pytest.mark.parametrize(("logged", "kept"), [
    (f"/r/{TOKEN}", "/r/…"),
    (f"/r/{TOKEN}/a/01a2-attachment", "/r/…/a/01a2-attachment"),
    (f"/c/{TOKEN}", "/c/…"),
    (f"/u/{TOKEN}", "/u/…"),
    (f"/p/in/{TOKEN}", "/p/in/…"),
    (f"/p/confirm/{TOKEN}?x=1", "/p/confirm/…?x=1"),
    (f"/e/ok/{TOKEN}", "/e/ok/…"),
    ("/e/PYNS0JS2SP", "/e/…"),
    (f"GET /r/{TOKEN}?saved=answers HTTP/1.1", "GET /r/…?saved=answers HTTP/1.1"),
    (f"http://school.example/c/{TOKEN}", "http://school.example/c/…"),
])
def test_link_keys_are_replaced(logged, kept):
    assert redact(logged) == kept


@pytest.mark.parametrize("path", ["/admin/s/demo/messages/01a2", "/p/settings", "/p/", "/e/", "/help",
                                  "/static/guardian.css", "/status"])
def test_other_paths_are_kept_as_they_are(path):
    assert redact(path) == path


def test_the_logger_redacts_the_request_line_path_and_referrer():
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/c/{TOKEN}", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": f"/c/{TOKEN}", "QUERY_STRING": "", "REMOTE_ADDR": "192.0.2.1",
               "HTTP_REFERER": f"https://school.example/r/{TOKEN}"}
    response = SimpleNamespace(status="200 OK", sent=2048, headers=[])
    atoms = RedactingLogger(Config()).atoms(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    assert atoms["r"] == "GET /c/… HTTP/1.1" and atoms["U"] == "/c/…" and atoms["f"] == "https://school.example/r/…"
    assert TOKEN not in repr(atoms)
