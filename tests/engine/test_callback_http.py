"""The aiohttp callback getter against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from smsgw.engine.callback_http import AiohttpGetter, CallbackTransportError


@dataclass
class Server:
    """Answers each request with ``answer``; records request heads and connections."""

    answer: bytes | None
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.heads.append(head)
                if self.answer is None:
                    await reader.read()  # never answer: the client must time out
                    return
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def reply(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    state = Server(request.param)
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state


ACK = reply("200 OK", b"magicid=tccrd_sms_gateway_rpack\nmsgid=7\n")
REDIRECT = reply("302 Found", b"", "Location: http://127.0.0.1:1/elsewhere")


@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_getter_returns_status_and_body_and_sends_headers(server: Server) -> None:
    """A GET returns the status and text and carries the given headers."""
    getter = AiohttpGetter(5)
    try:
        answer = await getter.get(f"http://127.0.0.1:{server.port}/cb?msgid=7", {"X-Test": "v1"})
    finally:
        await getter.close()
    assert (answer.status, answer.text) == (200, "magicid=tccrd_sms_gateway_rpack\nmsgid=7\n")
    assert server.heads[0].startswith(b"GET /cb?msgid=7 HTTP/1.1")
    assert b"x-test: v1" in server.heads[0].lower()


@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_getter_keeps_the_connection_alive(server: Server) -> None:
    """Requests one after another to one host reuse one pooled connection."""
    getter = AiohttpGetter(5)
    try:
        for _ in range(3):
            await getter.get(f"http://127.0.0.1:{server.port}/cb", {})
    finally:
        await getter.close()
    assert (len(server.heads), server.connections) == (3, 1)


@pytest.mark.parametrize("server", [REDIRECT], indirect=True)
async def test_getter_does_not_follow_redirects(server: Server) -> None:
    """A redirect is returned as the answer, never followed."""
    getter = AiohttpGetter(5)
    try:
        answer = await getter.get(f"http://127.0.0.1:{server.port}/cb", {})
    finally:
        await getter.close()
    assert answer.status == 302
    assert len(server.heads) == 1


@pytest.mark.parametrize("server", [None], indirect=True)
async def test_getter_times_out_on_a_silent_server(server: Server) -> None:
    """A server that never answers gives a transport error once the timeout is over."""
    getter = AiohttpGetter(0.05)
    try:
        with pytest.raises(CallbackTransportError):
            await getter.get(f"http://127.0.0.1:{server.port}/cb", {})
    finally:
        await getter.close()


async def test_getter_reports_a_refused_connection() -> None:
    """A closed port gives a transport error, not an exception of aiohttp's."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    getter = AiohttpGetter(5)
    try:
        with pytest.raises(CallbackTransportError, match="Connect"):
            await getter.get(f"http://127.0.0.1:{port}/cb", {})
    finally:
        await getter.close()
