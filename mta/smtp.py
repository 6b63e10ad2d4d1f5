"""SMTP client sessions for the outbound MTA, behind an injectable connector.

A connector opens a session to one next hop; a session sends one message to one
recipient at a time (VERP: each address has its own envelope sender) and is reused
for several messages. Replies are typed: :class:`SmtpReply` carries the server's
code, :class:`HopUnavailable` means the connection itself failed.
"""
from __future__ import annotations

import ssl
from typing import Protocol

import aiosmtplib

CONNECT_TIMEOUT = 30       # seconds; RFC 5321 §4.5.3.2 allows 5 min for the greeting, but a
                           # blast is better served by moving on to the next MX
COMMAND_TIMEOUT = 300      # RFC 5321: MAIL, RCPT 5 min
DATA_END_TIMEOUT = 600     # RFC 5321: 10 min after the final dot


class SmtpReply(Exception):
    """The server answered a command with a non-2xx reply."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text

    @property
    def permanent(self) -> bool:
        """5xx: the message must bounce; 4xx: try again later."""
        return self.code >= 500


class HopUnavailable(Exception):
    """No SMTP session could be had with this hop (refused, timed out, dropped)."""


class Session(Protocol):
    """One open SMTP connection."""

    async def send(self, sender: str, recipient: str, data: bytes) -> str:
        """Send one message to one recipient; return the final reply, or raise SmtpReply/HopUnavailable."""

    async def close(self) -> None:
        """Say QUIT and close; never raises."""


class Connector(Protocol):
    """Opens sessions; the real one speaks SMTP, tests may inject their own."""

    async def open(self, address: str, port: int, server_name: str) -> Session:
        """Connect to address:port (server_name for TLS/logs), greet, and return a session."""


class AioSession:
    """A session over aiosmtplib."""

    def __init__(self, client: aiosmtplib.SMTP):
        self._client = client

    async def send(self, sender: str, recipient: str, data: bytes) -> str:
        try:
            refused, reply = await self._client.sendmail(sender, [recipient], data, timeout=DATA_END_TIMEOUT)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise SmtpReply(first.code, first.message) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpReply(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        if refused:
            response = refused[recipient]
            raise SmtpReply(response.code, response.message)
        return reply

    async def close(self) -> None:
        try:
            await self._client.quit(timeout=5)
        except (aiosmtplib.SMTPException, OSError):
            self._client.close()


class AioConnector:
    """Opens sessions with aiosmtplib: EHLO as helo_name, opportunistic STARTTLS, RFC 5321 timeouts."""

    def __init__(self, helo_name: str):
        self.helo_name = helo_name
        # Opportunistic TLS (RFC 7435): encrypt when offered, never refuse a bad certificate,
        # since refusing would only make us fall back to plain text.
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    async def open(self, address: str, port: int, server_name: str) -> AioSession:
        client = aiosmtplib.SMTP(hostname=address, port=port, local_hostname=self.helo_name,
                                 timeout=COMMAND_TIMEOUT, start_tls=None, validate_certs=False,
                                 tls_context=self._tls)
        try:
            await client.connect(timeout=CONNECT_TIMEOUT)
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            if exc.code >= 500:
                raise SmtpReply(exc.code, exc.message) from None
            raise HopUnavailable(f"{exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        return AioSession(client)
