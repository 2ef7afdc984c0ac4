"""The composition root: build the gateway from settings and serve it over HTTP(S)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors import Multiprocess

from smsgw.api.app import SmsgoApp
from smsgw.config import load_settings
from smsgw.domain.lockout import Lockout
from smsgw.domain.netaddr import parse_networks
from smsgw.engine.auth import Authenticator
from smsgw.engine.gateway import Gateway
from smsgw.store import open_store

if TYPE_CHECKING:
    from smsgw.config import Settings
    from smsgw.store.port import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    gateway: Gateway
    app: SmsgoApp


def build(
    settings: Settings, store: Store | None = None, *, upgrade: bool | None = None
) -> Runtime:
    """Wire store, authenticator, gateway and ASGI app; nothing is opened yet."""
    store = store if store is not None else open_store(settings.database.url)
    auth_settings = settings.auth
    lockout = Lockout(
        auth_settings.lockout_failures, auth_settings.lockout_window_s, auth_settings.lockout_s
    )
    trusted = parse_networks(settings.http.trusted_proxies, "http.trusted_proxies")
    authenticator = Authenticator(store, lockout, time.monotonic, trusted)
    gateway = Gateway(settings, store, authenticator, utc_now)
    if upgrade is None:
        upgrade = _upgrades_itself(settings)

    async def startup() -> None:
        if upgrade:
            await store.upgrade()
        await store.open()

    app = SmsgoApp(
        gateway,
        trusted_proxies=trusted,
        max_body_bytes=settings.http.max_body_bytes,
        on_startup=startup,
        on_shutdown=store.close,
    )
    return Runtime(settings, store, gateway, app)


def _upgrades_itself(settings: Settings) -> bool:
    """SQLite is migrated by `serve`; PostgreSQL, shared by nodes, only by `smsgw db upgrade`."""
    return settings.database.url.startswith("sqlite")


def create_app() -> SmsgoApp:
    """The app of one worker process (uvicorn's factory), configured from the environment."""
    return build(load_settings(None, os.environ), upgrade=False).app


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
        http="httptools",
        lifespan="on",
        # uvicorn's access log would print the password in the query string; ours redacts it.
        access_log=False,
        # X-Forwarded-For is believed only from http.trusted_proxies, by the app itself.
        proxy_headers=False,
        log_level=log_level,
        server_header=False,
    )


def serve(settings: Settings, *, config_path: str | None = None, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if settings.http.workers == 1:
        runtime = build(settings)
        uvicorn.Server(uvicorn_config(runtime, settings, log_level=log_level)).run()
        return
    if _upgrades_itself(settings):
        asyncio.run(_upgrade(settings))
    if config_path is not None:
        os.environ["SMSGW_CONFIG"] = config_path  # the workers read the same file
    config = uvicorn_config(None, settings, log_level=log_level)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()


async def _upgrade(settings: Settings) -> None:
    store = open_store(settings.database.url)
    await store.upgrade()
    await store.close()
