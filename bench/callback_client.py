"""The callbacks worker's HTTP client alone: requests/s and client CPU per request, per getter.

Why this exists: the engine's getter is written by hand over httptools instead of using
aiohttp, which is a defect unless measured. This is the measurement. A loopback server in a
separate process (raw asyncio Protocol under uvloop, answering every request at once with a
small 200 body) takes N keep-alive GETs, 8 in flight, from each getter in turn; the figures are
the client process's own CPU (``time.process_time``), so the server's cost is not in them.

Run: .venv/bin/python bench/callback_client.py [--requests 20000] [--in-flight 8] [--httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import cast

import aiohttp
import httpx
import uvloop

from smsgw.engine.callback_http import (
    CONNECTIONS_PER_HOST,
    MAX_CONNECTIONS,
    CallbackTransportError,
    HttpAnswer,
    HttpGetter,
    HttptoolsGetter,
    HttpxGetter,
)

BODY = b"magicid=tccrd_sms_gateway_rpack&msgid=1"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)
WARM_UP = 200
LIMIT_S = 120.0  # per getter: the bench ends even if a client stalls


class AiohttpGetter:
    """aiohttp behind the same port, for comparison: pooled keep-alive GETs over one session
    (the engine sent callbacks this way before HttptoolsGetter)."""

    def __init__(self, timeout_s: float, *, per_host: int = CONNECTIONS_PER_HOST) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    async def get(self, url: str, headers: Mapping[str, str]) -> HttpAnswer:
        session = self._session or self._open()
        try:
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                return HttpAnswer(response.status, await response.text(errors="replace"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise CallbackTransportError(f"{type(error).__name__}: {error}"[:200]) from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS,
            limit_per_host=self._per_host,
            # Resolve at each new connection, as the SSRF check just did, never from a cache.
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session


class _Answering(asyncio.Protocol):
    """Answers each request head as soon as its blank line arrives (GETs carry no body)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses, hence no check).
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        data = self._pending + data
        heads = data.count(b"\r\n\r\n")
        self._pending = data[data.rfind(b"\r\n\r\n") + 4 :] if heads else data
        if heads and self._transport is not None:
            self._transport.write(ANSWER * heads)


def _serve(pipe: Connection) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Answering, "127.0.0.1", 0, backlog=128)
        pipe.send(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, pipe.recv)  # until the client says stop
        server.close()

    uvloop.run(main())


async def _drive(getter: HttpGetter, port: int, count: int, in_flight: int) -> int:
    """Send ``count`` GETs, ``in_flight`` at a time; the number of unexpected answers."""
    left = count
    wrong = 0

    async def worker() -> None:
        nonlocal left, wrong
        while left > 0:
            left -= 1
            answer = await getter.get(f"http://127.0.0.1:{port}/cb?msgid={left}", {})
            if answer.status != 200 or answer.text != BODY.decode():  # noqa: PLR2004
                wrong += 1

    async with asyncio.timeout(LIMIT_S):
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return wrong


async def _measure(
    name: str, make: Callable[[], HttpGetter], port: int, count: int, in_flight: int
) -> None:
    getter = make()
    try:
        await _drive(getter, port, WARM_UP, in_flight)  # connections open, code paths warm
        cpu, wall = time.process_time(), time.perf_counter()
        wrong = await _drive(getter, port, count, in_flight)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await getter.close()
    print(
        f"{name:<9} {count} requests in {wall:.2f} s: {count / wall:>8,.0f} requests/s, "
        f"{cpu / count * 1e6:>6,.1f} us CPU per request (client process)"
        + (f", {wrong} unexpected answers" if wrong else "")
    )


async def _run(port: int, options: argparse.Namespace) -> None:
    getters: list[tuple[str, Callable[[], HttpGetter]]] = [
        ("httptools", lambda: HttptoolsGetter(10)),
        ("aiohttp", lambda: AiohttpGetter(10)),
    ]
    if options.httpx:
        limits = httpx.Limits(max_connections=options.in_flight)
        getters.append(("httpx", lambda: HttpxGetter(httpx.AsyncClient(timeout=10, limits=limits))))
    for name, make in getters:
        await _measure(name, make, port, options.requests, options.in_flight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--httpx", action="store_true", help="also httpx (slow: ~600/s)")
    options = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,))
    server.start()
    try:
        if not ours.poll(30):
            raise SystemExit("the bench server did not start")
        port = ours.recv()
        print(
            f"loopback, server in another process, {options.in_flight} in flight, keep-alive, "
            f"uvloop, {WARM_UP} requests of warm-up per getter"
        )
        uvloop.run(_run(port, options))
    finally:
        ours.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()
            server.join()


if __name__ == "__main__":
    main()
