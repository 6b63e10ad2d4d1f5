"""Guardian mail: the core renders one MIME message per guardian; the MTA signs and sends it.

Built for blasts. A :class:`MessageTemplate` encodes once per message what every
guardian gets alike (headers, the fixed text, attachments); :meth:`MessageTemplate.render`
fills in one guardian (addresses, greeting, links) with string joins and one base64
pass. :func:`render_deliveries` does a claimed batch: tokens in bulk, then one mail
per guardian and charset.

Charsets: UTF-8 (base64 body, RFC 2047 headers) by default; ISO-2022-JP (7bit, RFC 1468)
for the feature-phone domains in ``[mta] iso2022jp_domains``. A character ISO-2022-JP
lacks becomes the nearest one it has (①→1, ｱ→ア, 髙→高) or 〓, the customary mark:
a phone that needs ISO-2022-JP shows UTF-8 as garbage, so falling back to UTF-8 would
lose the whole message for one character.

Output is wire format: CRLF line ends; headers folded at 78 characters where they
can be; body lines of 76 (base64) or at most ~900 bytes (ISO-2022-JP), never 998.
"""
from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime

import peewee

from appliance import contacts, tokens
from appliance.clock import to_tokyo
from appliance.models import Attachment, Delivery, Guardian, GuardianLink, Message, Recipient, Student

UTF8 = "utf-8"
JIS = "iso-2022-jp"

# What guardians read, in one place (the mail has no translation catalog yet).
TEXT = {
    "emergency": "【緊急】",
    "greeting": "{name} 様",
    "children": "（{names}さんの保護者様）",
    "children_joiner": "さん、",
    "reply": "■このお知らせには返信が必要です。このメールに返信するか、下のリンクのページから返信してください"
             "（写真・PDFは合計1MBまで）。",
    "read": "■下のリンクを押すと学校に「読みました」と伝わります。",
    "footer": "-- \n{school}\nこのメールは送信専用のアドレスから送っています。このメールに返信しても学校には届きません。",
    "footer_reply": "-- \n{school}\nこのメールへの返信は学校に届きます。",
}

_FOLD = 78
_JIS_WIDTH = 200       # characters: at worst 4.5 bytes each in ISO-2022-JP (escapes), so < 998 bytes
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")      # dots anywhere: carriers' addresses
_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_PLAIN_FILENAME = re.compile(r"[A-Za-z0-9._-]{1,60}")
_WORD_LABEL = re.compile(r"=\?([A-Za-z0-9-]+)\?([bBqQ])\?")
# Characters typed on Windows (CP932) whose JIS X 0208 twin has another code point,
# and name kanji outside JIS X 0208 with their everyday form.
_JIS_TWINS = str.maketrans({"～": "〜", "∥": "‖", "－": "−", "￠": "¢", "￡": "£", "￢": "¬", "—": "―",
                            "髙": "高", "﨑": "崎", "德": "徳", "𠮷": "吉", "栁": "柳"})


def charset_for(domain: str, config) -> str:
    """Return the charset for mail to a domain: ISO-2022-JP for [mta] iso2022jp_domains and their subdomains."""
    domain = domain.lower().rstrip(".")
    for listed in config["mta"]["iso2022jp_domains"]:
        listed = listed.lower()
        if domain == listed or domain.endswith("." + listed):
            return JIS
    return UTF8


class MessageTemplate:
    """The parts of one message's mail that every guardian gets alike, encoded once for a charset."""

    def __init__(self, app, message: Message, charset: str = UTF8, attachments: Sequence = ()):
        if charset not in (UTF8, JIS):
            raise ValueError(f"unsupported charset: {charset!r}")
        mail, school = app.config["mail"], message.school
        self.charset = charset
        self.message_id = message.id
        self.domain = mail["domain"]
        self.bounce_domain = app.config["mta"]["bounce_domain"] or self.domain
        # A system mail (appliance/system_mail.py) carries its own link, or none, and no read report.
        self.system = message.kind == "system"
        self.link_scope = link_scope(message)
        self._read_url = tokens.token_url(app, self.link_scope, "") if self.link_scope else ""
        self._unsubscribe_url = tokens.token_url(app, "unsubscribe", "")
        self.emergency = message.priority == "emergency"
        subject = (TEXT["emergency"] if self.emergency else "") + message.subject
        self._from = "From: " + _append(_phrase(mail["from_name"], charset, "From"), f"<noreply@{self.domain}>")
        self._head_mid = "\r\n".join([
            "Subject: " + _words(subject, charset, "Subject"),
            "Date: " + format_datetime(to_tokyo(app.clock.now()))])
        list_id = f"<{re.sub(r'[^a-z0-9-]', '-', school.code.lower())}.{self.domain}>"
        boundary = f"=_renraku_{message.id.replace('-', '')}"
        text_type = f'Content-Type: text/plain; charset="{charset.upper()}"\r\nContent-Transfer-Encoding: ' + (
            "base64" if charset == UTF8 else "7bit")
        self._head_end = "\r\n".join([
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{boundary}"' if attachments else text_type,
            "Auto-Submitted: auto-generated",
            "List-Id: " + _append(_phrase(school.name, charset, "List-Id"), list_id)])
        self._part_head = f"--{boundary}\r\n{text_type}\r\n\r\n".encode() if attachments else b""
        self._part_tail = (b"".join(_attachment_part(boundary, a) for a in attachments)
                           + f"--{boundary}--\r\n".encode()) if attachments else b""
        middle = [message.body, ""]
        if message.reply_needed and not self.system:
            middle += [TEXT["reply"], ""]
        if not self.system:
            middle.append(TEXT["read"])
        self._middle = _crlf("\n".join(middle) + "\n")
        self.takes_replies = bool(message.reply_needed) and not self.system
        footer = TEXT["footer_reply" if self.takes_replies else "footer"]
        self._footer = _crlf(footer.format(school=school.name) + "\n")
        if charset == JIS:
            self._middle_jis, self._footer_jis = _jis_lines(self._middle), _jis_lines(self._footer)

    def render(self, guardian_id: str, guardian_name: str, children: Sequence[str], addresses: Sequence[str],
               read_token: str | None, unsubscribe_token: str | None = None, reply_token: str | None = None) -> bytes:
        """Return one guardian's mail, To all of the given addresses, as wire bytes (CRLF)."""
        head = [self._from]
        if reply_token is not None and self.takes_replies:
            head.append(f"Reply-To: <{reply_address(reply_token, self.bounce_domain)}>")
        if addresses:
            head.append(_fold_list("To", [_mailbox(a) for a in addresses]))
        head += [self._head_mid, f"Message-ID: <{self.message_id}.{guardian_id}@{self.domain}>", self._head_end]
        if unsubscribe_token is not None and not self.emergency and not self.system:
            # RFC 8058 one-click for routine mail only: nobody should stop emergency notices by accident.
            head += [f"List-Unsubscribe: <{self._unsubscribe_url}{unsubscribe_token}>,\r\n"
                     f" <mailto:unsubscribe@{self.bounce_domain}?subject={unsubscribe_token}>",
                     "List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
        greeting = TEXT["greeting"].format(name=guardian_name) + "\n"
        if children:
            greeting += TEXT["children"].format(names=TEXT["children_joiner"].join(children)) + "\n"
        greeting = _crlf(greeting + "\n")
        link = f"{self._read_url}{read_token}\r\n" if read_token else ""
        if self.charset == UTF8:
            body = _base64_lines((greeting + self._middle + link + self._footer).encode())
        else:
            body = _jis_lines(greeting) + self._middle_jis + link.encode("ascii") + self._footer_jis
        return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + self._part_head + body + self._part_tail


def render_guardian_mail(app, message: Message, guardian_id: str, guardian_name: str, children: Sequence[str],
                         addresses: Sequence[str], read_token: str, unsubscribe_token: str | None = None, *,
                         charset: str = UTF8, attachments: Sequence = (), reply_token: str | None = None) -> bytes:
    """Render a single guardian's mail (batches build one MessageTemplate per message instead)."""
    return MessageTemplate(app, message, charset, attachments).render(
        guardian_id, guardian_name, children, addresses, read_token, unsubscribe_token, reply_token)


REPLY_PREFIX = "reply+"


def reply_address(token: str, domain: str) -> str:
    """The address a guardian's mail reply goes to: the reply token, in base32 so that case-folding mailers keep it."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return f"{REPLY_PREFIX}{base64.b32encode(raw).decode().rstrip('=').lower()}@{domain}"


def reply_token(local_part: str) -> str | None:
    """The reply token a reply address's local part carries, or None when it carries none."""
    if not local_part.lower().startswith(REPLY_PREFIX):
        return None
    encoded = local_part[len(REPLY_PREFIX):].upper()
    if len(encoded) != 26 or not encoded.isalnum() or not encoded.isascii():
        return None
    try:
        raw = base64.b32decode(encoded + "======")
    except binascii.Error:
        return None
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class RenderedMail:
    """One guardian's mail and the (delivery id, address) pairs it goes to, an SMTP transaction each."""

    data: bytes
    envelopes: list[tuple[str, str]]


def render_deliveries(app, deliveries: Iterable[Delivery]) -> list[RenderedMail]:
    """Render claimed email deliveries: tokens in bulk, one mail per guardian, message and charset."""
    deliveries = list(deliveries)
    if not deliveries:
        return []
    guardians = {recipient_id: (guardian_id, name) for recipient_id, guardian_id, name
                 in Recipient.select(Recipient.id, Guardian.id, Guardian.name).join(Guardian)
                 .where(Recipient.id.in_(list({d.recipient_id for d in deliveries}))).tuples()}
    addresses = contacts.open_for_delivery(app, [d.contact_id for d in deliveries])
    groups: dict[tuple[str, str, str], list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        address = addresses[delivery.contact_id]
        charset = charset_for(address.rpartition("@")[2], app.config)
        groups[(delivery.message_id, delivery.recipient_id, charset)].append(delivery)
    messages = {d.message_id: d.message for d in deliveries}
    pairs = list(dict.fromkeys((guardians[recipient_id][0], message_id) for message_id, recipient_id, _ in groups))
    links: dict[tuple[str, str], str] = {}
    for scope in {link_scope(m) for m in messages.values()} - {None}:
        links.update(tokens.issue_tokens(app, scope, [p for p in pairs if link_scope(messages[p[1]]) == scope]))
    unsubscribe = tokens.issue_tokens(app, "unsubscribe", [p for p in pairs if messages[p[1]].priority != "emergency"
                                                           and messages[p[1]].kind != "system"])
    replies = tokens.issue_tokens(app, "reply", [p for p in pairs if messages[p[1]].reply_needed
                                                 and messages[p[1]].kind != "system"])
    children = {message_id: _children_by_guardian(message, [g for g, m in pairs if m == message_id])
                for message_id, message in messages.items()}
    templates: dict[tuple[str, str], MessageTemplate] = {}
    mails = []
    for (message_id, recipient_id, charset), group in groups.items():
        if (message_id, charset) not in templates:
            attachments = list(Attachment.select().where(Attachment.message == message_id).order_by(Attachment.id))
            templates[(message_id, charset)] = MessageTemplate(app, messages[message_id], charset, attachments)
        guardian_id, name = guardians[recipient_id]
        envelopes = [(d.id, addresses[d.contact_id]) for d in group]
        data = templates[(message_id, charset)].render(
            guardian_id, name, children[message_id].get(guardian_id, []), [a for _, a in envelopes],
            links.get((guardian_id, message_id)), unsubscribe.get((guardian_id, message_id)),
            replies.get((guardian_id, message_id)))
        mails.append(RenderedMail(data, envelopes))
    return mails


def link_scope(message: Message) -> str | None:
    """The token scope of the link a message's mail carries: the read report, or a system mail's own."""
    return message.link_scope if message.kind == "system" else "read"


def _children_by_guardian(message: Message, guardian_ids: list[str]) -> dict[str, list[str]]:
    # CROSS JOIN pins the order: from the batch's guardians to their students. Left to
    # itself SQLite walks every enrolled student of the school, once per batch.
    rows = (GuardianLink.select(GuardianLink.guardian, Student.name).join(Student, peewee.JOIN.CROSS)
            .where(GuardianLink.guardian.in_(guardian_ids) & (GuardianLink.status == "approved")
                   & (Student.id == GuardianLink.student) & (Student.school == message.school_id)
                   & (Student.status == "enrolled"))
            .order_by(Student.grade.desc()).tuples())
    children: dict[str, list[str]] = defaultdict(list)
    for guardian_id, name in rows:
        children[guardian_id].append(name)
    return children


def _base64_lines(data: bytes) -> bytes:
    """Base64 in CRLF lines of 76 characters (binascii and slices: a quarter faster than encodebytes)."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([encoded[i:i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _words(text: str, charset: str, header_name: str) -> str:
    """A header value as folded RFC 2047 encoded words (printable ASCII stays as it is)."""
    if text.isascii() and text.isprintable():
        return Header(text, "us-ascii", header_name=header_name).encode(linesep="\r\n")
    if charset == JIS:
        text = _jis_safe(text)
    encoded = Header(text, charset, header_name=header_name).encode(linesep="\r\n", maxlinelen=_FOLD)
    # =?ISO-2022-JP?B?...?= as Japanese mailers write it; some old phones only know that spelling.
    return _WORD_LABEL.sub(lambda m: f"=?{m[1].upper()}?{m[2].upper()}?", encoded)


def _phrase(text: str, charset: str, header_name: str) -> str:
    """A display name: atoms as they are, other ASCII quoted, anything else encoded words."""
    if _PHRASE.fullmatch(text):
        return text
    if text.isascii() and text.isprintable():
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _words(text, charset, header_name)


def _append(value: str, piece: str) -> str:
    """Append a piece after a space, folding first if the line would pass 78 characters."""
    last = value.rpartition("\r\n")[2]
    return value + ("\r\n " if len(last) + 1 + len(piece) > _FOLD else " ") + piece


def _fold_list(name: str, items: list[str]) -> str:
    line, lines = f"{name}: {items[0]}", []
    for item in items[1:]:
        if len(line) + 2 + len(item) > _FOLD:
            lines.append(line + ",")
            line = " " + item
        else:
            line += ", " + item
    return "\r\n".join(lines + [line])


def _mailbox(address: str) -> str:
    """An address as a header writes it: carriers' dotted local parts as they are, others quoted."""
    local, _, domain = address.rpartition("@")
    if _ATEXT.fullmatch(local):
        return address
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"@' + domain


def _jis_safe(text: str) -> str:
    """Text ISO-2022-JP can encode: twins swapped, then NFKC, then 〓 for what is still missing."""
    try:
        text.encode(JIS)
        return text
    except UnicodeEncodeError:
        text = text.translate(_JIS_TWINS)
    return "".join(ch if _encodes(ch) else _nearest(ch) for ch in text)


def _encodes(text: str) -> bool:
    try:
        text.encode(JIS)
        return True
    except UnicodeEncodeError:
        return False


def _nearest(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch)
    return folded if _encodes(folded) else "〓"


def _jis_lines(text: str) -> bytes:
    """CRLF text as ISO-2022-JP 7bit lines, each back in ASCII at its end and far below 998 bytes."""
    lines = _jis_safe(text).split("\r\n")
    return b"\r\n".join(chunk.encode(JIS) for line in lines for chunk in _wrap(line))


def _wrap(line: str) -> list[str]:
    """Split a long line, after 。、 or a space in its second half where there is one."""
    chunks = []
    while len(line) > _JIS_WIDTH:
        cut = max(line.rfind(mark, _JIS_WIDTH // 2, _JIS_WIDTH) for mark in "。、 ") + 1 or _JIS_WIDTH
        chunks.append(line[:cut])
        line = line[cut:]
    chunks.append(line)
    return chunks


def _attachment_part(boundary: str, attachment) -> bytes:
    content_type = attachment.content_type if _MIME_TYPE.fullmatch(attachment.content_type or "") \
        else "application/octet-stream"
    head = (f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Disposition: attachment;{_filename(attachment.filename)}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    return head.encode("ascii") + _base64_lines(bytes(attachment.data))


def _filename(name: str) -> str:
    """The filename parameter: plain when it is short ASCII, else RFC 2231 UTF-8 in continuations."""
    if _PLAIN_FILENAME.fullmatch(name):
        return f' filename="{name}"'
    chunks = [""]
    for ch in name:      # whole characters per segment: some clients decode segments one by one
        quoted = urllib.parse.quote(ch, safe="")
        if len(chunks[-1]) + len(quoted) > 50:
            chunks.append("")
        chunks[-1] += quoted
    chunks[0] = "utf-8''" + chunks[0]
    if len(chunks) == 1:
        return f"\r\n filename*={chunks[0]}"
    return ";".join(f"\r\n filename*{i}*={chunk}" for i, chunk in enumerate(chunks))
