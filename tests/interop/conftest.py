"""Interop fixtures: our simulator on a free loopback port, and node peers as subprocesses.

Peers are installed by ``make interop-deps``; a missing peer fails the test with a message
saying so (never a skip). Every wait has a deadline (``PEER_DEADLINE_S``), nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from smsgw.config import SimulatorSettings
from smsgw.smpp.simulator import Simulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

PEER_DEADLINE_S = 10.0
NODE_DIR = Path(__file__).parent / "peers" / "node"
SYSTEM_ID = "interop"
PASSWORD = "pw1234"

Event = dict[str, Any]


def require_node_peers() -> str:
    """The node executable; fails the test when node or the npm ``smpp`` package is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the npm smpp peer cannot run (see make interop-deps)")
    if not (NODE_DIR / "node_modules" / "smpp").is_dir():
        pytest.fail(f"npm smpp is not installed in {NODE_DIR}: run `make interop-deps`")
    return node


class NodePeer:
    """A node script speaking JSON lines: commands on stdin, events on stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[Event] = []

    @classmethod
    async def start(cls, script: str, *args: str) -> NodePeer:
        node = require_node_peers()
        process = await asyncio.create_subprocess_exec(
            node,
            str(NODE_DIR / script),
            *args,
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def send(self, **command: Any) -> None:
        """Write one JSON command line to the peer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def next_event(self) -> Event:
        """The next JSON line the peer prints (fails on EOF or an error event)."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), PEER_DEADLINE_S)
        if not line:
            stderr = await self._stderr()
            pytest.fail(f"the node peer exited early; stderr:\n{stderr}")
        event: Event = json.loads(line)
        if event.get("event") == "error":
            pytest.fail(f"the node peer reported an error: {event['message']}")
        self.events.append(event)
        return event

    async def wait_for(self, predicate: Callable[[Event], bool]) -> Event:
        """The first event from now on for which ``predicate`` holds."""
        while True:
            event = await self.next_event()
            if predicate(event):
                return event

    async def collect(self, name: str, count: int) -> list[Event]:
        """The first ``count`` events called ``name`` the peer printed, waiting for them."""
        while len(found := self.named(name)) < count:
            await self.next_event()
        return found[:count]

    def named(self, name: str) -> list[Event]:
        """The events called ``name`` printed so far."""
        return [event for event in self.events if event["event"] == name]

    async def stop(self) -> None:
        """Close stdin (the peer exits) and reap the process, killing it if it lingers."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.communicate(), PEER_DEADLINE_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def _stderr(self) -> str:
        assert self.process.stderr is not None
        with contextlib.suppress(TimeoutError):
            data = await asyncio.wait_for(self.process.stderr.read(), PEER_DEADLINE_S)
            return data.decode(errors="replace")
        return ""


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[Simulator, int]]:
    """Our SMSC simulator on a free loopback port, receipts at once, all DELIVRD."""
    settings = SimulatorSettings(system_id=SYSTEM_ID, password=PASSWORD, receipt_delay_s=0, seed=3)
    sim = Simulator(settings)
    port = await sim.start("127.0.0.1", 0)
    yield sim, port
    await sim.stop()


@pytest.fixture
async def node_peers() -> AsyncIterator[list[NodePeer]]:
    """Node peers started by a test; all are stopped at the end."""
    peers: list[NodePeer] = []
    yield peers
    for peer in peers:
        await peer.stop()
