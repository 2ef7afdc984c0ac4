"""Fixtures shared by every suite: a throw-away PostgreSQL database, and the run's log check.

``SMSGW_TEST_POSTGRES_URL`` names the server (default: local, trust auth). Each session
creates its own database and drops it at the end; ``postgres_url`` hands each test that
database with an empty schema. Unreachable server: skip, or fail when ``CI`` is set.

Every log record of the run is captured, rendered through the product's redacting pipeline
(``smsgw.logs.redact``); at the end of the session no captured line may hold a secret that a
test module uses (module constants named like PASSWORD, API_KEY, SECRET): the run fails if one
does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import structlog

from smsgw import logs

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


class _RunLog(logging.Handler):
    """Keeps every record of the run as the product's formatter would render it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                ],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    logs.redact,
                    structlog.dev.ConsoleRenderer(colors=False),
                ],
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot render is kept raw
            self.lines.append(f"{record.name} {record.msg!r} {record.args!r}")


RUN_LOG = _RunLog()
_SECRET_NAME = re.compile(r"(PASSWORD|API_KEY|SECRET|PASSWD)")
_MIN_SECRET_LENGTH = 8  # shorter constants ("secret", "pw") are also ordinary words in logs


@pytest.fixture(scope="session", autouse=True)
def capture_run_log() -> Iterator[None]:
    """Capture every log record of the run; smsgw's own at INFO, the production default.

    Only the ``smsgw`` logger is lowered: the test clients' own INFO lines (httpx prints each
    URL it requests, password included) are not the product's logs.
    """
    root = logging.getLogger()
    product = logging.getLogger("smsgw")
    saved_level = product.level
    root.addHandler(RUN_LOG)
    if product.getEffectiveLevel() > logging.INFO:
        product.setLevel(logging.INFO)
    yield
    root.removeHandler(RUN_LOG)
    product.setLevel(saved_level)


@pytest.fixture(autouse=True)
def keep_run_log_attached() -> None:
    """logs.configure replaces the root handlers: put the run's capture back before each test."""
    root = logging.getLogger()
    if RUN_LOG not in root.handlers:
        root.addHandler(RUN_LOG)


def secrets_in_use() -> set[str]:
    """String constants of loaded test modules whose names say they are secrets."""
    found: set[str] = set()
    for name, module in list(sys.modules.items()):
        if not (name == "tests" or name.startswith("tests.")):
            continue
        for attribute, value in vars(module).items():
            if _SECRET_NAME.search(attribute) and isinstance(value, str):
                found.add(value)
    return {value for value in found if len(value) >= _MIN_SECRET_LENGTH}


def leaked_secrets(lines: list[str], secrets_: set[str]) -> list[tuple[str, str]]:
    return [(secret, line) for line in lines for secret in secrets_ if secret in line]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = leaked_secrets(RUN_LOG.lines, secrets_in_use())
    if not leaks:
        return
    for secret, line in leaks[:20]:
        shown = line.replace(secret, "<SECRET>")[:300]
        sys.stderr.write(f"SECRET IN LOG ({len(secret)} chars): {shown}\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
