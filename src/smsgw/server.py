"""The composition root: build the gateway from settings and serve it over HTTP(S)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import uvicorn

from smsgw.api.app import SmsgoApp
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


def build(settings: Settings, store: Store | None = None) -> Runtime:
    """Wire store, authenticator, gateway and ASGI app; nothing is opened yet."""
    store = store if store is not None else open_store(settings.database.url)
    auth_settings = settings.auth
    lockout = Lockout(
        auth_settings.lockout_failures, auth_settings.lockout_window_s, auth_settings.lockout_s
    )
    trusted = parse_networks(settings.http.trusted_proxies, "http.trusted_proxies")
    authenticator = Authenticator(store, lockout, time.monotonic, trusted)
    gateway = Gateway(settings, store, authenticator, utc_now)
    upgrade = settings.database.url.startswith("sqlite")

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


def uvicorn_config(runtime: Runtime, *, log_level: str = "info") -> uvicorn.Config:
    http = runtime.settings.http
    return uvicorn.Config(
        runtime.app,
        host=http.host,
        port=http.port,
        ssl_certfile=str(http.tls_cert) if http.tls_cert else None,
        ssl_keyfile=str(http.tls_key) if http.tls_key else None,
        loop="auto",
        http="httptools",
        lifespan="on",
        # uvicorn's access log would print the password in the query string; ours redacts it.
        access_log=False,
        log_level=log_level,
        server_header=False,
    )


def serve(settings: Settings, *, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    runtime = build(settings)
    uvicorn.Server(uvicorn_config(runtime, log_level=log_level)).run()
