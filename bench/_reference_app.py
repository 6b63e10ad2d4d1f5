"""The guardian burst's references: a fixed 7 KB page, answered by the front's server alone or by Flask.

bench/guardian_burst.py serves ``app`` with the same gunicorn command as the appliance (the
front's worker) and sends it the same bursts as the guardians' pages, in the same run:
``/r/...`` is answered by the ASGI callable itself (what the server costs a request: the floor
under the front's first taps), ``/c/...`` by a Flask view run as the front runs Flask for a
GET (webui.front.flask_in_loop: the floor under every page Flask renders).
"""
from flask import Flask

from webui.front import flask_in_loop

PAGE = "<!doctype html><title>reference</title><p>" + "連絡網" * 800
_BODY = PAGE.encode()
_HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(_BODY)).encode())]
flask_app = Flask(__name__)


@flask_app.get("/<kind>/<token>")
def page(kind: str, token: str) -> str:
    """The same answer for every link."""
    return PAGE


async def app(scope, receive, send):
    """/r/... answered here, anything else by the Flask view."""
    if scope["path"].startswith("/r/"):
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": _BODY})
    else:
        await flask_in_loop(flask_app, scope, send)
