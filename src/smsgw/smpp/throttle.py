"""Pacing policies for the ESME, pure: the caller passes the time in and does the waiting.

- ``TokenBucket``: submits per second on average, with a small burst.
- ``Backoff``: a growing delay (reconnection, throttled pauses) that resets on success.
"""

from __future__ import annotations


def default_burst(rate: float) -> float:
    """A tenth of a second's worth of tokens, at least one.

    Small enough that a carrier counting per second never sees much above ``rate``, large
    enough that asyncio scheduling jitter does not waste capacity.
    """
    return max(1.0, rate / 10)


class TokenBucket:
    """At most ``rate`` events per second on average, and never more than ``burst`` at once.

    ``reserve`` always grants the event and says how long to wait before doing it: tokens may
    go negative (a debt repaid at ``rate``), so concurrent callers get successive slots in time
    rather than racing for the same token.
    """

    def __init__(self, rate: float, burst: float | None = None, *, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = default_burst(rate) if burst is None else burst
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._tokens = self.burst
        self._updated = now

    def reserve(self, now: float) -> float:
        """Take one token; returns the seconds to wait before the event may happen (0: now)."""
        self._refill(now)
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)


class Backoff:
    """Delays taken from ``steps`` in turn, then doubling, never above ``cap``.

    ``Backoff((0.5, 1, 2), cap=30)`` gives 0.5, 1, 2, 4, 8, 16, 30, 30, ...; ``reset()`` after
    a success starts again from the first step.
    """

    def __init__(self, steps: tuple[float, ...], cap: float) -> None:
        if not steps or any(step < 0 for step in steps) or cap < 0:
            raise ValueError("steps must be a non-empty tuple of delays >= 0, cap >= 0")
        self.steps = steps
        self.cap = cap
        self._attempt = 0

    @property
    def longest(self) -> float:
        """The delay used once the steps are exhausted: the cap."""
        return self.cap

    def next_delay(self) -> float:
        """The delay before the next attempt; each call moves one step further."""
        attempt = self._attempt
        self._attempt += 1
        if attempt < len(self.steps):
            return min(self.steps[attempt], self.cap)
        extra = attempt - len(self.steps) + 1
        # Bounded exponent: after 64 doublings the cap has long been reached.
        return min(self.steps[-1] * 2.0 ** min(extra, 64), self.cap)

    def reset(self) -> None:
        self._attempt = 0
