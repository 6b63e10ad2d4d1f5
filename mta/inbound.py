"""The inbound SMTP server (aiosmtpd): bounces, guardians' replies, empty-mail registrations and enquiries.

The protocol side only: what an address is for and what happens to the mail is
:mod:`appliance.inbound`, called in a thread (it reads and writes the database and asks
DNS for DKIM keys and SPF policies: never on the event loop). Limits, all in this
process, which is one asyncio loop:

- recipients: only the appliance's own domains (550 otherwise: never a relay), and
  one recipient per transaction (452 for the next: the client sends it again in
  another transaction), so one reply code is exactly the fate of one mail;
- size: ``[mta] inbound_max_bytes`` (SIZE advertised, refused at MAIL when declared,
  else at the end of DATA) with a Japanese explanation;
- lines: 1,000 bytes with CRLF (RFC 5321), aiosmtpd's own limit;
- connections per client address: ``[mta] inbound_max_connections`` (421 beyond);
- idle time: ``[mta] inbound_timeout`` seconds.

SMTP smuggling: aiosmtpd (>= 1.4.5) ends DATA only at <CRLF>.<CRLF>; a bare LF or CR
anywhere in the content is refused by the router, so ``<LF>.<LF>`` can neither end
the mail nor ride inside it. Replies carry Japanese text in UTF-8 after an English
first line, for mail servers that keep only ASCII.
"""
from __future__ import annotations

import asyncio
import collections
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from appliance.inbound import Router
from appliance.mime import MailRefused
from appliance.registration import register_by_mail
from mta.resolver import lookup_from_config

log = logging.getLogger(__name__)

# reason -> (code, enhanced status, English first line)
REPLIES = {
    "recipient": ("550", "5.1.1", "No such recipient here"),
    "relay": ("550", "5.7.1", "Relaying denied"),
    "size": ("552", "5.3.4", "Message too big"),
    "content": ("554", "5.6.0", "Message content refused"),
    "policy": ("550", "5.7.1", "Message refused"),
    "unsubscribe": ("550", "5.7.1", "No valid unsubscribe code in the Subject; use the link in the mail"),
    "rate": ("450", "4.7.1", "Too many failed attempts, try later"),
    "recipients": ("452", "4.5.3", "One recipient per message, send the others again"),
    "temporary": ("451", "4.3.0", "Temporary failure, try again later"),
}
TOO_BIG_TEXT = "メールが大きすぎます。添付ファイル（写真・PDF）は合計1MBまでです。小さくして送り直してください。"


def smtp_reply(reason: str, text: str) -> str:
    """The SMTP reply for a refusal: an English line, then the Japanese explanation (multi-line reply)."""
    code, status, english = REPLIES[reason]
    text = " ".join(text.split())
    return f"{code}-{status} {english}\r\n{code} {status} {text}"


class InboundHandler:
    """aiosmtpd handler: RCPT checks the address, DATA routes the mail and answers once it is stored."""

    def __init__(self, router: Router, *, max_connections: int = 10):
        self.router = router
        self.max_connections = max_connections
        self.connections: collections.Counter = collections.Counter()

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options: list) -> str:
        if envelope.rcpt_tos:
            return smtp_reply("recipients", "宛先は1通につき1件です。")
        try:
            await asyncio.to_thread(self.router.check_recipient, address)
        except MailRefused as exc:
            return smtp_reply(exc.reason, str(exc))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            outcome = await asyncio.to_thread(self.router.route_mail, envelope.mail_from or "",
                                              envelope.rcpt_tos[0], envelope.original_content, peer,
                                              session.host_name or "")
        except MailRefused as exc:
            log.info("inbound from %s refused (%s)", peer, exc.reason)
            return smtp_reply(exc.reason, str(exc))
        except Exception:
            log.exception("inbound from %s failed", peer)
            return smtp_reply("temporary", "一時的な問題で受け付けられませんでした。しばらくして送り直してください。")
        log.info("inbound from %s: %s %s", peer, outcome.kind, outcome.detail)
        return f"250 2.0.0 OK {outcome.kind}"


class InboundSMTP(SMTP):
    """aiosmtpd's SMTP with a per-client connection limit and Japanese size refusals."""

    _over_limit = False

    def connection_made(self, transport) -> None:
        peer = (transport.get_extra_info("peername") or ("?",))[0]
        handler: InboundHandler = self.event_handler
        if handler.connections[peer] >= handler.max_connections:
            self._over_limit = True
            transport.write(b"421 4.7.0 Too many connections from your address\r\n")
            transport.close()
            return
        handler.connections[peer] += 1
        self._peer_key = peer
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        if self._over_limit:
            return
        handler: InboundHandler = self.event_handler
        handler.connections[self._peer_key] -= 1
        if handler.connections[self._peer_key] <= 0:
            del handler.connections[self._peer_key]
        super().connection_lost(error)

    async def push(self, status) -> None:
        # aiosmtpd words its own size refusals (at MAIL ... SIZE= and at the end of DATA).
        if isinstance(status, str) and status.startswith("552 Error:"):
            status = smtp_reply("size", TOO_BIG_TEXT)
        await super().push(status)


class InboundController(Controller):
    """Runs the inbound server in its own thread and event loop; start() returns when it answers."""

    def factory(self):
        return InboundSMTP(self.handler, **self.SMTP_kwargs)


def controller_for(app, *, bind: str | None = None, register=None, dns=None) -> InboundController:
    """The inbound server for this appliance on [mta] inbound_bind (or bind), not started yet.

    DKIM and SPF ask DNS through ``dns`` (a look-up as :mod:`appliance.mail_auth` describes),
    by default on ``[mta] nameservers``.
    """
    settings = app.config["mta"]
    host, _, port = (bind or settings["inbound_bind"]).rpartition(":")
    router = Router(app, register=register or register_by_mail, dns=dns or lookup_from_config(app.config))
    handler = InboundHandler(router, max_connections=settings["inbound_max_connections"])
    return InboundController(handler, hostname=host.strip("[]"), port=int(port),
                             server_hostname=settings["helo_name"] or app.config["mail"]["domain"],
                             data_size_limit=settings["inbound_max_bytes"], enable_SMTPUTF8=True,
                             timeout=settings["inbound_timeout"])
