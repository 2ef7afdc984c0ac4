"""The whole gateway for end-to-end tests: uvicorn over TCP, SQLite on disk, the engine with
its in-process SMSC simulator, and a callback receiver, all on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from smsgw.config import load_settings
from smsgw.engine import accounts
from smsgw.engine.runner import Engine
from smsgw.server import Runtime, build, utc_now, uvicorn_config
from smsgw.store.port import Store
from tests.engine.receiver import Receiver, serve

PASSWORD = "e2e-password-1"


@dataclass
class Gateway:
    runtime: Runtime
    client: httpx.AsyncClient
    receiver: Receiver

    @property
    def engine(self) -> Engine:
        assert self.runtime.engine is not None
        return self.runtime.engine

    @property
    def store(self) -> Store:
        return self.runtime.store

    async def send(self, **params: str) -> dict[str, str]:
        response = await self.client.get(
            "/sms_gw/sendsms.aspx", params={"username": "alice", "password": PASSWORD, **params}
        )
        return dict(line.split("=", 1) for line in response.text.splitlines())

    async def query(self, msgid: str, number: str) -> str:
        response = await self.client.get(
            "/sms_gw/query.asp",
            params={"username": "alice", "password": PASSWORD, "msgid": msgid, "dstaddr": number},
        )
        return response.text

    async def until_state(
        self, msgid: str, number: str, *states: str, timeout_s: float = 10
    ) -> str:
        """Wait (on engine events, no polling timer) until the recipient shows one of ``states``."""
        seen = ""

        async def reached() -> bool:
            nonlocal seen
            seen = await self.query(msgid, number)
            return seen.split("|")[1] in states

        await self.engine.changes.until(reached, timeout_s)
        return seen


GatewayFactory = Callable[..., "asyncio.Future[Gateway]"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server, task, sock = await serve(receiver)
    receiver.port = sock.getsockname()[1]
    yield receiver
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
async def make_gateway(
    tmp_path: Path, receiver: Receiver
) -> AsyncIterator[Callable[..., asyncio.Future[Gateway]]]:
    started: list[tuple[uvicorn.Server, asyncio.Task[None], socket.socket, httpx.AsyncClient]] = []

    async def start(**environ: str) -> Gateway:
        env = {
            "SMSGW_DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "SMSGW_WEBHOOKS_RETRY_DELAYS_S": "0,0,0",
            "SMSGW_SIMULATOR_RECEIPT_DELAY_S": "0",
            **environ,
        }
        settings = load_settings(None, env)
        runtime = build(settings, with_engine=True)
        await runtime.store.upgrade()
        await runtime.store.open()
        if await runtime.store.get_account("alice") is None:
            await accounts.create_account(runtime.store, "alice", PASSWORD, 1000, utc_now())
        await runtime.store.close()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        server = uvicorn.Server(uvicorn_config(runtime, settings, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=10)
        started.append((server, task, sock, client))
        gateway = Gateway(runtime, client, receiver)
        await client.get("/healthz")  # returns once startup (store, engine) is complete
        return gateway

    yield start  # type: ignore[misc]
    for server, task, sock, client in started:
        await client.aclose()
        server.should_exit = True
        await task
        sock.close()
