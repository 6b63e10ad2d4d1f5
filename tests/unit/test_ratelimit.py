"""The counters against guessing (appliance/ratelimit.py): shared by every process, read from memory while
nothing is counted."""
import threading

from appliance import ratelimit
from appliance.clock import FrozenClock
from tests.conftest import START

GUESSES = ratelimit.Limit("test", 3, 600)


def limiters(tmp_path, clock: FrozenClock, count: int = 2) -> list[ratelimit.RateLimiter]:
    """Limiters on the same files, as the web workers' are: each with its own connections and kept counts."""
    return [ratelimit.RateLimiter(tmp_path / "ratelimit.db", b"k" * 32, clock) for _ in range(count)]


def reads_of(limiter: ratelimit.RateLimiter) -> list[str]:
    """The statements the limiter's connection (this thread's) runs from now on (traced: no other way in)."""
    statements = []
    limiter._connection().set_trace_callback(statements.append)
    return statements


def test_a_subject_is_over_the_limit_once_its_window_is_used_up(tmp_path):
    clock = FrozenClock(START)
    [limiter] = limiters(tmp_path, clock, 1)
    assert [limiter.hit(GUESSES, "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.exceeded(GUESSES, "10.0.0.1") and not limiter.exceeded(GUESSES, "10.0.0.2")
    clock.advance(seconds=600)
    assert not limiter.exceeded(GUESSES, "10.0.0.1")          # a new window


def test_counts_made_by_one_process_are_seen_by_the_others_at_once(tmp_path):
    worker, other = limiters(tmp_path, FrozenClock(START))
    assert not worker.exceeded(GUESSES, "10.0.0.1")           # read, and kept
    for _ in range(3):
        other.hit(GUESSES, "10.0.0.1")
    assert worker.exceeded(GUESSES, "10.0.0.1")
    assert not worker.exceeded(GUESSES, "10.0.0.2")


def test_while_nothing_is_counted_a_check_reads_nothing_from_the_file(tmp_path):
    worker, other = limiters(tmp_path, FrozenClock(START))
    other.hit(GUESSES, "10.0.0.1")
    reads = reads_of(worker)
    assert not worker.exceeded(GUESSES, "10.0.0.1") and len(reads) == 1
    assert all(not worker.exceeded(GUESSES, "10.0.0.1") for _ in range(5)) and len(reads) == 1
    other.hit(GUESSES, "10.0.0.2")                             # anyone counted: every kept count is read again
    assert not worker.exceeded(GUESSES, "10.0.0.1") and len(reads) == 2


def test_the_mark_is_a_small_file_beside_the_counters(tmp_path):
    [limiter] = limiters(tmp_path, FrozenClock(START), 1)
    limiter.hit(GUESSES, "10.0.0.1")
    assert (tmp_path / "ratelimit.db-mark").stat().st_size == 8
    assert (tmp_path / "ratelimit.db-mark").stat().st_mode & 0o777 == 0o600


def test_a_thread_keeps_its_own_counts_and_no_more_than_its_share(tmp_path, monkeypatch):
    monkeypatch.setattr(ratelimit, "COUNTS_KEPT", 2)
    worker, other = limiters(tmp_path, FrozenClock(START))
    other.hit(GUESSES, "10.0.0.1")
    reads = reads_of(worker)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):       # the third finds two kept: all read again
        worker.exceeded(GUESSES, address)
    assert len(reads) == 3
    seen = []
    thread = threading.Thread(target=lambda: seen.append(reads_of(worker)) or worker.exceeded(GUESSES, "10.0.0.2"))
    thread.start()
    thread.join()
    assert len(seen[0]) == 1 and len(reads) == 3                # read by the other thread's own connection
