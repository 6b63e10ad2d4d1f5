"""The web UI's access log keeps every request's shape and none of the guardians' link keys."""
import pytest

from webui.access_log import line, redact

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


def test_the_line_redacts_the_request_line_referrer_and_agent():
    scope = {"type": "http", "method": "GET", "path": f"/c/{TOKEN}", "query_string": b"x=1", "http_version": "1.1",
             "client": ("192.0.2.1", 50000),
             "headers": [(b"referer", f"https://school.example/r/{TOKEN}".encode()),
                         (b"user-agent", f"Mail/1.0 /u/{TOKEN}".encode())]}
    logged = line(scope, 200, 2048)
    assert logged.startswith("192.0.2.1 - - [")
    assert logged.endswith('"GET /c/…?x=1 HTTP/1.1" 200 2048 "https://school.example/r/…" "Mail/1.0 /u/…"')
    assert TOKEN not in logged
