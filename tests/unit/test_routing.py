"""Next hops: the backend contract every DnsBackend passes, and the router's rules over the fake."""
import asyncio
import random

import pytest

from appliance.config import ConfigError, load_config
from mta.routing import (
    DnspythonBackend,
    FakeDns,
    Hop,
    NoMailHost,
    NoSuchDomain,
    NullMx,
    PermanentRoutingError,
    Records,
    Router,
    TemporaryRoutingError,
    from_config,
    parse_endpoint,
)

PORT = 2525   # tests' sinks listen on high ports


def hops(router: Router, domain: str) -> list[Hop]:
    return asyncio.run(router.next_hops(domain))


class BackendContract:
    """What every DnsBackend does; a subclass provides the ``zone`` and ``backend`` fixtures.

    ``zone`` sets records (FakeDns itself, or tests.integration.dns_server.Zone) and
    ``backend`` answers from them.
    """

    @pytest.fixture
    def router(self, backend, clock):
        return Router(backend, clock, default_port=PORT)

    def test_mx_records_and_their_ttl(self, zone, backend):
        zone.add_mx("example.test", [(20, "mx2.example.test"), (10, "MX1.Example.Test.")], ttl=600)
        answer = asyncio.run(backend.mx("Example.TEST."))
        assert sorted(answer.values) == [(10, "mx1.example.test"), (20, "mx2.example.test")]
        assert answer.ttl == 600

    def test_name_without_mx_answers_empty_with_the_negative_ttl(self, zone, backend):
        zone.add_a("plain.test", "192.0.2.1")
        assert asyncio.run(backend.mx("plain.test")) == Records((), zone.negative_ttl)

    def test_name_with_records_only_below_it_exists(self, zone, backend):
        zone.add_a("mx1.parent.test", "192.0.2.1")
        assert asyncio.run(backend.mx("parent.test")).values == ()

    def test_null_mx(self, zone, backend):
        zone.add_null_mx("nomail.test")
        assert asyncio.run(backend.mx("nomail.test")).values == ((0, "."),)

    def test_addresses_ipv4_first_with_the_lowest_ttl(self, zone, backend):
        zone.add_aaaa("mx1.example.test", "2001:db8::1", ttl=900)
        zone.add_a("mx1.example.test", "192.0.2.1", "192.0.2.2", ttl=600)
        answer = asyncio.run(backend.addresses("mx1.example.test"))
        assert sorted(answer.values[:2]) == ["192.0.2.1", "192.0.2.2"]
        assert answer.values[2:] == ("2001:db8::1",)
        assert answer.ttl == 600

    def test_host_without_addresses_answers_empty(self, zone, backend):
        zone.add_mx("example.test", [(10, "mx1.example.test")])
        assert asyncio.run(backend.addresses("example.test")).values == ()

    def test_unknown_name_is_nxdomain(self, zone, backend):
        zone.add_a("known.test", "192.0.2.1")
        with pytest.raises(NoSuchDomain):
            asyncio.run(backend.mx("unknown.test"))
        with pytest.raises(NoSuchDomain):
            asyncio.run(backend.addresses("unknown.test"))

    def test_servfail_is_temporary(self, zone, backend):
        zone.servfail("broken.test")
        with pytest.raises(TemporaryRoutingError):
            asyncio.run(backend.mx("broken.test"))
        with pytest.raises(TemporaryRoutingError):
            asyncio.run(backend.addresses("broken.test"))

    def test_timeout_is_temporary(self, zone, backend):
        zone.slow("slow.test")
        with pytest.raises(TemporaryRoutingError):
            asyncio.run(backend.mx("slow.test"))

    def test_router_orders_hosts_by_preference(self, zone, router):
        zone.add_mx("docomo.test", [(20, "mx2.docomo.test"), (10, "mx1.docomo.test")])
        zone.add_a("mx1.docomo.test", "127.0.0.2")
        zone.add_aaaa("mx1.docomo.test", "::1")
        zone.add_a("mx2.docomo.test", "127.0.0.3")
        assert hops(router, "docomo.test") == [
            Hop("mx1.docomo.test", "127.0.0.2", PORT, 10),
            Hop("mx1.docomo.test", "::1", PORT, 10),
            Hop("mx2.docomo.test", "127.0.0.3", PORT, 20),
        ]

    def test_router_skips_mx_hosts_without_addresses(self, zone, router):
        zone.add_mx("example.test", [(10, "gone.example.test"), (20, "mx2.example.test")])
        zone.add_a("mx2.example.test", "127.0.0.3")
        assert hops(router, "example.test") == [Hop("mx2.example.test", "127.0.0.3", PORT, 20)]

    def test_router_falls_back_to_the_domain_without_mx(self, zone, router):
        zone.add_a("plain.test", "127.0.0.4")
        assert hops(router, "plain.test") == [Hop("plain.test", "127.0.0.4", PORT, 0)]

    def test_router_null_mx_is_permanent(self, zone, router):
        zone.add_null_mx("nomail.test")
        zone.add_a("nomail.test", "127.0.0.5")   # an address does not bring mail back
        with pytest.raises(NullMx) as caught:
            hops(router, "nomail.test")
        assert caught.value.permanent

    def test_router_nxdomain_is_permanent(self, zone, router):
        zone.add_a("known.test", "192.0.2.1")
        with pytest.raises(NoSuchDomain):
            hops(router, "unknown.test")

    def test_router_domain_without_mx_or_address_is_permanent(self, zone, router):
        zone.add_a("mx1.parent.test", "192.0.2.1")
        with pytest.raises(NoMailHost):
            hops(router, "parent.test")

    def test_router_mx_hosts_without_addresses_are_permanent(self, zone, router):
        zone.add_mx("example.test", [(10, "gone.example.test")])
        with pytest.raises(NoMailHost):
            hops(router, "example.test")

    def test_router_servfail_and_timeout_are_temporary(self, zone, router):
        zone.servfail("broken.test")
        zone.slow("slow.test")
        for domain in ("broken.test", "slow.test"):
            with pytest.raises(TemporaryRoutingError) as caught:
                hops(router, domain)
            assert not caught.value.permanent

    def test_router_mx_host_that_times_out_is_temporary(self, zone, router):
        zone.add_mx("example.test", [(10, "slow.example.test")])
        zone.slow("slow.example.test")
        with pytest.raises(TemporaryRoutingError):
            hops(router, "example.test")


class TestFakeDns(BackendContract):
    @pytest.fixture
    def zone(self):
        return FakeDns()

    @pytest.fixture
    def backend(self, zone):
        return zone


@pytest.fixture
def dns():
    return FakeDns()


@pytest.fixture
def router(dns, clock):
    return Router(dns, clock, default_port=PORT, rng=random.Random(7))


def test_equal_preferences_are_shuffled_on_every_call(dns, router):
    dns.add_mx("gmail.test", [(5, "a.gmail.test"), (5, "b.gmail.test"), (5, "c.gmail.test"), (10, "z.gmail.test")])
    for host, address in [("a", "127.0.0.2"), ("b", "127.0.0.3"), ("c", "127.0.0.4"), ("z", "127.0.0.5")]:
        dns.add_a(f"{host}.gmail.test", address)
    orders = [[hop.host[0] for hop in hops(router, "gmail.test")] for _ in range(60)]
    assert {order[0] for order in orders} == {"a", "b", "c"}
    assert all(order[-1] == "z" and sorted(order[:3]) == ["a", "b", "c"] for order in orders)
    assert dns.queries["mx", "gmail.test"] == 1   # shuffled from the cache, not asked again


def test_transport_entry_wins_over_star_and_dns(dns, clock):
    router = Router(dns, clock, transport={"*": ("smarthost.test", 587), "Docomo.TEST": ("127.0.0.9", 2526)})
    assert hops(router, "docomo.test.") == [Hop("127.0.0.9", "127.0.0.9", 2526, 0)]
    assert hops(router, "other.test") == [Hop("smarthost.test", "smarthost.test", 587, 0)]
    assert not dns.queries


def test_transport_without_star_leaves_other_domains_to_dns(dns, clock):
    dns.add_a("plain.test", "127.0.0.4")
    router = Router(dns, clock, transport={"docomo.test": ("127.0.0.9", 2526)}, default_port=PORT)
    assert hops(router, "plain.test") == [Hop("plain.test", "127.0.0.4", PORT, 0)]


def test_answers_are_kept_for_the_lowest_ttl(dns, router, clock):
    dns.add_mx("example.test", [(10, "mx1.example.test")], ttl=3600)
    dns.add_a("mx1.example.test", "127.0.0.2", ttl=600)
    hops(router, "Example.Test.")
    clock.advance(seconds=599)
    hops(router, "example.test")
    assert dns.queries["mx", "example.test"] == 1
    dns.remove("mx1.example.test")
    dns.add_a("mx1.example.test", "127.0.0.3")
    clock.advance(seconds=1)
    assert hops(router, "example.test") == [Hop("mx1.example.test", "127.0.0.3", PORT, 10)]
    assert dns.queries["mx", "example.test"] == 2


@pytest.mark.parametrize("ttl, kept", [(5, 60), (30 * 86400, 86400)])
def test_ttls_are_held_between_floor_and_ceiling(dns, router, clock, ttl, kept):
    dns.add_a("plain.test", "127.0.0.4", ttl=ttl)
    dns.negative_ttl = ttl   # the MX NODATA answer counts too
    hops(router, "plain.test")
    clock.advance(seconds=kept - 1)
    hops(router, "plain.test")
    assert dns.queries["mx", "plain.test"] == 1
    clock.advance(seconds=1)
    hops(router, "plain.test")
    assert dns.queries["mx", "plain.test"] == 2


def test_nxdomain_is_kept_for_the_negative_ttl(dns, router, clock):
    with pytest.raises(NoSuchDomain):
        hops(router, "new.test")
    dns.add_a("new.test", "127.0.0.4")
    clock.advance(seconds=router.negative_ttl - 1)
    with pytest.raises(NoSuchDomain):
        hops(router, "new.test")
    clock.advance(seconds=1)
    assert hops(router, "new.test") == [Hop("new.test", "127.0.0.4", PORT, 0)]
    assert dns.queries["mx", "new.test"] == 2


def test_temporary_failures_are_kept_briefly(dns, router, clock):
    dns.slow("slow.test")
    for _ in range(3):
        with pytest.raises(TemporaryRoutingError):
            hops(router, "slow.test")
    assert dns.queries["mx", "slow.test"] == 1
    dns.remove("slow.test")
    dns.add_a("slow.test", "127.0.0.4")
    clock.advance(seconds=router.failure_ttl)
    assert hops(router, "slow.test") == [Hop("slow.test", "127.0.0.4", PORT, 0)]


def test_partial_answer_is_kept_only_for_the_floor(dns, router, clock):
    dns.add_mx("example.test", [(10, "mx1.example.test"), (20, "mx2.example.test")], ttl=3600)
    dns.add_a("mx1.example.test", "127.0.0.2", ttl=3600)
    dns.slow("mx2.example.test")
    assert [hop.host for hop in hops(router, "example.test")] == ["mx1.example.test"]
    clock.advance(seconds=router.min_ttl)
    hops(router, "example.test")
    assert dns.queries["mx", "example.test"] == 2


def test_concurrent_lookups_share_one_query(dns, router):
    domains = [f"school{n}.test" for n in range(20)]
    for domain in domains:
        dns.add_mx(domain, [(10, f"mx.{domain}")])
        dns.add_a(f"mx.{domain}", "127.0.0.2")

    async def burst():
        return await asyncio.gather(*(router.next_hops(domains[n % 20]) for n in range(100 * 20)))

    results = asyncio.run(burst())
    assert len(results) == 2000 and all(len(r) == 1 for r in results)
    assert sum(n for (kind, _), n in dns.queries.items() if kind == "mx") == 20
    assert sum(n for (kind, _), n in dns.queries.items() if kind == "addresses") == 20


def test_errors_are_shared_as_fresh_exceptions(dns, router):
    async def burst():
        return await asyncio.gather(*(router.next_hops("missing.test") for _ in range(100)), return_exceptions=True)

    errors = asyncio.run(burst())
    assert all(isinstance(e, NoSuchDomain) for e in errors)
    assert len({id(e) for e in errors}) == 100
    assert dns.queries["mx", "missing.test"] == 1


def test_a_caller_giving_up_does_not_cancel_the_shared_query(dns, router):
    dns.add_a("plain.test", "127.0.0.4")

    async def scenario():
        first = asyncio.create_task(router.next_hops("plain.test"))
        second = asyncio.create_task(router.next_hops("plain.test"))
        await asyncio.sleep(0)   # both now wait on the one query
        first.cancel()
        return await second

    assert asyncio.run(scenario()) == [Hop("plain.test", "127.0.0.4", PORT, 0)]
    assert dns.queries["mx", "plain.test"] == 1


def test_permanent_and_temporary_errors_are_told_apart():
    assert issubclass(NullMx, PermanentRoutingError) and NullMx.permanent
    assert issubclass(NoMailHost, PermanentRoutingError) and NoSuchDomain.permanent
    assert not TemporaryRoutingError.permanent
    assert str(NullMx("nomail.test", "takes no mail")) == "nomail.test: takes no mail"


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.1", ("192.0.2.1", 53)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("2001:db8::53", ("2001:db8::53", 53)),
    ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ("[::1]", ("::1", 53)),
    (" smarthost.test ", ("smarthost.test", 53)),
])
def test_parse_endpoint(text, expected):
    assert parse_endpoint(text, 53) == expected


@pytest.mark.parametrize("text", ["", ":25", "host:", "host:smtp", "host:0", "host:70000", "[::1", "[::1]25"])
def test_parse_endpoint_refuses_malformed(text):
    with pytest.raises(ValueError):
        parse_endpoint(text, 53)


def test_from_config_builds_transport_and_nameservers(tmp_path, clock):
    config = load_config(tmp_path, environ={"APPLIANCE_MTA__NAMESERVERS": "127.0.0.1:5353,::1",
                                            "APPLIANCE_MTA__TRANSPORT": "*=smarthost.test:587,docomo.test=127.0.0.9"})
    router = from_config(config, clock, default_port=PORT)
    assert isinstance(router.backend, DnspythonBackend)
    assert [(ns.address, ns.port) for ns in router.backend._resolver.nameservers] == [("127.0.0.1", 5353), ("::1", 53)]
    assert router.transport == {"*": ("smarthost.test", 587), "docomo.test": ("127.0.0.9", 25)}
    assert router.default_port == PORT


@pytest.mark.parametrize("overrides, setting", [
    ({"nameservers": ["ns.example.test"]}, "mta.nameservers"),
    ({"nameservers": ["127.0.0.1:dns"]}, "mta.nameservers"),
    ({"transport": {"*": "smarthost.test:smtp"}}, "mta.transport: *"),
])
def test_from_config_names_the_bad_setting(tmp_path, clock, overrides, setting):
    config = load_config(tmp_path, environ={}, overrides={"mta": overrides})
    with pytest.raises(ConfigError, match=setting):
        from_config(config, clock)
