"""What one read of deliver_sms becomes (smsgw/engine/inbound.py): receipts applied in one
store call, replies stored one by one, each PDU answered with its own status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest

from smsgw.config import ConnectorSettings
from smsgw.engine.inbound import Inbound
from smsgw.engine.testing import FakeClock
from smsgw.errors import StoreError
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.pdu import DeliverSm, SubmitSm
from smsgw.smpp.simulator.messages import receipt_for
from smsgw.store.memory import MemoryStore
from smsgw.store.port import Store
from smsgw.store.postgres import PostgresStore
from smsgw.store.records import ReceiptApplied, ReceiptUpdate
from tests.engine.test_engine_timers import START

SIM = ConnectorSettings(name="sim")
OK, RETRY = CommandStatus.ESME_ROK, CommandStatus.ESME_RX_T_APPN


class CountingStore(MemoryStore):
    """A memory store that counts apply_receipts calls, or fails them."""

    def __init__(self, *, fail_receipts: bool = False) -> None:
        super().__init__()
        self.receipt_calls: list[int] = []
        self.fail_receipts = fail_receipts

    async def apply_receipts(
        self, receipts: Sequence[ReceiptUpdate], now: datetime
    ) -> list[ReceiptApplied]:
        self.receipt_calls.append(len(receipts))
        if self.fail_receipts:
            raise StoreError("the disk is full")
        return await super().apply_receipts(receipts, now)


def receipt(message_id: str, clock: FakeClock) -> DeliverSm:
    submit = SubmitSm(destination_addr="886912345678", short_message=b"hi")
    pdu = receipt_for(submit, message_id, "DELIVRD", clock(), clock())
    assert isinstance(pdu, DeliverSm)
    return pdu


def reply(text: bytes) -> DeliverSm:
    return DeliverSm(source_addr="886912345678", destination_addr="0900", short_message=text)


async def reply_bodies(store: MemoryStore) -> list[str]:
    return [row.body for row in await store.list_replies(unmatched_only=False, limit=10)]


async def test_the_receipts_of_one_read_are_applied_in_one_call() -> None:
    clock = FakeClock(START)
    store = CountingStore()
    applied: list[ReceiptUpdate] = []
    inbound = Inbound(store, clock, on_receipt=lambda update, _: applied.append(update))
    pdus = [receipt("a1", clock), reply(b"hello"), receipt("b2", clock)]
    assert await inbound.handle(SIM, pdus) == [OK, OK, OK]
    assert store.receipt_calls == [2]
    assert [update.smsc_id_forms[0] for update in applied] == ["a1", "b2"]
    assert await store.held_receipt_count() == 2  # unknown ids are held, never refused
    assert await reply_bodies(store) == ["hello"]


async def test_a_failed_receipt_commit_asks_again_for_the_receipts_only() -> None:
    clock = FakeClock(START)
    store = CountingStore(fail_receipts=True)
    inbound = Inbound(store, clock)
    pdus = [receipt("a1", clock), reply(b"kept"), receipt("b2", clock)]
    assert await inbound.handle(SIM, pdus) == [RETRY, OK, RETRY]
    assert await reply_bodies(store) == ["kept"]


async def test_an_undecodable_receipt_is_acknowledged_and_counted() -> None:
    clock = FakeClock(START)
    store = CountingStore()
    inbound = Inbound(store, clock)
    broken = DeliverSm(esm_class=0x04, short_message=b"sub:001 stat:DELIVRD")  # no id
    assert await inbound.handle(SIM, [broken, receipt("c3", clock)]) == [OK, OK]
    assert inbound.undecodable == 1
    assert store.receipt_calls == [1]


async def reply_with_u0000(store: Store) -> str:
    """Hand Inbound an MO whose UCS-2 text holds U+0000; the body stored (asserting ROK)."""
    await store.open()
    try:
        inbound = Inbound(store, FakeClock(START))
        text = "yes\x00please".encode("utf-16-be")
        pdu = DeliverSm(
            source_addr="886912345678", destination_addr="0900", data_coding=8, short_message=text
        )
        assert await inbound.handle(SIM, [pdu]) == [OK]
        (row,) = await store.list_replies(unmatched_only=False, limit=10)
        return row.body
    finally:
        await store.close()


async def test_a_reply_holding_u0000_is_stored_with_a_replacement_character() -> None:
    """UCS-2 allows U+0000; the reply is acknowledged and stored, the NUL shown as U+FFFD."""
    assert await reply_with_u0000(MemoryStore()) == "yes\ufffdplease"


@pytest.mark.postgres
async def test_a_reply_holding_u0000_is_stored_on_postgresql(postgres_url: str) -> None:
    """PostgreSQL text cannot hold U+0000: stored as U+FFFD, not refused (a refused commit
    would have the SMSC resend the reply for ever)."""
    store = PostgresStore(postgres_url)
    await store.upgrade()
    assert await reply_with_u0000(store) == "yes\ufffdplease"
