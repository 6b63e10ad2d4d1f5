"""Test doubles for the MTA's boundaries: a static router and an in-memory SMTP connector."""
import asyncio
from dataclasses import dataclass

from mta.outbound import Outbound
from mta.smtp import HopUnavailable

@dataclass(frozen=True)
class Hop:
    host: str
    address: str
    port: int


class StaticRouter:
    """Every domain is served by one hop named after it; some domains fail to route."""

    def __init__(self, unroutable: dict[str, Exception] | None = None):
        self.unroutable = unroutable or {}

    async def next_hops(self, domain):
        if domain in self.unroutable:
            raise self.unroutable[domain]
        return [Hop(f"mx.{domain}", "127.0.0.1", 25)]


class NoMail(Exception):
    permanent = True


class FakeSession:
    def __init__(self, connector, host):
        self.connector, self.host = connector, host

    async def send(self, sender, recipient, data, then=None):
        await asyncio.sleep(0)
        if recipient in self.connector.replies:
            raise self.connector.replies[recipient]
        self.connector.sent.append((sender, recipient, data))
        return "250 2.0.0 ok"

    async def close(self):
        self.connector.closed += 1


class FakeConnector:
    def __init__(self, down=(), replies=None):
        self.down, self.replies = set(down), replies or {}
        self.sent, self.opened, self.closed = [], 0, 0

    async def open(self, address, port, server_name):
        if server_name in self.down:
            raise HopUnavailable("connection refused")
        self.opened += 1
        return FakeSession(self, server_name)


def deliver(app, connector, router=None, **kwargs):
    """Run the engine until nothing is due; return its outcome counts."""
    outbound = Outbound(app, router=router or StaticRouter(), connector=connector, **kwargs)
    return asyncio.run(outbound.run(until_idle=True))
