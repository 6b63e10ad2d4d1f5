"""Reading mail that comes in: tolerant MIME parsing with limits, text in whatever charset it claims.

Inbound mail is written by every kind of software, some of it broken or hostile, so
nothing here raises on bad input except :class:`MailRefused` for what the appliance
will not take (headers too large, too many parts). The parser is the standard
library's ``compat32`` one: it keeps going over defects instead of failing, and does
not run the newer policy's heavy header parsing on attacker-sized headers.

Charsets: Japanese phones and mailers declare ISO-2022-JP while writing its
extensions (NEC and IBM characters), or Shift_JIS while writing CP932; the
supersets are used for decoding, and undeclared or unknown charsets are tried in
turn, the last with replacement characters.
"""
from __future__ import annotations

import email
import html
import re
from collections.abc import Iterator
from email import policy
from email.header import Header, decode_header
from email.message import Message

from appliance.errors import InvalidInput

MAX_HEADER_BYTES = 64 * 1024     # the whole header block of any one part
MAX_PARTS = 50
MAX_DEPTH = 8

# Declared charset -> the superset actually decoded with.
_SUPERSETS = {"iso-2022-jp": "renraku-cp50220", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
              "x-sjis": "cp932", "windows-31j": "cp932", "euc-jp": "euc_jis_2004", "us-ascii": "utf-8",
              "ascii": "utf-8", "iso-8859-1": "cp1252"}
_GUESSES = ("utf-8", "renraku-cp50220", "cp932", "euc_jis_2004")
_JIS_ESCAPES = {b"\x1b$B": "jis", b"\x1b$@": "jis", b"\x1b(B": "ascii", b"\x1b(J": "ascii", b"\x1b(I": "kana"}
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.I | re.S)
_BLANK_LINES = re.compile(r"\n{3,}")


class MailRefused(InvalidInput):
    """Mail the appliance will not take; ``reason`` picks the SMTP reply (mta/inbound.py), the text is for the sender.

    Reasons: ``recipient`` (no such address here), ``relay`` (not our domain),
    ``size`` (too big), ``content`` (what the mail carries), ``policy`` (who or how it
    was sent), ``rate`` (too many tries; a temporary answer), ``unsubscribe``
    (no valid unsubscribe token in the Subject).
    """

    def __init__(self, reason: str, text: str):
        super().__init__(text)
        self.reason = reason


def parse(raw: bytes) -> Message:
    """Parse a mail after checking its header blocks and its MIME tree against the limits."""
    _check_header_block(raw)
    message = email.message_from_bytes(raw, policy=policy.compat32)
    count = 0
    for part, depth in _walk(message, 0):
        count += 1
        if count > MAX_PARTS or depth > MAX_DEPTH:
            raise MailRefused("content", f"メールの構造が複雑すぎます（パーツは{MAX_PARTS}個まで）")
        if part is not message and sum(len(k) + len(str(v)) for k, v in part.items()) > MAX_HEADER_BYTES:
            raise MailRefused("content", "メールのヘッダーが大きすぎます")
    return message


def _check_header_block(raw: bytes) -> None:
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    if (end if end >= 0 else len(raw)) > MAX_HEADER_BYTES:
        raise MailRefused("content", "メールのヘッダーが大きすぎます")


def _walk(part: Message, depth: int) -> Iterator[tuple[Message, int]]:
    yield part, depth
    payload = part.get_payload()
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                yield from _walk(child, depth + 1)


def parts(message: Message) -> Iterator[Message]:
    """Every leaf part (and every message/delivery-status part whole), depth first."""
    for part, _ in _walk(message, 0):
        if part.get_content_type() == "message/delivery-status" or not part.is_multipart():
            yield part


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes as text in the declared charset (its superset), else the usual Japanese ones, never raising."""
    tried = []
    if charset:
        tried.append(_SUPERSETS.get(charset.strip().lower(), charset.strip().lower()))
    for codec in [*tried, *_GUESSES]:
        try:
            return _cp50220(data) if codec == "renraku-cp50220" else data.decode(codec)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("utf-8", errors="replace")


def _cp50220(data: bytes) -> str:
    """ISO-2022-JP as Windows and phones write it (NEC and IBM characters such as ① and ㈱), through CP932."""
    if any(byte > 0x7F for byte in data):
        raise ValueError("not 7-bit")
    out, mode, i = bytearray(), "ascii", 0
    while i < len(data):
        escape = _JIS_ESCAPES.get(data[i:i + 3])
        if escape:
            mode, i = escape, i + 3
        elif data[i] in (0x0A, 0x0D) or mode == "ascii":
            out.append(data[i])
            i += 1
        elif mode == "kana":
            out.append(data[i] + 0x80)
            i += 1
        else:
            if i + 1 >= len(data):
                raise ValueError("truncated")
            j1, j2 = data[i], data[i + 1]
            s1 = (j1 + 1) // 2 + 0x70
            s1 += 0x40 if s1 >= 0xA0 else 0
            s2 = j2 + (0x1F if j1 % 2 else 0x7E)
            s2 += 1 if j1 % 2 and s2 >= 0x7F else 0
            out += bytes((s1, s2))
            i += 2
    return out.decode("cp932")


def part_text(part: Message) -> str:
    """A text part's content as str (transfer encoding undone, charset decoded); HTML reduced to text."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
    text = decode_text(data, part.get_content_charset()).replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_type() == "text/html":
        text = _BLANK_LINES.sub("\n\n", html.unescape(_TAG.sub("", re.sub(r"(?i)<br\s*/?>|</p>", "\n", text))))
    return text


def header_text(message: Message, name: str) -> str:
    """A header's value with RFC 2047 words decoded (charsets as in decode_text), or ''."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        # A header in raw 8-bit (SMTPUTF8 mailers, careless ones) comes as a Header whose chunks
        # keep their bytes: decoded like text, not through str(), which makes them U+FFFD.
        chunks = decode_header(value if isinstance(value, Header) else str(value))
    except (ValueError, AssertionError):      # the standard library's own asserts on broken words
        return str(value)
    return "".join(decode_text(chunk, charset) if isinstance(chunk, bytes) else chunk
                   for chunk, charset in chunks)


def filename(part: Message) -> str:
    """A part's file name (RFC 2231 or RFC 2047 spelt), or ''."""
    try:
        name = part.get_filename() or ""
    except (ValueError, LookupError, AssertionError):
        return ""
    if "=?" in name:
        chunks = decode_header(name)
        name = "".join(decode_text(c, cs) if isinstance(c, bytes) else c for c, cs in chunks)
    return name
