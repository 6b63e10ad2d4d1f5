"""Integration tier: real processes and servers on loopback, free ports, readiness polling."""

import pytest

from tests.integration.browser import (  # noqa: F401  (fixtures: browser, demo_site, screen, page, screenshot, seen, sink)
    browser_fixture, demo_site_fixture, page_fixture, screen_fixture, screenshot_fixture, seen_fixture, sink_fixture)
from tests.integration.dns_server import dns_server_fixture  # noqa: F401  (the `dns_server` fixture)
from tests.integration.site import Site


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def site(tmp_path):
    """A fresh, not yet initialised site; its services are stopped after the test."""
    running = Site(tmp_path / "data")
    yield running
    running.stop()

