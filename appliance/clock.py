"""Clocks are injected, never patched: the system clock and a frozen one for tests."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        return datetime.now(timezone.utc)


class FrozenClock:
    """A clock that stands still until told to move (tests, benchmarks, replays)."""

    def __init__(self, start: datetime):
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        """Return the frozen time."""
        return self._now

    def advance(self, **delta) -> None:
        """Move the clock forward by a timedelta given as keyword arguments."""
        self._now += timedelta(**delta)


def to_tokyo(moment: datetime) -> datetime:
    """Return an aware datetime shown in Asia/Tokyo (storage is always UTC)."""
    return moment.astimezone(TOKYO)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time; a time without offset is taken as Asia/Tokyo, as staff mean it."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=TOKYO)
    return moment.astimezone(timezone.utc)


def school_year(moment: datetime) -> int:
    """Return the Japanese school year (年度, April to March) a moment falls in, in Tokyo."""
    local = to_tokyo(moment)
    return local.year if local.month >= 4 else local.year - 1
