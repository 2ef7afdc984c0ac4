"""The callback getters against a real loopback HTTP server (plain and TLS)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme
import uvloop

from smsgw.engine import callback_http
from smsgw.engine.callback_http import (
    BODY_LIMIT,
    CallbackTransportError,
    HttpGetter,
    HttptoolsGetter,
)

GetterFactory = Callable[[float], HttpGetter]
GETTERS = [pytest.param(HttptoolsGetter, id="httptools")]


@dataclass
class Server:
    """Answers each request with ``answer``; records request heads and connections.

    ``answer`` None: never answer (the client must time out). ``close_after``: close the
    connection after answering. ``close_on_second``: close, unanswered, when a second request
    arrives on one connection (a server dropping an idle connection just as it is reused).
    ``hold``: answers wait until this future is done.
    """

    answer: bytes | None
    close_after: bool = False
    close_on_second: bool = False
    hold: asyncio.Future[None] | None = None
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        served = 0
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.heads.append(head)
                self._arrived.set()
                if self.answer is None:
                    await reader.read()  # never answer: the client must time out
                    return
                if self.close_on_second and served:
                    return
                if self.hold is not None:
                    await self.hold
                writer.write(self.answer)
                await writer.drain()
                served += 1
                if self.close_after:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def until_heads(self, count: int) -> None:
        while len(self.heads) < count:
            self._arrived.clear()
            await self._arrived.wait()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def reply(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _serve(
    state: Server, host: str = "127.0.0.1", context: ssl.SSLContext | None = None
) -> asyncio.Server:
    listener = await asyncio.start_server(state.handle, host, 0, ssl=context)
    state.port = listener.sockets[0].getsockname()[1]
    return listener


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    param = request.param
    state = param if isinstance(param, Server) else Server(param)
    async with await _serve(state):
        yield state


@pytest.fixture
async def getter() -> AsyncIterator[HttptoolsGetter]:
    client = HttptoolsGetter(5)
    try:
        yield client
    finally:
        await client.close()


ACK_BODY = b"magicid=tccrd_sms_gateway_rpack\nmsgid=7\n"
ACK = reply("200 OK", ACK_BODY)
REDIRECT = reply("302 Found", b"", "Location: http://127.0.0.1:1/elsewhere")


# ---------------------------------------------------------------- both getters


@pytest.mark.parametrize("make", GETTERS)
@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_getter_returns_status_and_body_and_sends_headers(
    server: Server, make: GetterFactory
) -> None:
    """A GET returns the status and text and carries the given headers."""
    getter = make(5)
    try:
        answer = await getter.get(f"{server.base}/cb?msgid=7", {"X-Test": "v1"})
    finally:
        await getter.close()
    assert (answer.status, answer.text) == (200, ACK_BODY.decode())
    assert server.heads[0].startswith(b"GET /cb?msgid=7 HTTP/1.1")
    assert b"x-test: v1" in server.heads[0].lower()


@pytest.mark.parametrize("make", GETTERS)
@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_getter_keeps_the_connection_alive(server: Server, make: GetterFactory) -> None:
    """Requests one after another to one host reuse one pooled connection."""
    getter = make(5)
    try:
        for _ in range(3):
            await getter.get(f"{server.base}/cb", {})
    finally:
        await getter.close()
    assert (len(server.heads), server.connections) == (3, 1)


@pytest.mark.parametrize("make", GETTERS)
@pytest.mark.parametrize("server", [REDIRECT], indirect=True)
async def test_getter_does_not_follow_redirects(server: Server, make: GetterFactory) -> None:
    """A redirect is returned as the answer, never followed."""
    getter = make(5)
    try:
        answer = await getter.get(f"{server.base}/cb", {})
    finally:
        await getter.close()
    assert answer.status == 302
    assert len(server.heads) == 1


@pytest.mark.parametrize("make", GETTERS)
@pytest.mark.parametrize("server", [None], indirect=True)
async def test_getter_times_out_on_a_silent_server(server: Server, make: GetterFactory) -> None:
    """A server that never answers gives a transport error once the timeout is over."""
    getter = make(0.2)
    try:
        with pytest.raises(CallbackTransportError, match=r"(?i)time"):
            await getter.get(f"{server.base}/cb", {})
    finally:
        await getter.close()


@pytest.mark.parametrize("make", GETTERS)
async def test_getter_reports_a_refused_connection(make: GetterFactory) -> None:
    """A closed port gives a short transport error, without the URL's query (it may be secret)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    getter = make(5)
    try:
        with pytest.raises(CallbackTransportError, match=r"(?i)cannot connect") as caught:
            await getter.get(f"http://127.0.0.1:{port}/cb?token=s3cret", {})
    finally:
        await getter.close()
    assert "s3cret" not in str(caught.value)
    assert len(str(caught.value)) <= 200


# ---------------------------------------------------------------- the httptools getter


@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_request_head_is_exactly_what_we_mean(
    server: Server, getter: HttptoolsGetter
) -> None:
    """Request line with the target as given, Host with the port, our defaults, the headers."""
    await getter.get(f"{server.base}/cb/dlr.asp?msgid=7&x=%2F#fragment", {"X-Test": "v1"})
    assert server.heads[0] == (
        b"GET /cb/dlr.asp?msgid=7&x=%2F HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"User-Agent: smsgw\r\nConnection: keep-alive\r\nX-Test: v1\r\n\r\n"
    )


@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_each_callback_of_a_base_url_carries_its_own_query(
    server: Server, getter: HttptoolsGetter
) -> None:
    """The base URL's parse is remembered; every request still gets its own query (and a
    base without a path asks for /)."""
    for msgid in (1, 2):
        await getter.get(f"{server.base}/cb/dlr.asp?msgid={msgid}&x=%2F", {})
    await getter.get(f"{server.base}?msgid=3", {})
    targets = [head.split(b" ", 2)[1] for head in server.heads]
    assert targets == [b"/cb/dlr.asp?msgid=1&x=%2F", b"/cb/dlr.asp?msgid=2&x=%2F", b"/?msgid=3"]


@pytest.mark.parametrize("server", [None], indirect=True)
async def test_timeout_message_names_the_limit(server: Server) -> None:
    """The timeout error says how long it waited, nothing of the URL."""
    getter = HttptoolsGetter(0.2)
    try:
        with pytest.raises(CallbackTransportError) as caught:
            await getter.get(f"{server.base}/cb?token=s3cret", {})
    finally:
        await getter.close()
    assert str(caught.value) == "TimeoutError: timed out after 0.2 s"


@pytest.mark.parametrize("server", [Server(ACK, close_after=True)], indirect=True)
async def test_an_idle_connection_the_server_closed_is_dropped(
    server: Server, getter: HttptoolsGetter
) -> None:
    """The server closes after answering: the pool drops it, the next GET opens another."""
    await getter.get(f"{server.base}/cb", {})
    (pool,) = getter._pools.values()
    if pool.idle:  # the close may not have been read yet
        await pool.idle[0].lost
    assert pool.idle == []
    answer = await getter.get(f"{server.base}/cb", {})
    assert answer.status == 200
    assert (len(server.heads), server.connections) == (2, 2)


@pytest.mark.parametrize("server", [Server(ACK, close_on_second=True)], indirect=True)
async def test_a_reused_connection_closed_unanswered_is_retried_once(
    server: Server, getter: HttptoolsGetter
) -> None:
    """The server drops the idle connection as the GET arrives: sent again on a fresh one."""
    first = await getter.get(f"{server.base}/cb?n=1", {})
    second = await getter.get(f"{server.base}/cb?n=2", {})
    assert (first.status, second.status) == (200, 200)
    assert [head.split(b" ")[1] for head in server.heads] == [b"/cb?n=1", b"/cb?n=2", b"/cb?n=2"]
    assert server.connections == 2


@pytest.mark.parametrize("server", [Server(b"", close_after=True)], indirect=True)
async def test_a_fresh_connection_closed_unanswered_is_an_error(
    server: Server, getter: HttptoolsGetter
) -> None:
    """Only a reused connection is retried: a fresh one closed unanswered is the server's."""
    with pytest.raises(CallbackTransportError, match="closed without an answer"):
        await getter.get(f"{server.base}/cb", {})
    assert (len(server.heads), server.connections) == (1, 1)


HTTP10 = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"20\r\nmagicid=tccrd_sms_gateway_rpack\n\r\n8\r\nmsgid=7\n\r\n0\r\n\r\n"
)


@pytest.mark.parametrize(
    ("server", "text", "connections"),
    [
        # An answer with Connection: close ends its connection even if the server keeps it.
        (reply("200 OK", ACK_BODY, "Connection: close"), ACK_BODY.decode(), 2),
        # Only HTTP/1.1 answers keep their connection, whatever an HTTP/1.0 server says.
        (HTTP10, "ok", 2),
        # A chunked body arrives whole, and its connection is reused after it.
        (CHUNKED, ACK_BODY.decode(), 1),
    ],
    ids=["connection-close", "http-1.0", "chunked"],
    indirect=["server"],
)
async def test_which_answers_keep_their_connection(
    server: Server, getter: HttptoolsGetter, text: str, connections: int
) -> None:
    """Two callbacks in turn: each answer read whole; connections opened as the answer says."""
    for _ in range(2):
        answer = await getter.get(f"{server.base}/cb", {})
        assert answer.text == text
    assert server.connections == connections


UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + ACK_BODY


@pytest.mark.parametrize("server", [Server(UNTIL_CLOSE, close_after=True)], indirect=True)
async def test_body_read_until_the_close(server: Server, getter: HttptoolsGetter) -> None:
    """Without Content-Length or chunks, the body is what came before the server closed."""
    for _ in range(2):
        answer = await getter.get(f"{server.base}/cb", {})
        assert (answer.status, answer.text) == (200, ACK_BODY.decode())
    assert server.connections == 2


TRUNCATED = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"


@pytest.mark.parametrize("server", [Server(TRUNCATED, close_after=True)], indirect=True)
async def test_body_cut_short_by_the_server_is_an_error(
    server: Server, getter: HttptoolsGetter
) -> None:
    """A close before Content-Length bytes is a broken answer, not a short one."""
    with pytest.raises(CallbackTransportError, match="middle of the answer"):
        await getter.get(f"{server.base}/cb", {})


BIG = reply("200 OK", ACK_BODY + b"x" * (2 * BODY_LIMIT))


@pytest.mark.parametrize("server", [BIG], indirect=True)
async def test_body_beyond_the_limit_is_cut_and_its_connection_closed(
    server: Server, getter: HttptoolsGetter
) -> None:
    """The first BODY_LIMIT bytes come back; the rest is left unread with its connection."""
    for _ in range(2):
        answer = await getter.get(f"{server.base}/cb", {})
        assert answer.status == 200
        assert len(answer.text) == BODY_LIMIT
        assert answer.text.startswith(ACK_BODY.decode())
    assert server.connections == 2


BIG5 = reply("200 OK", "中文".encode("big5"), 'Content-Type: text/plain; charset="Big5"')
BAD_UTF8 = reply("200 OK", b"ok \xff", "Content-Type: text/plain; charset=no-such-charset")
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n" + ACK


@pytest.mark.parametrize(
    ("server", "text"),
    [(BIG5, "中文"), (BAD_UTF8, "ok \ufffd"), (INTERIM, ACK_BODY.decode())],
    indirect=["server"],
)
async def test_body_decoding(server: Server, getter: HttptoolsGetter, text: str) -> None:
    """The Content-Type's charset decodes the body; unknown or broken falls back to UTF-8."""
    answer = await getter.get(f"{server.base}/cb", {})
    assert (answer.status, answer.text) == (200, text)


@pytest.mark.parametrize("server", [ACK], indirect=True)
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/cb", {"X-Test": "v1\r\nX-Injected: 1"}),
        ("/cb", {"X-Test": "v1\nX-Injected: 1"}),
        ("/cb", {"X-Test\r\nX-Injected": "1"}),
        ("/cb", {"X Test": "1"}),
        ("/cb?msgid=7\r\nX-Injected: 1", {}),
        ("/cb?msgid=7\n", {}),
    ],
)
async def test_line_breaks_in_headers_or_target_are_refused(
    server: Server, getter: HttptoolsGetter, path: str, headers: dict[str, str]
) -> None:
    """CR or LF in a header or the target would split the request: refused, nothing sent."""
    with pytest.raises(CallbackTransportError, match="refused"):
        await getter.get(server.base + path, headers)
    assert server.connections == 0


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/cb", "http:///cb", "http://127.0.0.1:99999/cb", "cb"]
)
async def test_urls_we_cannot_send_to_are_transport_errors(
    getter: HttptoolsGetter, url: str
) -> None:
    """A URL without an http(s) origin fails as the port says, not with ValueError."""
    with pytest.raises(CallbackTransportError):
        await getter.get(url, {})


async def test_ipv6_literal_with_its_port_in_the_host_header() -> None:
    """An IPv6 literal is connected to without brackets and named with them in Host."""
    state = Server(ACK)
    try:
        listener = await _serve(state, "::1")
    except OSError as error:
        if os.environ.get("CI"):  # CI's machine has ::1: the test must run there
            pytest.fail(f"cannot listen on ::1: {error}")
        pytest.skip("no IPv6 loopback on this machine")
    getter = HttptoolsGetter(5)
    async with listener:
        try:
            answer = await getter.get(f"http://[::1]:{state.port}/cb", {})
        finally:
            await getter.close()
    assert answer.status == 200
    assert f"Host: [::1]:{state.port}\r\n".encode() in state.heads[0]


async def test_per_host_bounds_the_open_connections() -> None:
    """With per_host=2, five GETs at once use two connections; the rest wait their turn."""
    loop = asyncio.get_running_loop()
    state = Server(ACK, hold=loop.create_future())
    getter = HttptoolsGetter(5, per_host=2)
    async with await _serve(state):
        try:
            sends = [
                asyncio.create_task(getter.get(f"{state.base}/cb?n={n}", {})) for n in range(5)
            ]
            await state.until_heads(2)
            assert (state.connections, len(state.heads)) == (2, 2)
            assert state.hold is not None
            state.hold.set_result(None)
            answers = await asyncio.gather(*sends)
        finally:
            await getter.close()
    assert [answer.status for answer in answers] == [200] * 5
    assert (state.most_open, state.connections, len(state.heads)) == (2, 2, 5)


async def test_max_connections_closes_an_idle_connection_of_another_host() -> None:
    """At max_connections, a new origin's connection replaces an idle one elsewhere."""
    first, second = Server(ACK), Server(ACK)
    getter = HttptoolsGetter(5, max_connections=1)
    async with await _serve(first), await _serve(second):
        try:
            await getter.get(f"{first.base}/cb", {})
            (idle,) = getter._pools["http", "127.0.0.1", first.port].idle
            await getter.get(f"{second.base}/cb", {})
            await idle.lost
            assert getter._open == 1
            assert ("http", "127.0.0.1", first.port) not in getter._pools
        finally:
            await getter.close()


@pytest.mark.parametrize("server", [ACK], indirect=True)
async def test_idle_connections_are_closed_after_keepalive(
    server: Server, getter: HttptoolsGetter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep closes connections idle longer than KEEPALIVE_S, and the pool forgets them."""
    await getter.get(f"{server.base}/cb", {})
    (pool,) = getter._pools.values()
    (idle,) = pool.idle
    monkeypatch.setattr(callback_http, "KEEPALIVE_S", -1.0)  # everything is too old now
    getter._sweep()
    await idle.lost
    assert (pool.idle, getter._open) == ([], 0)


# ---------------------------------------------------------------- HTTPS


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(certificate_authority: trustme.CA) -> AsyncIterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    state = Server(ACK)
    async with await _serve(state, context=context):
        yield state


async def test_https_with_a_trusted_certificate_keeps_alive(
    tls_server: Server, certificate_authority: trustme.CA
) -> None:
    """HTTPS verifies the server's certificate against the context and reuses the connection."""
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    getter = HttptoolsGetter(5, ssl_context=context)
    try:
        for _ in range(2):
            answer = await getter.get(f"https://127.0.0.1:{tls_server.port}/cb?msgid=7", {})
            assert (answer.status, answer.text) == (200, ACK_BODY.decode())
    finally:
        await getter.close()
    assert tls_server.connections == 1
    assert f"Host: 127.0.0.1:{tls_server.port}\r\n".encode() in tls_server.heads[0]


async def test_https_with_an_untrusted_certificate_is_a_transport_error(
    tls_server: Server,
) -> None:
    """The default context does not trust the test CA: a short error, no request sent."""
    getter = HttptoolsGetter(5)
    try:
        with pytest.raises(CallbackTransportError, match=r"(?i)certificate"):
            await getter.get(f"https://127.0.0.1:{tls_server.port}/cb", {})
    finally:
        await getter.close()
    assert tls_server.heads == []


# ---------------------------------------------------------------- under uvloop, as in production


def test_the_getter_under_uvloop(certificate_authority: trustme.CA) -> None:
    """uvloop's transports (TCP and its own TLS) take the same paths: reuse, retry, cut, TLS."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    certificate_authority.configure_trust(client_context)

    async def scenario() -> None:
        plain, dropping, big = Server(ACK), Server(ACK, close_on_second=True), Server(BIG)
        tls = Server(ACK)
        getter = HttptoolsGetter(5, ssl_context=client_context)
        async with (
            await _serve(plain),
            await _serve(dropping),
            await _serve(big),
            await _serve(tls, context=server_context),
        ):
            try:
                for server in (plain, dropping, big):
                    for _ in range(2):
                        assert (await getter.get(f"{server.base}/cb", {})).status == 200
                for _ in range(2):
                    answer = await getter.get(f"https://127.0.0.1:{tls.port}/cb", {})
                    assert answer.text == ACK_BODY.decode()
            finally:
                await getter.close()
        assert [s.connections for s in (plain, dropping, big, tls)] == [1, 2, 2, 1]
        assert len(dropping.heads) == 3

    uvloop.run(scenario())
