"""The HTTP GET that the callbacks worker sends, behind one small port.

The engine sends callbacks with aiohttp. Measured on the 2-core bench machine (loopback, a raw
asyncio server answering at once, 8 requests in flight over keep-alive connections, uvloop):
httpx 0.28 cost 1,620-1,670 us of CPU per request (600 requests/s), most of it in httpcore's
pool bookkeeping (``has_expired`` / ``is_socket_readable`` on every request) and anyio
streams; aiohttp 3.14 cost 196-198 us (5,000 requests/s), about 8 times less; a bare asyncio
streams client 35-40 us. ``HttpxGetter`` adapts an ``httpx.AsyncClient`` to the same port,
so tests can answer with ``httpx.MockTransport``.

Both adapters send one GET, never follow redirects, bound the whole exchange by the timeout,
and report a transport failure as ``CallbackTransportError`` with a short message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

# Connections kept per customer host; the callbacks worker never runs more requests than this
# against one host at a time, so its sends never queue inside the connector.
CONNECTIONS_PER_HOST = 8
MAX_CONNECTIONS = 512


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    text: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300  # noqa: PLR2004 - the 2xx class


class CallbackTransportError(Exception):
    """The request did not get an answer: connection refused, reset, timed out, bad URL."""


class HttpGetter(Protocol):
    async def get(self, url: str, headers: Mapping[str, str]) -> HttpAnswer: ...

    async def close(self) -> None: ...


class AiohttpGetter:
    """Pooled keep-alive GETs over one aiohttp session, created on first use (in the loop)."""

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
            raise CallbackTransportError(_describe(error)) from error

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


class HttpxGetter:
    """The same port over an ``httpx.AsyncClient`` (tests answer with ``httpx.MockTransport``)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def get(self, url: str, headers: Mapping[str, str]) -> HttpAnswer:
        try:
            response = await self._client.get(url, headers=dict(headers), follow_redirects=False)
        except httpx.HTTPError as error:
            raise CallbackTransportError(_describe(error)) from error
        return HttpAnswer(response.status_code, response.text)

    async def close(self) -> None:
        await self._client.aclose()


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:200]
