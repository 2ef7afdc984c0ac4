"""Timer-driven engine behaviour with a fake clock and in-memory doubles (no SMSC, no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from smsgw.config import DEFAULT_CONNECTOR, Settings, WebhookSettings
from smsgw.domain.delivery import acknowledgement
from smsgw.domain.model import Account, State
from smsgw.domain.pricing import Rates
from smsgw.domain.send import plan_send
from smsgw.engine.callback_http import HttpxGetter
from smsgw.engine.callbacks import CallbackSender, CallbackWorker
from smsgw.engine.dispatcher import RETRY_DELAYS_S, Dispatcher, Link
from smsgw.engine.testing import FakeClock, ScriptedSubmitter
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.esme import Refused, Submitted
from smsgw.smpp.pdu import SubmitSm
from smsgw.store.memory import MemoryStore
from smsgw.store.records import DueMessage, SubmitResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
THROTTLED = Refused(CommandStatus.ESME_RTHROTTLED, temporary=True, reason="throttled")


async def accepted(store: MemoryStore, clock: FakeClock, **params: str) -> int:
    """An account and one accepted request; its msgid."""
    account = await store.create_account("alice", "hash", 100, clock())
    return await accept_one(store, account, clock, **params)


async def accept_one(
    store: MemoryStore,
    account: Account,
    clock: FakeClock,
    number: str = "0912345678",
    **params: str,
) -> int:
    """One more accepted request of ``account`` to ``number``; its msgid."""
    plan = plan_send(
        {"dstaddr": number, "smbody": "hi", **params}, Rates(()), clock(), allow_private=True
    )
    result = await store.accept(account.id, plan, clock())
    assert result is not None
    return result.msgid


async def state_of(store: MemoryStore, msgid: int) -> State:
    (row,) = await store.recipients(1, [msgid])
    return row.state


def dispatcher_for(
    store: MemoryStore, clock: FakeClock, submitter: ScriptedSubmitter, **options: Any
) -> Dispatcher:
    """A dispatcher over one simulator link (``options``: Dispatcher's keywords)."""
    links = {"sim": Link(DEFAULT_CONNECTOR, submitter)}
    return Dispatcher(store, links, Settings(), clock, **options)


async def dispatch(dispatcher: Dispatcher) -> int:
    claimed = await dispatcher.dispatch_due()
    await dispatcher.drain()
    return claimed


async def test_temporary_refusal_is_retried_only_after_its_delay() -> None:
    """A throttled submit is QUEUED again and claimed only once the clock reaches its retry time."""
    clock = FakeClock(START)
    store = MemoryStore()
    msgid = await accepted(store, clock)
    submitter = ScriptedSubmitter([THROTTLED])
    dispatcher = dispatcher_for(store, clock, submitter)
    assert await dispatch(dispatcher) == 1
    assert await state_of(store, msgid) is State.QUEUED
    clock.advance(RETRY_DELAYS_S[0] - 1)
    assert await dispatch(dispatcher) == 0
    clock.advance(1)
    assert await dispatch(dispatcher) == 1
    assert await state_of(store, msgid) is State.ENROUTE
    assert len(submitter.submitted) == 2


class Loop(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def running(loop: Loop) -> AsyncIterator[None]:
    """``loop.run()`` in the background for the block; stopped and cancelled after it."""
    task = asyncio.create_task(loop.run())
    try:
        yield
    finally:
        await loop.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class CountingSubmitter(ScriptedSubmitter):
    """A gated ScriptedSubmitter that sets ``reached[n]`` when its n-th submit arrives."""

    def __init__(self, gate: asyncio.Event, *counts: int) -> None:
        super().__init__(gate=gate)
        self.reached = {count: asyncio.Event() for count in counts}

    async def submit(self, pdu: SubmitSm) -> Submitted | Refused:
        reached = self.reached.get(len(self.submitted) + 1)
        if reached is not None:
            reached.set()
        return await super().submit(pdu)


async def test_a_full_dispatcher_claims_again_when_room_frees() -> None:
    """With every slot taken the dispatcher idles; sends that end wake it before idle_s."""
    clock = FakeClock(START)
    store = MemoryStore()
    account = await store.create_account("alice", "hash", 100, clock())
    numbers = {"0911111111", "0922222222", "0933333333", "0944444444"}
    for number in numbers:
        await accept_one(store, account, clock, number)
    gate = asyncio.Event()
    submitter = CountingSubmitter(gate, 2, 4)
    dispatcher = dispatcher_for(store, clock, submitter, concurrency=2, idle_s=3600)
    async with running(dispatcher):
        async with asyncio.timeout(10):
            await submitter.reached[2].wait()  # the first claim fills both slots
        assert await dispatcher.dispatch_due() == 0  # full: nothing claimed
        gate.set()
        async with asyncio.timeout(10):  # without the wake: an hour's idle
            await submitter.reached[4].wait()
    assert {"0" + pdu.destination_addr[3:] for pdu in submitter.submitted} == numbers


class CountingClaims(MemoryStore):
    """The in-memory store, counting claims."""

    claims = 0

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[DueMessage]:
        self.claims += 1
        return await super().claim_due(now, limit, lease_s)


async def test_a_busy_dispatcher_claims_a_batch_not_per_wake() -> None:
    """With more than half its room taken, wakes (accepts, signals) claim nothing; the
    half-room wake claims what came meanwhile in one go."""
    clock = FakeClock(START)
    store = CountingClaims()
    account = await store.create_account("alice", "hash", 100, clock())
    for _ in range(3):
        await accept_one(store, account, clock)
    gate = asyncio.Event()
    submitter = CountingSubmitter(gate, 3, 6)
    dispatcher = dispatcher_for(store, clock, submitter, concurrency=4, idle_s=3600)
    async with running(dispatcher):
        async with asyncio.timeout(10):
            await submitter.reached[3].wait()  # 3 of its 4 slots taken
        claims = store.claims
        for _ in range(3):
            await accept_one(store, account, clock)
            dispatcher.wake()
            for _ in range(5):
                await asyncio.sleep(0)  # turns of the loop in which a claim would start
        assert store.claims == claims
        gate.set()
        async with asyncio.timeout(10):  # without the half-room wake: an hour's idle
            await submitter.reached[6].wait()


async def test_a_dispatcher_apart_finds_an_accept_by_its_probe() -> None:
    """A dispatcher that no accept wakes (the engine in its own process) reads every
    PROBE_S whether a recipient is due and submits it then, not after idle_s (an hour)."""
    clock = FakeClock(START)
    store = MemoryStore()
    answering = asyncio.Event()
    answering.set()
    submitter = CountingSubmitter(answering, 1)
    dispatcher = dispatcher_for(store, clock, submitter, idle_s=3600, probe=True)
    async with running(dispatcher):
        await asyncio.sleep(0)  # nothing due: the dispatcher went idle
        await accepted(store, clock)  # no wake
        async with asyncio.timeout(10):  # without the probe: an hour
            await submitter.reached[1].wait()


async def test_temporary_refusals_past_validity_expire() -> None:
    """Temporary refusals until the validity period runs out make the recipient EXPIRED."""
    clock = FakeClock(START)
    store = MemoryStore()
    msgid = await accepted(store, clock)
    dispatcher = dispatcher_for(store, clock, ScriptedSubmitter([THROTTLED] * 1000))
    for _ in range(400):
        await dispatch(dispatcher)
        if (await state_of(store, msgid)).final:
            break
        clock.advance(RETRY_DELAYS_S[-1])
    assert await state_of(store, msgid) is State.EXPIRED
    assert clock.now - START <= timedelta(seconds=Settings().engine.validity_s)


async def test_scheduled_message_waits_for_dlvtime() -> None:
    """A WAITING recipient is not claimed a second before its dlvtime, and is claimed at it."""
    clock = FakeClock(START)
    store = MemoryStore()
    msgid = await accepted(store, clock, dlvtime="2026/11/27 17:00:00")  # 09:00 UTC
    dispatcher = dispatcher_for(store, clock, ScriptedSubmitter())
    clock.set(START.replace(hour=8, minute=59, second=59))
    assert await dispatch(dispatcher) == 0
    assert await state_of(store, msgid) is State.WAITING
    clock.set(START.replace(hour=9))
    assert await dispatch(dispatcher) == 1


async def final_with_callback(store: MemoryStore, clock: FakeClock, url: str) -> None:
    """One recipient REJECTD at submit, so its callback row to ``url`` is pending."""
    await accepted(store, clock, response=url)
    (due,) = await store.claim_due(clock(), 10, 60)
    await store.record_submits(
        [SubmitResult(due.recipient_id, "sim", final_state=State.REJECTD)], clock()
    )


def worker_for(
    store: MemoryStore,
    clock: FakeClock,
    handler: httpx.MockTransport,
    webhooks: WebhookSettings,
    addresses: list[str] | None = None,
) -> CallbackWorker:
    async def resolver(_host: str, _port: int) -> list[str]:
        return addresses or ["93.184.216.34"]

    client = httpx.AsyncClient(transport=handler)
    sender = CallbackSender(webhooks, HttpxGetter(client), resolver=resolver)
    return CallbackWorker(store, sender, webhooks, clock)


async def send(worker: CallbackWorker) -> int:
    started = await worker.send_due()
    await worker.drain()
    return started


async def test_an_unwoken_worker_finds_a_new_row_by_its_probe() -> None:
    """A worker that nothing wakes (alone in its process) reads every probe_s whether a row
    is due and claims it then, not after idle_s (an hour here)."""
    clock = FakeClock(START)
    store = MemoryStore()
    sent = asyncio.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        sent.set()
        return httpx.Response(200, text=acknowledgement(request.url.params["msgid"]))

    webhooks = WebhookSettings()
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))

    async def resolver(_host: str, _port: int) -> list[str]:
        return ["93.184.216.34"]

    sender = CallbackSender(webhooks, HttpxGetter(client), resolver=resolver)
    worker = CallbackWorker(store, sender, webhooks, clock, idle_s=3600, probe=True)
    async with running(worker):
        await asyncio.sleep(0)  # the worker claimed nothing and went idle
        await final_with_callback(store, clock, "http://hooks.example.com/d")  # no wake
        async with asyncio.timeout(10):  # without the probe: an hour
            await sent.wait()


async def test_callback_retry_waits_for_its_delay() -> None:
    """After a failed callback the next attempt happens only once the clock passes the delay."""
    clock = FakeClock(START)
    store = MemoryStore()
    await final_with_callback(store, clock, "http://hooks.example.com/d")
    answers = iter([httpx.Response(503), None])

    def answer(request: httpx.Request) -> httpx.Response:
        ack = acknowledgement(request.url.params["msgid"])
        return next(answers) or httpx.Response(200, text=ack)

    webhooks = WebhookSettings(retry_delays_s=(30.0, 120.0, 600.0))
    worker = worker_for(store, clock, httpx.MockTransport(answer), webhooks)
    assert await send(worker) == 1
    clock.advance(29)
    assert await send(worker) == 0
    clock.advance(1)
    assert await send(worker) == 1
    assert (await store.callback_counts())["sent"] == 1


async def test_name_resolving_to_loopback_is_refused_without_retry() -> None:
    """A callback host resolving to 127.0.0.1 is refused, never contacted, and failed at once."""
    clock = FakeClock(START)
    store = MemoryStore()
    await final_with_callback(store, clock, "http://innocent.example.com/d")
    contacted: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        contacted.append(request)
        return httpx.Response(200)

    webhooks = WebhookSettings(allow_private_networks=False, retry_delays_s=(0.0,))
    worker = worker_for(store, clock, httpx.MockTransport(answer), webhooks, ["127.0.0.1"])
    assert await send(worker) == 1
    assert contacted == []
    (row,) = await store.list_callbacks(None, None, 10)
    assert row.state == "failed"
    assert row.attempts == 1
    assert "private or local" in (row.last_error or "")


class ClaimDuringStop(MemoryStore):
    """A store whose claim is answered only after the dispatcher was told to stop."""

    dispatcher: Dispatcher | None = None

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[DueMessage]:
        claimed = await super().claim_due(now, limit, lease_s)
        assert self.dispatcher is not None
        await self.dispatcher.stop()
        return claimed


async def test_a_claim_answered_after_stop_starts_nothing() -> None:
    """Recipients claimed while stop() runs are left to their lease, never submitted late."""
    clock = FakeClock(START)
    store = ClaimDuringStop()
    msgid = await accepted(store, clock)
    submitter = ScriptedSubmitter()
    dispatcher = dispatcher_for(store, clock, submitter)
    store.dispatcher = dispatcher
    assert await dispatcher.dispatch_due() == 0
    assert dispatcher.in_flight == 0
    assert submitter.submitted == []
    assert await state_of(store, msgid) is State.ENROUTE  # claimed, back after the lease


def unreachable(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.url}")


async def test_claim_share_follows_the_slowest_busy_host() -> None:
    """An account may fill a whole claim while every busy host answers fast; a slow host's
    answer time shrinks the share to what it can send within half a lease (never below two
    hosts' worth), and its waiting backlog counts against it."""
    clock = FakeClock(START)
    webhooks = WebhookSettings(timeout_s=10.0)
    worker = worker_for(MemoryStore(), clock, httpx.MockTransport(unreachable), webhooks)
    lease_s = webhooks.timeout_s * 2 + 5
    assert worker._share(256, lease_s) == 256  # nothing busy: the whole claim
    worker._per_host_busy["fast.example.com"] = 8
    worker._observe("fast.example.com", 0.002)
    assert worker._share(256, lease_s) == 256
    worker._per_host_busy["slow.example.com"] = 8
    worker._observe("slow.example.com", 1.0)  # 8 connections x 12.5 s / 1 s = 100 rows
    assert worker._share(256, lease_s) == 100
    worker._backlog["slow.example.com"] = deque([object()] * 40)  # type: ignore[list-item]
    assert worker._share(256, lease_s) == 60
    worker._observe("slow.example.com", 10.0)  # dead: the EWMA climbs towards the timeout
    worker._observe("slow.example.com", 10.0)
    assert worker._share(256, lease_s) == 16
