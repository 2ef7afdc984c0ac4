"""Fixtures for the HTTP API: a gateway on the in-memory store, reached through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from smsgw.api.app import SmsgoApp
from smsgw.config import Settings, load_settings
from smsgw.domain.lockout import Lockout
from smsgw.engine import accounts
from smsgw.engine.auth import Authenticator
from smsgw.engine.gateway import Gateway
from smsgw.store.memory import MemoryStore

START = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
PASSWORD = "secret-pass-1"


@dataclass
class FakeClock:
    """A clock the tests move by hand."""

    now: datetime = START
    mono: float = 1000.0
    calls: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@dataclass
class Env:
    store: MemoryStore
    clock: FakeClock
    client: httpx.AsyncClient
    settings: Settings
    extra_clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def account(self, username: str, points: int = 100) -> None:
        await accounts.create_account(self.store, username, PASSWORD, points, self.clock())

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.client.get(f"/sms_gw/{path}", params=params)

    async def post(self, path: str, **params: str) -> httpx.Response:
        return await self.client.post(f"/sms_gw/{path}", data=params)

    async def with_settings(self, environ: dict[str, str]) -> httpx.AsyncClient:
        """A client for a second app on the same store, built from other settings."""
        settings = load_settings(None, {"SMSGW_DATABASE_URL": "memory://", **environ})
        app = make_app(settings, self.store, self.clock)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://gw")
        self.extra_clients.append(client)
        return client

    async def balance(self, username: str) -> int:
        account = await self.store.get_account(username)
        assert account is not None
        return account.balance


def make_app(settings: Settings, store: MemoryStore, clock: FakeClock) -> SmsgoApp:
    lockout = Lockout(
        settings.auth.lockout_failures, settings.auth.lockout_window_s, settings.auth.lockout_s
    )
    auth = Authenticator(store, lockout, clock.monotonic, (), wall_clock=clock)
    return SmsgoApp(Gateway(settings, store, auth, clock))


EnvFactory = Callable[..., "AsyncIterator[Env]"]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    settings = load_settings(None, {"SMSGW_DATABASE_URL": "memory://"})
    store = MemoryStore()
    await store.upgrade()
    await store.open()
    clock = FakeClock()
    app = make_app(settings, store, clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        environment = Env(store, clock, client, settings)
        yield environment
        for extra in environment.extra_clients:
            await extra.aclose()
    await store.close()
