"""Next hops through dnspython against a real DNS server on loopback: the backend contract and more."""
import asyncio
import time

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from appliance.config import load_config
from mta.routing import DnspythonBackend, Hop, TemporaryRoutingError, from_config
from tests.integration.dns_server import dns_server_fixture  # noqa: F401  (provides the dns_server fixture)
from tests.unit.test_routing import BackendContract

LIFETIME = 0.5   # how long the tests' resolver waits for an answer


class TestDnspythonBackend(BackendContract):
    @pytest.fixture
    def zone(self, dns_server):
        return dns_server.zone

    @pytest.fixture
    def backend(self, dns_server):
        return DnspythonBackend([(dns_server.host, dns_server.port)], lifetime=LIFETIME)


def test_slow_answer_within_the_lifetime_arrives(dns_server):
    dns_server.zone.add_a("late.test", "127.0.0.2")
    dns_server.zone.slow("late.test", seconds=0.1)
    backend = DnspythonBackend([(dns_server.host, dns_server.port)], lifetime=2)
    assert asyncio.run(backend.addresses("late.test")).values == ("127.0.0.2",)


def test_timeout_takes_the_lifetime_not_longer(dns_server):
    dns_server.zone.slow("slow.test")
    backend = DnspythonBackend([(dns_server.host, dns_server.port)], lifetime=LIFETIME)
    started = time.monotonic()
    with pytest.raises(TemporaryRoutingError, match="timed out"):
        asyncio.run(backend.mx("slow.test"))
    assert time.monotonic() - started < LIFETIME + 1


def test_server_answers_over_tcp(dns_server):
    dns_server.zone.add_mx("docomo.test", [(10, "mx1.docomo.test")], ttl=120)
    query = dns.message.make_query("docomo.test", "MX")
    response = asyncio.run(dns.asyncquery.tcp(query, dns_server.host, port=dns_server.port, timeout=5))
    assert response.rcode() == dns.rcode.NOERROR
    assert [(r.preference, r.exchange.to_text()) for r in response.answer[0]] == [(10, "mx1.docomo.test.")]
    assert response.answer[0].ttl == 120


def test_router_from_config_routes_twenty_domains_to_sinks(dns_server, tmp_path, clock):
    """The shape the MTA's tests and benchmark use: many domains, a few sinks on 127.0.0.x."""
    for n in range(20):
        domain = f"school{n}.test"
        dns_server.zone.add_mx(domain, [(10, f"mx1.{domain}"), (20, f"mx2.{domain}")])
        dns_server.zone.add_a(f"mx1.{domain}", f"127.0.0.{2 + n % 4}")
        dns_server.zone.add_a(f"mx2.{domain}", "127.0.0.9")
    config = load_config(tmp_path, environ={}, overrides={"mta": {"nameservers": [dns_server.nameserver]}})
    router = from_config(config, clock, default_port=2525)

    async def burst():
        return await asyncio.gather(*(router.next_hops(f"school{n % 20}.test") for n in range(2000)))

    results = asyncio.run(burst())
    assert results[7] == [Hop("mx1.school7.test", "127.0.0.5", 2525, 10), Hop("mx2.school7.test", "127.0.0.9", 2525, 20)]
    assert len({tuple(r) for r in results}) == 20
