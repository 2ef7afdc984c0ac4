"""``GET /submitted`` of the simulator's control endpoint: the submits it accepted, in order."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from smsgw.config import SimulatorSettings
from smsgw.smpp import CommandStatus
from smsgw.smpp.simulator import ControlApp, Simulator, control_config
from tests.reliability.audit import parse_submit
from tests.smpp.simulator_client import Client


@pytest.fixture
async def control() -> AsyncIterator[tuple[Simulator, int, str]]:
    """A simulator on a free port and its control endpoint served by uvicorn."""
    simulator = Simulator(SimulatorSettings(receipt_delay_s=0, seed=1))
    smpp_port = await simulator.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(control_config(ControlApp(simulator), 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield simulator, smpp_port, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
        await simulator.stop()


async def test_get_submitted_lists_each_accepted_submit_in_order(
    control: tuple[Simulator, int, str],
) -> None:
    """GET /submitted answers each submit's destination, esm_class, data_coding, short_message."""
    simulator, smpp_port, url = control
    client = await Client.connect(smpp_port)
    try:
        assert await client.bind("transmitter") == CommandStatus.ESME_ROK
        for text in (b"crash000001 hello", b"crash000002 hello"):
            await client.submit("886912345678", short_message=text, registered_delivery=0)
        async with httpx.AsyncClient(base_url=url) as http:
            entries = (await http.get("/submitted")).json()
    finally:
        await client.close()
    assert [parse_submit(entry).token for entry in entries] == ["crash000001", "crash000002"]
    assert entries[0] == {
        "destination": "886912345678",
        "esm_class": 0,
        "data_coding": 0,
        "short_message": b"crash000001 hello".hex(),
    }
    assert len(simulator.submitted) == 2


async def test_post_submitted_is_not_allowed(control: tuple[Simulator, int, str]) -> None:
    """POST /submitted answers 405."""
    _, _, url = control
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/submitted")
    assert response.status_code == 405
