"""The composition root: build the gateway from settings and serve it over HTTP(S).

``serve`` runs the API in this process (with ``http.workers`` > 1, in that many processes)
and the engine in the same process, or, with ``engine.separate_process`` or more than one
worker, in a child process: two cores instead of one event loop and one GIL for both. The
demo always keeps the engine in the API's process. ``serve --no-engine`` and ``smsgw engine``
run them apart, for instance API nodes and one engine node sharing PostgreSQL.

With the engine in another process the API wakes it after an accept with a datagram on
SQLite or a NOTIFY on PostgreSQL (`smsgw.engine.wakeup`); where neither works, the dispatcher
reads whether work is due every ``pacing.PROBE_S``. It claims every ``engine.poll_s``
anyway. The API's ``/readyz`` only says that the store answers (the engine's own metrics, on
``engine.metrics_port``, show its bind state).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar
from wsgiref.simple_server import WSGIServer

import prometheus_client
import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from smsgw import logs
from smsgw.api.app import ASGIApp, Receive, Scope, Send, SmsgoApp
from smsgw.api.demo import DemoReceiver
from smsgw.config import Settings, load_settings
from smsgw.domain.lockout import Lockout
from smsgw.domain.netaddr import parse_networks
from smsgw.engine import wakeup
from smsgw.engine.auth import Authenticator
from smsgw.engine.gateway import Gateway
from smsgw.engine.metrics import Metrics
from smsgw.engine.runner import Engine, Part
from smsgw.errors import ConfigError
from smsgw.smpp.simulator import ControlApp
from smsgw.store import PostgresStore, SqliteStore, open_store
from smsgw.store.port import Store

log = logging.getLogger("smsgw.server")


def utc_now() -> datetime:
    return datetime.now(UTC)


MAX_REQUEST_HEAD_BYTES = 65536
REQUEST_TIMEOUT_S = 10.0  # http.request_timeout_s's default, for a config without it


REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\nRequest timeout."
)


class GatewayConfig(uvicorn.Config):
    """uvicorn's settings plus smsgw's own for `BoundedHttpToolsProtocol`; an importable
    class, so the worker processes get it (pickled) like uvicorn's."""

    def __init__(self, app: ASGIApp | str, *, request_timeout_s: float, **options: Any) -> None:
        super().__init__(app, **options)
        self.request_timeout_s = request_timeout_s


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on a request's head and on its time.

    httptools buffers a URL and each header without limit until it is complete, so a client
    could fill memory with one endless header. A head still incomplete after
    ``MAX_REQUEST_HEAD_BYTES`` is answered 400 and the connection closed. The count is checked
    after each chunk is parsed, so a body arriving with its head is never counted against it.

    uvicorn closes a kept-alive connection idle between requests, but nothing bounds the time
    a request takes to arrive: a client sending nothing, or a byte now and then, holds its
    connection (and a file descriptor) for ever. Here a request must be complete within
    ``request_timeout_s`` (`GatewayConfig`) of the connection opening or of its own first
    byte; otherwise it is answered 408 (a connection that sent nothing is just closed). The
    time the app then takes to answer is not counted. A request only notes when it began:
    one sweep per server, every quarter of the timeout, finds the late ones (a timer per
    request cost about 6% of bench/accept.py's accepts/s), so one is cut off after 1 to 1.25
    times the timeout.
    """

    _in_head = False
    _head_bytes = 0
    _in_request = False
    _waiting_since: float | None = None  # loop time a request (or the connection) began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        self._waiting_since = self.loop.time()
        _RequestSweep.watch(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._in_request = True
        self._waiting_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_request = False
        self._waiting_since = None
        super().on_message_complete()

    @property
    def request_timeout_s(self) -> float:
        return float(getattr(self.config, "request_timeout_s", REQUEST_TIMEOUT_S))

    def late(self, now: float) -> bool:
        """The request (or the first one) is not complete and its time is up."""
        since = self._waiting_since
        return since is not None and now - since > self.request_timeout_s

    def request_timed_out(self) -> None:
        self._waiting_since = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if self._in_request and not answering:
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            self._in_head = False
            self.send_400_response("Request head too large.")


class _RequestSweep:
    """The one timer of a server's `BoundedHttpToolsProtocol` connections: every quarter of
    the request timeout it times out the late requests; it stops when no connection is left
    and starts again with the next one."""

    _running: ClassVar[weakref.WeakSet[ServerState]] = weakref.WeakSet()

    @classmethod
    def watch(cls, protocol: BoundedHttpToolsProtocol) -> None:
        state = protocol.server_state
        if state in cls._running:
            return
        cls._running.add(state)
        interval_s = protocol.request_timeout_s / 4
        protocol.loop.call_later(interval_s, cls._sweep, state, protocol.loop, interval_s)

    @classmethod
    def _sweep(cls, state: ServerState, loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
        now = loop.time()
        for connection in list(state.connections):
            if isinstance(connection, BoundedHttpToolsProtocol) and connection.late(now):
                connection.request_timed_out()
        if state.connections:
            loop.call_later(interval_s, cls._sweep, state, loop, interval_s)
        else:
            cls._running.discard(state)


class CoalescingTransport:
    """A transport whose writes within one turn of the event loop leave in one ``write``.

    uvicorn writes a response's head and its body separately: two send() calls, and on
    loopback two wake-ups of the client, for a reply of a few dozen bytes.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class BalancedMultiprocess(Multiprocess):
    """uvicorn's supervisor of worker processes, with a listening socket for each worker.

    With one socket shared by all workers, the worker that wakes first accepts every
    connection waiting (uvloop accepts until the queue is empty): 64 keep-alive connections
    opened at once all went to one of two workers, which ran at 72% CPU while the other idled
    at 0.2% (bench/accept.py). Here each worker listens on a socket of its own, bound with
    ``SO_REUSEPORT`` to the same address, and the kernel spreads new connections over them
    by their address hash. The sockets listen before their workers start: a socket the
    kernel does not see listening gets no connections, so clients that connected while the
    second worker was still starting all stayed with the first (bench/accept.py: one worker
    at 116 MiB peak, the other at 51, 8,515 accepts/s). Connections hashed to a worker still
    starting wait in its socket's queue. A worker that dies takes its socket along when
    uvicorn replaces it.
    """

    @property
    def sockets(self) -> list[socket.socket]:
        """A new socket, each time uvicorn starts a worker (it reads this just then)."""
        return [reuse_port_socket(self.config.host, self.config.port, self.config.backlog)]

    @sockets.setter
    def sockets(self, shared: list[socket.socket]) -> None:
        """uvicorn's constructor hands over its shared sockets: there must be none."""
        if shared:
            msg = "BalancedMultiprocess binds a socket for each worker itself"
            raise ValueError(msg)


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A TCP socket listening on ``host:port`` with ``SO_REUSEPORT``."""
    sock = _tcp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _tcp_socket(host: str) -> socket.socket:
    """A TCP socket of ``host``'s family (an IPv6 literal, else IPv4, as uvicorn binds)."""
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)


def claim_port(host: str, port: int) -> None:
    """Fail if something listens on ``host:port`` already.

    Sockets bound with ``SO_REUSEPORT`` by the same user share a port without complaint, so
    a second gateway started on the port would silently take half its connections. A plain
    bind, tried first, fails while anything listens there.
    """
    probe = _tcp_socket(host)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise ConfigError("http.port", f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    finally:
        probe.close()


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    gateway: Gateway
    app: SmsgoApp
    metrics: Metrics
    engine: Engine | None


def build(
    settings: Settings,
    store: Store | None = None,
    *,
    upgrade: bool | None = None,
    with_engine: bool = False,
    demo: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> Runtime:
    """Wire store, authenticator, gateway, engine and ASGI app; nothing is opened yet.

    ``clock`` is the wall clock of the gateway and the engine (tests pass a fake one).
    A process that serves only the API writes SQLite on its event loop (inline writes,
    see `SqliteStore`); one that also runs the engine keeps its writer thread.
    """
    if store is None:
        store = open_store(settings.database.url, inline_writes=not with_engine)
    metrics = Metrics()
    engine = (
        Engine(settings, store, clock, metrics=metrics, dispatcher_idle_s=settings.engine.poll_s)
        if with_engine
        else None
    )
    # An API without its engine signals accepts to an engine apart on the same SQLite file.
    sender = None if engine is not None else _wake_sender(store, "messages")
    trusted = parse_networks(settings.http.trusted_proxies, "http.trusted_proxies")
    auth = settings.auth
    lockout = Lockout(auth.lockout_failures, auth.lockout_window_s, auth.lockout_s)
    authenticator = Authenticator(store, lockout, time.monotonic, trusted, wall_clock=clock)
    gateway = Gateway(
        settings,
        store,
        authenticator,
        clock,
        metrics=metrics,
        on_accept=engine.wake if engine is not None else sender.notify if sender else None,
    )
    upgrade = _upgrades_itself(settings) if upgrade is None else upgrade

    async def startup() -> None:
        if upgrade:
            await store.upgrade()
        await store.open()
        if engine is not None:
            await engine.start()

    async def shutdown() -> None:
        # uvicorn stopped accepting and drained requests before calling this.
        if engine is not None:
            await engine.stop()
        if sender is not None:
            sender.close()
        await store.close()

    async def ready() -> bool:
        await store.schema_version()
        return engine is None or engine.bound

    app = SmsgoApp(
        gateway,
        trusted_proxies=trusted,
        max_body_bytes=settings.http.max_body_bytes,
        on_startup=startup,
        on_shutdown=shutdown,
        metrics=metrics,
        ready=ready,
        mounts=_mounts(engine, demo=demo),
    )
    return Runtime(settings, store, gateway, app, metrics, engine)


def _mounts(engine: Engine | None, *, demo: bool) -> dict[str, ASGIApp]:
    mounts: dict[str, ASGIApp] = {}
    if engine is not None:
        mounts["/simulator"] = _simulator_control(engine)
    if demo:
        mounts["/demo"] = DemoReceiver()
    return mounts


def _simulator_control(engine: Engine) -> ASGIApp:
    """The in-process simulator's control endpoint (``POST /simulator/mo``), for the demo."""

    async def control(scope: Scope, receive: Receive, send: Send) -> None:
        simulator = next(iter(engine.simulators.values()), None)
        if simulator is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no simulator connector"})
            return
        await ControlApp(simulator)(scope, receive, send)

    return control


def _upgrades_itself(settings: Settings) -> bool:
    """SQLite is migrated by `serve`; PostgreSQL, shared by nodes, only by `smsgw db upgrade`."""
    return settings.database.url.startswith("sqlite")


def create_app() -> SmsgoApp:
    """The app of one API worker process (uvicorn's factory), configured from the environment."""
    _prepare_process(os.environ.get(_LOG_LEVEL_ENV, "info"))
    return build(load_settings(None, os.environ), upgrade=False).app


_LOG_LEVEL_ENV = "SMSGW_LOG_LEVEL"


def uvicorn_config(
    runtime: Runtime | None, settings: Settings, *, log_level: str = "info"
) -> uvicorn.Config:
    """uvicorn's settings: one in-process app, or worker processes built by create_app."""
    http = settings.http
    return GatewayConfig(
        runtime.app if runtime is not None else "smsgw.server:create_app",
        request_timeout_s=http.request_timeout_s,
        factory=runtime is None,
        workers=http.workers if runtime is None else None,
        host=http.host,
        port=http.port,
        ssl_certfile=str(http.tls_cert) if http.tls_cert else None,
        ssl_keyfile=str(http.tls_key) if http.tls_key else None,
        loop="auto",
        http=BoundedHttpToolsProtocol,
        lifespan="on",
        # uvicorn's access log would print the password in the query string; ours redacts it.
        access_log=False,
        # X-Forwarded-For is believed only from http.trusted_proxies, by the app itself.
        proxy_headers=False,
        log_level=log_level,
        # Logging is configured once by smsgw.logs (structlog, secrets redacted).
        log_config=None,
        server_header=False,
    )


def serve(
    settings: Settings,
    *,
    config_path: str | None = None,
    log_level: str = "info",
    engine: bool = True,
    demo: bool = False,
) -> None:
    """The API, with the engine in this process, in a child process, or not at all.

    The demo keeps the engine in this process: it mounts the in-process simulator's control.
    """
    _prepare_process(log_level)
    os.environ[_LOG_LEVEL_ENV] = log_level  # for the worker processes
    in_process = demo or (
        settings.http.workers == 1 and (not settings.engine.separate_process or not engine)
    )
    if in_process:
        _serve_in_process(settings, log_level=log_level, engine=engine, demo=demo)
        return
    if _upgrades_itself(settings):
        asyncio.run(_upgrade(settings))  # before the engine, which would race to do it too
    if config_path is not None:
        os.environ["SMSGW_CONFIG"] = config_path  # the workers and the engine read the same file
    if settings.http.workers > 1:
        claim_port(settings.http.host, settings.http.port)
        engines = _spawn_engines(settings, log_level) if engine else []
        try:
            config = uvicorn_config(None, settings, log_level=log_level)
            BalancedMultiprocess(config, sockets=[]).run()
        finally:
            stop_engine_processes(engines)
        return
    runtime = build(settings, upgrade=False)
    server = uvicorn.Server(uvicorn_config(runtime, settings, log_level=log_level))
    with _signals_to(server.handle_exit):
        engines = _spawn_engines(settings, log_level)
        try:
            server.run()
        finally:
            stop_engine_processes(engines)


def _prepare_process(log_level: str) -> None:
    """What every gateway process (serve, an API worker, an engine) does first."""
    logs.configure(log_level)
    share_the_gil_quickly()
    collect_garbage_less_often()


# Seconds a thread runs before one waiting for the GIL may take it (CPython's default: 5 ms).
GIL_SWITCH_INTERVAL_S = 0.0005


def share_the_gil_quickly() -> None:
    """Let the SQLite writer thread take the GIL back sooner from a busy event loop.

    The writer gives the GIL up around every statement and waits for it afterwards, inside
    its transaction, while another process (the API or the engine) may wait for the file's
    write lock. With the default interval the engine's submit transactions held that lock
    27-38 ms each under load; with 0.5 ms, 9-16 ms (bench/e2e.py, engine separate).
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


# Net new container objects (allocations less frees) before a young collection (CPython: 700).
GC_YOUNG_THRESHOLD = 20_000


def collect_garbage_less_often() -> None:
    """Freeze what is alive after the imports, and collect the young generation rarely.

    A gateway's batches create and free thousands of tasks, futures, PDUs and rows at once,
    so at CPython's 700 the collector ran all the time and kept walking long-lived objects:
    a fifth of the delivery engine's CPU (bench/e2e.py, 60k: 3,396 young, 309 middle and 28
    full collections, 4.0 of 19.3 s; full ones 48 ms each). Freed objects do not count
    towards the threshold, so garbage in cycles still gets collected, 20,000 at a time.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _serve_in_process(settings: Settings, *, log_level: str, engine: bool, demo: bool) -> None:
    runtime = build(settings, with_engine=engine, demo=demo)
    # uvicorn shuts down cleanly on Ctrl-C, then raises it again for the caller: by then
    # there is nothing left to do, so it ends the command without a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(uvicorn_config(runtime, settings, log_level=log_level)).run()


SignalHandler = Callable[[int, FrameType | None], None]


@contextlib.contextmanager
def _signals_to(handler: SignalHandler) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``handler`` for the block, before and after uvicorn's own.

    A signal before uvicorn listens still stops it; the one uvicorn raises again after its
    clean shutdown must not end this process before the engine child is stopped.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


ENGINE_STOP_TIMEOUT_S = 60.0


def _spawn_engines(settings: Settings, log_level: str) -> list[subprocess.Popen[bytes]]:
    """`smsgw engine` as children that end with this process, even if this one is killed:
    the delivery engine and the callback worker apart (``engine.callbacks_process``), or
    one engine doing both."""
    parts: tuple[Part, ...] = (
        ("delivery", "callbacks") if settings.engine.callbacks_process else ("all",)
    )
    command = [sys.executable, "-m", "smsgw", "engine", "--log-level", log_level]
    command += ["--parent", str(os.getpid())]
    return [subprocess.Popen([*command, "--part", part]) for part in parts]  # noqa: S603


def stop_engine_processes(
    processes: Sequence[subprocess.Popen[bytes]], timeout_s: float = ENGINE_STOP_TIMEOUT_S
) -> None:
    """SIGTERM (each drains its in-flight work), then SIGKILL after ``timeout_s``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("an engine process did not stop within %.0f s; killing it", timeout_s)
            process.kill()
            process.wait()


async def _upgrade(settings: Settings) -> None:
    store = open_store(settings.database.url)
    await store.upgrade()
    await store.close()


def run_engine(
    settings: Settings,
    *,
    log_level: str = "info",
    parent: int | None = None,
    part: Part = "all",
) -> None:
    """`smsgw engine`: the delivery engine alone (or one ``part`` of it), until SIGINT or
    SIGTERM.

    ``parent``: the pid of the `smsgw serve` that started it; the engine dies with it, as it
    would in one process, so a killed gateway leaves no engine behind.
    """
    _prepare_process(log_level)
    if parent is not None:
        die_with_parent(parent)
    uvloop.run(_engine_main(settings, part))  # as uvicorn runs the API: asyncio's own loop cost
    # the engine an eighth of its CPU in socket writes alone (py-spy, bench/e2e.py)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask Linux for SIGKILL when the parent ends; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            log.warning("cannot tie the engine to its parent (errno %d)", ctypes.get_errno())
    if os.getppid() != parent:
        raise SystemExit(1)


async def _engine_main(settings: Settings, part: Part) -> None:
    # Writes on the loop's thread: nothing else runs in this process (see SqliteStore).
    store = open_store(settings.database.url, inline_writes=True)
    if _upgrades_itself(settings):
        await store.upgrade()
    await store.open()
    metrics = Metrics()
    idle_s = settings.engine.poll_s
    work: wakeup.Work = "callbacks" if part == "callbacks" else "messages"
    listener = wakeup.Listener.bind(wakeup.address(_sqlite_path(store), work))
    sender = _wake_sender(store, "callbacks") if part == "delivery" else None
    # PostgreSQL's NOTIFY reaches the engine whenever its LISTEN connection is up; while it
    # is not, the claim every poll_s finds the work.
    notified = store if isinstance(store, PostgresStore) else None
    engine = Engine(
        settings,
        store,
        utc_now,
        metrics=metrics,
        dispatcher_idle_s=idle_s,
        part=part,
        alone=True,
        woken=listener is not None or notified is not None,
        signal_callbacks=sender.notify if sender is not None else None,
    )
    on_wake = engine.callbacks.wake if part == "callbacks" else engine.wake
    if listener is not None:
        listener.start(on_wake)
    listening = notified.listen(wakeup.CHANNELS[work], on_wake) if notified else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ports = settings.engine
    port = ports.callbacks_metrics_port if part == "callbacks" else ports.metrics_port
    exposition = _serve_metrics(port, metrics)
    await engine.start()
    try:
        await stop.wait()
    finally:
        await engine.stop()
        for end in (listener, sender):
            if end is not None:
                end.close()
        if listening is not None:
            await listening.close()
        await store.close()
        if exposition is not None:
            exposition.shutdown()
        with contextlib.suppress(NotImplementedError):
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


def _sqlite_path(store: Store) -> Path | None:
    return store.path if isinstance(store, SqliteStore) else None


def _wake_sender(store: Store, work: wakeup.Work) -> wakeup.Sender | wakeup.NotifySender | None:
    """Signals telling the processes doing ``work`` on this database that some is due."""
    if isinstance(store, PostgresStore):
        return wakeup.NotifySender(store.notify, work)
    name = wakeup.address(_sqlite_path(store), work)
    return None if name is None else wakeup.Sender(name)


def _serve_metrics(port: int, metrics: Metrics) -> WSGIServer | None:
    """prometheus-client's exposition on 127.0.0.1 (its own thread), or None for port 0."""
    if port == 0:
        return None
    server, _thread = prometheus_client.start_http_server(
        port, addr="127.0.0.1", registry=metrics.registry
    )
    log.info("engine metrics on http://127.0.0.1:%d/metrics", port)
    return server
