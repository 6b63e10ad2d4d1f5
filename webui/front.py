"""The web UI as gunicorn serves it: an ASGI front before the Flask app (``webui.front:create_front()``).

gunicorn runs it in :class:`Worker` (uvicorn's worker, on uvloop and httptools): one event
loop per process, which keeps idle and slow connections without holding a worker. How a
request is answered:

- ``GET /r/<token>``, a guardian's tap on a notice's link, comes 40,000 times within a
  minute after a school sends. The front answers it itself when the answer is the page
  Flask keeps ready for the message (webui/skeleton.py): the tap is read in one statement
  (appliance/message_page.py), its read report is committed together with the other taps
  waiting (webui/group_commit.py), and the page is filled in with the guardian's name and
  link. Anything else about such a tap (an unknown, expired or limited link, a guardian
  who answered or replied, a page not kept yet, a failed commit) goes to Flask, which
  decides and renders as always: the front only ever repeats what Flask rendered.
- Every other request without a body (GET, HEAD) is run by Flask in the loop, one at a
  time, as a sync worker would: a page is CPU work, and handing it to a thread and back
  cost a CoCo-net page ~40% more, while threads taking the interpreter in turns made a
  staff page wait behind every guardian's (bench/guardian_burst.py). Except the few long
  staff pages marked ``off_loop`` (webui/long_pages.py: a school's print view, exports).
- Those, and requests with a body (forms, uploads), run on a pool of threads (a2wsgi):
  a phone on one bar may take a minute to send 1 MB, and the loop must not wait for it.
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
from functools import partial

from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import build_environ
from uvicorn_worker import UvicornWorker
from werkzeug.exceptions import HTTPException

from appliance import message_page, receipts, tokens
from webui import SECURITY_HEADERS, access_log, capability, create_app
from webui.group_commit import WRITES, GroupCommit
from webui.guardian.message import ready_page
from webui.long_pages import off_loop_endpoints

FLASK_THREADS = 8       # requests with a body Flask answers at once per worker
_FIRST_TAP = re.compile(rf"/{re.escape(tokens.PATHS['read'])}/([^/]+)\Z")     # the token's form: message_page.tap
_log = logging.getLogger("renraku.access")
_failures = logging.getLogger(__name__)


def create_front():
    """Build the front and the Flask app behind it, for the data dir in APPLIANCE_DATA_DIR."""
    return Front(create_app())


class Front:
    """The ASGI app: first taps on notices' links here, everything else through Flask."""

    def __init__(self, flask_app):
        self.flask_app = flask_app
        self.appliance = flask_app.extensions["appliance"]
        self.flask = WSGIMiddleware(flask_app, workers=FLASK_THREADS)
        self.commits = GroupCommit()
        # Which view a path is, to find the long ones (the name is not matched: the map has no host rules).
        self._urls = flask_app.url_map.bind("front")
        self._off_loop = off_loop_endpoints(flask_app)
        self._headers: dict[str, list[tuple[bytes, bytes]]] = {}
        self._lines: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":        # the worker sends no lifespan events; there are no websockets
            sent = _Sent(send)
            try:
                if scope["method"] not in ("GET", "HEAD"):
                    await self.flask(scope, receive, sent)
                elif (ready := await self._first_tap(scope)) is not None:
                    headers, body = ready
                    await sent({"type": "http.response.start", "status": 200, "headers": headers})
                    await sent({"type": "http.response.body", "body": body})
                elif self._runs_off_loop(scope):
                    await self.flask(scope, receive, sent)
                else:
                    await flask_in_loop(self.flask_app, scope, sent, self.commits)
            finally:
                self._log(access_log.line(scope, sent.status, sent.length))

    async def _first_tap(self, scope) -> tuple[list, bytes] | None:
        """The answer to a tap on a notice's link from its page kept ready, its read committed; None: Flask answers.

        Whatever goes wrong here goes to Flask too, which answers failures in the guardian's language.
        """
        found = _FIRST_TAP.match(scope["path"]) if scope["method"] == "GET" and not scope["query_string"] else None
        if found is None:
            return None
        token = found[1]
        try:
            tap = message_page.tap(self.appliance, token)
            if tap is None or tap.personal:
                return None
            if capability.over_limit(access_log.client_address(scope), self.flask_app):
                return None
            body = ready_page(self.flask_app, tap, token)
            if body is None:
                return None
            if not tap.read:
                await self.commits.commit([partial(receipts.insert_read, self.appliance, tap.message_id,
                                                   tap.guardian_id)])
        except Exception:               # noqa: BLE001 -- Flask tries again and answers as it answers failures
            _failures.exception("the front could not answer a tap; Flask answers it")
            return None
        return [*self._page_headers(tap.locale), (b"content-length", str(len(body)).encode())], body

    def _runs_off_loop(self, scope) -> bool:
        """Whether the request is for a view marked off_loop."""
        try:
            endpoint, _ = self._urls.match(scope["path"], method=scope["method"])
        except HTTPException:           # not found, a redirect, another method: Flask answers it in the loop
            return False
        return endpoint in self._off_loop

    def _page_headers(self, locale: str) -> list[tuple[bytes, bytes]]:
        """The headers Flask gives the same page (the app's, then a private page's), per language."""
        if locale not in self._headers:
            named = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS,
                     **capability.private_header_items(locale)}
            self._headers[locale] = [(name.lower().encode(), value.encode()) for name, value in named.items()]
        return self._headers[locale]

    def _log(self, line: str) -> None:
        """Write the access log's lines of a turn of the loop as one record: one each cost a tap ~10%."""
        if not self._lines:
            asyncio.get_running_loop().call_soon(self._write_log)
        self._lines.append(line)

    def _write_log(self) -> None:
        lines, self._lines = self._lines, []
        _log.info("\n".join(lines))


async def flask_in_loop(flask_app, scope, send, commits: GroupCommit | None = None) -> None:
    """Answer a request without a body by running the Flask app on the loop's own thread; the writes its view
    leaves for later (group_commit.before_answer) are committed with ``commits`` before the answer goes out."""
    writes = []
    status, headers, body = _run_flask(flask_app, scope, {WRITES: writes} if commits else {})
    if writes:
        try:
            await commits.commit(writes)
        except Exception:               # noqa: BLE001 -- run again, writing at once: Flask answers a failure
            _failures.exception("a group commit failed; Flask answers the request writing itself")
            status, headers, body = _run_flask(flask_app, scope, {})
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _run_flask(flask_app, scope, extra: dict) -> tuple[int, list, bytes]:
    environ = {**build_environ(scope, io.BytesIO()), **extra}
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=int(status.split(" ", 1)[0]),
                       headers=[(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers])
    answer = flask_app(environ, start_response)
    try:
        body = b"".join(answer)
    finally:
        getattr(answer, "close", lambda: None)()
    return started["status"], started["headers"], body


class _Sent:
    """The ASGI send of one request, noting the status and body length for the access log."""

    def __init__(self, send):
        self._send, self.status, self.length = send, 0, 0

    async def __call__(self, event) -> None:
        if event["type"] == "http.response.start":
            self.status = event["status"]
        elif event["type"] == "http.response.body":
            self.length += len(event.get("body", b""))
        await self._send(event)


class Worker(UvicornWorker):
    """gunicorn's worker for the front (``--worker-class webui.front.Worker``): uvicorn's, with the front's
    access log (gunicorn's handlers, links redacted) instead of uvicorn's, which would log every link's token,
    and the client address as the connection gives it (no proxy before us rewrites it)."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "lifespan": "off", "access_log": False,
                     "proxy_headers": False, "server_header": False}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _log.handlers = self.log.access_log.handlers
        _log.setLevel(logging.INFO)
        _log.propagate = False
