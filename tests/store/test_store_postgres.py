from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
import pytest

from smsgw.errors import StoreError
from smsgw.store.postgres import PostgresStore
from smsgw.store.postgres_delivery import REPLY_LOCK, reply_lock_name
from smsgw.store.schema import latest_version
from tests.reliability.processes import wait_for
from tests.store.contract import NOW, MakeStore, RowCount, SqlStoreContract, part

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from smsgw.store.port import Store

pytestmark = pytest.mark.postgres

LATEST = latest_version("postgres")


async def schema_of(url: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default,"
            " is_identity FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, column_name"
        )
        indexes = await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' ORDER BY indexname"
        )
        constraints = await conn.fetch(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conname"
        )
        versions = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
    finally:
        await conn.close()
    return [tuple(row) for row in (*columns, *indexes, *constraints, *versions)]


async def reset(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


class TestPostgresStore(SqlStoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> MakeStore:
        async def make() -> Store:
            # Tiny msgid blocks make two stores interleave their reservations.
            return PostgresStore(postgres_url, msgid_block=3)

        return make

    @pytest.fixture
    async def store(self, make_store: MakeStore) -> AsyncIterator[Store]:
        store = await make_store()
        await store.upgrade()
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    def row_count(self, postgres_url: str) -> RowCount:
        async def count(table: str) -> int:
            conn = await asyncpg.connect(postgres_url)
            try:
                return int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))
            finally:
                await conn.close()

        return count


async def test_open_refuses_a_partly_upgraded_database(postgres_url: str) -> None:
    """open() refuses an empty or older schema with the fix in the message."""
    store = PostgresStore(postgres_url)
    with pytest.raises(StoreError, match=f"version 0, expected {LATEST}.*smsgw db upgrade"):
        await store.open()
    assert await store.upgrade(to=1) == [1]
    with pytest.raises(StoreError, match="schema is at version 1"):
        await store.open()
    assert await store.upgrade() == list(range(2, LATEST + 1))
    await store.open()
    await store.close()


async def test_upgrade_step_by_step_equals_fresh(postgres_url: str) -> None:
    """Upgrading one version at a time yields exactly the schema of one full upgrade."""
    for version in range(1, LATEST + 1):
        stepwise = PostgresStore(postgres_url)
        assert await stepwise.upgrade(to=version) == [version]
        await stepwise.close()
    stepwise_schema = await schema_of(postgres_url)
    await reset(postgres_url)
    fresh = PostgresStore(postgres_url)
    await fresh.upgrade()
    await fresh.close()
    assert stepwise_schema == await schema_of(postgres_url)


async def test_concurrent_upgrades_apply_each_version_once(postgres_url: str) -> None:
    """Two stores upgrading at once serialise on the advisory lock; one does all the work."""
    first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
    applied = await asyncio.gather(first.upgrade(), second.upgrade())
    await first.close()
    await second.close()
    assert sorted(applied, key=len) == [[], list(range(1, LATEST + 1))]


async def test_unreachable_server_error_hides_the_password() -> None:
    """A connection failure names host and port, never the password of the URL."""
    store = PostgresStore("postgresql://smsgw:s3cret-pw@127.0.0.1:1/smsgw")
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "127.0.0.1:1" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    assert "s3cret-pw" not in repr(store)


LISTEN_DEADLINE_S = 10.0


async def test_a_notify_reaches_a_listener_on_another_node(postgres_url: str) -> None:
    """One store's NOTIFY wakes another store's listener; when its connection is killed,
    the listener connects again and hears the next one."""
    node_a, node_b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await node_a.upgrade()
    await node_a.open()
    await node_b.open()
    heard = asyncio.Event()
    listening = node_a.listen("smsgw_test", heard.set)
    try:
        await asyncio.wait_for(listening.connected.wait(), LISTEN_DEADLINE_S)
        await node_b.notify("smsgw_test")
        await asyncio.wait_for(heard.wait(), LISTEN_DEADLINE_S)

        heard.clear()
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()

        async def lost() -> bool:
            return not listening.connected.is_set()

        await wait_for(lost, LISTEN_DEADLINE_S, "the listener noticing its loss")
        await asyncio.wait_for(listening.connected.wait(), LISTEN_DEADLINE_S)
        await node_b.notify("smsgw_test")
        await asyncio.wait_for(heard.wait(), LISTEN_DEADLINE_S)
    finally:
        await listening.close()
        await node_b.close()
        await node_a.close()


async def test_parts_of_one_reply_kept_at_once_on_two_nodes_see_each_other(
    postgres_url: str,
) -> None:
    """A part kept while another node's transaction holds the same reply's lock waits for
    it, then sees that node's part: the last part of a reply always sees all of them."""
    store = PostgresStore(postgres_url)
    await store.upgrade()
    await store.open()
    other_node = await asyncpg.connect(postgres_url)
    try:
        await store.add_reply_part(part(1, "a"))
        second = part(2, "b")
        async with other_node.transaction():
            await other_node.execute(REPLY_LOCK, reply_lock_name(second.key))
            await other_node.execute(
                "INSERT INTO reply_parts (srcaddr, dstaddr, reference, total, seqnum, body,"
                " encoding, connector, received_at) VALUES ($1, $2, $3, $4, 2, 'b', 'UCS2',"
                " 'c1', $5)",
                *(second.srcaddr, second.dstaddr, second.reference, second.total, NOW),
            )
            last = asyncio.ensure_future(store.add_reply_part(part(3, "c")))

            async def waiting() -> bool:
                return bool(
                    await other_node.fetchval(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                )

            await wait_for(waiting, LISTEN_DEADLINE_S, "the last part waiting for the lock")
            assert not last.done()
        assert [kept.text for kept in await last] == ["a", "b", "c"]
    finally:
        await other_node.close()
        await store.close()
