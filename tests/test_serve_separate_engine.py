"""`smsgw serve` with the engine apart: a real process tree on SQLite (Linux). The delivery
engine and the callback worker run in two child processes (``engine.callbacks_process``).

The gateway is an external process, so its state is polled with a deadline (``wait_for``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import httpx
import pytest

from smsgw import cli
from tests.reliability.processes import clean_environment, free_ports, wait_for
from tests.reliability.receiver import CallbackReceiver, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

PASSWORD = "separate-engine-pw-1"
G = TypeVar("G", bound="Gateway")
START_DEADLINE_S = 30.0
DELIVERY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 30.0


def children(pid: int) -> list[int]:
    """The live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


class Gateway:
    """One `smsgw serve` child on a free port, with its engine in a child of its own."""

    serve_options: tuple[str, ...] = ()  # after ``serve`` on its command line

    def __init__(self, tmp_path: Path) -> None:
        self.port, self.metrics_port, self.callbacks_metrics_port = free_ports(3)
        self.config = tmp_path / "smsgw.toml"
        self.config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path / "gw.db"}"\n'
            f"[http]\nport = {self.port}\n"
            f"[engine]\nseparate_process = true\nmetrics_port = {self.metrics_port}\n"
            f"callbacks_metrics_port = {self.callbacks_metrics_port}\n"
            "[webhooks]\nallow_private_networks = true\n"
            "[simulator]\nreceipt_delay_s = 0\n"
        )
        self.process: asyncio.subprocess.Process | None = None
        self.log = tmp_path / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms_gw"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        create = ["--config", str(self.config), "account", "create", "alice"]
        create += ["--password", PASSWORD, "--points", "10"]
        assert await asyncio.to_thread(cli.main, create) == 0  # cli runs its own event loop
        with self.log.open("wb") as sink:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "smsgw",
                "--config",
                str(self.config),
                "serve",
                *self.serve_options,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                env=clean_environment(),
            )
        await wait_for(self._ready, START_DEADLINE_S, "serve's /readyz and its engine's bind")

    async def _ready(self) -> bool:
        """The API answers /readyz and the engine child's own metrics show its bind."""
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                ready = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                metrics = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
                bound = 'smsgw_connector_bound{connector="sim"} 1.0' in metrics.text
                return ready.status_code == httpx.codes.OK and bound
        return False

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


@contextlib.asynccontextmanager
async def started(gateway: G) -> AsyncIterator[G]:
    """``gateway`` started for the block, stopped after it (also when its start failed)."""
    try:
        await gateway.start()
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with started(Gateway(tmp_path)) as gateway:
        yield gateway


async def metric(port: int, line_start: str) -> str | None:
    """The value of the first metrics line starting with ``line_start``, if any."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    values = [line.rpartition(" ")[2] for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else None


async def query_state(client: httpx.AsyncClient, gateway: Gateway, msgid: str) -> str:
    params = {"username": "alice", "password": PASSWORD, "msgid": msgid, "dstaddr": "0912345678"}
    response = await client.get(f"{gateway.url}/query.asp", params=params)
    return response.text.split("|")[1]


async def test_separate_engine_delivers_end_to_end(gateway: Gateway) -> None:
    """A sendsms accepted by the API process is submitted by the engine child and DELIVRD."""
    async with httpx.AsyncClient() as client:
        params = {
            "username": "alice",
            "password": PASSWORD,
            "dstaddr": "0912345678",
            "encoding": "ASCII",
            "smbody": "hello",
        }
        response = await client.get(f"{gateway.url}/sendsms.aspx", params=params)
        reply = dict(line.split("=", 1) for line in response.text.splitlines())
        assert reply["statuscode"] == "0"

        async def delivered() -> bool:
            return await query_state(client, gateway, reply["msgid"]) == "DELIVRD"

        await wait_for(delivered, DELIVERY_DEADLINE_S, "DELIVRD in query.asp")


async def report_arrives(gateway: Gateway) -> None:
    """A sendsms with a delivery-report URL through ``gateway``: the report arrives."""
    async with serving(CallbackReceiver()) as receiver, httpx.AsyncClient() as client:
        params = {
            "username": "alice",
            "password": PASSWORD,
            "dstaddr": "0912345678",
            "smbody": "hello",
            "response": receiver.url,
        }
        response = await client.get(f"{gateway.url}/sendsms.aspx", params=params)
        reply = dict(line.split("=", 1) for line in response.text.splitlines())
        assert reply["statuscode"] == "0"

        async def acknowledged() -> bool:
            return bool(receiver.acknowledged)

        await wait_for(acknowledged, DELIVERY_DEADLINE_S, "the delivery report")
    assert receiver.acknowledged == {(int(reply["msgid"]), "0912345678")}


async def test_the_callbacks_process_calls_the_customer_back(gateway: Gateway) -> None:
    """The delivery report of a message the delivery engine settled is sent by the other
    child, which counts it on its own metrics port; the delivery engine's counts none."""
    await report_arrives(gateway)
    sent = 'smsgw_callbacks_total{kind="dlr",outcome="sent"}'

    async def counted() -> bool:
        return await metric(gateway.callbacks_metrics_port, sent) == "1.0"

    await wait_for(counted, DELIVERY_DEADLINE_S, "the callback in the callbacks process's metrics")
    assert await metric(gateway.metrics_port, sent) is None


async def test_stopping_serve_stops_the_engine_children(gateway: Gateway) -> None:
    """SIGTERM to serve stops both engine children before serve itself exits cleanly."""
    engines = children(gateway.pid)
    assert len(engines) == 2
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(STOP_DEADLINE_S):
        assert await gateway.process.wait() == 0
    assert not any(alive(engine) for engine in engines)
    log = gateway.log.read_text()
    assert "engine (delivery) stopped" in log
    assert "engine (callbacks) stopped" in log


async def test_killing_serve_takes_the_engine_children_along(gateway: Gateway) -> None:
    """A SIGKILLed serve leaves no engine behind (they die with their parent, as in one
    process)."""
    engines = children(gateway.pid)
    assert len(engines) == 2
    await gateway.stop()

    async def engines_gone() -> bool:
        return not any(alive(engine) for engine in engines)

    await wait_for(engines_gone, STOP_DEADLINE_S, "the engine children's end")


class WokenGateway(Gateway):
    """The engine children claim only every hour (``engine.poll_s``) and do not probe:
    only the wake-up datagrams (smsgw.engine.wakeup) can make them find work in time."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.config.write_text(
            self.config.read_text().replace("[engine]\n", "[engine]\npoll_s = 3600\n")
        )


class PostgresWokenGateway(WokenGateway):
    """The same on PostgreSQL: NOTIFY wakes them."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        super().__init__(tmp_path)
        sqlite_url = f"sqlite:///{tmp_path / 'gw.db'}"
        self.config.write_text(self.config.read_text().replace(sqlite_url, url))

    async def start(self) -> None:
        upgrade = ["--config", str(self.config), "db", "upgrade"]
        assert await asyncio.to_thread(cli.main, upgrade) == 0
        await super().start()


async def test_an_accept_wakes_the_engine_and_a_receipt_the_callbacks_process(
    tmp_path: Path,
) -> None:
    """The API's datagram wakes the delivery engine's dispatcher, whose receipt's datagram
    wakes the callback worker: the delivery report arrives long before an hour."""
    async with started(WokenGateway(tmp_path)) as gateway:
        await report_arrives(gateway)


@pytest.mark.postgres
async def test_on_postgresql_notify_wakes_the_engine_and_the_callbacks_process(
    tmp_path: Path, postgres_url: str
) -> None:
    """The same through PostgreSQL's NOTIFY."""
    async with started(PostgresWokenGateway(tmp_path, postgres_url)) as gateway:
        await report_arrives(gateway)
