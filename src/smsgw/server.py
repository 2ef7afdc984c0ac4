"""The composition root: build the gateway from settings and serve it over HTTP(S).

``serve`` runs the API and the engine in one process (with ``http.workers`` > 1, the API in
that many processes and the engine in one more); ``serve --no-engine`` and ``smsgw engine``
run them apart, for instance API nodes and one engine node sharing PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from smsgw import logs
from smsgw.api.app import ASGIApp, Receive, Scope, Send, SmsgoApp
from smsgw.api.demo import DemoReceiver
from smsgw.config import Settings, load_settings
from smsgw.domain.lockout import Lockout
from smsgw.domain.netaddr import parse_networks
from smsgw.engine.auth import Authenticator
from smsgw.engine.gateway import Gateway
from smsgw.engine.metrics import Metrics
from smsgw.engine.runner import Engine
from smsgw.smpp.simulator import ControlApp
from smsgw.store import open_store
from smsgw.store.port import Store

log = logging.getLogger("smsgw.server")


def utc_now() -> datetime:
    return datetime.now(UTC)


MAX_REQUEST_HEAD_BYTES = 65536


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on a request's head (request line + headers).

    httptools buffers a URL and each header without limit until it is complete, so a client
    could fill memory with one endless header. A head still incomplete after
    ``MAX_REQUEST_HEAD_BYTES`` is answered 400 and the connection closed. The count is checked
    after each chunk is parsed, so a body arriving with its head is never counted against it.
    """

    _in_head = False
    _head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            self._in_head = False
            self.send_400_response("Request head too large.")


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
    """
    store = store if store is not None else open_store(settings.database.url)
    metrics = Metrics()
    engine = Engine(settings, store, clock, metrics=metrics) if with_engine else None
    trusted = parse_networks(settings.http.trusted_proxies, "http.trusted_proxies")
    auth = settings.auth
    lockout = Lockout(auth.lockout_failures, auth.lockout_window_s, auth.lockout_s)
    authenticator = Authenticator(store, lockout, time.monotonic, trusted)
    gateway = Gateway(
        settings,
        store,
        authenticator,
        clock,
        metrics=metrics,
        on_accept=engine.wake if engine is not None else None,
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
    logs.configure(os.environ.get(_LOG_LEVEL_ENV, "info"))
    return build(load_settings(None, os.environ), upgrade=False).app


_LOG_LEVEL_ENV = "SMSGW_LOG_LEVEL"


def uvicorn_config(
    runtime: Runtime | None, settings: Settings, *, log_level: str = "info"
) -> uvicorn.Config:
    """uvicorn's settings: one in-process app, or worker processes built by create_app."""
    http = settings.http
    return uvicorn.Config(
        runtime.app if runtime is not None else "smsgw.server:create_app",
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
    logs.configure(log_level)
    os.environ[_LOG_LEVEL_ENV] = log_level  # for the worker processes
    if settings.http.workers == 1 or demo:
        runtime = build(settings, with_engine=engine, demo=demo)
        uvicorn.Server(uvicorn_config(runtime, settings, log_level=log_level)).run()
        return
    if _upgrades_itself(settings):
        asyncio.run(_upgrade(settings))
    if config_path is not None:
        os.environ["SMSGW_CONFIG"] = config_path  # the workers read the same file
    engine_process = _spawn_engine(log_level) if engine else None
    try:
        config = uvicorn_config(None, settings, log_level=log_level)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if engine_process is not None:
            engine_process.send_signal(signal.SIGTERM)
            engine_process.wait(timeout=60)


def _spawn_engine(log_level: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "smsgw", "engine", "--log-level", log_level]
    return subprocess.Popen(command)  # noqa: S603 - our own command line


async def _upgrade(settings: Settings) -> None:
    store = open_store(settings.database.url)
    await store.upgrade()
    await store.close()


def run_engine(settings: Settings, *, log_level: str = "info") -> None:
    """`smsgw engine`: the delivery engine alone, until SIGINT or SIGTERM."""
    logs.configure(log_level)
    asyncio.run(_engine_main(settings))


async def _engine_main(settings: Settings) -> None:
    store = open_store(settings.database.url)
    if _upgrades_itself(settings):
        await store.upgrade()
    await store.open()
    engine = Engine(settings, store, utc_now)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await engine.start()
    try:
        await stop.wait()
    finally:
        await engine.stop()
        await store.close()
        with contextlib.suppress(NotImplementedError):
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
