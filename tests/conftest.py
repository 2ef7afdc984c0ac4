"""Fixtures shared by every suite: a throw-away PostgreSQL database.

``SMSGW_TEST_POSTGRES_URL`` names the server (default: local, trust auth). Each session
creates its own database and drops it at the end; ``postgres_url`` hands each test that
database with an empty schema. Unreachable server: skip, or fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

POSTGRES_URL_VARIABLE = "SMSGW_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _server_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


async def _run_on_server(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """The URL of a database created for this test session (dropped afterwards)."""
    server = _server_url()
    name = f"smsgw_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_run_on_server(server, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        reason = f"PostgreSQL unreachable at {_host_port(server)}"
        if os.environ.get("CI"):
            pytest.fail(
                f"{reason} ({type(exc).__name__}); CI needs it: set {POSTGRES_URL_VARIABLE}"
            )
        pytest.skip(reason)
    yield _with_database(server, name)
    asyncio.run(_run_on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def postgres_url(postgres_database_url: str) -> str:
    """The session database with an empty public schema, for one test."""
    await _run_on_server(postgres_database_url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return postgres_database_url


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash test secrets with the cheapest argon2id parameters: same code, a fraction of the CPU.

    Verification reads the parameters from each hash, so nothing else changes.
    """
    from argon2 import PasswordHasher  # noqa: PLC0415 - only this fixture needs it

    from smsgw.engine import auth  # noqa: PLC0415

    monkeypatch.setattr(auth, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
