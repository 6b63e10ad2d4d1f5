"""SMTP client sessions for the outbound MTA, behind an injectable connector.

A connector opens a session to one next hop; a session sends one message to one
recipient at a time (VERP: each address has its own envelope sender) and is reused
for several messages. Replies are typed: :class:`SmtpReply` carries the server's
code, :class:`HopUnavailable` means the connection itself failed.

The client is our own, an asyncio Protocol rather than streams: a blast sends 160,000
transactions, and a stream reader costs a readline, a timeout context and a task
wake-up per reply line. Here replies are parsed as bytes arrive, and a transaction
waits twice (envelope, content). With PIPELINING (RFC 2920) a transaction is one write
of MAIL, RCPT and DATA and one of the content; given the next envelope (``then``),
the content and that envelope share one write, as RFC 2920 allows ("the actual
transfer of message content is explicitly allowed to be the first 'command' in a
group"): one send system call a mail, which on loopback costs as much as the parsing.
Addresses are not parsed again (they were validated when stored).
"""
from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Protocol

CONNECT_TIMEOUT = 30       # seconds; a blast is better served by moving on to the next MX
COMMAND_TIMEOUT = 300      # RFC 5321 §4.5.3.2: MAIL, RCPT 5 minutes
DATA_END_TIMEOUT = 600     # RFC 5321: 10 minutes after the final dot
MAX_REPLY_LINES = 100
MAX_LINE = 4096            # bytes of a reply line that is still coming; more is not SMTP


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

    async def send(self, sender: str, recipient: str, data: bytes, then: tuple[str, str] | None = None) -> str:
        """Send one message to one recipient; return the final reply, or raise SmtpReply/HopUnavailable.

        ``then`` (sender, recipient) announces the next transaction: the session may start it
        in the same write as this content, and the next call must then be for that envelope.
        """

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


def _envelope(sender: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


_ENVELOPE_CODES = (250, 250, 354)


class SmtpSession(asyncio.Protocol):
    """An SMTP session: replies parsed as they arrive and queued; a command waits for as many as it needs."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.pipelining = False
        self._partial = b""                   # an incomplete reply line
        self._lines: list[bytes] = []         # lines of a multi-line reply so far
        self._replies: collections.deque[tuple[int, str]] = collections.deque()
        self._waiter: asyncio.Future | None = None
        self._wanted = 0
        self._lost: HopUnavailable | None = None
        self._writable: asyncio.Future | None = None   # set while the transport asks us to pause
        self._announced: tuple[str, str] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._partial:
            data, self._partial = self._partial + data, b""
        *lines, rest = data.split(b"\n")
        if len(rest) > MAX_LINE:
            self._fail(HopUnavailable("a reply line longer than SMTP allows"))
            return
        self._partial = rest
        for line in lines:
            self._lines.append(line)
            if line[3:4] == b"-" and len(self._lines) < MAX_REPLY_LINES:
                continue
            reply, self._lines = self._lines, []
            try:
                code = int(reply[-1][:3])
            except ValueError:
                self._fail(HopUnavailable(f"not an SMTP reply: {reply[-1][:80]!r}"))
                return
            self._replies.append((code, "\n".join(line[4:].rstrip(b"\r").decode("utf-8", "replace")
                                                  for line in reply)))
        if self._waiter is not None and len(self._replies) >= self._wanted and not self._waiter.done():
            self._waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            self._lost = HopUnavailable(str(exc) if exc else "connection closed by the server")
        self._wake()

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- reading and writing -----------------------------------------------------------------

    def _fail(self, exc: HopUnavailable) -> None:
        """The session cannot go on: note why, drop the connection, wake whoever waits."""
        if self._lost is None:
            self._lost = exc
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        for future in (self._waiter, self._writable):
            if future is not None and not future.done():
                future.set_result(None)

    def _time_out(self, timeout: float) -> None:
        self._fail(HopUnavailable(f"no answer in {timeout:.0f} s"))

    async def _wait(self, future: asyncio.Future, timeout: float) -> None:
        timer = self.loop.call_later(timeout, self._time_out, timeout)
        try:
            await future
        finally:
            timer.cancel()

    async def read(self, count: int, timeout: float = COMMAND_TIMEOUT) -> list[tuple[int, str]]:
        """Return the next `count` replies; fewer only when the connection ended first (see `lost`)."""
        if len(self._replies) < count and self._lost is None:
            self._wanted, self._waiter = count, self.loop.create_future()
            try:
                await self._wait(self._waiter, timeout)
            finally:
                self._waiter = None
        return [self._replies.popleft() for _ in range(min(count, len(self._replies)))]

    @property
    def lost(self) -> HopUnavailable:
        """Why the connection ended (the error to raise when a reply did not come)."""
        return self._lost or HopUnavailable("connection closed by the server")

    async def write(self, data: bytes) -> None:
        """Write (the transport sends at once when it can); wait only while the transport is full."""
        if self._lost is not None:
            raise self._lost
        self.transport.write(data)
        if self._writable is not None:
            await self._wait(self._writable, COMMAND_TIMEOUT)
            if self._lost is not None:
                raise self._lost

    async def command(self, line: bytes, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
        """Send one command line and return its reply."""
        await self.write(line + b"\r\n")
        replies = await self.read(1, timeout)
        if not replies:
            raise self.lost
        return replies[0]

    # -- mail --------------------------------------------------------------------------------

    async def send(self, sender: str, recipient: str, data: bytes, then: tuple[str, str] | None = None) -> str:
        envelope = (sender, recipient)
        if self._announced is not None and self._announced != envelope:
            raise RuntimeError("the session announced another envelope than the one sent")
        if self.pipelining:
            if self._announced is None:
                await self.write(_envelope(sender, recipient))
            self._announced = None
            replies = await self.read(3)
            if len(replies) < 3 and not any(code >= 400 for code, _ in replies):
                raise self.lost       # a refusal then a hang-up (421) reports the refusal below
        else:
            replies = []
            for line in (f"MAIL FROM:<{sender}>".encode(), f"RCPT TO:<{recipient}>".encode(), b"DATA"):
                replies.append(await self.command(line))
                if replies[-1][0] >= 400:
                    break
        for (code, text), expected in zip(replies, _ENVELOPE_CODES):
            if code // 100 != expected // 100 or (expected == 354 and code != 354):
                if code != 421:      # 421: the server is closing the connection anyway
                    await self._abandon(replies)
                raise SmtpReply(code, text)
        content = dot_stuff(data)
        if then is not None and self.pipelining:
            content += _envelope(*then)
            self._announced = then
        await self.write(content)
        replies = await self.read(1, DATA_END_TIMEOUT)
        if not replies:
            raise self.lost
        code, text = replies[0]
        if code // 100 != 2:
            raise SmtpReply(code, text)
        return f"{code} {text}"

    async def _abandon(self, replies: list[tuple[int, str]]) -> None:
        """End a refused transaction so the session can carry the next message."""
        try:
            if len(replies) == 3 and replies[2][0] == 354:
                await self.write(b".\r\n")       # DATA was accepted after a refused RCPT: send nothing
                await self.read(1, DATA_END_TIMEOUT)
            await self.command(b"RSET")
        except HopUnavailable:
            pass                                  # the next send on this session reports it

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self._lost is None and self._announced is None:
            # An announced transaction waits for content: QUIT would be read as content, so just go.
            self.transport.write(b"QUIT\r\n")
        if self.transport.get_write_buffer_size():
            self.transport.abort()                # a peer that does not read keeps no socket of ours
        else:
            self.transport.close()


class SmtpConnector:
    """Opens sessions: EHLO as helo_name, opportunistic STARTTLS, RFC 5321 timeouts."""

    def __init__(self, helo_name: str):
        self.helo_name = helo_name.encode()
        # Opportunistic TLS (RFC 7435): encrypt when offered, never refuse a bad certificate,
        # since refusing would only make us fall back to plain text.
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    async def open(self, address: str, port: int, server_name: str) -> SmtpSession:
        loop = asyncio.get_running_loop()
        try:
            _transport, session = await asyncio.wait_for(
                loop.create_connection(lambda: SmtpSession(loop), address, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        try:
            greeting = await session.read(1, CONNECT_TIMEOUT)
            if not greeting:
                raise session.lost
            code, text = greeting[0]
            if code != 220:
                raise SmtpReply(code, text) if code >= 500 else HopUnavailable(f"{code} {text}")
            extensions = await self._ehlo(session)
            if "STARTTLS" in extensions:
                code, text = await session.command(b"STARTTLS")
                if code == 220:
                    session.transport = await loop.start_tls(
                        session.transport, session, self._tls, server_hostname=server_name or None,
                        ssl_handshake_timeout=CONNECT_TIMEOUT)
                    extensions = await self._ehlo(session)
            session.pipelining = "PIPELINING" in extensions
        except (SmtpReply, HopUnavailable):
            session.transport.abort()
            raise
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as exc:
            session.transport.abort()
            raise HopUnavailable(str(exc) or type(exc).__name__) from None
        return session

    async def _ehlo(self, session: SmtpSession) -> set[str]:
        code, text = await session.command(b"EHLO " + self.helo_name)
        if code != 250:
            code, text = await session.command(b"HELO " + self.helo_name)
            if code != 250:
                raise HopUnavailable(f"{code} {text}")
            return set()
        return {line.split(" ")[0].upper() for line in text.split("\n")[1:]}
