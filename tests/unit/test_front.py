"""The ASGI front (webui/front.py), driven directly: first taps answered from the page Flask keeps ready,
read reports committed together, everything else through Flask as before, an access log without tokens."""
import asyncio
import logging
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from appliance import coconet, message_page, portal, ratelimit, receipts, surveys
from appliance.guardians import add_guardian
from appliance.schools import add_school
from appliance.models import CoconetCheck, Guardian, GuardianLink, Receipt, SurveyAnswer
from tests.conftest import add_students
from tests.unit.guardian_fixtures import coconet_path, form_token, issued_token
from webui.capability import form_token as link_form_token
from webui.coconet import guardian as coconet_views
from webui import group_commit
from webui.front import Front
from webui.guardian.message import ready_page

CLIENT = "127.0.0.1"
MARKER = re.compile(rb"slot[0-9a-f]{16}")       # webui/skeleton.py's markers
ANSWERS_NOTICE = '<p class="ok" role="status">回答を送信しました。期限までは何度でも変更できます。</p>'.encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def call(front, target: str, *, method: str = "GET", body: bytes = b"", headers=(), client: str = CLIENT):
    """One request through the ASGI app, as uvicorn would hand it over; the answer collected."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"testserver"), *headers], "client": (client, 50000),
             "server": ("testserver", 80)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(event):
        sent.append(event)

    await front(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    return Answer(start["status"], {name.decode(): value.decode() for name, value in start["headers"]},
                  b"".join(event.get("body", b"") for event in sent[1:]))


def request(front, target: str, **options) -> Answer:
    return asyncio.run(call(front, target, **options))


def together(front, targets: list[str]) -> list[Answer]:
    """Requests arriving at once: all taken in by the same event loop (one asyncio.run, one gather)."""
    async def all_of_them():
        return await asyncio.gather(*(call(front, target) for target in targets))
    return asyncio.run(all_of_them())


@pytest.fixture
def front(web):
    front = Front(web)
    yield front
    front.flask.executor.shutdown(wait=True)
    front.commits.close()


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """How many writes each group commit ran, in order."""
    run, counted = group_commit._run, []

    def counting(writes):
        counted.append(len(writes))
        return run(writes)
    monkeypatch.setattr(group_commit, "_run", counting)
    return counted


@pytest.fixture
def flask_paths(web):
    """The paths the Flask app was called for (its WSGI app wrapped): a tap the front answered is not there."""
    called = []
    wsgi_app = web.wsgi_app

    def counting(environ, start_response):
        called.append(environ["PATH_INFO"])
        return wsgi_app(environ, start_response)
    web.wsgi_app = counting
    return called


@pytest.fixture
def paths(app, families):
    """Taro's and Hanako's read links of the message."""
    return families.link(app, families.taro), families.link(app, families.hanako)


@pytest.fixture
def ready(front, flask_paths, paths):
    """The same links, once Taro's first tap (answered by Flask) made the message's page ready."""
    request(front, paths[0])
    return paths


def token_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


def receipts_of(families, guardian) -> int:
    return Receipt.select().where((Receipt.message == families.message.id) & (Receipt.guardian == guardian.id)).count()


def more_guardians(app, families, count: int) -> list[Guardian]:
    [link] = GuardianLink.select().where(GuardianLink.guardian == families.hanako.id)
    return [add_guardian(app, f"保護者 {number}", student_ids=[link.student_id], emails=[f"g{number}@example.jp"],
                         approved=True) for number in range(count)]


# --- the first tap, answered by the front ----------------------------------------------------------

def test_the_first_tap_of_a_message_goes_to_flask_which_makes_its_page_ready(app, front, flask_paths, paths):
    taro, _ = paths
    tap = message_page.tap(app, token_of(taro))
    assert ready_page(front.flask_app, tap, token_of(taro)) is None
    answer = request(front, taro)
    assert answer.status == 200 and flask_paths == [taro]
    assert ready_page(front.flask_app, tap, token_of(taro)) == answer.body


def test_a_tap_answered_by_the_front_is_the_page_and_headers_flask_gives(web, front, flask_paths, ready):
    taro, hanako = ready
    by_front = request(front, hanako)
    assert by_front.status == 200 and flask_paths == [taro]     # Flask never saw Hanako's tap
    by_flask = web.test_client().get(hanako)                   # read, not answered: the same page
    assert by_front.body == by_flask.data
    # Flask's Vary: Cookie only says that it looked for a staff session (on every request); the page is the same.
    assert by_front.headers == {name.lower(): value for name, value in by_flask.headers.items() if name != "Vary"}
    assert by_front.headers["content-security-policy"].startswith("default-src 'none'")
    assert by_front.headers["x-frame-options"] == "DENY"
    assert by_front.headers["cache-control"] == "private, no-cache"
    assert by_front.headers["referrer-policy"] == "no-referrer"
    assert by_front.headers["content-language"] == "ja"
    assert by_front.headers["x-content-type-options"] == "nosniff"
    assert by_front.headers["content-type"] == "text/html; charset=utf-8"
    assert by_front.headers["content-length"] == str(len(by_front.body))


# --- read reports ----------------------------------------------------------------------------------

def test_a_guardian_tapping_several_times_at_once_is_one_read_report(front, flask_paths, families, ready):
    taro, hanako = ready
    answers = together(front, [hanako] * 5)
    assert [answer.status for answer in answers] == [200] * 5 and flask_paths == [taro]
    assert receipts_of(families, families.hanako) == 1
    together(front, [hanako] * 3)                              # read before: nothing more written
    assert receipts_of(families, families.hanako) == 1 and Receipt.select().count() == 2


def test_many_guardians_tapping_at_once_are_all_recorded_in_one_transaction(app, front, flask_paths, families, ready,
                                                                             batches, monkeypatch):
    taro, hanako = ready
    others = more_guardians(app, families, 20)
    inserts, insert_reads = [], receipts.insert_reads
    monkeypatch.setattr(receipts, "insert_reads", lambda rows: inserts.append(len(rows)) or insert_reads(rows))
    answers = together(front, [hanako] + [families.link(app, guardian) for guardian in others])
    assert [answer.status for answer in answers] == [200] * 21 and flask_paths == [taro]
    assert batches == [21] and inserts == [21]          # one transaction, one statement's rows
    assert all(receipts_of(families, guardian) == 1 for guardian in [families.taro, families.hanako, *others])
    assert Receipt.select().count() == 22


def test_taps_soon_after_a_commit_wait_for_each_other_and_go_in_the_next_together(app, web, families, ready,
                                                                                  batches):
    guardians = more_guardians(app, families, 3)
    first, second, third = (families.link(app, guardian) for guardian in guardians)
    front = Front(web, group_commit.GroupCommit(gather_seconds=0.5))     # wide enough for a slow machine

    async def spread_out():
        loop = asyncio.get_running_loop()
        began = loop.time()
        await call(front, first)                                # alone, after a quiet time: committed at once
        alone, began = loop.time() - began, loop.time()
        later = asyncio.ensure_future(call(front, second))
        await asyncio.sleep(0.1)
        answers = await asyncio.gather(later, call(front, third))
        return answers, alone, loop.time() - began
    try:
        answers, alone, together_after = asyncio.run(spread_out())
    finally:
        front.flask.executor.shutdown(wait=True)
        front.commits.close()
    assert [answer.status for answer in answers] == [200, 200]
    assert batches == [1, 2] and alone < 0.25 and together_after >= 0.4     # the second waited for the third
    assert all(receipts_of(families, guardian) == 1 for guardian in guardians)


def test_a_failed_group_commit_still_answers_the_tap_and_flask_records_it(front, flask_paths, families, ready,
                                                                          monkeypatch, caplog):
    taro, hanako = ready
    run, failures = group_commit._run, []

    def fails_once(writes):
        if not failures:
            failures.append(writes)
            raise RuntimeError("database is locked")
        return run(writes)
    monkeypatch.setattr(group_commit, "_run", fails_once)
    answer = request(front, hanako)
    assert answer.status == 200 and "佐藤 花子 様" in answer.body.decode()
    assert failures and flask_paths == [taro, hanako]         # the front gave up, Flask answered
    assert receipts_of(families, families.hanako) == 1
    assert "the front could not answer a guardian's link" in caplog.text


# --- what the page shows ---------------------------------------------------------------------------

def test_each_guardian_sees_only_their_own_name_and_link_escaped(web, front, families, ready):
    taro, hanako = ready
    evil = "<script>&\"'"
    Guardian.update(name=evil).where(Guardian.id == families.hanako.id).execute()
    pages = {path: request(front, path).body for path in ready}
    assert evil.encode() not in pages[hanako] and "&lt;script&gt;&amp;&#34;&#39; 様".encode() in pages[hanako]
    assert "山田 太郎 様".encode() in pages[taro] and "山田 太郎".encode() not in pages[hanako]
    assert b"&lt;script" not in pages[taro]
    for own, other in ((taro, hanako), (hanako, taro)):
        assert token_of(own).encode() in pages[own] and token_of(other).encode() not in pages[own]
        assert form_token(pages[other].decode()).encode() not in pages[own]
        assert not MARKER.search(pages[own])
    rendered_in_full = web.test_client().get(hanako + "?saved=answers").data     # the template, no skeleton
    assert pages[hanako] == rendered_in_full.replace(ANSWERS_NOTICE, b"")


# --- what still goes to Flask ----------------------------------------------------------------------

def test_an_unknown_link_is_flasks_404_and_guessing_locks_out_valid_links_too(front, flask_paths, ready):
    _, hanako = ready
    unknown = request(front, "/r/AAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status == 404 and "このリンクは無効か、有効期限が切れています。" in unknown.body.decode()
    assert flask_paths[-1] == "/r/AAAAAAAAAAAAAAAAAAAAAA"
    for _ in range(ratelimit.TOKEN_GUESSES.count - 1):
        assert request(front, "/r/BBBBBBBBBBBBBBBBBBBBBB").status == 404
    locked = request(front, hanako)
    assert locked.status == 429 and flask_paths[-1] == hanako
    assert request(front, hanako, client="192.0.2.7").status == 200        # another client is not held back


def test_a_guardian_who_answered_gets_flasks_page_with_the_answers(app, front, flask_paths, families, ready):
    _, hanako = ready
    surveys.record_answers(app, families.message.id, families.hanako.id, {"q1": ["欠席"]})
    answer = request(front, hanako)
    assert answer.status == 200 and flask_paths[-1] == hanako
    assert 'value="欠席" checked' in answer.body.decode() and "回答を変更する" in answer.body.decode()


def test_a_tap_with_a_query_string_goes_to_flask(front, flask_paths, ready):
    _, hanako = ready
    answer = request(front, hanako + "?saved=answers")
    assert answer.status == 200 and flask_paths[-1] == hanako and ANSWERS_NOTICE in answer.body


def test_a_posted_answer_runs_on_the_thread_pool_and_redirects(front, families, ready):
    _, hanako = ready
    page = request(front, hanako).body.decode()
    form = urlencode({"form_token": form_token(page), "q1": "出席", "q2": ["運動会", "遠足"]}, doseq=True).encode()
    answer = request(front, f"{hanako}/answers", method="POST", body=form,
                     headers=[(b"content-type", b"application/x-www-form-urlencoded"),
                              (b"content-length", str(len(form)).encode())])
    assert answer.status == 303 and answer.headers["location"].endswith(f"{hanako}?saved=answers#survey")
    assert SurveyAnswer.select().where(SurveyAnswer.guardian == families.hanako.id).count() == 2


def test_long_staff_pages_run_on_the_thread_pool_and_the_others_in_the_loop(web, front):
    threads = {}
    wsgi_app = web.wsgi_app

    def noting(environ, start_response):
        threads[environ["PATH_INFO"]] = threading.current_thread() is threading.main_thread()
        return wsgi_app(environ, start_response)
    web.wsgi_app = noting
    long_pages = ["/admin/s/s1/coconet/e1/print", "/admin/s/s1/coconet/e1/export.csv",
                  "/admin/s/s1/messages/m1/answers.csv"]
    in_loop = ["/admin/s/s1/coconet/e1/", "/admin/s/s1/messages/m1", "/admin/no-such-page"]
    for path in long_pages + in_loop:
        assert request(front, path).status in (302, 404)       # not signed in: only where Flask ran matters
    assert threads == {**{path: False for path in long_pages}, **{path: True for path in in_loop}}
    threads.clear()
    assert request(front, long_pages[0], method="HEAD").status == 302 and threads == {long_pages[0]: False}


def test_head_is_answered_by_flask_without_a_body_and_records_no_read(front, flask_paths, families, ready):
    taro, hanako = ready
    page = request(front, taro)
    head = request(front, taro, method="HEAD")
    assert head.status == 200 and head.body == b"" and flask_paths[-1] == taro
    assert head.headers["content-length"] == str(len(page.body))
    assert request(front, hanako, method="HEAD").status == 200 and receipts_of(families, families.hanako) == 0


# --- CoCo-net: openings answered from the page kept ready, committed with the others -----------------

@pytest.fixture
def event(app, families):
    """An event open at the families' school."""
    return families.open_earthquake(app)


@pytest.fixture
def coconet_paths(app, families, event):
    """Taro's and Hanako's CoCo-net links (two children and one: pages of different shapes)."""
    return [coconet_path(app, guardian.id) for guardian in (families.taro, families.hanako)]


def as_the_front_gives(flask_headers) -> dict[str, str]:
    """Flask's headers but its Vary: Cookie (it looks for a staff session) and Date (uvicorn dates answers)."""
    return {name.lower(): value for name, value in flask_headers.items() if name not in ("Vary", "Date")}


def openings() -> int:
    return CoconetCheck.select().where(CoconetCheck.kind == "open").count()


def test_coconet_openings_are_committed_together_before_the_pages_answer(front, flask_paths, coconet_paths,
                                                                          batches):
    answers = together(front, coconet_paths)
    assert [answer.status for answer in answers] == [200, 200] and flask_paths == coconet_paths
    assert batches == [2] and openings() == 2


def test_an_opening_of_a_shape_kept_ready_is_the_page_and_headers_flask_gives(app, web, front, flask_paths,
                                                                               families, event, batches):
    first, *others = [coconet_path(app, guardian.id) for guardian in more_guardians(app, families, 4)]
    assert request(front, first).status == 200 and flask_paths == [first]     # Flask keeps the shape ready
    answers = together(front, others)
    assert [answer.status for answer in answers] == [200] * 3 and flask_paths == [first]
    assert batches == [1, 3] and openings() == 4
    by_front = answers[0]
    by_flask = web.test_client().get(others[0])
    assert by_front.body == by_flask.data and "保護者 1 様" in by_front.body.decode()
    # Flask's Vary: Cookie only says that it looked for a staff session; uvicorn dates every answer.
    assert by_front.headers == as_the_front_gives(by_flask.headers)
    assert by_front.headers["etag"] == by_flask.headers["ETag"] and by_front.headers["cache-control"] == "private, no-cache"
    assert "style-src 'self' 'sha256-" in by_front.headers["content-security-policy"]


def test_each_guardian_sees_their_own_children_and_name_escaped(app, front, flask_paths, families, event):
    [child] = add_students(app, families.school, [(2, "1", 8, "<b>石川</b> 一")])
    other = add_guardian(app, "<i>石川</i> 由佳", student_ids=[child.id], emails=["ishikawa@example.jp"],
                         approved=True)
    hanako, ishikawa = coconet_path(app, families.hanako.id), coconet_path(app, other.id)
    hanakos = request(front, hanako).body.decode()
    page = request(front, ishikawa).body.decode()
    assert flask_paths == [hanako]                  # the same shape: one child in 2-1, not set yet
    assert "&lt;b&gt;石川&lt;/b&gt; 一" in page and "&lt;i&gt;石川&lt;/i&gt; 由佳 様" in page
    assert "佐藤" not in page and "<b>" not in page and token_of(ishikawa) in page and token_of(hanako) not in page
    assert "佐藤 次郎" in hanakos and "石川" not in hanakos


def test_pages_of_one_shape_are_kept_ready_per_language(app, front, flask_paths, families, event):
    japanese, english = more_guardians(app, families, 2)
    portal.set_preferences(app, english.id, locale="en", quiet_from=None, quiet_until=None)
    paths = [coconet_path(app, guardian.id) for guardian in (japanese, english, japanese, english)]
    pages = [request(front, path) for path in paths]
    assert flask_paths == paths[:2]
    assert [page.headers["content-language"] for page in pages] == ["ja", "en", "ja", "en"]
    assert "確認しました" not in pages[3].body.decode() and "I have seen this" in pages[3].body.decode()
    assert "確認しました" in pages[2].body.decode()


def test_a_page_filled_from_its_shape_is_the_page_rendered_for_the_guardian(app, web, families, event):
    # Every value the page shows is in its shape or one of its slots (webui/coconet/guardian.py).
    school = add_school(app, "s2", "<第二>小学校")
    flood = coconet.open_event(app, school, kind="flood", title='大雨 "&\'', body="", send_notice=False, actor="test")
    kids = add_students(app, families.school, [(2, "1", 8, '<b>石川</b> "一"'), (2, "1", 9, "石川 & 二"),
                                               (4, "2", 1, "石川 三")])
    [far] = add_students(app, school, [(5, "3", 2, "石川 '四'")])
    guardian = add_guardian(app, "<i>石川</i> 由佳", student_ids=[kid.id for kid in [*kids, far]],
                            emails=["ishikawa@example.jp"], approved=True)
    coconet.set_states(app, event, kids[:1], "protected", place="<体育館>", note='"&\'', actor="test")
    coconet.record_pickup(app, event, kids[1], adult_name="<祖母> & 叔父", actor="test")
    coconet.set_states(app, flood, [far], "evacuated", place="公園 & 駅", actor="test")
    coconet.post_notice(app, event, "<b>\"正門\"</b> & 'どうぞ'", actor="test")
    token = issued_token(app, "coconet", guardian.id, None)
    coconet.record_check(app, coconet.link_view(app, token), "confirm", event_id=event.id)
    coconet.record_check(app, coconet.link_view(app, token), "reply", event_id=flood.id, body="<17時> & 迎え")
    for locale in ("ja", "en"):
        portal.set_preferences(app, guardian.id, locale=locale, quiet_from=None, quiet_until=None)
        view = coconet.link_view(app, token)
        with web.test_request_context():
            rendered = coconet_views._html(view, token, link_form_token(coconet_views.FORM_PURPOSE, token)).encode()
            assert coconet_views.ready_page(web, view, token) is None
            assert coconet_views._keep_ready(view, token) == rendered == coconet_views.ready_page(web, view, token)
        assert sorted(len(ev.children) for ev in view.events) == [1, 3] and b"&lt;b&gt;" in rendered


def test_a_new_state_or_notice_is_never_shown_from_an_older_page(app, front, flask_paths, families, event):
    hanako = coconet_path(app, families.hanako.id)
    request(front, hanako)
    [child] = GuardianLink.select().where(GuardianLink.guardian == families.hanako.id)
    coconet.set_states(app, event, [child.student], "evacuated", place="<第二>公園", note="全員無事", actor="test")
    coconet.post_notice(app, event, "17時に引き渡しを始めます", actor="test")
    page = request(front, hanako).body.decode()
    assert flask_paths == [hanako, hanako]          # a new shape: Flask renders it and keeps it ready
    assert "避難" in page and "&lt;第二&gt;公園" in page and "全員無事" in page and "17時に引き渡しを始めます" in page
    assert request(front, hanako).body.decode() == page and flask_paths == [hanako, hanako]


def test_a_revalidation_is_the_304_flask_gives_and_a_head_records_no_opening(app, web, front, flask_paths,
                                                                             families, event):
    hanako = coconet_path(app, families.hanako.id)
    page = request(front, hanako)
    again = request(front, hanako, headers=[(b"if-none-match", f'W/"x", {page.headers["etag"]}'.encode())])
    assert again.status == 304 and again.body == b"" and flask_paths == [hanako]
    by_flask = web.test_client().get(hanako, headers={"If-None-Match": page.headers["etag"]})
    assert by_flask.status_code == 304
    assert again.headers == as_the_front_gives(by_flask.headers)
    assert request(front, hanako, headers=[(b"if-none-match", b'"other"')]).body == page.body
    ranged = request(front, hanako, headers=[(b"range", b"bytes=0-9")])         # Flask answers it
    assert ranged.status == 200 and flask_paths == [hanako] * 3 and "date" not in ranged.headers
    head = request(front, hanako, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(len(page.body))
    assert openings() == 5          # every GET: the guardian looked (and Flask's test client once)


def test_a_failed_group_commit_of_an_opening_is_written_by_flask_itself(front, coconet_paths, monkeypatch):
    def fails(writes):
        raise RuntimeError("database is locked")
    monkeypatch.setattr(group_commit, "_run", fails)
    assert request(front, coconet_paths[0]).status == 200
    assert openings() == 1


# --- the access log ---------------------------------------------------------------------------------

def test_the_access_log_has_a_line_per_request_and_no_token(app, front, families, paths, caplog):
    caplog.set_level(logging.INFO, logger="renraku.access")
    taro, hanako = paths
    coconet_link = coconet_path(app, families.taro.id)
    unknown = "/r/AAAAAAAAAAAAAAAAAAAAAA"
    answers = [request(front, taro), *together(front, [hanako, coconet_link, unknown])]
    lines = [line for record in caplog.records if record.name == "renraku.access"
             for line in record.getMessage().split("\n")]
    secrets = [token_of(path) for path in (taro, hanako, coconet_link, unknown)]
    assert len(lines) == 4 and not [line for line in lines if any(secret in line for secret in secrets)]
    shape = re.compile(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /(r|c)/… HTTP/1\.1" (\d{3}) (\d+) "-" "-"\Z')
    logged = sorted((found[1], int(found[2]), int(found[3])) for found in map(shape.match, lines))
    assert logged == sorted((path[1], answer.status, len(answer.body))
                            for path, answer in zip((taro, hanako, coconet_link, unknown), answers))
