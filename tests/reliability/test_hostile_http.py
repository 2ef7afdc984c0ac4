"""Hostile HTTP over real TCP: oversized bodies, invalid UTF-8, thousands of parameters, huge
headers and slow-drip clients, against uvicorn on loopback with SQLite on disk.

Each answer is the protocol's (-1 in the endpoint's shape) or a plain HTTP refusal, never a
stack trace, and meanwhile the server keeps answering other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from smsgw.config import load_settings
from smsgw.server import build
from tests.api.test_send import lines
from tests.live import serving, with_account

PASSWORD = "hostile-pass-3"
ALICE = {"username": "alice", "password": PASSWORD}
DEADLINE_S = 10.0
DRIP_CONNECTIONS = 6
DRIP_ROUNDS = 12  # bytes each slow client sends, one per round, of a request never finished


@dataclass(frozen=True, slots=True)
class Live:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    settings = load_settings(None, {"SMSGW_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}"})
    runtime = build(settings)
    await with_account(runtime, "alice", PASSWORD, 100)
    async with serving(runtime, settings) as port:
        yield Live("127.0.0.1", port)


async def balance(live: Live) -> str:
    """A normal client's request; it must answer within the deadline whatever else goes on."""
    async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE_S) as client:
        response = await asyncio.wait_for(
            client.get("/sms_gw/query_point.asp", params=ALICE), DEADLINE_S
        )
    return response.text


async def raw_exchange(live: Live, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes or a full reply with Content-Length is in."""
    reader, writer = await asyncio.open_connection(live.host, live.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(_read_reply(reader), DEADLINE_S)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


async def test_oversized_post_body_over_tcp_is_minus_one(live: Live) -> None:
    """A 1 MiB POST body answers -1 in the send shape and charges nothing."""
    body = b"username=alice&password=" + PASSWORD.encode() + b"&smbody=" + b"a" * MIB
    async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE_S) as client:
        response = await client.post(
            "/sms_gw/sendsms.aspx",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    assert lines(response.text)["statuscode"] == "-1"
    assert await balance(live) == "100"


MIB = 1 << 20


async def test_raw_invalid_utf8_in_query_and_body_is_minus_one(live: Live) -> None:
    """Raw and percent-encoded bytes that are not UTF-8 answer -1, in JSON when asked."""
    raw_query = b"GET /sms_gw/query_point.asp?rtype=JSON&username=\xff\xfe HTTP/1.1\r\n"
    reply = await raw_exchange(live, raw_query + b"Host: x\r\n\r\n")
    assert reply.startswith((b"HTTP/1.1 200", b"HTTP/1.1 400"))
    assert b"Traceback" not in reply
    if reply.startswith(b"HTTP/1.1 200"):
        assert b'"statuscode":"-1"' in reply
    body = b"username=alice&password=%ff%fe%fd"
    request = (
        b"POST /sms_gw/query_point.asp HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    reply = await raw_exchange(live, request)
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b"\r\n\r\n-1")


async def test_thousands_of_parameters_in_query_and_body(live: Live) -> None:
    """5,000 parameters in the query string or in a form body answer -1 without a stack trace."""
    many = "&".join(f"p{i}=1" for i in range(5000))
    async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE_S) as client:
        by_get = await client.get(f"/sms_gw/sendsms.aspx?{many}")
        by_post = await client.post(
            "/sms_gw/sendsms.aspx",
            content=many.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    for response in (by_get, by_post):
        assert response.status_code == 200
        assert lines(response.text)["statuscode"] == "-1"


async def test_huge_headers_are_refused_and_the_server_goes_on(live: Live) -> None:
    """A request with 1 MiB of headers is refused or cut off; the next client is answered."""
    reader, writer = await asyncio.open_connection(live.host, live.port)
    writer.write(b"GET /sms_gw/query_point.asp HTTP/1.1\r\nHost: x\r\n")
    with contextlib.suppress(ConnectionError):
        for index in range(1024):
            writer.write(b"X-Filler-%d: " % index + b"a" * 1000 + b"\r\n")
            await writer.drain()
        writer.write(b"\r\n")
        await writer.drain()
    with contextlib.suppress(ConnectionError):
        reply = await asyncio.wait_for(reader.read(65536), DEADLINE_S)
        assert b"Traceback" not in reply
        assert not reply.startswith(b"HTTP/1.1 200")
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    assert await balance(live) == "100"


async def test_slow_drip_clients_do_not_starve_others(live: Live) -> None:
    """While several clients drip a request a byte at a time, never finishing it, normal
    requests still answer. The drip is paced by those requests, not by a clock: each round
    every slow client sends one more byte, then a normal client asks for its balance."""
    request = b"POST /sms_gw/query_point.asp HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n"
    streams = [await asyncio.open_connection(live.host, live.port) for _ in range(DRIP_CONNECTIONS)]
    try:
        for byte in request[:DRIP_ROUNDS]:
            for _, writer in streams:
                writer.write(bytes([byte]))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            assert await balance(live) == "100"
    finally:
        for _, writer in streams:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def test_an_endless_request_line_is_cut_off(live: Live) -> None:
    """A 4 MiB URL is refused with 400 long before it ends, and the server goes on."""
    reader, writer = await asyncio.open_connection(live.host, live.port)
    writer.write(b"GET /sms_gw/query_point.asp?smbody=")
    with contextlib.suppress(ConnectionError):
        for _ in range(64):
            writer.write(b"a" * 65536)
            await writer.drain()
    reply = b""
    with contextlib.suppress(ConnectionError):
        reply = await asyncio.wait_for(reader.read(65536), DEADLINE_S)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    assert await balance(live) == "100"


# Requests that never finish arriving: http.request_timeout_s, short here.
REQUEST_TIMEOUT_S = 0.3
QUERY_POINT = f"GET /sms_gw/query_point.asp?username=alice&password={PASSWORD} HTTP/1.1\r\n"


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[Live]:
    settings = load_settings(
        None,
        {
            "SMSGW_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}",
            "SMSGW_HTTP_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        },
    )
    runtime = build(settings)
    await with_account(runtime, "alice", PASSWORD, 100)
    async with serving(runtime, settings) as port:
        yield Live("127.0.0.1", port)


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (within the deadline)."""
    return await asyncio.wait_for(reader.read(), DEADLINE_S)


async def test_a_silent_connection_is_closed(impatient: Live) -> None:
    """A client that connects and sends nothing is disconnected without a reply."""
    reader, writer = await asyncio.open_connection(impatient.host, impatient.port)
    assert await until_closed(reader) == b""
    writer.close()


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /sms_gw/query_po",
        QUERY_POINT.encode() + b"Host: x\r\n",
        b"POST /sms_gw/query_point.asp HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nuser",
    ],
    ids=["request line", "headers", "body"],
)
async def test_a_request_that_stops_arriving_is_answered_408(
    impatient: Live, partial: bytes
) -> None:
    """Part of a request, then nothing: 408 and the connection closed; others are served."""
    reader, writer = await asyncio.open_connection(impatient.host, impatient.port)
    writer.write(partial)
    await writer.drain()
    reply = await until_closed(reader)
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert reply.endswith(b"\r\n\r\nRequest timeout.")
    writer.close()
    assert await balance(impatient) == "100"


async def test_a_kept_alive_connection_is_timed_per_request(impatient: Live) -> None:
    """Whole requests are answered on one connection; a later one that stops half-way is
    answered 408, on the same connection."""
    reader, writer = await asyncio.open_connection(impatient.host, impatient.port)
    for _ in range(3):
        writer.write(QUERY_POINT.encode() + b"Host: x\r\n\r\n")
        reply = await asyncio.wait_for(_read_reply(reader), DEADLINE_S)
        assert reply.startswith(b"HTTP/1.1 200")
        assert reply.endswith(b"\r\n\r\n100")
    writer.write(QUERY_POINT.encode())
    assert (await until_closed(reader)).startswith(b"HTTP/1.1 408")
    writer.close()
