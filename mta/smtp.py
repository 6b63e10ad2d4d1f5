"""SMTP client sessions for the outbound MTA, behind an injectable connector.

A connector opens a session to one next hop; a session sends one message to one
recipient at a time (VERP: each address has its own envelope sender) and is reused
for several messages. Replies are typed: :class:`SmtpReply` carries the server's
code, :class:`HopUnavailable` means the connection itself failed.

The client is our own, on asyncio streams: with PIPELINING (RFC 2920) a message
costs one write of MAIL, RCPT and DATA and one of the content, and addresses are
not parsed again (they were validated when stored). A general-purpose client spent
~550 us a message here; the blast sends 160,000.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import Protocol

CONNECT_TIMEOUT = 30       # seconds; a blast is better served by moving on to the next MX
COMMAND_TIMEOUT = 300      # RFC 5321 §4.5.3.2: MAIL, RCPT 5 minutes
DATA_END_TIMEOUT = 600     # RFC 5321: 10 minutes after the final dot
MAX_REPLY_LINES = 100


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


def dot_stuff(data: bytes) -> bytes:
    """Return the content as sent after DATA: CRLF endings, leading dots doubled, the final dot line."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


class StreamSession:
    """An SMTP session on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipelining: bool):
        self.reader, self.writer, self.pipelining = reader, writer, pipelining

    async def reply(self, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
        """Read one (possibly multi-line) reply."""
        lines = []
        try:
            # asyncio.timeout, not wait_for: no task per read, and a blast reads 640,000 replies.
            async with asyncio.timeout(timeout):
                while len(lines) < MAX_REPLY_LINES:
                    line = await self.reader.readline()
                    if not line.endswith(b"\n"):
                        raise HopUnavailable("connection closed by the server")
                    lines.append(line.rstrip(b"\r\n"))
                    if line[3:4] != b"-":
                        break
            code = int(lines[-1][:3])
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        except ValueError:
            raise HopUnavailable(f"not an SMTP reply: {lines[-1][:80]!r}") from None
        return code, "\n".join(line[4:].decode("utf-8", "replace") for line in lines)

    async def command(self, line: bytes, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
        """Send one command line and read its reply."""
        await self.write(line + b"\r\n")
        return await self.reply(timeout)

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except OSError as exc:
            raise HopUnavailable(str(exc) or type(exc).__name__) from None

    async def send(self, sender: str, recipient: str, data: bytes) -> str:
        envelope = [f"MAIL FROM:<{sender}>".encode(), f"RCPT TO:<{recipient}>".encode(), b"DATA"]
        if self.pipelining:
            await self.write(b"\r\n".join(envelope) + b"\r\n")
            replies = []
            for _ in envelope:
                try:
                    replies.append(await self.reply())
                except HopUnavailable:
                    if any(code >= 400 for code, _ in replies):
                        break          # the server refused, then hung up (421): report the refusal
                    raise
        else:
            replies = []
            for line in envelope:
                replies.append(await self.command(line))
                if replies[-1][0] >= 400:
                    break
        for (code, text), expected in zip(replies, (250, 250, 354)):
            if code // 100 != expected // 100 or (expected == 354 and code != 354):
                if code != 421:      # 421: the server is closing the connection anyway
                    await self._abandon(replies)
                raise SmtpReply(code, text)
        code, text = await self._content(data)
        if code // 100 != 2:
            raise SmtpReply(code, text)
        return f"{code} {text}"

    async def _content(self, data: bytes) -> tuple[int, str]:
        await self.write(dot_stuff(data))
        return await self.reply(DATA_END_TIMEOUT)

    async def _abandon(self, replies: list[tuple[int, str]]) -> None:
        """End a refused transaction so the session can carry the next message."""
        try:
            if len(replies) == 3 and replies[2][0] == 354:
                await self.write(b".\r\n")       # DATA was accepted after a refused RCPT: send nothing
                await self.reply(DATA_END_TIMEOUT)
            await self.command(b"RSET")
        except HopUnavailable:
            pass                                  # the next send on this session reports it

    async def close(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self.writer.drain(), 5)
        except (OSError, asyncio.TimeoutError):
            pass
        self.writer.close()


class StreamConnector:
    """Opens sessions: EHLO as helo_name, opportunistic STARTTLS, RFC 5321 timeouts."""

    def __init__(self, helo_name: str):
        self.helo_name = helo_name.encode()
        # Opportunistic TLS (RFC 7435): encrypt when offered, never refuse a bad certificate,
        # since refusing would only make us fall back to plain text.
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    async def open(self, address: str, port: int, server_name: str) -> StreamSession:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        session = StreamSession(reader, writer, pipelining=False)
        try:
            code, text = await session.reply(CONNECT_TIMEOUT)
            if code != 220:
                raise SmtpReply(code, text) if code >= 500 else HopUnavailable(f"{code} {text}")
            extensions = await self._ehlo(session)
            if "STARTTLS" in extensions:
                code, text = await session.command(b"STARTTLS")
                if code == 220:
                    await writer.start_tls(self._tls, server_hostname=server_name or None)
                    extensions = await self._ehlo(session)
            session.pipelining = "PIPELINING" in extensions
        except (SmtpReply, HopUnavailable):
            writer.close()
            raise
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            writer.close()
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        return session

    async def _ehlo(self, session: StreamSession) -> set[str]:
        code, text = await session.command(b"EHLO " + self.helo_name)
        if code != 250:
            code, text = await session.command(b"HELO " + self.helo_name)
            if code != 250:
                raise HopUnavailable(f"{code} {text}")
            return set()
        return {line.split(" ")[0].upper() for line in text.split("\n")[1:]}
