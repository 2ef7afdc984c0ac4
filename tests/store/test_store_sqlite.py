from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import sqlite3
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgw.errors import StoreError
from smsgw.store.schema import latest_version
from smsgw.store.sqlite import SqliteStore, _Worker
from smsgw.store.sqlite_tx import WriterConnection, to_json, transaction
from tests.store.contract import (
    NOW,
    MakeStore,
    RowCount,
    SqlStoreContract,
    make_plan,
    new_account,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from smsgw.store.port import Store


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        versions = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    conn.close()
    return rows + [("migration", str(version), name) for version, name in versions]


class TestSqliteStore(SqlStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        async def make() -> Store:
            # Tiny msgid blocks make two stores interleave their reservations.
            return SqliteStore(tmp_path / "smsgw.db", msgid_block=3)

        return make

    @pytest.fixture
    async def store(self, make_store: MakeStore) -> AsyncIterator[Store]:
        store = await make_store()
        await store.upgrade()
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    def row_count(self, tmp_path: Path) -> RowCount:
        async def count(table: str) -> int:
            with sqlite3.connect(tmp_path / "smsgw.db") as conn:
                (rows,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            conn.close()
            return int(rows)

        return count


class TestSqliteStoreWritingInline(TestSqliteStore):
    """The same contract with the writes on the event loop's thread (the engine's processes)."""

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        async def make() -> Store:
            return SqliteStore(tmp_path / "smsgw.db", msgid_block=3, inline_writes=True)

        return make


async def test_inline_writes_run_on_the_loops_thread(tmp_path: Path) -> None:
    """Inline, a write is done by the caller's thread; otherwise by the writer thread."""
    for inline, expected in ((True, True), (False, False)):
        worker = _Worker(f"inline-{inline}", inline=inline)
        await worker.start(lambda: sqlite3.connect(tmp_path / "w.db", check_same_thread=False))
        try:
            caller = threading.get_ident()
            writer = await worker.run(lambda _: threading.get_ident())
        finally:
            await worker.stop()
        assert (writer == caller) is expected


async def test_open_refuses_a_database_without_schema(tmp_path: Path) -> None:
    """open() on a database that was never upgraded names the versions and the fix."""
    store = SqliteStore(tmp_path / "empty.db")
    expected = latest_version("sqlite")
    with pytest.raises(StoreError, match=f"version 0, expected {expected}.*smsgw db upgrade"):
        await store.open()
    await store.close()


async def test_open_refuses_a_partly_upgraded_database(tmp_path: Path) -> None:
    """open() refuses a schema that is behind, and accepts it once upgraded."""
    store = SqliteStore(tmp_path / "old.db")
    assert await store.upgrade(to=1) == [1]
    with pytest.raises(StoreError, match="schema is at version 1"):
        await store.open()
    assert await store.upgrade() == list(range(2, latest_version("sqlite") + 1))
    await store.open()
    assert await store.schema_version() == latest_version("sqlite")
    await store.close()


async def test_upgrade_step_by_step_equals_fresh(tmp_path: Path) -> None:
    """Upgrading one version at a time yields exactly the schema of one full upgrade."""
    stepwise = SqliteStore(tmp_path / "stepwise.db")
    for version in range(1, latest_version("sqlite") + 1):
        assert await stepwise.upgrade(to=version) == [version]
        await stepwise.close()
    fresh = SqliteStore(tmp_path / "fresh.db")
    await fresh.upgrade()
    await fresh.close()
    assert schema_of(tmp_path / "stepwise.db") == schema_of(tmp_path / "fresh.db")


async def test_concurrent_upgrades_apply_each_version_once(tmp_path: Path) -> None:
    """Two stores upgrading one file at once apply every migration exactly once."""
    first, second = SqliteStore(tmp_path / "db.db"), SqliteStore(tmp_path / "db.db")
    applied = await asyncio.gather(first.upgrade(), second.upgrade())
    await first.close()
    await second.close()
    assert sorted(applied[0] + applied[1]) == list(range(1, latest_version("sqlite") + 1))


async def test_connection_is_durable_and_shareable(tmp_path: Path) -> None:
    """The writer runs in WAL mode with synchronous=FULL, foreign keys and a busy timeout."""
    store = SqliteStore(tmp_path / "db.db")
    await store.upgrade()
    pragmas = await store._write(
        lambda conn: [
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    )
    await store.close()
    assert pragmas == ["wal", 2, 1, 5000]


async def test_reads_before_open_are_refused(tmp_path: Path) -> None:
    """A store that was not opened raises StoreError instead of touching the file."""
    store = SqliteStore(tmp_path / "db.db")
    with pytest.raises(StoreError, match="not open"):
        await store.get_account("alice")


def test_repr_names_the_file(tmp_path: Path) -> None:
    """The repr shows the database file."""
    assert "db.db" in repr(SqliteStore(tmp_path / "db.db"))


async def test_urgent_writes_overtake_queued_ordinary_ones() -> None:
    """An accept-like urgent job runs before ordinary jobs queued ahead of it."""
    worker = _Worker("test-writer")
    await worker.start(lambda: sqlite3.connect(":memory:", check_same_thread=False))
    gate, order = threading.Event(), list[str]()
    jobs = [
        asyncio.create_task(worker.run(lambda _: gate.wait())),
        asyncio.create_task(worker.run(lambda _: order.append("ordinary"))),
        asyncio.create_task(worker.run(lambda _: order.append("urgent"), urgent=True)),
    ]
    await asyncio.sleep(0)  # a yield, so every job is queued before the first is released
    gate.set()
    await asyncio.gather(*jobs)
    await worker.stop()
    assert order == ["urgent", "ordinary"]


def test_write_transactions_hold_the_writer_lock_file(tmp_path: Path) -> None:
    """A write transaction holds ``<database>-writer.lock`` (flock) from before BEGIN to
    after COMMIT, so another process's writer waits in the kernel, not in SQLite's polling
    busy handler; the lock is free again afterwards, also after a failed transaction."""
    database = tmp_path / "locked.db"
    conn = sqlite3.connect(database, isolation_level=None, factory=WriterConnection)
    conn.hold_write_lock(database)
    other = os.open(f"{database}-writer.lock", os.O_RDWR)
    try:
        with transaction(conn):
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            conn.execute("CREATE TABLE t (x INTEGER)")
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: does not raise
        fcntl.flock(other, fcntl.LOCK_UN)
        with pytest.raises(sqlite3.OperationalError), transaction(conn):
            conn.execute("INSERT INTO missing VALUES (1)")
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)
        conn.close()
    assert conn.lock_fd == -1  # closed with the connection


async def test_rows_with_a_nul_character_are_stored_whole(tmp_path: Path) -> None:
    """Batched rows travel as JSON, which SQLite cuts at U+0000; such rows are bound as
    parameters instead, so a body holding one comes back whole (and other rows too)."""
    store = SqliteStore(tmp_path / "nul.db")
    await store.upgrade()
    await store.open()
    try:
        account = await new_account(store, "alice")
        plain, with_nul = await asyncio.gather(  # most likely one batch
            store.accept(account.id, replace(make_plan("0911111111"), body="ab"), NOW),
            store.accept(account.id, replace(make_plan("0922222222"), body="a\x00b"), NOW),
        )
        assert plain is not None
        assert with_nul is not None
        bodies = {due.msgid: due.body for due in await store.claim_due(NOW, 10, 60)}
        assert bodies == {plain.msgid: "ab", with_nul.msgid: "a\x00b"}
    finally:
        await store.close()


_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_FIELDS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson refuses those, the fallback writes them
    st.text(),  # lone surrogates too: the same
)


@given(st.lists(st.tuples(_JSON_FIELDS, _JSON_FIELDS, _JSON_FIELDS), max_size=5))
def test_to_json_means_what_the_standard_library_writes(rows: list[tuple[object, ...]]) -> None:
    """Rows encoded by to_json (orjson, falling back to json) decode to the same values,
    and SQLite's JSON reads the same fields from both texts."""
    text = to_json(rows)
    assert json.loads(text) == json.loads(json.dumps(rows, ensure_ascii=False))
    if any(isinstance(field, str) and _SURROGATE.search(field) for row in rows for field in row):
        return  # not UTF-8: sqlite3 cannot bind such text at all
    query = "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?) AS j"
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        ours = conn.execute(query, (text,)).fetchall()
        theirs = conn.execute(query, (json.dumps(rows, ensure_ascii=False),)).fetchall()
    assert ours == theirs
