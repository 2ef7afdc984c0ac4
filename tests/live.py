"""The real gateway served over TCP for a test: uvicorn on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

import uvicorn

from smsgw.engine import accounts
from smsgw.server import Runtime, utc_now, uvicorn_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from smsgw.config import Settings


async def with_account(runtime: Runtime, username: str, password: str, points: int) -> None:
    """Create the schema and one account in the runtime's store (closed again after)."""
    await runtime.store.upgrade()
    await runtime.store.open()
    await accounts.create_account(runtime.store, username, password, points, utc_now())
    await runtime.store.close()


@contextlib.asynccontextmanager
async def serving(runtime: Runtime, settings: Settings) -> AsyncIterator[int]:
    """Serve ``runtime`` (its lifespan included) until the block ends; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn_config(runtime, settings, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
