"""The SMTP client's protocol object fed by hand: replies parsed as bytes arrive, pipelining, refusals."""
import asyncio

import pytest

from mta.smtp import HopUnavailable, SmtpReply, SmtpSession


class RecordingTransport:
    """What the session wrote, write by write."""

    def __init__(self):
        self.writes, self.closed = [], False

    def write(self, data):
        self.writes.append(data)

    def is_closing(self):
        return self.closed

    def get_write_buffer_size(self):
        return 0

    def close(self):
        self.closed = True

    abort = close


def run(scenario):
    async def main():
        session = SmtpSession(asyncio.get_running_loop())
        transport = RecordingTransport()
        session.connection_made(transport)
        session.pipelining = True
        return await scenario(session, transport)

    return asyncio.run(main())


async def settle():
    for _ in range(3):
        await asyncio.sleep(0)


async def send_one(session, **options) -> asyncio.Task:
    """A one-line mail's send, started and settled: its commands written, it waits for the server's replies."""
    sending = asyncio.create_task(session.send("b-1@r.example", "a@x.example", b"x\r\n", **options))
    await settle()
    return sending


def test_content_and_the_next_envelope_share_one_write_and_replies_may_arrive_in_pieces():
    async def scenario(session, transport):
        first = asyncio.create_task(session.send("b-1@r.example", "a@x.example", b"Subject: 1\r\n\r\n.hi\r\n",
                                                 then=("b-2@r.example", "b@x.example")))
        await settle()
        assert transport.writes == [b"MAIL FROM:<b-1@r.example>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n"]
        session.data_received(b"250 2.1.0 Ok\r\n250 2.1")          # a reply cut in two
        session.data_received(b".5 Ok\r\n354 go ahead\r\n")
        await settle()
        assert transport.writes[1] == (b"Subject: 1\r\n\r\n..hi\r\n.\r\n"
                                       b"MAIL FROM:<b-2@r.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n")
        # The content's multi-line reply and the next envelope's three, in one segment.
        session.data_received(b"250-2.0.0 Ok\r\n250 2.0.0 queued as 1\r\n250 Ok\r\n250 Ok\r\n354 go ahead\r\n")
        assert await first == "250 2.0.0 Ok\n2.0.0 queued as 1"
        second = asyncio.create_task(session.send("b-2@r.example", "b@x.example", b"Subject: 2\r\n\r\nho\r\n"))
        await settle()
        assert transport.writes[2] == b"Subject: 2\r\n\r\nho\r\n.\r\n"   # its envelope went with the first
        session.data_received(b"250 2.0.0 queued as 2\r\n")
        assert await second == "250 2.0.0 queued as 2"
        await session.close()
        assert transport.writes[3] == b"QUIT\r\n" and transport.closed

    run(scenario)


def test_a_refusal_then_a_hang_up_reports_the_refusal():
    async def scenario(session, transport):
        sending = await send_one(session)
        session.data_received(b"421 4.3.2 closing\r\n")
        session.connection_lost(None)
        with pytest.raises(SmtpReply) as refused:
            await sending
        assert refused.value.code == 421

    run(scenario)


def test_a_lost_connection_before_the_final_reply_is_a_hop_failure():
    async def scenario(session, transport):
        sending = await send_one(session)
        session.data_received(b"250 Ok\r\n250 Ok\r\n354 go ahead\r\n")
        await settle()
        session.connection_lost(ConnectionResetError("reset by peer"))
        with pytest.raises(HopUnavailable, match="reset by peer"):
            await sending

    run(scenario)


def test_an_announced_transaction_is_not_ended_with_quit():
    """QUIT after an announced DATA would be read as content: the session just closes."""
    async def scenario(session, transport):
        sending = await send_one(session, then=("b-2@r.example", "b@x.example"))
        session.data_received(b"250 Ok\r\n250 Ok\r\n354 go ahead\r\n")
        await settle()
        session.data_received(b"250 Ok\r\n")
        await sending
        await session.close()
        assert transport.closed and b"QUIT\r\n" not in transport.writes

    run(scenario)


def test_garbage_instead_of_a_reply_ends_the_session():
    async def scenario(session, transport):
        sending = await send_one(session)
        session.data_received(b"HTTP/1.1 400 Bad Request\r\n")
        with pytest.raises(HopUnavailable, match="not an SMTP reply"):
            await sending
        assert transport.closed

    run(scenario)


def test_a_server_that_stops_answering_times_out():
    async def scenario(session, transport):
        with pytest.raises(HopUnavailable, match="no answer in 0 s"):
            await session.command(b"NOOP", timeout=0.01)
        assert transport.closed

    run(scenario)
