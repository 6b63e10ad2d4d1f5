"""Guardians' free replies to a message, with files: from the message page now, by mail later (issue 7).

A reply and its files are facts: written once, never changed, at whichever site took
them. :func:`record_reply` is the one way in for both paths: the web page passes
``via="web"``; the inbound MTA will pass ``via="mail"`` with the mail's
Authentication-Results, after matching the reply to the message and guardian by its
reply token (never by the From header alone). Either way the guardian must be one of
the message's recipients.

Files: images and PDF only, 1 MB together, the type read from the content (never the
name or the claimed type); the name is cleaned and given the extension of what the
content is. They are stored in the database, outside any web root, and served only
through a scoped link with safe headers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance import attachments, db
from appliance.errors import InvalidInput, NotFound
from appliance.models import Guardian, Message, Recipient, Reply, ReplyFile
from appliance.models.reply import REPLY_VIA

MAX_BODY = 2000                  # characters
MAX_FILES_BYTES = 1024 * 1024    # all files of one reply together
MAX_FILES = 3
FILE_TYPES = ("image/jpeg", "image/png", "image/gif", "application/pdf")


@dataclass(frozen=True)
class ReplyView:
    """A reply as its guardian or the school sees it: the text, when, how, and its files (no bytes)."""

    reply: Reply
    guardian_name: str
    files: list[ReplyFile]


def check_files(files: Sequence[tuple[str, bytes]]) -> list[attachments.CheckedFile]:
    """Check (filename, bytes) uploads: images and PDF by content, at most MAX_FILES_BYTES together."""
    files = [(name, data) for name, data in files if data]
    if len(files) > MAX_FILES:
        raise InvalidInput(f"ファイルは{MAX_FILES}個までです")
    total = sum(len(data) for _, data in files)
    if total > MAX_FILES_BYTES:
        raise InvalidInput(f"ファイルは合計{attachments.format_size(MAX_FILES_BYTES)}までです"
                           f"（{attachments.format_size(total)}あります）")
    checked = []
    for filename, data in files:
        name = attachments.clean_filename(filename)
        content_type = attachments.detect_type(data)
        if content_type not in FILE_TYPES:
            raise InvalidInput(f"「{name}」は送れない種類のファイルです（送れるのは写真（JPEG, PNG, GIF）とPDF）")
        extensions = attachments.KINDS[content_type]
        stem, dot, extension = name.rpartition(".")
        if not dot or extension.lower() not in extensions:
            name = f"{name}.{extensions[0]}"     # what the content is, whatever the name said
        checked.append(attachments.CheckedFile(name, content_type, data))
    return checked


def record_reply(app, message_id: str, guardian_id: str, body: str, files: Sequence[tuple[str, bytes]] = (), *,
                 via: str = "web", auth_results: str = "") -> Reply:
    """Record a guardian's reply (text and/or files) to a message they received; everything checked first."""
    if via not in REPLY_VIA:
        raise ValueError(f"unknown reply path: {via!r}")
    body = body.replace("\r\n", "\n").strip()
    if len(body) > MAX_BODY:
        raise InvalidInput(f"返信は{MAX_BODY}文字までです（{len(body)}文字）")
    checked = check_files(files)
    if not body and not checked:
        raise InvalidInput("返信の本文かファイルを入れてください")
    if not Recipient.select().where((Recipient.message == message_id) & (Recipient.guardian == guardian_id)).exists():
        raise NotFound("このリンクは無効か、有効期限が切れています。")
    with db.write():
        reply = Reply.create(message=message_id, guardian=guardian_id, body=body, via=via,
                             auth_results=auth_results[:2000], site=app.site, at=app.clock.now())
        for file in checked:
            ReplyFile.create(reply=reply, filename=file.filename, content_type=file.content_type, size=file.size,
                             data=file.data)
    return reply


def _views(replies: list[Reply]) -> list[ReplyView]:
    files: dict[str, list[ReplyFile]] = {r.id: [] for r in replies}
    for file in (ReplyFile.select(ReplyFile.id, ReplyFile.reply, ReplyFile.filename, ReplyFile.content_type,
                                  ReplyFile.size)
                 .where(ReplyFile.reply.in_(list(files))).order_by(ReplyFile.id)):
        files[file.reply_id].append(file)
    return [ReplyView(r, r.guardian.name, files[r.id]) for r in replies]


def guardian_replies(message_id: str, guardian_id: str) -> list[ReplyView]:
    """Return one guardian's replies to a message, oldest first (their own only)."""
    return _views(list(Reply.select(Reply, Guardian).join(Guardian)
                       .where((Reply.message == message_id) & (Reply.guardian == guardian_id))
                       .order_by(Reply.at, Reply.id)))


def message_replies(message: Message, *, limit: int = 200) -> list[ReplyView]:
    """Return the replies to a message, newest first, for the school (names and text, never an address)."""
    return _views(list(Reply.select(Reply, Guardian).join(Guardian).where(Reply.message == message.id)
                       .order_by(Reply.at.desc(), Reply.id.desc()).limit(limit)))


def get_file(message_id: str, file_id: str, guardian_id: str | None = None) -> ReplyFile:
    """Return a reply's file of this message (and of this guardian, when given), or raise NotFound."""
    query = (ReplyFile.select(ReplyFile, Reply).join(Reply)
             .where((ReplyFile.id == file_id) & (Reply.message == message_id)))
    if guardian_id is not None:
        query = query.where(Reply.guardian == guardian_id)
    found = query.first()
    if found is None:
        raise NotFound("ファイルが見つかりません")
    return found
