"""What one read of deliver_sms becomes (smsgw/engine/inbound.py): receipts applied in one
store call, replies stored one by one, each PDU answered with its own status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

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
from smsgw.store.sqlite import SqliteStore
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


def reply_part(reference: int, total: int, seqnum: int, text: bytes) -> DeliverSm:
    """One part of a concatenated reply (8-bit reference UDH), GSM text."""
    udh = bytes([5, 0, 3, reference, total, seqnum])
    return DeliverSm(
        source_addr="886912345678",
        destination_addr="0900",
        esm_class=0x40,
        short_message=udh + text,
    )


async def test_reply_parts_acknowledged_before_a_restart_are_not_lost(tmp_path: Path) -> None:
    """Each part is acknowledged once kept in the store: a new process (a new store and
    Inbound on the same file) completes the reply with the last part."""
    clock = FakeClock(START)
    first = SqliteStore(tmp_path / "gw.db", inline_writes=True)
    await first.upgrade()
    await first.open()
    before = Inbound(first, clock)
    parts = [reply_part(9, 3, 1, b"see "), reply_part(9, 3, 2, b"you ")]
    assert await before.handle(SIM, parts) == [OK, OK]
    await first.close()

    again = SqliteStore(tmp_path / "gw.db", inline_writes=True)
    await again.open()
    try:
        replies: list[str] = []
        after = Inbound(again, clock, on_reply=lambda reply, _: replies.append(reply.body))
        assert await after.handle(SIM, [reply_part(9, 3, 3, b"soon")]) == [OK]
        assert replies == ["see you soon"]
        (row,) = await again.list_replies(unmatched_only=False, limit=10)
        assert (row.body, row.connector, row.srcaddr) == ("see you soon", "sim", "0912345678")
        assert await again.stale_reply_parts(clock() + timedelta(days=1), 10) == []
    finally:
        await again.close()


async def test_a_resent_part_of_a_kept_reply_changes_nothing() -> None:
    """An SMSC that resends a part (its acknowledgement was lost) gets OK again; the reply
    is stored once, with the text of the first copy."""
    store = MemoryStore()
    inbound = Inbound(store, FakeClock(START))
    first = reply_part(4, 2, 1, b"ab")
    assert await inbound.handle(SIM, [first, reply_part(4, 2, 1, b"XX")]) == [OK, OK]
    assert await inbound.handle(SIM, [reply_part(4, 2, 2, b"cd")]) == [OK]
    assert await reply_bodies(store) == ["abcd"]


async def test_a_reply_whose_parts_stop_coming_is_stored_after_the_timeout() -> None:
    """After the reassembly timeout the reply is stored as far as it came, once, with the
    connector its parts came through."""
    clock = FakeClock(START)
    store = MemoryStore()
    inbound = Inbound(store, clock, reassembly_timeout_s=60)
    parts = [reply_part(5, 3, 1, b"half "), reply_part(5, 3, 3, b"!")]
    assert await inbound.handle(SIM, parts) == [OK, OK]
    clock.advance(59)
    assert await inbound.flush_expired() == 0
    clock.advance(2)
    assert await inbound.flush_expired() == 1
    assert await inbound.flush_expired() == 0
    (row,) = await store.list_replies(unmatched_only=False, limit=10)
    assert (row.body, row.connector) == ("half !", "sim")


async def test_a_part_the_store_cannot_keep_is_asked_for_again() -> None:
    """Not kept, not acknowledged: the SMSC sends the part again."""
    store = MemoryStore()
    await store.close()
    inbound = Inbound(store, FakeClock(START))
    assert await inbound.handle(SIM, [reply_part(6, 2, 1, b"x")]) == [RETRY]
