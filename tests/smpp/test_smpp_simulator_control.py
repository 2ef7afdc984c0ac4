"""The simulator's control endpoint over real HTTP, and the `smsgw simulator` commands."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from tests.reliability.audit import parse_submit
from tests.smpp.simulator_client import Client

from smsgw.cli import main
from smsgw.config import SimulatorSettings
from smsgw.smpp import CommandStatus
from smsgw.smpp.simulator import ControlApp, Simulator, control_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


class Running:
    def __init__(self, simulator: Simulator, smpp_port: int, control_url: str) -> None:
        self.simulator = simulator
        self.smpp_port = smpp_port
        self.control_url = control_url

    async def receiver(self) -> Client:
        client = await Client.connect(self.smpp_port)
        assert await client.bind("receiver") == CommandStatus.ESME_ROK
        return client


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """A simulator on a free port with its control endpoint served by uvicorn."""
    monkeypatch.chdir(tmp_path)
    simulator = Simulator(SimulatorSettings(receipt_delay_s=0, seed=1))
    smpp_port = await simulator.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(control_config(ControlApp(simulator), 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Running(simulator, smpp_port, f"http://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        server.should_exit = True
        await task
        sock.close()
        await simulator.stop()


async def test_post_mo_without_a_receiver_is_a_conflict(running: Running) -> None:
    """POST /mo answers 409 when no receiver is bound."""
    async with httpx.AsyncClient(base_url=running.control_url) as http:
        response = await http.post("/mo", data={"from": "0912345678", "to": "0911", "text": "hi"})
    assert (response.status_code, response.text) == (409, "no receiver bound")


async def test_post_mo_reaches_the_bound_receiver(running: Running) -> None:
    """POST /mo answers 200 "sent to 1" and the receiver gets the MO."""
    client = await running.receiver()
    try:
        async with httpx.AsyncClient(base_url=running.control_url) as http:
            form = {"from": "0912345678", "to": "0911000000", "text": "yes please"}
            response = await http.post("/mo", data=form)
        mo = await client.next_delivered()
    finally:
        await client.close()
    assert (response.status_code, response.text) == (200, "sent to 1")
    assert (mo.source_addr, mo.destination_addr) == ("886912345678", "0911000000")
    assert mo.short_message == b"yes please"


@pytest.mark.parametrize(
    ("form", "answer"),
    [
        ({"from": "0912345678", "text": "hi"}, "missing to"),
        ({"from": "not a number", "to": "0911", "text": "hi"}, "from is not a mobile number"),
    ],
)
async def test_post_mo_with_bad_fields_is_a_bad_request(
    running: Running, form: dict[str, str], answer: str
) -> None:
    """POST /mo answers 400 for a missing field or a sender that is no mobile number."""
    client = await running.receiver()
    try:
        async with httpx.AsyncClient(base_url=running.control_url) as http:
            response = await http.post("/mo", data=form)
    finally:
        await client.close()
    assert (response.status_code, response.text) == (400, answer)


async def test_get_stats_reports_the_counters(running: Running) -> None:
    """GET /stats answers the simulator's counters as JSON."""
    client = await running.receiver()
    try:
        async with httpx.AsyncClient(base_url=running.control_url) as http:
            stats = (await http.get("/stats")).json()
            missing = await http.get("/nothing")
    finally:
        await client.close()
    assert stats["connections"] == 1
    assert stats["binds"] == 1
    assert stats["receipts_sent"] == 0
    assert missing.status_code == 404


async def test_cli_mo_posts_to_the_control_endpoint(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    """`smsgw simulator mo` makes the running simulator send the MO and prints the answer."""
    client = await running.receiver()
    try:
        argv = ["simulator", "mo", "--from", "0912345678", "--to", "0911000000", "hello"]
        code = await asyncio.to_thread(main, [*argv, "--control", running.control_url])
        mo = await client.next_delivered()
    finally:
        await client.close()
    assert code == 0
    assert capsys.readouterr().out == "sent to 1\n"
    assert mo.short_message == b"hello"


async def test_cli_mo_reports_no_receiver(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    """`smsgw simulator mo` exits 1 with the reason when no receiver is bound."""
    argv = ["simulator", "mo", "--from", "0912345678", "--to", "0911", "hi"]
    code = await asyncio.to_thread(main, [*argv, "--control", running.control_url])
    assert code == 1
    assert capsys.readouterr().err == "smsgw: no receiver bound\n"


async def test_cli_runs_the_simulator_until_sigterm(tmp_path: Path) -> None:
    """`smsgw simulator` prints where it listens, accepts binds, and exits 0 on SIGTERM."""
    control_port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgw",
        "simulator",
        "--port",
        "0",
        "--control-port",
        str(control_port),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        smpp_port = int(line.split("SMPP on 127.0.0.1:")[1].split(",")[0])
        client = await Client.connect(smpp_port)
        try:
            assert await client.bind() == CommandStatus.ESME_ROK
        finally:
            await client.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert f"control on http://127.0.0.1:{control_port}" in line
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_get_submitted_lists_each_accepted_submit_in_order(
    running: Running,
) -> None:
    """GET /submitted answers each submit's destination, esm_class, data_coding, short_message."""
    simulator, url = running.simulator, running.control_url
    client = await Client.connect(running.smpp_port)
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


async def test_post_submitted_is_not_allowed(running: Running) -> None:
    """POST /submitted answers 405."""
    async with httpx.AsyncClient(base_url=running.control_url) as http:
        response = await http.post("/submitted")
    assert response.status_code == 405
