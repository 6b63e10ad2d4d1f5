"""Mail that comes to the appliance: which of its addresses it is for, and what that address does with it.

The inbound SMTP server (mta/inbound.py) asks :meth:`Router.check_recipient` at RCPT
and :meth:`Router.route_mail` at DATA, and gives its 250 only after route_mail has
returned, that is after everything it stores is committed. Refusals are
:class:`appliance.mime.MailRefused` with a reason; the server maps reasons to SMTP
replies in one place.

Addresses (local parts are case-insensitive; domains are the mail domain and the
bounce domain, nothing else: never a relay):

- ``b-<delivery id>@``: the VERP envelope sender of each delivery (mta/outbound.py).
  Bounces are read by :mod:`appliance.bounces`; a failed report is recorded against
  the delivery with the outbound rules (``deliveries.record_outcomes``: the fact, the
  delivery's state, and the address suspended after bounces on several messages).
  Delays and auto-replies are accepted and dropped.
- ``reply+<token>@``: the Reply-To of a mail that needs a reply (appliance/mail.py).
  The token alone says which guardian and message; the From header is never used to
  decide who wrote. Stored through ``replies.record_reply(via="mail")`` with its
  files and this server's own Authentication-Results (:mod:`appliance.mail_auth`: DKIM
  per signature, SPF of the client for the MAIL FROM or HELO domain).
- ``entry-<code>@`` the mail domain: empty-mail registration. The router calls the
  injected ``register(app, code, address)`` (contract below).
- ``help@`` the mail domain (:data:`appliance.enquiries.MAIL_LOCAL`): a stuck guardian's
  enquiry, stored in the operator's list (``enquiries.submit_enquiry(via="mail")``) with
  the sender's address sealed as how to reach them, the subject and own text as its body
  (files are not kept; the body says how many came). Limited per sender address and per
  client (ENQUIRY_SENDERS, ENQUIRY_CLIENTS: 450 beyond, so the sender's server tries again
  later); auto-replies are dropped and bounces refused, so no loop can start here.
- ``unsubscribe@``: the mailto of the List-Unsubscribe header (appliance/mail.py), the
  token in the Subject. Stops the token's guardian's routine mail with the web link's
  core function (``routine_mail.unsubscribe``); no token, or an unknown or expired one,
  gets a 550 that says how else to stop it.
- anything else: 550.

The registration callable, ``register(app, code: str, address: str) -> str``: ``code``
is the local part after ``entry-`` as the guardian typed it (ASCII letters and
digits, 4 to 32, case kept); ``address`` is the sender's address from the From
header (the envelope sender when From has none), the one the registration link
goes to: mailing the link there is what proves the address, so a forged From only
sends the link to its real owner. It does its work in its own committed
transaction(s) and returns a short outcome word for the log ("sent", ...). It raises
InvalidInput (Japanese message) for a code that is unknown, expired, used or locked:
the router answers 550 with that message, so the guardian's own mail server tells
them (no mail of ours goes to an address nobody confirmed). Failed codes are also
counted per client address (ENTRY_GUESSES); past the limit the answer is a
temporary 450 before the callable is asked. Any other exception is a temporary
failure (451): the sender retries.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from appliance import attachments, bounces, deliveries, enquiries, mail_auth, mime, replies, routine_mail, tokens
from appliance.errors import InvalidInput, NotFound
from appliance.mail import reply_token
from appliance.mime import MailRefused
from appliance.registration import register_by_mail
from appliance.models import Delivery
from appliance.ratelimit import Limit

log = logging.getLogger(__name__)

Register = Callable[[object, str, str], str]
ENTRY_GUESSES = Limit("entry-client", 20, 3600)     # failed registration codes per client address
ENQUIRY_SENDERS = Limit("enquiry-mail", 5, 3600)    # enquiries per sender address, as the web form's per client
# Per client address too, since From is free to forge; above what one carrier's servers carry for many families.
ENQUIRY_CLIENTS = Limit("enquiry-mail-client", 30, 3600)

_BOUNCE = re.compile(r"b-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_ENTRY = re.compile(r"entry-([A-Za-z0-9]{4,32})")
_ADDRESS_TEXT = re.compile(r"[^\s<>@]+@[^\s<>@]+")
_SUBJECT_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])")
_QUOTE_START = re.compile(r"^(-{2,}\s*(original message|元のメッセージ|転送メッセージ)|"
                          r"on .{0,200} wrote:|\d{4}[年/-].{0,100}(wrote|書きました|のメッセージ)[:：]?)\s*-*\s*$",
                          re.I | re.M)
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"Rar!", b"7z\xbc\xaf\x27\x1c", b"\x1f\x8b", b"BZh", b"\xfd7zXZ",
                  b"MSCF")
_ARCHIVE_TYPES = re.compile(r"zip|rar|7z|tar|gzip|bzip|x-xz|lzh|lha|compress|cab|java-archive", re.I)
_ARCHIVE_NAMES = re.compile(r"\.(zip|rar|7z|tar|gz|tgz|bz2|xz|lzh|lha|cab|jar)$", re.I)
_SKIPPED_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature")

_NO_SUCH = "このアドレスは存在しません。学校からのメールに返信するか、学校にお問い合わせください。"
_ARCHIVE = "圧縮ファイル（zip など）は受け付けていません。写真かPDFをそのまま添付してください。"


@dataclass(frozen=True)
class Route:
    """What one of the appliance's addresses is for, and the key its local part carries."""

    kind: str     # bounce, reply, entry, enquiry, unsubscribe
    key: str      # the delivery id, the reply token, the registration code ("" for an enquiry or unsubscribe)


@dataclass(frozen=True)
class Outcome:
    """What the router did with an accepted mail (for the log and the 250's text)."""

    kind: str         # bounce, reply, entry, enquiry, unsubscribe, ignored
    detail: str = ""


class Router:
    """Routes inbound mail by recipient; holds the injected registration step and DNS look-up (DKIM, SPF)."""

    def __init__(self, app, *, dns: mail_auth.Lookup, register: Register = register_by_mail):
        self.app = app
        self.register = register
        self.dns = dns
        mail_domain = app.config["mail"]["domain"].lower()
        self.mail_domain = mail_domain
        self.domains = {mail_domain, (app.config["mta"]["bounce_domain"] or mail_domain).lower()}
        self.authserv_id = app.config["mta"]["helo_name"] or mail_domain

    def parse_recipient(self, address: str) -> Route:
        """The route of a recipient address from its text alone (no database): 550 for other domains or names."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        if domain.lower().rstrip(".") not in self.domains:
            raise MailRefused("relay", "このサーバーは他のドメイン宛てのメールを中継しません。")
        bounce, entry = _BOUNCE.fullmatch(local.lower()), _ENTRY.fullmatch(local)
        token = reply_token(local)
        if bounce:
            return Route("bounce", bounce[1])
        if token is not None:
            return Route("reply", token)
        if entry and domain.lower().rstrip(".") == self.mail_domain:
            return Route("entry", entry[1])
        if local.lower() == enquiries.MAIL_LOCAL and domain.lower().rstrip(".") == self.mail_domain:
            return Route("enquiry", "")
        if local.lower() == "unsubscribe":
            return Route("unsubscribe", "")
        raise MailRefused("recipient", _NO_SUCH)

    def check_recipient(self, address: str) -> Route:
        """The route of a recipient, checked against the database where it names something (blocking: run in a thread)."""
        route = self.parse_recipient(address)
        if route.kind == "bounce" and not Delivery.select().where(Delivery.id == route.key).exists():
            raise MailRefused("recipient", _NO_SUCH)
        if route.kind == "reply":
            try:
                tokens.resolve_token(self.app, route.key, "reply")
            except NotFound:
                raise MailRefused("recipient", "このアドレスへの返信の受付は終わったか、アドレスが正しくありません。"
                                               "学校からのメールのリンクのページから返信してください。") from None
        return route

    def route_mail(self, envelope_from: str, recipient: str, raw: bytes, peer: str, helo: str = "") -> Outcome:
        """Do what the recipient address is for with the mail; return only when what it stores is committed.

        ``peer`` is the client's IP address and ``helo`` the name it gave (both for SPF).
        """
        if b"\n" in raw.replace(b"\r\n", b"") or b"\r" in raw.replace(b"\r\n", b""):
            # A bare LF or CR is how SMTP smuggling hides a second message: refuse rather than guess.
            raise MailRefused("policy", "改行の形式が正しくないメール（CR/LF 単独）は受け付けていません。")
        route = self.check_recipient(recipient)
        if route.kind == "bounce":
            return self._bounce(route.key, envelope_from, raw)
        if route.kind == "reply":
            return self._reply(route.key, raw, client=peer, mail_from=envelope_from, helo=helo)
        if route.kind == "enquiry":
            return self._enquiry(envelope_from, raw, peer)
        if route.kind == "unsubscribe":
            return self._unsubscribe(raw)
        return self._entry(route.key, envelope_from, raw, peer)

    def _bounce(self, delivery_id: str, envelope_from: str, raw: bytes) -> Outcome:
        reports = bounces.parse_bounce(raw, envelope_from)
        failed = [r for r in reports if r.failed]
        if not failed:
            return Outcome("ignored", "delayed" if reports else "not a bounce")
        delivery = Delivery.get_by_id(delivery_id)
        report = failed[0]
        detail = _ADDRESS_TEXT.sub("<address>", f"bounce {report.status} {report.diagnostic}".strip())
        deliveries.record_outcomes(self.app, {delivery_id: delivery},
                                   [deliveries.Outcome(delivery_id, "bounced", detail)])
        return Outcome("bounce", report.status)

    def _reply(self, token: str, raw: bytes, *, client: str, mail_from: str, helo: str) -> Outcome:
        message = mime.parse(raw)
        if _auto_submitted(message):
            return Outcome("ignored", "auto-submitted")     # vacation notices are not replies
        body, files = read_reply(message)
        try:
            grant = tokens.resolve_token(self.app, token, "reply")
        except NotFound as exc:
            raise MailRefused("recipient", str(exc)) from None
        auth = self.authentication_results(raw, message, client=client, mail_from=mail_from, helo=helo)
        try:
            reply = replies.record_reply(self.app, grant.message_id, grant.guardian_id, body, files, via="mail",
                                         auth_results=auth)
        except NotFound as exc:
            raise MailRefused("recipient", str(exc)) from None
        except InvalidInput as exc:
            raise MailRefused("content", str(exc)) from None
        return Outcome("reply", reply.id)

    def _unsubscribe(self, raw: bytes) -> Outcome:
        # The token is in the Subject, as the List-Unsubscribe mailto puts it; a mailer may add "Re: " or the like.
        for token in _SUBJECT_TOKEN.findall(mime.header_text(mime.parse(raw), "Subject"))[:3]:
            try:
                routine_mail.unsubscribe(self.app, token)
            except NotFound:
                continue
            return Outcome("unsubscribe")
        raise MailRefused("unsubscribe", "件名に配信停止のコードがないか、有効期限が切れています。"
                                         "学校からのメールの配信停止のリンクか、マイページの設定から停止してください。")

    def _entry(self, code: str, envelope_from: str, raw: bytes, peer: str) -> Outcome:
        if not envelope_from:
            raise MailRefused("policy", "返送メールでは登録できません。")
        address = sender_address(mime.parse(raw)) or envelope_from
        if self.app.limiter.exceeded(ENTRY_GUESSES, peer):
            raise MailRefused("rate", "登録コードの誤りが続いたため、しばらく受け付けを止めています。"
                                      "時間をおいて送ってください。")
        try:
            result = self.register(self.app, code, address)
        except InvalidInput as exc:
            self.app.limiter.hit(ENTRY_GUESSES, peer)
            raise MailRefused("recipient", str(exc)) from None
        return Outcome("entry", str(result)[:100])

    def _enquiry(self, envelope_from: str, raw: bytes, peer: str) -> Outcome:
        if not envelope_from:
            raise MailRefused("policy", "返送メールは受け付けていません。")
        message = mime.parse(raw)
        if _auto_submitted(message):
            return Outcome("ignored", "auto-submitted")     # an out-of-office answer is no enquiry
        address = sender_address(message) or envelope_from
        limiter = self.app.limiter
        if not (limiter.hit(ENQUIRY_CLIENTS, peer) and limiter.hit(ENQUIRY_SENDERS, address.lower())):
            raise MailRefused("rate", "お問い合わせのメールが続いています。時間をおいて送ってください。")
        text, files = split_text(message)
        subject = " ".join(mime.header_text(message, "Subject").split())
        body = "\n".join(filter(None, (subject and f"件名: {subject}", text,
                                       files and f"（添付ファイル{len(files)}件は保存していません）")))
        name = sender_name(message)[:enquiries.NAME_MAX] or enquiries.MAIL_NAME
        try:
            enquiry = enquiries.submit_enquiry(self.app, name=name, reach=address, school_id="", body=body, via="mail")
        except InvalidInput as exc:
            raise MailRefused("content", str(exc)) from None
        return Outcome("enquiry", enquiry.id)

    def authentication_results(self, raw: bytes, message: Message, *, client: str, mail_from: str,
                               helo: str) -> str:
        """This server's Authentication-Results for a mail (RFC 8601): DKIM per signature, SPF of the client.

        Only domains are written, never an address: the school sees this beside the reply.
        """
        results = [*mail_auth.dkim_results(raw, message, self.dns),
                   mail_auth.spf_result(self.dns, client, mail_from, helo)]
        from_domain = sender_address(message).rpartition("@")[2]
        if from_domain:
            results.append(f"header.from={from_domain}")
        return f"{self.authserv_id}; " + "; ".join(results)


def sender_address(message: Message) -> str:
    """The one address in the From header (an address only when it is plainly one), or ''."""
    found = [address for _, address in getaddresses([mime.header_text(message, "From")]) if "@" in address]
    return found[0].strip() if len(found) == 1 and _ADDRESS_TEXT.fullmatch(found[0].strip()) else ""


def _auto_submitted(message) -> bool:
    """Whether a mail says it was sent by a program (RFC 3834): vacation notices, out-of-office answers."""
    return (message.get("Auto-Submitted") or "no").strip().lower() != "no"


def sender_name(message: Message) -> str:
    """The display name in the From header when it is a name (no address in it), or ''."""
    found = getaddresses([mime.header_text(message, "From")])
    name = " ".join(found[0][0].split()) if len(found) == 1 else ""
    return "" if "@" in name else name


def split_text(message: Message) -> tuple[str, list[tuple[str, str, bytes]]]:
    """A mail's own text (quoted original cut) and its files as (name, content type, data)."""
    texts: dict[str, str] = {}
    files: list[tuple[str, str, bytes]] = []
    for part in mime.parts(message):
        content_type = part.get_content_type()
        name = mime.filename(part)
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if content_type in _SKIPPED_TYPES:
            continue
        if part.get_content_maintype() == "text" and not name and disposition != "attachment":
            texts.setdefault(content_type, mime.part_text(part))
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            files.append((name, content_type, data))
    return _own_text(texts.get("text/plain", texts.get("text/html", ""))), files


def read_reply(message: Message) -> tuple[str, list[tuple[str, bytes]]]:
    """A reply mail's own text (quoted original cut) and its files; archives refused, sizes checked first."""
    text, files = split_text(message)
    for name, content_type, data in files:
        if (data.startswith(_ARCHIVE_MAGIC) and attachments.detect_type(data) is None) \
                or _ARCHIVE_TYPES.search(content_type) or _ARCHIVE_NAMES.search(name):
            raise MailRefused("content", _ARCHIVE)
    total = sum(len(data) for _, _, data in files)
    if total > replies.MAX_FILES_BYTES:
        raise MailRefused("size", f"添付ファイルは合計{attachments.format_size(replies.MAX_FILES_BYTES)}までです"
                                  f"（{attachments.format_size(total)}あります）。小さくして送り直してください。")
    return text, [(name or "attachment", data) for name, _, data in files]


def _own_text(text: str) -> str:
    """The reply without the quoted mail under it."""
    cut = _QUOTE_START.search(text)
    if cut:
        text = text[:cut.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith((">", "＞"))]
    return "\n".join(lines).strip()
