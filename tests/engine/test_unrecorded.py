"""Receipts that wait for their submit's record (smsgw/engine/unrecorded.py)."""

from __future__ import annotations

import asyncio

from smsgw.config import ConnectorSettings
from smsgw.domain.model import State
from smsgw.engine.inbound import Inbound
from smsgw.engine.testing import FakeClock
from smsgw.engine.unrecorded import Unrecorded
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.pdu import SubmitSm
from smsgw.smpp.simulator.messages import receipt_for
from smsgw.store.memory import MemoryStore
from smsgw.store.records import ReceiptApplied, SubmitResult
from tests.engine.test_engine_timers import START, accepted, state_of


async def test_a_receipt_for_nothing_pending_goes_on_at_once() -> None:
    unrecorded = Unrecorded()
    await unrecorded.settled("sim", [["abc", "2748"]])  # returns without waiting
    assert len(unrecorded) == 0


async def test_a_receipt_waits_until_its_submit_is_recorded() -> None:
    """Any of the receipt's id forms finds the answered submit; recording releases it."""
    unrecorded = Unrecorded()
    unrecorded.answered("sim", "2748")
    waiting = asyncio.create_task(unrecorded.settled("sim", [["abc", "2748"]]))
    await asyncio.sleep(0)  # one loop turn: the receipt is now waiting
    assert not waiting.done()
    unrecorded.recorded("other", ["2748"])  # another connector's id of the same spelling
    await asyncio.sleep(0)
    assert not waiting.done()
    unrecorded.recorded("sim", ["2748"])
    await waiting
    assert len(unrecorded) == 0


async def test_receipts_read_together_wait_for_every_submit_they_name() -> None:
    unrecorded = Unrecorded()
    unrecorded.answered("sim", "a")
    unrecorded.answered("sim", "b")
    waiting = asyncio.create_task(unrecorded.settled("sim", [["a"], ["x"], ["b"]]))
    await asyncio.sleep(0)  # one loop turn: the receipts are waiting
    unrecorded.recorded("sim", ["a"])
    await asyncio.sleep(0)
    assert not waiting.done()
    unrecorded.recorded("sim", ["b"])
    await waiting


async def test_a_cancelled_receipt_leaves_the_others_waiting_for_the_same_submit() -> None:
    """Two receipts wait for one submit (a duplicate); one handler is cancelled (its
    connection dropped): the other is still released by the record."""
    unrecorded = Unrecorded()
    unrecorded.answered("sim", "7")
    first = asyncio.create_task(unrecorded.settled("sim", [["7"]]))
    second = asyncio.create_task(unrecorded.settled("sim", [["7"]]))
    await asyncio.sleep(0)  # one loop turn: both wait
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert not second.done()
    unrecorded.recorded("sim", ["7"])
    await second
    assert len(unrecorded) == 0


async def test_a_record_that_never_comes_releases_the_receipt_after_the_bound() -> None:
    unrecorded = Unrecorded(wait_s=0)
    unrecorded.answered("sim", "1")
    await unrecorded.settled("sim", [["1"]])  # gives up at once with a zero bound
    assert len(unrecorded) == 1  # still answered: the dispatcher's record will remove it
    unrecorded.recorded("sim", ["1", "unknown"])
    assert len(unrecorded) == 0


async def test_inbound_applies_a_receipt_once_its_answered_submit_is_recorded() -> None:
    """The receipt of a submit the SMSC answered but the store has not recorded yet waits
    for that record and then matches: it is not held, and its recipient is DELIVRD."""
    clock = FakeClock(START)
    store = MemoryStore()
    msgid = await accepted(store, clock)
    (due,) = await store.claim_due(clock(), 10, 60)
    unrecorded = Unrecorded()
    applied: list[ReceiptApplied] = []
    inbound = Inbound(
        store, clock, unrecorded=unrecorded, on_receipt=lambda _u, a: applied.append(a)
    )
    unrecorded.answered("sim", "4f2a")  # the ESME read the submit_sm_resp
    submit = SubmitSm(destination_addr="886912345678", short_message=b"hi")
    receipt = receipt_for(submit, "4f2a", "DELIVRD", clock(), clock())
    handling = asyncio.create_task(inbound.handle(ConnectorSettings(name="sim"), [receipt]))
    await asyncio.sleep(0)  # one loop turn: the handler is waiting, nothing stored
    assert not handling.done()
    assert await store.held_receipt_count() == 0
    await store.record_submits([SubmitResult(due.recipient_id, "sim", ("4f2a",))], clock())
    unrecorded.recorded("sim", ["4f2a"])  # what the dispatcher does after its record
    assert await handling == [CommandStatus.ESME_ROK]
    assert [a.matched for a in applied] == [True]
    assert await store.held_receipt_count() == 0
    assert await state_of(store, msgid) is State.DELIVRD
