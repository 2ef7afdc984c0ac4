from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from smsgw.errors import StoreError
from smsgw.store.memory import MemoryStore
from tests.store.contract import LATER, NOW, StoreContract, balance, make_plan, new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from smsgw.store.port import Store


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()


async def test_fail_next_accepts_fails_then_recovers() -> None:
    """fail_next_accepts makes that many accepts raise without writing, then accepts work."""
    store = MemoryStore()
    account = await new_account(store, points=10)
    store.fail_next_accepts(1)
    store.fail_next_accepts(1, error=RuntimeError("boom"))
    with pytest.raises(StoreError):
        await store.accept(account.id, make_plan(), NOW)
    with pytest.raises(RuntimeError, match="boom"):
        await store.accept(account.id, make_plan(), NOW)
    assert await balance(store, account) == 10
    assert await store.accept(account.id, make_plan(), NOW) is not None


async def test_points_of_live_recipients_track_the_balance() -> None:
    """points_of_live_recipients is what the account paid minus what was refunded."""
    store = MemoryStore()
    account = await new_account(store, points=100)
    waiting = await store.accept(
        account.id, make_plan("0911111111", surcharge=2, dlvtime=LATER), NOW
    )
    await store.accept(account.id, make_plan("0922222222", "0933333333", points_each=3), NOW)
    assert waiting is not None
    assert await store.points_of_live_recipients(account.id) == 9
    await store.cancel(account.id, waiting.msgid, NOW)
    assert await store.points_of_live_recipients(account.id) == 6
    assert await balance(store, account) == 100 - 6
