"""Lock a username after repeated authentication failures (PROTOCOL.md section 7).

Default policy: 10 failures within 5 minutes lock the username for 15 minutes; a success
clears its failures. Failures recorded while locked do not extend the lock.

This is the per-process count: it covers unknown usernames too (so a lock does not tell
which names exist) and spares the store once a process has seen enough. For existing
accounts the store counts as well, for every process and node (`Store.record_auth_failure`,
`Account.locked_until`, see `smsgw.engine.auth`), with the same ``policy``.

Memory is bounded: entries are kept in order of last activity; entries that can no longer
matter (failures outside the window and no running lock) are pruned from the oldest end,
and past ``max_tracked`` usernames active within the window the least recently active one
is dropped (it may forget a lock; at 100,000 usernames that is a flood, not a guess).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import NamedTuple


class LockPolicy(NamedTuple):
    """``failures`` within ``window_s`` lock a username for ``lock_s`` (PROTOCOL.md 7)."""

    failures: int = 10
    window_s: float = 300.0
    lock_s: float = 900.0


@dataclass(slots=True)
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = float("-inf")
    last_seen: float = float("-inf")


class Lockout:
    """Failure counting per username, with time passed in by the caller."""

    def __init__(
        self,
        failures: int = 10,
        window_s: float = 300.0,
        lock_s: float = 900.0,
        *,
        max_tracked: int = 100_000,
    ) -> None:
        if failures < 1 or window_s <= 0 or lock_s <= 0 or max_tracked < 1:
            raise ValueError("failures and max_tracked must be >= 1, durations > 0")
        self._failures = failures
        self._window_s = window_s
        self._lock_s = lock_s
        self._max_tracked = max_tracked
        self._forget_after_s = max(window_s, lock_s)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    @property
    def policy(self) -> LockPolicy:
        """What the store applies to the accounts it knows."""
        return LockPolicy(self._failures, self._window_s, self._lock_s)

    def __len__(self) -> int:
        """How many usernames are tracked now."""
        return len(self._entries)

    def is_locked(self, username: str, now: float) -> bool:
        entry = self._entries.get(username)
        return entry is not None and now < entry.locked_until

    def record_failure(self, username: str, now: float) -> None:
        self._prune(now)
        entry = self._entries.pop(username, None)
        if entry is None:
            entry = _Entry()
        self._entries[username] = entry  # re-inserted: the most recently active is last
        entry.last_seen = now
        if now < entry.locked_until:
            return
        horizon = now - self._window_s
        while entry.failures and entry.failures[0] <= horizon:
            entry.failures.popleft()
        entry.failures.append(now)
        if len(entry.failures) >= self._failures:
            entry.failures.clear()
            entry.locked_until = now + self._lock_s
        if len(self._entries) > self._max_tracked:
            self._entries.popitem(last=False)

    def record_success(self, username: str) -> None:
        self._entries.pop(username, None)

    def _prune(self, now: float) -> None:
        # Entries are ordered by last_seen and a lock ends at most lock_s after the failure
        # that set it, so every entry that can no longer matter sits at the front.
        while self._entries:
            username, entry = next(iter(self._entries.items()))
            if now - entry.last_seen < self._forget_after_s:
                return
            del self._entries[username]
