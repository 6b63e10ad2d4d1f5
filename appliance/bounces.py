"""Bounces: what a returned mail says about the delivery its VERP address names.

Standard bounces are RFC 3464 delivery status notifications (a multipart/report with
a message/delivery-status part: Final-Recipient, Action, Status, Diagnostic-Code per
recipient): Postfix, Gmail, Exchange and most others. Some senders write only prose:
the Japanese carriers' own mail systems (docomo, au/KDDI, SoftBank), old sendmail
and qmail. For those the text is read for the status code and the usual phrases,
in English and Japanese. Which delivery failed never comes from the text: the
envelope recipient (``b-<delivery id>@``) says it, so a report only has to tell
failed from delayed and give a reason.

Auto-replies (vacation notices) also come to the VERP address; they are not bounces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from appliance import mime

PERMANENT, DELAYED = "failed", "delayed"

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?:^|[\s(#:\[\"])([45][0-5]\d)[\s-]", re.M)
_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-!#$&'*/=?^`{|}~]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mdaemon|mail delivery)", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status notification|failure|has failed)|failure notice|"
    r"mail delivery failed|mail system error|non.?delivery|配信(失敗|不能|エラー|できません)|不達|送信エラー|"
    r"エラーメール|返送|宛先不明", re.I)
_AUTO_REPLY = re.compile(r"out of (the )?office|auto.?reply|autoreply|vacation|不在|自動(返信|応答)", re.I)
_DELAY_WORDS = re.compile(r"delay|will (continue|retry|keep trying)|not yet been delivered|遅延|再送を試み|配信を試みています",
                          re.I)
# Phrases -> the status they stand for, most specific first.
_REASONS = [
    (re.compile(r"user unknown|unknown user|no such (user|mailbox)|does not exist|not found|"
                r"recipient (address )?rejected|invalid (mailbox|recipient)|address not found|"
                r"存在しません|見つかりません|宛先不明|アドレスが(存在|見つから|誤)", re.I), "5.1.1"),
    (re.compile(r"mailbox (is )?full|over ?quota|quota exceeded|insufficient (storage|space)|容量|満杯|いっぱい",
                re.I), "5.2.2"),
    (re.compile(r"reject|refused|blocked|denied|spam|filter|受信拒否|拒否|迷惑メール", re.I), "5.7.1"),
    (re.compile(r"could not be delivered|permanent(ly)? (fatal )?error|delivery (has )?failed|"
                r"配信(でき|され)ませんでした|届けられませんでした|送信できませんでした", re.I), "5.0.0"),
]


@dataclass(frozen=True)
class BounceReport:
    """One recipient's part of a bounce."""

    action: str          # failed, delayed (also delivered, relayed, expanded in DSNs)
    status: str          # an RFC 3463 status such as "5.1.1", or ""
    recipient: str = ""  # the address it is about, when it says
    diagnostic: str = ""

    @property
    def failed(self) -> bool:
        """Whether the mail did not get through and will not (the remote side gave up)."""
        return self.action == PERMANENT


def parse_bounce(raw: bytes, envelope_from: str = "") -> list[BounceReport]:
    """Return what a mail reports about deliveries: [] when it is not a bounce (an auto-reply, anything else)."""
    message = mime.parse(raw)
    reports = [report for part in mime.parts(message) if part.get_content_type() == "message/delivery-status"
               for report in _dsn_reports(part)]
    if reports:
        return reports
    return _prose_reports(message, envelope_from)


def _dsn_reports(part: Message) -> list[BounceReport]:
    reports = []
    for fields in _dsn_blocks(part)[1:]:      # the first block is about the message, the rest a recipient each
        action = fields.get("action", "").strip().lower()
        status = _STATUS.search(fields.get("status", ""))
        diagnostic = fields.get("diagnostic-code", "").partition(";")[2].strip() or fields.get("diagnostic-code", "")
        recipient = (fields.get("final-recipient") or fields.get("original-recipient") or "").partition(";")[2]
        if not action and status:
            action = PERMANENT if status[1] == "5" else DELAYED if status[1] == "4" else "delivered"
        if action:
            reports.append(BounceReport(action, status[0] if status else "", recipient.strip().strip("<>"),
                                        " ".join(diagnostic.split())[:500]))
    return reports


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    """The DSN's field blocks as dicts (lower-case names), from the parsed blocks or the raw text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [{k.lower(): " ".join(str(v).split()) for k, v in block.items()} for block in payload
                if isinstance(block, Message)]
    text = mime.part_text(part) if isinstance(payload, str) else ""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        name = ""
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and name:
                fields[name] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                fields[name] = value.strip()
        blocks.append(fields)
    return blocks


def _prose_reports(message: Message, envelope_from: str) -> list[BounceReport]:
    subject = mime.header_text(message, "Subject")
    sender = mime.header_text(message, "From")
    from_daemon = any(_DAEMONS.match(name) for name in _names(sender))
    auto = (message.get("Auto-Submitted", "").strip().lower().startswith("auto-replied")
            or bool(_AUTO_REPLY.search(subject)))
    if auto and not _BOUNCE_SUBJECT.search(subject):
        return []
    if not (envelope_from == "" or from_daemon or _BOUNCE_SUBJECT.search(subject)):
        return []
    text = "\n".join(mime.part_text(p) for p in mime.parts(message)
                     if p.get_content_maintype() == "text" and not mime.filename(p))
    text = text[:20000]
    status = _STATUS.search(text)
    code = _SMTP_CODE.search(text)
    pattern, reason = next(((p, value) for p, value in _REASONS if p.search(text) or p.search(subject)),
                           (_REASONS[-1][0], ""))
    if status and status[1] == "2":
        return []
    if _DELAY_WORDS.search(subject + "\n" + text) and not (status and status[1] == "5") and reason != "5.1.1":
        return [BounceReport(DELAYED, status[0] if status else "4.0.0", "", _line_near(text, _DELAY_WORDS))]
    if status:
        action = PERMANENT
        found = status[0]
    elif code:
        action, found = PERMANENT, (f"{code[1][0]}.0.0" if reason == "" or code[1][0] == "4" else reason)
    elif reason:
        action, found = PERMANENT, reason
    else:
        return []
    return [BounceReport(action, found, _recipient(text), _line_near(text, pattern, status, code))]


def _names(header: str) -> list[str]:
    name, _, address = header.rpartition("<")
    return [name.strip().strip('"'), address.strip(">").strip(), header.strip()]


def _recipient(text: str) -> str:
    for address in _ADDRESS.findall(text):
        if not _DAEMONS.match(address):
            return address
    return ""


def _line_near(text: str, pattern: re.Pattern, *matches) -> str:
    """The line that says why: where the status or code was found, else the first phrase that matched."""
    for match in matches:
        if match:
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            return " ".join(text[start:end if end >= 0 else None].split())[:500]
    for candidate in (pattern, *(p for p, _ in _REASONS)):
        found = candidate.search(text)
        if found:
            return _line_near(text, candidate, found)
    return ""
