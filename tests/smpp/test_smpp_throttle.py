from __future__ import annotations

import pytest

from smsgw.smpp.throttle import Backoff, TokenBucket, default_burst


def test_burst_is_a_tenth_of_the_rate_and_at_least_one() -> None:
    """The default burst is a tenth of a second's worth of events, never below one."""
    assert default_burst(100.0) == 10.0
    assert default_burst(5.0) == 1.0


def test_a_full_bucket_grants_the_burst_at_once() -> None:
    """A full bucket lets ``burst`` events through without waiting, then makes the next wait."""
    bucket = TokenBucket(100.0, now=0.0)
    assert [bucket.reserve(0.0) for _ in range(10)] == [0.0] * 10
    assert bucket.reserve(0.0) == pytest.approx(0.01)


def test_concurrent_reservations_get_successive_slots() -> None:
    """Callers reserving at the same instant are spaced 1/rate apart, not given the same slot."""
    bucket = TokenBucket(10.0, burst=1.0, now=0.0)
    waits = [bucket.reserve(0.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_average_rate_never_exceeds_the_limit() -> None:
    """Events done when the bucket allows them never exceed rate * time + burst."""
    bucket = TokenBucket(50.0, now=0.0)
    now = 0.0
    times: list[float] = []
    for _ in range(1000):
        now += bucket.reserve(now)
        times.append(now)
    elapsed = times[-1] - times[0]
    assert len(times) <= 50.0 * elapsed + bucket.burst + 1e-9
    assert elapsed == pytest.approx((1000 - bucket.burst) / 50.0)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    """A long idle period refills the bucket to its burst, not beyond."""
    bucket = TokenBucket(10.0, burst=2.0, now=0.0)
    bucket.reserve(0.0)
    bucket.reserve(0.0)
    assert [bucket.reserve(100.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve(100.0) == pytest.approx(0.1)


def test_a_clock_going_backwards_grants_nothing_extra() -> None:
    """An earlier ``now`` than the last one adds no tokens."""
    bucket = TokenBucket(10.0, burst=1.0, now=5.0)
    bucket.reserve(5.0)
    assert bucket.reserve(4.0) == pytest.approx(0.1)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, None), (-1.0, None), (10.0, 0.5)])
def test_bad_bucket_parameters_are_refused(rate: float, burst: float | None) -> None:
    """A rate that is not positive or a burst below one is a ValueError."""
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)


def test_backoff_follows_the_steps_then_doubles_up_to_the_cap() -> None:
    """Delays follow the given steps, then double, and stay at the cap."""
    backoff = Backoff((0.5, 1.0, 2.0), cap=10.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.longest == 10.0


def test_backoff_steps_above_the_cap_are_capped() -> None:
    """A step larger than the cap is replaced by the cap."""
    backoff = Backoff((5.0, 60.0), cap=30.0)
    assert [backoff.next_delay(), backoff.next_delay()] == [5.0, 30.0]


def test_backoff_reset_starts_again() -> None:
    """After reset the first step is used again."""
    backoff = Backoff((1.0,), cap=8.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_backoff_never_overflows_after_many_attempts() -> None:
    """Thousands of attempts still give the cap, not an overflow."""
    backoff = Backoff((1.0,), cap=30.0)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert delays[-1] == 30.0


def test_bad_backoff_parameters_are_refused() -> None:
    """Empty steps or negative delays are a ValueError."""
    with pytest.raises(ValueError, match="steps"):
        Backoff((), cap=1.0)
    with pytest.raises(ValueError, match="steps"):
        Backoff((-1.0,), cap=1.0)
