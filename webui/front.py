"""The web UI as gunicorn serves it: an ASGI front before the Flask app (``webui.front:create_front()``).

gunicorn runs it in :class:`Worker` (uvicorn's worker, on uvloop and httptools): one event
loop per process, which keeps idle and slow connections without holding a worker. How a
request is answered:

- ``GET /r/<token>``, a guardian's tap on a notice's link, comes 40,000 times within a
  minute after a school sends; ``GET /c/<token>``, a guardian opening CoCo-net, as often
  after an event's notice. The front answers them itself when the answer is a page Flask
  keeps ready (webui/skeleton.py): the link is read in plain SQL (appliance/message_page.py,
  appliance/coconet.py), its read report is committed together with the others waiting
  (webui/group_commit.py), and the page is filled in with the guardian's own values.
  Anything else about such a link (an unknown, expired or limited link, a guardian who
  answered or replied, a page not kept yet, a conditional request other than
  If-None-Match, a failed commit) goes to Flask, which decides and renders as always:
  the front only ever repeats what Flask rendered.
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

from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import build_environ
from uvicorn_worker import UvicornWorker
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_etags, quote_etag, remove_entity_headers

from appliance import tokens
from webui import SECURITY_HEADERS, access_log, capability, create_app
from webui.coconet import guardian as coconet_views
from webui.group_commit import WRITES, GroupCommit
from webui.guardian import message as message_views
from webui.long_pages import off_loop_endpoints
from webui.skeleton import Ready

FLASK_THREADS = 8       # requests with a body Flask answers at once per worker
# The guardians' links the front answers, by the path's first part: each returns a Ready, or None for Flask.
_ANSWERS = {tokens.PATHS["read"]: message_views.front_answer, tokens.PATHS["coconet"]: coconet_views.front_answer}
_LINK = re.compile(rf"/({'|'.join(map(re.escape, _ANSWERS))})/([^/]+)\Z")
# Conditional and range requests Flask answers; If-None-Match (a phone revalidating its copy) the front does.
_FLASKS_CONDITIONS = frozenset((b"if-match", b"if-modified-since", b"if-unmodified-since", b"if-range", b"range"))
_log = logging.getLogger("renraku.access")
_failures = logging.getLogger(__name__)


def create_front():
    """Build the front and the Flask app behind it, for the data dir in APPLIANCE_DATA_DIR."""
    return Front(create_app())


class Front:
    """The ASGI app: guardians' links answered from the pages kept ready here, everything else through Flask."""

    def __init__(self, flask_app, commits: GroupCommit | None = None):
        self.flask_app = flask_app
        self.flask = WSGIMiddleware(flask_app, workers=FLASK_THREADS)
        self.commits = commits or GroupCommit()
        # Which view a path is, to find the long ones (the name is not matched: the map has no host rules).
        self._urls = flask_app.url_map.bind("front")
        self._off_loop = off_loop_endpoints(flask_app)
        self._headers: dict[tuple[str, str, bool], list[tuple[bytes, bytes]]] = {}
        self._lines: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":        # the worker sends no lifespan events; there are no websockets
            sent = _Sent(send)
            try:
                if scope["method"] not in ("GET", "HEAD"):
                    await self.flask(scope, receive, sent)
                elif (ready := await self._ready(scope)) is not None:
                    if _unchanged(ready, scope):     # as Flask's make_conditional: 304 without entity headers
                        headers = self._headers_of(ready, entity=False)
                        await sent({"type": "http.response.start", "status": 304, "headers": headers})
                        await sent({"type": "http.response.body", "body": b""})
                    else:
                        await sent({"type": "http.response.start", "status": 200, "headers": self._headers_of(ready)})
                        await sent({"type": "http.response.body", "body": ready.body})
                elif self._runs_off_loop(scope):
                    await self.flask(scope, receive, sent)
                else:
                    await flask_in_loop(self.flask_app, scope, sent, self.commits)
            finally:
                self._log(access_log.line(scope, sent.status, sent.length))

    async def _ready(self, scope) -> Ready | None:
        """A guardian's link answered from its page kept ready, its read report committed; None: Flask answers.

        Whatever goes wrong here goes to Flask too, which answers failures in the guardian's language.
        """
        found = _LINK.match(scope["path"]) if scope["method"] == "GET" and not scope["query_string"] else None
        if found is None or any(name in _FLASKS_CONDITIONS for name, _ in scope["headers"]):
            return None
        try:
            if capability.over_limit(access_log.client_address(scope), self.flask_app):
                return None             # a guesser: Flask answers 429 to every link
            ready = _ANSWERS[found[1]](self.flask_app, found[2])
            if ready is not None and ready.writes:
                await self.commits.commit(ready.writes)
        except Exception:               # noqa: BLE001 -- Flask tries again and answers as it answers failures
            _failures.exception("the front could not answer a guardian's link; Flask answers it")
            return None
        return ready

    def _runs_off_loop(self, scope) -> bool:
        """Whether the request is for a view marked off_loop."""
        try:
            endpoint, _ = self._urls.match(scope["path"], method=scope["method"])
        except HTTPException:           # not found, a redirect, another method: Flask answers it in the loop
            return False
        return endpoint in self._off_loop

    def _headers_of(self, ready: Ready, *, entity: bool = True) -> list[tuple[bytes, bytes]]:
        """The headers Flask gives the same page: the app's, then a private page's (kept per language and
        style), then the page's own; ``entity=False``: without the entity headers, as its 304 has them. Not
        Flask's Vary: Cookie (it looks for a staff session on every request, and a staff member's browser gets
        no-store); uvicorn dates every answer."""
        kind = ready.locale, ready.inline_style, entity
        if kind not in self._headers:
            named = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS,
                     **capability.private_header_items(ready.locale, inline_style=ready.inline_style)}
            headers = list(named.items())
            if not entity:
                remove_entity_headers(headers)      # as Flask's 304
            self._headers[kind] = [(name.lower().encode(), value.encode()) for name, value in headers]
        own = [(b"etag", quote_etag(ready.etag).encode())] if ready.etag else []
        length = [(b"content-length", str(len(ready.body)).encode())] if entity else []
        return [*self._headers[kind], *own, *length]

    def _log(self, line: str) -> None:
        """Write the access log's lines of a turn of the loop as one record: one each cost a tap ~10%."""
        if not self._lines:
            asyncio.get_running_loop().call_soon(self._write_log)
        self._lines.append(line)

    def _write_log(self) -> None:
        lines, self._lines = self._lines, []
        _log.info("\n".join(lines))


def _unchanged(ready: Ready, scope) -> bool:
    """Whether the request's If-None-Match names the page's ETag (weakly, as werkzeug compares for a GET)."""
    tags = b", ".join(value for name, value in scope["headers"] if name == b"if-none-match")
    return bool(ready.etag and tags) and parse_etags(tags.decode("latin-1")).contains_weak(ready.etag)


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
        # Not Flask's Date (make_conditional sets one): uvicorn dates every answer, and two confuse caches.
        started.update(status=int(status.split(" ", 1)[0]),
                       headers=[(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
                                if name.lower() != "date"])
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
