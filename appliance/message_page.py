"""What one guardian's message link (``/r/``) shows of one message, read in plain SQL.

Every guardian of a school may tap the link within the same minute, while the mail is
still going out, so a tap starts with one statement (:func:`tap`): the token's grant,
the guardian, and whether this guardian has read, answered or replied. A guardian who
has done none of these sees the message's page as every such guardian of the message
does, but for their name and link, which the web UI keeps ready (webui/skeleton.py).
Otherwise :func:`load` reads the message, its school, the guardian and whether there is
a survey, an attachment or a reply of this guardian; those are read only then.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from appliance import db, tokens
from appliance.models import Message

_PAGE = (
    "SELECT sc.name, m.subject, m.body, m.priority, m.send_at, m.expires_at, m.reply_needed, g.name, g.locale,"
    " EXISTS (SELECT 1 FROM survey_question q WHERE q.message_id = m.id),"
    " EXISTS (SELECT 1 FROM attachment a WHERE a.message_id = m.id),"
    " EXISTS (SELECT 1 FROM reply r WHERE r.message_id = m.id AND r.guardian_id = g.id)"
    " FROM message m JOIN school sc ON sc.id = m.school_id JOIN guardian g ON g.id = {p}"
    " WHERE m.id = {p} AND m.kind = 'notice'")
_TAP = (
    "SELECT g.id, g.name, g.locale, m.id, m.send_at, m.expires_at IS NULL OR m.expires_at > {p},"
    " EXISTS (SELECT 1 FROM receipt r WHERE r.message_id = m.id AND r.guardian_id = g.id),"
    " EXISTS (SELECT 1 FROM survey_answer a WHERE a.message_id = m.id AND a.guardian_id = g.id)"
    " OR EXISTS (SELECT 1 FROM reply r WHERE r.message_id = m.id AND r.guardian_id = g.id)"
    " FROM capability_token t JOIN guardian g ON g.id = t.guardian_id JOIN message m ON m.id = t.message_id"
    " WHERE t.token_hash = {p} AND t.scope = 'read' AND t.expires_at > {p} AND m.kind = 'notice'")
_ATTACHMENTS = "SELECT id, filename, size FROM attachment WHERE message_id = {p} ORDER BY id"
_utc = Message.send_at.python_value


@dataclass(frozen=True)
class MessagePage:
    """A notice as one guardian's link shows it."""

    id: str                 # the message's
    school_name: str
    subject: str
    body: str
    priority: str
    send_at: datetime
    expires_at: datetime | None
    reply_needed: bool
    guardian_id: str
    guardian_name: str
    locale: str
    has_survey: bool
    has_attachments: bool
    has_replies: bool       # this guardian's replies


@dataclass(frozen=True)
class Tap:
    """A valid read link of a notice, tapped: whose, which message, and what the guardian did with it."""

    guardian_id: str
    guardian_name: str
    locale: str
    message_id: str
    sent: str               # the message's send time as stored: a page kept ready is for this one
    open: bool              # not expired yet: its survey takes answers
    read: bool              # reported before
    personal: bool          # answered its survey or replied: the page shows what they sent


@dataclass(frozen=True)
class AttachmentLink:
    """An attachment as the page lists it (its bytes are read only when downloaded)."""

    id: str
    filename: str
    size: int


def load(message_id: str, guardian_id: str) -> MessagePage | None:
    """Return the page of a notice for a guardian, or None if either is gone."""
    found = db.fetch(_PAGE, (guardian_id, message_id))
    if not found:
        return None
    school, subject, body, priority, send_at, expires_at, reply_needed, name, locale, survey, attached, replied = found[0]
    return MessagePage(message_id, school, subject, body, priority, _utc(send_at), _utc(expires_at),
                       bool(reply_needed), guardian_id, name, locale, bool(survey), bool(attached), bool(replied))


def tap(app, token: str) -> Tap | None:
    """Return the tap of a valid read link of a notice, or None (:func:`tokens.resolve_token` tells why)."""
    if not tokens.well_formed(token):
        return None
    now = Message.expires_at.db_value(app.clock.now())     # times compare as stored
    found = db.fetch(_TAP, (now, tokens.digest(token), now))
    if not found:
        return None
    guardian_id, name, locale, message_id, sent, still_open, read, personal = found[0]
    return Tap(guardian_id, name, locale, message_id, sent, bool(still_open), bool(read), bool(personal))


def attachment_links(page: MessagePage) -> list[AttachmentLink]:
    """Return the message's attachments, in the order they were added."""
    if not page.has_attachments:
        return []
    return [AttachmentLink(*row) for row in db.fetch(_ATTACHMENTS, (page.id,))]
