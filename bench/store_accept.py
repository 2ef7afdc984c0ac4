"""Accepts per second of the store's group commit, SQLite and PostgreSQL.

Usage: python bench/store_accept.py [--accepts 20000] [--concurrency 200] [--postgres URL]
200 concurrent callers each accept one-recipient requests until the total is reached.
PostgreSQL runs in a throw-away database created on the server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from smsgw.domain.model import RecipientPlan, SendPlan
from smsgw.store.postgres import PostgresStore
from smsgw.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from smsgw.store.port import Store

DEFAULT_POSTGRES = os.environ.get(
    "SMSGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def plan(number: int) -> SendPlan:
    return SendPlan(
        encoding="BIG5",
        body="benchmark",
        coding="ucs2",
        flash=False,
        segments=1,
        recipients=(RecipientPlan(f"09{number % 100_000_000:08d}", 1),),
        reply_surcharge=0,
        points=1,
    )


async def measure(store: Store, accepts: int, concurrency: int) -> float:
    await store.upgrade()
    await store.open()
    now = datetime.now(UTC)
    account = await store.create_account("bench", "x", accepts, now)
    counter = iter(range(accepts))

    async def caller() -> None:
        for number in counter:
            if await store.accept(account.id, plan(number), now) is None:
                raise RuntimeError("accept refused")

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await store.close()
    return accepts / elapsed


async def with_database(server: str, name: str, statement: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(statement.format(name=name))
    finally:
        await conn.close()


async def postgres(server: str, accepts: int, concurrency: int) -> float:
    name = f"smsgw_bench_{secrets.token_hex(4)}"
    await with_database(server, name, 'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        return await measure(PostgresStore(url), accepts, concurrency)
    finally:
        await with_database(server, name, 'DROP DATABASE "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accepts", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.db")
        rate = await measure(store, args.accepts, args.concurrency)
    print(f"sqlite   (synchronous=FULL): {rate:8.0f} accepts/s")
    try:
        rate = await postgres(args.postgres, args.accepts, args.concurrency)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"postgres: skipped ({type(exc).__name__})")
    else:
        print(f"postgres (pool of 10):       {rate:8.0f} accepts/s")


if __name__ == "__main__":
    asyncio.run(main())
