"""The message page at ``/r/<token>``: one tap records the read report and shows the message.

The same page takes the survey's answers (changeable until the survey closes) and a
free reply with files (1 MB in total, images and PDF, size-capped while the upload
streams in). The token grants one guardian and one message: answers, replies and
files shown are always that guardian's own, and attachments that message's own.
"""
from __future__ import annotations

import json
from dataclasses import replace

from flask import abort, current_app, g, make_response, redirect, request, url_for

from appliance import message_page, receipts, replies, surveys
from appliance.errors import InvalidInput
from appliance.message_page import MessagePage
from appliance.models import Attachment
from webui import capability
from webui.access import PUBLIC, access
from webui.downloads import file_response
from webui.guardian import bp
from webui.group_commit import before_answer
from webui.i18n import render_in
from webui.skeleton import Ready, Skeleton

FORM_PURPOSE = "message-form"
# The reply form: its files (replies.MAX_FILES_BYTES) and the text, multipart overhead aside.
MAX_REPLY_REQUEST = replies.MAX_FILES_BYTES + 64 * 1024


def _load(token: str) -> MessagePage:
    grant = capability.resolve(token, "read")          # InvalidToken: one 404 for every reason
    return _page_of(grant.message_id, grant.guardian_id)


def _page_of(message_id: str, guardian_id: str) -> MessagePage:
    page = message_page.load(message_id, guardian_id)
    if page is None:
        abort(404)
    return page


def _html(token: str, form_token: str, page: MessagePage, *, errors=None, sent=None, reply_error: str = "",
          reply_body: str = "", notice: str = "") -> str:
    # A burst of first taps is mostly messages without a survey or replies: nothing read for them.
    questions = surveys.questions_of(page.id) if page.has_survey else []
    answers = surveys.current_answers(page.id, page.guardian_id) if questions else {}
    if sent is not None:        # a refused submission shows what was typed, not what was stored
        chosen = {q.id: sent.get(surveys.field_name(q), []) for q in questions}
    else:
        chosen = {q.id: ([] if q.id not in answers else answers[q.id].value if isinstance(answers[q.id].value, list)
                         else [answers[q.id].value]) for q in questions}
    return render_in(
        page.locale, "guardian/message.html", token=token, message=page, form_token=form_token,
        attachments=message_page.attachment_links(page),
        questions=questions, options={q.id: json.loads(q.options) for q in questions}, chosen=chosen,
        answers=answers, errors=errors or {}, survey_open=surveys.is_open(g.appliance, page.expires_at),
        field_name=surveys.field_name,
        replies=replies.guardian_replies(page.id, page.guardian_id) if page.has_replies else [],
        reply_error=reply_error, reply_body=reply_body, notice=notice, max_text=surveys.MAX_TEXT,
        max_reply=replies.MAX_BODY)


def _page(token: str, page: MessagePage, *, status: int = 200, **shown):
    html = _html(token, capability.form_token(FORM_PURPOSE, token), page, **shown)
    return capability.private_headers(make_response(html, status), page.locale)


# --- the page of a first tap, kept ready (webui/skeleton.py) -------------------------------------

def _ready_key(tap: message_page.Tap) -> tuple:
    return tap.message_id, tap.sent, tap.locale, tap.open


def front_answer(flask_app, token: str) -> Ready | None:
    """What the front answers a tap with, without Flask: the page kept ready, its read report to commit first.

    None for anything else about the tap (an unknown or expired link, a guardian who answered or replied, a
    page not kept yet): Flask decides and renders it.
    """
    appliance = flask_app.extensions["appliance"]
    tap = message_page.tap(appliance, token)
    if tap is None or tap.personal:
        return None
    body = ready_page(flask_app, tap, token)
    if body is None:
        return None
    return Ready(body, tap.locale, [] if tap.read else [(receipts.insert_reads, receipts.read_rows(
        appliance, tap.message_id, tap.guardian_id))])


def ready_page(flask_app, tap: message_page.Tap, token: str) -> bytes | None:
    """The page of a tap that shows nothing the guardian sent, from the skeleton kept for it (None: none yet)."""
    skeleton = flask_app.extensions["ready_pages"].get(_ready_key(tap))
    return None if skeleton is None else _fill(flask_app, skeleton, tap, token)


def _fill(flask_app, skeleton: Skeleton, tap: message_page.Tap, token: str) -> bytes:
    return skeleton.fill({"name": tap.guardian_name, "token": token,
                          "form_token": capability.form_token(FORM_PURPOSE, token, flask_app)})


def _keep_ready(tap: message_page.Tap) -> Skeleton:
    """The skeleton kept for the tap's page, rendered and kept first if there is none."""
    def render(marker: dict[str, str]) -> str:
        page = _page_of(tap.message_id, tap.guardian_id)
        return _html(marker["token"], marker["form_token"], replace(page, guardian_name=marker["name"]))
    return current_app.extensions["ready_pages"].kept(_ready_key(tap), render, ("name", "token", "form_token"))


@bp.get("/r/<token>")
@access(PUBLIC)
def message_show(token: str):
    """The read-report link: record the read (once), then show the message."""
    tap = message_page.tap(g.appliance, token)
    if tap is None or capability.over_limit():
        capability.refuse(token, "read")
    if not tap.read and request.method == "GET":     # a HEAD (a link checker) reads nothing
        before_answer(receipts.insert_reads, receipts.read_rows(g.appliance, tap.message_id, tap.guardian_id))
    notice = {"answers": "answers", "reply": "reply"}.get(request.args.get("saved", ""), "")
    if tap.personal or notice:
        return _page(token, _page_of(tap.message_id, tap.guardian_id), notice=notice)
    body = _fill(current_app, _keep_ready(tap), tap, token)
    return capability.private_headers(make_response(body), tap.locale)


@bp.post("/r/<token>/answers")
@capability.checks_form_token
@access(PUBLIC)
def answer_create(token: str):
    """Record the survey's answers (only those that changed), then show the page again."""
    page = _load(token)
    capability.check_form_token(FORM_PURPOSE, token)
    form = request.form.to_dict(flat=False)
    try:
        surveys.record_answers(g.appliance, page.id, page.guardian_id, form)
    except surveys.AnswerErrors as refused:
        return _page(token, page, status=400, errors=refused.errors, sent=form)
    except InvalidInput as refused:
        return _page(token, page, status=400, errors={"": str(refused)}, sent=form)
    return redirect(url_for("guardian.message_show", token=token, saved="answers", _anchor="survey"), 303)


@bp.post("/r/<token>/replies")
@capability.checks_form_token
@access(PUBLIC)
def reply_create(token: str):
    """Record a free reply with optional files (refused while streaming past the size limit)."""
    # Before the body is read: a declared length over the limit is refused unread, and a
    # body without one (chunked) is cut off by werkzeug as soon as it passes the limit.
    request.max_content_length = MAX_REPLY_REQUEST
    if (request.content_length or 0) > MAX_REPLY_REQUEST:
        abort(413)
    page = _load(token)
    capability.check_form_token(FORM_PURPOSE, token)
    body = request.form.get("body", "")
    files = [(f.filename or "", f.read(replies.MAX_FILES_BYTES + 1)) for f in request.files.getlist("file")]
    try:
        replies.record_reply(g.appliance, page.id, page.guardian_id, body, files, via="web")
    except InvalidInput as refused:
        return _page(token, page, status=400, reply_error=str(refused), reply_body=body)
    return redirect(url_for("guardian.message_show", token=token, saved="reply", _anchor="reply"), 303)


@bp.get("/r/<token>/a/<attachment_id>")
@access(PUBLIC)
def attachment_show(token: str, attachment_id: str):
    """Download one of the message's attachments."""
    page = _load(token)
    attachment = Attachment.get_or_none((Attachment.id == attachment_id) & (Attachment.message == page.id))
    if attachment is None:
        abort(404)
    return file_response(bytes(attachment.data), attachment.filename, attachment.content_type)


@bp.get("/r/<token>/f/<file_id>")
@access(PUBLIC)
def reply_file_show(token: str, file_id: str):
    """Download a file the guardian sent with a reply (their own only)."""
    page = _load(token)
    file = replies.get_file(page.id, file_id, page.guardian_id)
    return file_response(bytes(file.data), file.filename, file.content_type)
