"""The HTTP GET that the callbacks worker sends, behind one small port.

Measured with ``bench/callback_client.py`` on the 2-core bench machine (loopback, a raw asyncio
server in another process answering at once, 8 requests in flight over keep-alive connections,
uvloop; the CPU of the client process alone): ``HttptoolsGetter`` 28-43 us per request
(16,000-24,000 requests/s), aiohttp 3.14 79-93 us (8,400-10,000 requests/s), httpx 0.28
680-750 us (1,300 requests/s; most of it in httpcore's pool bookkeeping, ``has_expired`` /
``is_socket_readable`` on every request, and anyio streams). An earlier harness had put
aiohttp at 197 us, httpx at 1,620 us and a bare asyncio streams client at 35-40 us. So the
engine sends callbacks with ``HttptoolsGetter``, asyncio Protocols and httptools' C parser with
nothing else per request: about 50 us of CPU less per callback than aiohttp, of the gateway's
0.8 ms per message. The aiohttp adapter it is measured against lives in the bench (aiohttp is
a test extra, not a dependency of the gateway); ``HttpxGetter`` adapts an
``httpx.AsyncClient`` to the same port, so tests can answer with ``httpx.MockTransport``.

Every adapter sends one GET, never follows redirects, bounds the whole exchange by the
timeout, and reports a transport failure as ``CallbackTransportError`` with a short message.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import quote, unquote, urlsplit

import httptools
import httpx

# Connections kept per customer host; the callbacks worker never runs more requests than this
# against one host at a time, so its sends never queue inside the connector.
CONNECTIONS_PER_HOST = 8
MAX_CONNECTIONS = 512
# The worker only looks for a short acknowledgement; a bigger answer is cut here (see
# HttptoolsGetter) rather than read into memory whole.
BODY_LIMIT = 64 * 1024
# An idle connection older than this is closed rather than reused: servers drop idle
# connections after 5-75 s, and one dropped just as we write costs a retry (aiohttp's 15 s).
KEEPALIVE_S = 15.0
ORIGINS_REMEMBERED = 1024  # parsed (scheme, netloc) pairs kept, so a URL's origin parses once

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 5.1)
_LINE_BREAK = re.compile(r"[\r\n\x00]")
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~-._"  # kept as written; anything else non-ASCII is %-encoded
_DEFAULT_HEADERS = frozenset({"host", "user-agent", "connection"})


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


class HttptoolsGetter:
    """Keep-alive GETs over asyncio Protocols and httptools' parser: the engine's getter.

    Connections are pooled per origin (scheme, host, port): at most ``per_host`` open per
    origin (a request beyond that waits its turn) and ``max_connections`` overall (an idle
    connection of another origin is closed to make room). A connection goes back to the pool
    only when its answer allowed it: HTTP/1.1, keep-alive by the parser's reading (so no
    ``Connection: close``), body read to its end.

    A server may close an idle connection just as we send on it. When such a reused
    connection ends before a single byte of the answer arrived, the GET is sent once more on
    a fresh connection (a GET is idempotent, and nothing was answered); any other failure is
    the caller's to retry.

    Bodies beyond ``BODY_LIMIT`` are cut: the answer holds the first ``BODY_LIMIT`` bytes and
    that connection is closed, unread. The worker only looks for the acknowledgement lines,
    which a conforming endpoint sends alone, so a long page (an error page, say) still gives
    its status and its start rather than a transport error that would hide the status.
    """

    def __init__(
        self,
        timeout_s: float,
        *,
        per_host: int = CONNECTIONS_PER_HOST,
        max_connections: int = MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._per_host = per_host
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._open = 0  # connections counted against max_connections
        self._slots: asyncio.Semaphore | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def get(self, url: str, headers: Mapping[str, str]) -> HttpAnswer:
        origin, request = self._request(url, headers)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._send(origin, request)
        except TimeoutError:  # the prefix stored errors had with aiohttp, which people look for
            raise CallbackTransportError(
                f"TimeoutError: timed out after {self._timeout_s:g} s"
            ) from None

    async def close(self) -> None:
        """Close the idle connections (busy ones close when their answer is in)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        closing = [connection for pool in self._pools.values() for connection in pool.idle]
        for connection in closing:
            connection.close()  # drops it from its pool, and the pool when unused
        if closing:  # let the transports finish closing inside the loop that owns them
            await asyncio.wait([connection.lost for connection in closing], timeout=1.0)

    # ------------------------------------------------------------------ building the request

    def _request(self, url: str, headers: Mapping[str, str]) -> tuple[_Origin, bytes]:
        """The origin and the request's bytes; refuses what would split the request's lines."""
        if _LINE_BREAK.search(url):
            raise CallbackTransportError("line break in the URL refused")
        try:
            scheme, netloc, path, query = url_parts(url)
        except ValueError:
            raise CallbackTransportError("malformed URL") from None
        origin = self._origins.get((scheme, netloc)) or self._parse_origin(scheme, netloc)
        target = path or "/"
        if query:
            target = f"{target}?{query}"
        if not target.isascii() or " " in target:
            target = quote(target, safe=_TARGET_SAFE)
        lines = [f"GET {target} HTTP/1.1\r\n", origin.head]
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or _LINE_BREAK.search(value):
                raise CallbackTransportError(f"header {name[:40]!r} refused: not a valid header")
            if name.lower() in _DEFAULT_HEADERS:
                lines[1] = _replace_default(lines[1], name)
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        return origin, "".join(lines).encode()

    def _parse_origin(self, scheme: str, netloc: str) -> _Origin:
        if scheme not in {"http", "https"}:
            raise CallbackTransportError(f"unsupported URL scheme {scheme[:10]!r}")
        parts = urlsplit(f"{scheme}://{netloc}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise CallbackTransportError("malformed port in the URL") from None
        host = parts.hostname or ""
        try:
            ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
        except UnicodeError:
            raise CallbackTransportError("malformed host name in the URL") from None
        if not ascii_host:
            raise CallbackTransportError("no host in the URL")
        shown = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
        default = port == (443 if scheme == "https" else 80)
        head = [
            f"Host: {shown if default else f'{shown}:{port}'}\r\n",
            "User-Agent: smsgw\r\nConnection: keep-alive\r\n",
        ]
        if parts.username is not None:  # as browsers and aiohttp read user:password@host
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            head.append(f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n")
        origin = _Origin(scheme, ascii_host, port, "".join(head), f"{shown}:{port}")
        if len(self._origins) >= ORIGINS_REMEMBERED:
            self._origins.clear()
        self._origins[scheme, netloc] = origin
        return origin

    # ------------------------------------------------------------------ sending it

    async def _send(self, origin: _Origin, request: bytes) -> HttpAnswer:
        key = (origin.scheme, origin.host, origin.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(key, self._per_host)
        slots = self._slots or self._make_slots()
        pool.users += 1
        try:
            async with pool.slots, slots:
                connection = pool.take()
                if connection is not None:
                    try:
                        return await self._exchange(pool, connection, request)
                    except _ClosedUnansweredError:
                        pass  # the server closed it while idle: once more on a fresh one
                connection = await self._connect(origin, pool)
                return await self._exchange(pool, connection, request)
        finally:
            pool.users -= 1
            self._drop_if_unused(pool)

    async def _exchange(self, pool: _Pool, connection: _Connection, request: bytes) -> HttpAnswer:
        try:
            answer = await connection.send(request)
        except BaseException:  # a timeout or a cancel mid-answer leaves the stream unusable
            connection.abort()
            raise
        if connection.reusable:
            pool.put(connection)
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().call_later(KEEPALIVE_S, self._sweep)
        else:
            connection.close()
        return answer

    async def _connect(self, origin: _Origin, pool: _Pool) -> _Connection:
        if self._open >= self._max_connections:
            self._evict_one()
        loop = asyncio.get_running_loop()
        context = None
        if origin.scheme == "https":
            context = self._ssl_context or self._make_ssl_context()
        connection = _Connection(loop, pool, self._forget)
        self._open += 1
        try:
            await loop.create_connection(
                lambda: connection,
                origin.host,
                origin.port,
                ssl=context,
                server_hostname=origin.host if context is not None else None,
            )
        except OSError as error:  # refused, unreachable, DNS, TLS handshake and certificate
            connection.abort()
            raise CallbackTransportError(
                f"cannot connect to {origin.shown}: {_reason(error)}"[:200]
            ) from None
        except BaseException:
            connection.abort()
            raise
        return connection

    # ------------------------------------------------------------------ pool upkeep

    def _forget(self, connection: _Connection) -> None:
        """A connection is closing (either side; called once): it no longer counts or waits."""
        self._open -= 1
        pool = connection.pool
        pool.discard(connection)
        self._drop_if_unused(pool)

    def _drop_if_unused(self, pool: _Pool) -> None:
        """Forget an origin nobody waits on and with no idle connection (hosts come and go)."""
        if not pool.users and not pool.idle and self._pools.get(pool.key) is pool:
            del self._pools[pool.key]

    def _evict_one(self) -> None:
        """At max_connections: close an idle connection, the oldest of the first origin with one."""
        for pool in self._pools.values():
            if pool.idle:
                pool.idle[0].close()
                return

    def _sweep(self) -> None:
        """Close connections idle for longer than KEEPALIVE_S; run again while any are idle."""
        self._sweeper = None
        deadline = asyncio.get_running_loop().time() - KEEPALIVE_S
        for pool in list(self._pools.values()):
            for connection in [c for c in pool.idle if c.idle_since < deadline]:
                connection.close()
        if any(pool.idle for pool in self._pools.values()):
            self._sweeper = asyncio.get_running_loop().call_later(KEEPALIVE_S, self._sweep)

    def _make_slots(self) -> asyncio.Semaphore:
        self._slots = asyncio.Semaphore(self._max_connections)
        return self._slots

    def _make_ssl_context(self) -> ssl.SSLContext:
        self._ssl_context = ssl.create_default_context()
        return self._ssl_context


@dataclass(frozen=True, slots=True)
class _Origin:
    """A URL's scheme and netloc, parsed once: where to connect and the head lines for it."""

    scheme: str
    host: str  # ASCII, without the brackets of an IPv6 literal
    port: int
    head: str  # Host, User-Agent, Connection (and Authorization from user:password@)
    shown: str  # host:port for error messages (never the path or query: they may hold secrets)


class _Pool:
    """One origin's idle connections, oldest first, and the turns for its requests."""

    __slots__ = ("idle", "key", "slots", "users")

    def __init__(self, key: tuple[str, str, int], per_host: int) -> None:
        self.key = key
        # Turns for requests, not connections: a connection is opened only when no idle one
        # is left, so an origin never has more connections than requests in flight at once.
        self.slots = asyncio.Semaphore(per_host)
        self.idle: list[_Connection] = []
        self.users = 0  # requests holding or awaiting a turn

    def take(self) -> _Connection | None:
        """The most recently used idle connection (the one least likely timed out)."""
        while self.idle:
            connection = self.idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def put(self, connection: _Connection) -> None:
        connection.idle_since = asyncio.get_running_loop().time()
        self.idle.append(connection)

    def discard(self, connection: _Connection) -> None:
        if connection in self.idle:  # at most per_host long
            self.idle.remove(connection)


class _ClosedUnansweredError(CallbackTransportError):
    """The connection ended before any byte of the answer (on a reused one: sent again)."""


class _StopParsing(Exception):  # noqa: N818 - a signal out of the parser's callback
    """Raised inside a parser callback to stop it: at BODY_LIMIT, or at an unasked answer."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: its transport, its parser (kept for its life), one answer.

    The parser calls back into this object; the answer's future is what ``get`` awaits, so a
    request costs no task of its own.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: _Pool,
        on_closing: Callable[[_Connection], None],
    ) -> None:
        self.pool = pool
        self.reusable = False
        self.idle_since = 0.0
        self.lost: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._on_closing: Callable[[_Connection], None] | None = on_closing
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[HttpAnswer] | None = None
        self._received = False  # any byte of the current answer
        self._headers_done = False
        self._framed = False  # Content-Length or Transfer-Encoding: the close is not the end
        self._charset = "utf-8"
        self._body: list[bytes] = []
        self._size = 0
        self._cut = False

    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, request: bytes) -> asyncio.Future[HttpAnswer]:
        if self._transport is None or self._transport.is_closing():
            raise _ClosedUnansweredError("connection closed before the request")
        self.reusable = False
        self._received = False
        self._answer = self._loop.create_future()
        self._transport.write(request)
        return self._answer

    def close(self) -> None:
        self._closing()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, unread (a reset): for a stream in an unknown state."""
        self._closing()
        if self._transport is not None:
            self._transport.abort()

    def _closing(self) -> None:
        """Leave the pool and its count at once, not when the transport is done closing."""
        self.reusable = False
        if self._on_closing is not None:
            self._on_closing(self)
            self._on_closing = None

    # -------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses, hence no check).
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self.abort()  # bytes nobody asked for: the stream can no longer be trusted
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(reusable=False)  # a 101: the answer is in, the stream is not HTTP
            self.abort()
        except httptools.HttpParserError:
            if self._cut:
                self._finish(reusable=False)
            else:
                self._fail(CallbackTransportError("malformed HTTP answer"))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost judges what was read

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing()
        self._transport = None
        if not self.lost.done():
            self.lost.set_result(None)
        if self._answer is None or self._answer.done():
            return
        if self._headers_done and not self._framed:
            self._finish(reusable=False)  # a body read until the close, now complete
        elif not self._received:
            self._fail(_ClosedUnansweredError("connection closed without an answer"))
        else:
            reason = "reset" if exc is not None else "closed"
            self._fail(CallbackTransportError(f"connection {reason} in the middle of the answer"))

    # -------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():
            raise _StopParsing  # a second answer to one request: stop, the caller will close
        self._headers_done = False
        self._framed = False
        self._charset = "utf-8"
        self._body = []
        self._size = 0
        self._cut = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in {b"content-length", b"transfer-encoding"}:
            self._framed = True
        elif lowered == b"content-type":
            self._charset = _charset(value) or "utf-8"

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > BODY_LIMIT:
            self._body.append(body[: len(body) - (self._size - BODY_LIMIT)])
            self._cut = True
            raise _StopParsing
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # noqa: PLR2004 - 1xx interim answers
            return  # the real answer follows on the same stream
        self._finish(
            reusable=self._parser.should_keep_alive() and self._parser.get_http_version() == "1.1"
        )

    # -------------------------------------------------------------- ending the answer

    def _finish(self, *, reusable: bool) -> None:
        answer = self._answer
        if answer is None or answer.done():
            return
        body = b"".join(self._body)
        try:
            text = body.decode(self._charset, errors="replace")
        except LookupError:  # a charset Python does not know
            text = body.decode("utf-8", errors="replace")
        self.reusable = reusable
        answer.set_result(HttpAnswer(int(self._parser.get_status_code()), text))

    def _fail(self, error: CallbackTransportError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


def _reason(error: OSError) -> str:
    """Why a connection failed, in words (asyncio's own text hides 'refused' behind errno)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if error.errno is not None and error.errno > 0 and not isinstance(error, socket.gaierror):
        return os.strerror(error.errno)
    return error.strerror or str(error) or type(error).__name__


def _charset(content_type: bytes) -> str | None:
    """The charset parameter of a Content-Type value, if any."""
    for parameter in content_type.split(b";")[1:]:
        name, _, value = parameter.partition(b"=")
        if name.strip().lower() == b"charset":
            return value.strip().strip(b"\"'").decode("latin-1") or None
    return None


def _replace_default(head: str, name: str) -> str:
    """The default head lines without ``name``'s, which the caller's headers replace."""
    prefix = f"{name.lower()}:"
    return "".join(
        line for line in head.splitlines(keepends=True) if not line.lower().startswith(prefix)
    )


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


def url_parts(url: str) -> tuple[str, str, str, str]:
    """(scheme, netloc, path, query) of a callback URL, as ``urlsplit`` reads them.

    The base (what precedes the query: one per customer) is parsed once and remembered;
    the query differs per callback. A URL with a fragment, which would end the query, gets
    the general parse. ValueError for a malformed URL.
    """
    if "#" in url:
        parts = urlsplit(url)
        return parts.scheme, parts.netloc, parts.path, parts.query
    base, _, query = url.partition("?")
    return (*_split_base(base), query)


@functools.lru_cache(maxsize=1024)
def _split_base(base: str) -> tuple[str, str, str]:
    parts = urlsplit(base)
    return parts.scheme, parts.netloc, parts.path
