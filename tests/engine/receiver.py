"""A customer's callback endpoint for tests: a real HTTP server on loopback that records every
request and answers as the test scripts it (acknowledge, fail N times, always fail)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from smsgw.domain.delivery import acknowledgement

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@dataclass(frozen=True)
class Hit:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    query: str = ""

    @property
    def target(self) -> str:
        """The path and query as requested (what a signature covers, after the origin)."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass
class Receiver:
    """Answers the magic acknowledgement unless ``failures_left`` says to fail first.

    ``hang``: requests are recorded and then held, unanswered, until ``release()``.
    """

    hits: list[Hit] = field(default_factory=list)
    failures_left: int = 0
    always_fail: bool = False
    ack_magic: bool = True
    hang: bool = False
    port: int = 0
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        """Answer the held requests (and every later one) at once."""
        self.hang = False
        self._released.set()

    def for_path(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],  # noqa: ARG002 - ASGI signature
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        query = scope["query_string"].decode()
        params = dict(parse_qsl(query, keep_blank_values=True))
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.hits.append(Hit(scope["path"], params, headers, query))
        self._changed.set()
        if self.hang:
            await self._released.wait()
        status, body = self._answer(params)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _answer(self, params: dict[str, str]) -> tuple[int, bytes]:
        if self.always_fail:
            return 500, b"down"
        if self.failures_left > 0:
            self.failures_left -= 1
            return 503, b"busy"
        if not self.ack_magic:
            return 200, b"ok"
        return 200, acknowledgement(params.get("msgid", "")).encode()


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], socket.socket]:
    """Serve an ASGI app on a free loopback port (the socket is listening on return)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    return server, task, sock
