"""Fixtures shared by both tiers: a fresh data dir and appliance per test."""
from datetime import datetime, timezone

import pytest

from appliance import db
from appliance.clock import FrozenClock
from appliance.runtime import init_data_dir

START = datetime(2026, 4, 6, 0, 0, tzinfo=timezone.utc)   # 09:00 in Tokyo, first day of term


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(tmp_path, clock):
    """An initialised appliance in a temporary data dir, with a frozen clock."""
    appliance = init_data_dir(tmp_path / "data", environ={}, overrides={"site": {"name": "test-site"}},
                              clock=clock)
    yield appliance
    db.close_database()
