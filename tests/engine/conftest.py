"""The whole gateway for end-to-end tests: uvicorn over TCP, SQLite on disk, the engine with
its in-process SMSC simulator, and a callback receiver, all on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from smsgw.config import load_settings
from smsgw.domain.model import State
from smsgw.engine import accounts
from smsgw.engine.runner import Engine
from smsgw.server import Runtime, build, utc_now, uvicorn_config
from smsgw.smpp.simulator import Counters, Simulator
from smsgw.store.port import Store
from tests.engine.receiver import Receiver, serve

PASSWORD = "e2e-password-1"
WAIT_S = 15.0


@dataclass
class Gateway:
    runtime: Runtime
    client: httpx.AsyncClient
    receiver: Receiver
    config_path: Path
    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket
    stopped: bool = field(default=False)

    @property
    def engine(self) -> Engine:
        assert self.runtime.engine is not None
        return self.runtime.engine

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def simulator(self) -> Simulator:
        return self.engine.simulators["sim"]

    async def send(self, username: str = "alice", **params: str) -> dict[str, str]:
        response = await self.client.get(
            "/sms_gw/sendsms.aspx", params={"username": username, "password": PASSWORD, **params}
        )
        lines = response.text.splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    async def query(self, msgid: str, number: str) -> str:
        response = await self.client.get(
            "/sms_gw/query.asp",
            params={"username": "alice", "password": PASSWORD, "msgid": msgid, "dstaddr": number},
        )
        return response.text

    async def states(self, msgid: str, username: str = "alice") -> dict[str, State]:
        """Every recipient's state of one msgid, read from the store."""
        account = await self.store.get_account(username)
        assert account is not None
        rows = await self.store.recipients(account.id, [int(msgid)])
        return {row.number: row.state for row in rows}

    async def until(
        self, predicate: Callable[[], Awaitable[bool]], timeout_s: float = WAIT_S
    ) -> None:
        await self.engine.changes.until(predicate, timeout_s)

    async def until_simulator(self, condition: Callable[[Counters], bool]) -> None:
        """Wait (with a deadline) until the simulator's counters satisfy ``condition``."""
        async with asyncio.timeout(WAIT_S):
            await self.simulator.wait_until(condition)

    async def until_all_final(self, msgid: str, username: str = "alice") -> dict[str, State]:
        """Wait until every recipient of ``msgid`` is final; return their states."""

        async def all_final() -> bool:
            return all(state.final for state in (await self.states(msgid, username)).values())

        await self.until(all_final)
        return await self.states(msgid, username)

    async def until_state(
        self, msgid: str, number: str, *states: str, timeout_s: float = WAIT_S
    ) -> str:
        """Wait (on engine events, no polling timer) until the recipient shows one of ``states``."""
        seen = ""

        async def reached() -> bool:
            nonlocal seen
            seen = await self.query(msgid, number)
            return seen.split("|")[1] in states

        await self.engine.changes.until(reached, timeout_s)
        return seen

    async def stop(self) -> None:
        """Shut the server down as SIGTERM would (engine stopped, store closed)."""
        if self.stopped:
            return
        self.stopped = True
        await self.client.aclose()
        self.server.should_exit = True
        await self.task
        self.sock.close()


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as started:
        yield started


class running_receiver:  # noqa: N801 - used like a function: ``async with running_receiver()``
    """A Receiver served on a free loopback port for the duration of the block."""

    def __init__(self) -> None:
        self.receiver = Receiver()

    async def __aenter__(self) -> Receiver:
        self._server, self._task, self._sock = await serve(self.receiver)
        self.receiver.port = self._sock.getsockname()[1]
        return self.receiver

    async def __aexit__(self, *_: object) -> None:
        self.receiver.release()
        self._server.should_exit = True
        await self._task
        self._sock.close()


@pytest.fixture
async def make_gateway(tmp_path: Path, receiver: Receiver) -> AsyncIterator[GatewayFactory]:
    """Start the gateway; ``config`` is extra TOML (e.g. [simulator] tables), ``clock`` a fake
    wall clock, keyword arguments ``SMSGW_*`` variables."""
    started: list[Gateway] = []
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"

    async def start(
        config: str = "", clock: Callable[[], datetime] = utc_now, **environ: str
    ) -> Gateway:
        config_path = tmp_path / "smsgw.toml"
        config_path.write_text(f'[database]\nurl = "{database_url}"\n\n{config}')
        env = {
            "SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "SMSGW_WEBHOOKS_RETRY_DELAYS_S": "0,0,0",
            "SMSGW_SIMULATOR_RECEIPT_DELAY_S": "0",
            "SMSGW_SIMULATOR_SEED": "7",
            **environ,
        }
        settings = load_settings(config_path, env)
        runtime = build(settings, with_engine=True, clock=clock)
        await _create_accounts(runtime.store)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        server = uvicorn.Server(uvicorn_config(runtime, settings, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=10)
        gateway = Gateway(runtime, client, receiver, config_path, server, task, sock)
        started.append(gateway)
        await client.get("/healthz")  # returns once startup (store, engine) is complete
        assert await gateway.engine.esmes["sim"].wait_bound(WAIT_S)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


async def _create_accounts(store: Store) -> None:
    await store.upgrade()
    await store.open()
    for username in ("alice", "bob"):
        if await store.get_account(username) is None:
            await accounts.create_account(store, username, PASSWORD, 1000, utc_now())
    await store.close()
