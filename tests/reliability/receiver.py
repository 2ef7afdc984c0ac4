"""The customer's callback endpoint for the crash test: a uvicorn server in the test process
(it survives every gateway kill) that acknowledges each delivery report with the protocol's
magic body and records which ones came again after their acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from smsgw.domain.delivery import acknowledgement

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Key = tuple[int, str]  # (msgid, number)


@dataclass(frozen=True, slots=True)
class Repeat:
    """A callback for a (msgid, number) already acknowledged, received during run ``run``."""

    key: Key
    run: int


@dataclass
class CallbackReceiver:
    """Acknowledges every delivery report; ``run`` is the harness's current gateway run."""

    received: Counter[Key] = field(default_factory=Counter)
    acknowledged: set[Key] = field(default_factory=set)
    repeats: list[Repeat] = field(default_factory=list)
    run: int = 0
    on_callback: Callable[[], None] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dlr"

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],  # noqa: ARG002 - ASGI signature
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        params = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
        key = (int(params["msgid"]), params["dstaddr"])
        self.received[key] += 1
        if key in self.acknowledged:
            self.repeats.append(Repeat(key, self.run))
        body = acknowledgement(key[0]).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.acknowledged.add(key)
        if self.on_callback is not None:
            self.on_callback()


@contextlib.asynccontextmanager
async def serving(receiver: CallbackReceiver) -> AsyncIterator[CallbackReceiver]:
    """Serve ``receiver`` on a free loopback port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    receiver.port = sock.getsockname()[1]
    config = uvicorn.Config(receiver, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
