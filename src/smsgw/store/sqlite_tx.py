"""What every SQLite module shares: the time encoding and the write transaction."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def optional_datetime(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


class WriterConnection(sqlite3.Connection):
    """A connection whose write transactions first take an OS lock on a file beside the
    database (``<database>-writer.lock``, ``flock``).

    When another process holds SQLite's write lock, SQLite's busy handler sleeps and polls
    (1, 2, 5, 10 … up to 100 ms between tries), so two processes writing one file (the API
    and a separate engine) lose most of their time asleep. ``flock`` waits in the kernel
    without the GIL and wakes the waiter the moment the holder lets go. The kernel drops the
    lock of a process that dies. A process stopped (SIGSTOP) inside a transaction holds
    both locks until it continues or dies; the other writers wait for it.
    """

    lock_fd: int = -1

    def hold_write_lock(self, database: Path) -> None:
        self.lock_fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        super().close()
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` takes the file's write lock first, so what the transaction reads
    stays true until it commits, also against other processes (see `WriterConnection`)."""
    lock_fd = conn.lock_fd if isinstance(conn, WriterConnection) else -1
    if lock_fd >= 0:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        if lock_fd >= 0:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
