"""Wake-ups across processes: "work is due", sent by the process that wrote it.

An engine in a process of its own is not woken by the API's accepts, nor the callback worker
apart by the delivery engine's receipts: without this they read every `pacing.PROBE_S`
whether work is due. Here the writer of the work signals it, and the process doing that work
wakes its loop at once, so it needs no probe:

- SQLite: an empty datagram to a Unix socket in Linux's abstract namespace, named after the
  database file and the kind of work (`Sender`, `Listener`). Anyone local may send one (at
  worst an early claim) or hold the name first (the engine then probes as before). Outside
  Linux `address` is None and the loops probe.
- PostgreSQL: ``NOTIFY`` on a channel per kind of work (`NotifySender`), heard by every node
  that ``LISTEN``s (`PostgresStore.listen`), on this machine or another.

A signal is a hint, never the only way: one lost (the listener was restarting or
reconnecting, its buffer full) is found by the next claim (``engine.poll_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from smsgw.errors import StoreError

log = logging.getLogger("smsgw.engine.wakeup")

Work = Literal["messages", "callbacks"]
CHANNELS: dict[Work, str] = {"messages": "smsgw_messages_due", "callbacks": "smsgw_callbacks_due"}


def address(database: Path | None, work: Work) -> bytes | None:
    """The abstract socket name for ``work`` written to this SQLite file (None for another
    backend); None where wake-ups are not used (outside Linux)."""
    if database is None or not sys.platform.startswith("linux"):
        return None
    digest = hashlib.blake2b(os.path.realpath(database).encode(), digest_size=12).hexdigest()
    return f"\0smsgw-{digest}-{work}".encode()


# The most NOTIFYs a sender sends per second: one asked for within this time of the last is
# sent at its end. Under load a NOTIFY per turn of the API's loop cost PostgreSQL accepts a
# fifth of their rate (bench/accept.py); a woken engine claims until no work is left anyway.
SIGNAL_INTERVAL_S = 0.05


class _Spacer:
    """Runs ``emit`` at most once per ``interval_s``, and never drops a call asked for: one
    asked for within the interval runs at its end; one due now runs on the next turn of the
    loop (``call_soon``, so after what is already scheduled)."""

    def __init__(self, emit: Callable[[], None], interval_s: float) -> None:
        self._emit = emit
        self._interval_s = interval_s
        self._handle: asyncio.Handle | None = None
        self._last = float("-inf")
        self.sent = 0

    def notify(self) -> None:
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._last + self._interval_s - loop.time()
        self._handle = (
            loop.call_later(delay, self._fire) if delay > 0 else loop.call_soon(self._fire)
        )

    def _fire(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        self.sent += 1
        self._emit()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Sender:
    """Datagrams to a `Listener`'s name: one per turn of the loop at most, not spaced (a
    datagram costs a system call; spacing them cost bench/e2e.py ~8% of its rate)."""

    def __init__(self, target: bytes) -> None:
        self._target = target
        self._socket: socket.socket | None = None
        self._spacer = _Spacer(self._emit, 0.0)
        self.notify = self._spacer.notify

    @property
    def sent(self) -> int:
        return self._spacer.sent

    def _emit(self) -> None:
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.settimeout(0)
            self._socket.sendto(b"", self._target)
        except OSError:
            pass  # nobody listening, or its buffer full: the next claim finds the work

    def close(self) -> None:
        self._spacer.cancel()
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Listener:
    """Calls ``on_wake`` on the loop when datagrams arrived (once per batch of them)."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._on_wake: Callable[[], None] = _nothing
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def bind(cls, name: bytes | None) -> Listener | None:
        """A listener on ``name``; None if there is no name or another process holds it."""
        if name is None:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(name)
        except OSError as error:
            sock.close()
            log.warning("cannot listen for wake-ups (%s); probing instead", error.strerror)
            return None
        sock.settimeout(0)
        return cls(sock)

    def start(self, on_wake: Callable[[], None]) -> None:
        self._on_wake = on_wake
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._socket.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while True:
                self._socket.recv(1)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            log.exception("wake-up socket failed")
        self._on_wake()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()


def _nothing() -> None:
    pass


class NotifySender:
    """``NOTIFY`` on the channel of ``work`` (PostgreSQL), through ``send``; at most one
    per ``SIGNAL_INTERVAL_S``."""

    def __init__(self, send: Callable[[str], Awaitable[None]], work: Work) -> None:
        self._send = send
        self._channel = CHANNELS[work]
        self._tasks: set[asyncio.Task[None]] = set()
        self._spacer = _Spacer(self._emit, SIGNAL_INTERVAL_S)
        self.notify = self._spacer.notify

    def _emit(self) -> None:
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        # The store down: the next claim (or its failure) tells.
        with contextlib.suppress(StoreError):
            await self._send(self._channel)

    def close(self) -> None:
        self._spacer.cancel()
        for task in self._tasks:
            task.cancel()
