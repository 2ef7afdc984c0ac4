from __future__ import annotations

import pytest

from smsgw.domain.lockout import Lockout


def fail(lockout: Lockout, username: str, times: int, at: float) -> None:
    for _ in range(times):
        lockout.record_failure(username, at)


def test_ten_failures_within_the_window_lock_the_username() -> None:
    """The tenth failure within five minutes locks the username."""
    lockout = Lockout(failures=10, window_s=300, lock_s=900)
    fail(lockout, "alice", 9, at=1000.0)
    assert not lockout.is_locked("alice", 1000.0)
    lockout.record_failure("alice", 1299.0)
    assert lockout.is_locked("alice", 1299.0)


def test_a_lock_lasts_lock_s_then_lifts() -> None:
    """A lock holds until lock_s after the failure that set it, and not a moment longer."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    fail(lockout, "alice", 3, at=1000.0)
    assert lockout.is_locked("alice", 1899.9)
    assert not lockout.is_locked("alice", 1900.0)


def test_failures_outside_the_window_do_not_count() -> None:
    """Failures older than the window are forgotten."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    fail(lockout, "alice", 2, at=1000.0)
    lockout.record_failure("alice", 1300.0)
    assert not lockout.is_locked("alice", 1300.0)


def test_failures_while_locked_do_not_extend_the_lock() -> None:
    """Hammering a locked username does not keep it locked forever."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    fail(lockout, "alice", 3, at=1000.0)
    fail(lockout, "alice", 5, at=1800.0)
    assert not lockout.is_locked("alice", 1900.0)


def test_the_counter_restarts_after_a_lock_lifts() -> None:
    """After a lock ends the username gets a fresh budget of failures."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    fail(lockout, "alice", 3, at=1000.0)
    fail(lockout, "alice", 2, at=1900.0)
    assert not lockout.is_locked("alice", 1900.0)


def test_success_clears_failures() -> None:
    """A success forgets earlier failures of that username."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    fail(lockout, "alice", 2, at=1000.0)
    lockout.record_success("alice")
    lockout.record_failure("alice", 1001.0)
    assert not lockout.is_locked("alice", 1001.0)


def test_usernames_are_counted_separately() -> None:
    """One username's failures never lock another."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    fail(lockout, "mallory", 3, at=1000.0)
    assert lockout.is_locked("mallory", 1000.0)
    assert not lockout.is_locked("alice", 1000.0)


def test_stale_entries_are_pruned() -> None:
    """Usernames whose failures and locks have run out stop taking memory."""
    lockout = Lockout(failures=3, window_s=300, lock_s=900)
    for index in range(50):
        lockout.record_failure(f"user{index}", 1000.0)
    lockout.record_failure("late", 1900.0)
    assert len(lockout) == 1


def test_running_locks_are_not_pruned_early() -> None:
    """Pruning keeps a username whose lock is still running."""
    lockout = Lockout(failures=1, window_s=300, lock_s=900)
    lockout.record_failure("locked", 1000.0)
    lockout.record_failure("other", 1500.0)
    assert lockout.is_locked("locked", 1500.0)


def test_tracked_usernames_are_bounded_evicting_the_least_recently_active() -> None:
    """Past max_tracked usernames the least recently active one is dropped."""
    lockout = Lockout(failures=2, window_s=300, lock_s=900, max_tracked=3)
    for index, username in enumerate(["a", "b", "c", "d"]):
        lockout.record_failure(username, 1000.0 + index)
    lockout.record_failure("a", 1010.0)
    assert len(lockout) == 3
    assert not lockout.is_locked("a", 1010.0)
    lockout.record_failure("d", 1011.0)
    assert lockout.is_locked("d", 1011.0)


@pytest.mark.parametrize(
    ("failures", "window_s", "lock_s"), [(0, 300.0, 900.0), (3, 0.0, 900.0), (3, 300.0, -1.0)]
)
def test_nonsense_policies_are_refused(failures: int, window_s: float, lock_s: float) -> None:
    """A policy that could never or always lock is a ValueError."""
    with pytest.raises(ValueError, match="must be"):
        Lockout(failures=failures, window_s=window_s, lock_s=lock_s)
