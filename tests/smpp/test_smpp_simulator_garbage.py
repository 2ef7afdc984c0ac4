"""The simulator's garbage_every_s behaviour over real TCP on loopback."""

from __future__ import annotations

import asyncio
import random
import struct

from tests.smpp.simulator_client import Client

from smsgw.config import SimulatorSettings
from smsgw.smpp import CommandStatus
from smsgw.smpp.simulator import Simulator
from smsgw.smpp.simulator.behaviours import GarbageBytes

DEADLINE_S = 5.0
HEADER_SIZE = 16


def test_garbage_cannot_be_framed() -> None:
    """Garbage starts with a command_length below a bare header's 16 octets."""
    garbage = GarbageBytes(1.0, random.Random(7)).garbage()  # noqa: S311 - a seeded test RNG
    (command_length,) = struct.unpack(">I", garbage[:4])
    assert command_length < HEADER_SIZE
    assert len(garbage) == GarbageBytes.SIZE


async def test_garbage_makes_a_bound_esme_close_the_connection() -> None:
    """A bound ESME gets garbage after garbage_every_s and closes the broken connection."""
    simulator = Simulator(SimulatorSettings(receipt_delay_s=0, seed=7, garbage_every_s=0.05))
    port = await simulator.start()
    client = await Client.connect(port)
    try:
        assert await client.bind() == CommandStatus.ESME_ROK
        await asyncio.wait_for(client.closed.wait(), DEADLINE_S)
        assert simulator.counters.garbage == 1
    finally:
        await client.close()
        await simulator.stop()


async def test_no_garbage_unless_asked() -> None:
    """Without garbage_every_s the simulator writes nothing of the kind."""
    simulator = Simulator(SimulatorSettings(receipt_delay_s=0, seed=7))
    assert simulator.garbage is None
    port = await simulator.start()
    client = await Client.connect(port)
    try:
        assert await client.bind() == CommandStatus.ESME_ROK
        response = await client.submit()
        assert response.command_status == CommandStatus.ESME_ROK
        assert simulator.counters.garbage == 0
        assert not client.closed.is_set()
    finally:
        await client.close()
        await simulator.stop()
