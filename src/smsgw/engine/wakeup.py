"""Wake-ups across processes sharing one SQLite file: a datagram says "work is due".

An engine in a process of its own is not woken by the API's accepts, nor the callback worker
apart by the delivery engine's receipts: without this they read every `pacing.PROBE_S`
whether work is due. Here the writer of the work sends an empty datagram to a Unix socket in
Linux's abstract namespace, named after the database file and the kind of work; the
process doing that work listens on it and wakes its loop at once, so it needs no probe.

A datagram is a hint, never the only way: one lost (the listener was restarting, its buffer
full) is found by the next claim (``engine.poll_s``). Datagrams carry nothing, and anyone
local may send one (at worst an early claim) or hold the name first (the engine then probes
as before). Not on PostgreSQL (nodes on several machines) nor outside Linux: there
`address` is None and the loops probe.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

log = logging.getLogger("smsgw.engine.wakeup")

Work = Literal["messages", "callbacks"]


def address(database: Path | None, work: Work) -> bytes | None:
    """The abstract socket name for ``work`` written to this SQLite file (None for another
    backend); None where wake-ups are not used (outside Linux)."""
    if database is None or not sys.platform.startswith("linux"):
        return None
    digest = hashlib.blake2b(os.path.realpath(database).encode(), digest_size=12).hexdigest()
    return f"\0smsgw-{digest}-{work}".encode()


class Sender:
    """Sends one datagram per turn of the event loop however often `notify` is called."""

    def __init__(self, target: bytes) -> None:
        self._target = target
        self._socket: socket.socket | None = None
        self._pending = False

    def notify(self) -> None:
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._pending = False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.settimeout(0)
            self._socket.sendto(b"", self._target)
        except OSError:
            pass  # nobody listening, or its buffer full: the next claim finds the work

    def close(self) -> None:
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
