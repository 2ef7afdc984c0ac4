"""The SMSC simulator over real TCP on loopback, driven by a small ESME client."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import pytest
from tests.smpp.simulator_client import Client

from smsgw.config import SimulatorRule, SimulatorSettings
from smsgw.smpp import CommandStatus, DeliverSm, MessageState, SubmitSm
from smsgw.smpp.simulator import Decision, Simulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

RECEIPT_TEXT = re.compile(
    r"id:(?P<id>[0-9A-F]+) sub:001 dlvrd:(?P<dlvrd>\d{3}) submit date:\d{10}"
    r" done date:\d{10} stat:(?P<stat>[A-Z]+) err:\d{3} text:(?P<text>.*)"
)

T = TypeVar("T")
Start = Callable[..., Awaitable[tuple[Simulator, int]]]


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StoppedLoopClock:
    """The event loop's clock, stopped until ``run_on``: the simulator schedules receipts on it
    (``call_later``), so every receipt planned meanwhile counts from one instant, and they fall
    due in the exact order of their seeded delays, however the submits were spaced.

    It runs on anyway after ``limit_s`` real seconds, so a broken test times out, not hangs.
    """

    def __init__(self, real: Callable[[], float], limit_s: float = 5.0) -> None:
        self._real = real
        self._stopped_at = real()
        self._limit_s = limit_s
        self._offset: float | None = None

    def __call__(self) -> float:
        real = self._real()
        if self._offset is not None:
            return real + self._offset
        return self._stopped_at if real < self._stopped_at + self._limit_s else real

    def run_on(self, skipped_s: float) -> None:
        """Jumps ``skipped_s`` seconds ahead and runs on in real time from there."""
        self._offset = self() + skipped_s - self._real()


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts simulators with the given settings; stops them and their clients at the end."""
    simulators: list[Simulator] = []

    async def start_simulator(
        clock: Callable[[], float] | None = None, **changes: object
    ) -> tuple[Simulator, int]:
        settings = replace(SimulatorSettings(receipt_delay_s=0, seed=7), **changes)  # type: ignore[arg-type]
        simulator = Simulator(settings) if clock is None else Simulator(settings, clock=clock)
        simulators.append(simulator)
        return simulator, await simulator.start()

    yield start_simulator
    for simulator in simulators:
        await simulator.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        await client.close()


async def bound(port: int, clients: list[Client], kind: str = "transceiver") -> Client:
    client = await Client.connect(port)
    clients.append(client)
    assert await client.bind(kind) == CommandStatus.ESME_ROK  # type: ignore[arg-type]
    return client


def receipt_fields(pdu: DeliverSm) -> dict[str, str]:
    match = RECEIPT_TEXT.fullmatch(pdu.short_message.decode("ascii"))
    assert match is not None, pdu.short_message
    return match.groupdict()


@pytest.mark.parametrize("kind", ["transmitter", "receiver", "transceiver"])
async def test_bind_with_the_right_credentials_succeeds(
    start: Start, clients: list[Client], kind: str
) -> None:
    """Each kind of bind with the configured system_id and password is accepted."""
    simulator, port = await start()
    await bound(port, clients, kind)
    assert simulator.counters.binds == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("smsgw", "wrong", CommandStatus.ESME_RINVPASWD),
        ("other", "secret", CommandStatus.ESME_RINVSYSID),
    ],
)
async def test_bind_with_wrong_credentials_is_refused(
    start: Start, clients: list[Client], system_id: str, password: str, status: int
) -> None:
    """A wrong password answers ESME_RINVPASWD and an unknown system_id ESME_RINVSYSID."""
    simulator, port = await start()
    client = await Client.connect(port)
    clients.append(client)
    assert await client.bind(system_id=system_id, password=password) == status
    assert simulator.counters.bind_failures == 1


async def test_submit_gets_a_hex_id_then_a_delivered_receipt(
    start: Start, clients: list[Client]
) -> None:
    """A submit is answered with a hex id, then a text-form receipt with TLVs for that id."""
    simulator, port = await start()
    client = await bound(port, clients)
    response = await client.submit(short_message=b"hello there, this is a long text")
    receipt = await client.next_delivered()
    message_id = response.message_id  # type: ignore[attr-defined]
    assert re.fullmatch(r"[0-9A-F]+", message_id)
    assert receipt.esm_class == 0x04
    assert receipt.receipted_message_id == message_id
    assert receipt.message_state == MessageState.DELIVERED
    assert receipt.source_addr == "886912345678"
    assert receipt.destination_addr == "smsgw"
    fields = receipt_fields(receipt)
    assert fields == {
        "id": message_id,
        "dlvrd": "001",
        "stat": "DELIVRD",
        "text": "hello there, this is",
    }
    assert len(simulator.submitted) == 1
    assert simulator.receipts_sent == 1


async def test_message_ids_are_unique(start: Start, clients: list[Client]) -> None:
    """Every accepted submit gets a different message id."""
    _, port = await start()
    client = await bound(port, clients)
    ids = {(await client.submit(registered_delivery=0)).message_id for _ in range(50)}  # type: ignore[attr-defined]
    assert len(ids) == 50


async def test_receipt_only_when_registered_delivery_asks(
    start: Start, clients: list[Client]
) -> None:
    """A submit with registered_delivery 0 gets no receipt; the next one with 1 does."""
    _, port = await start()
    client = await bound(port, clients)
    await client.submit(registered_delivery=0)
    wanted = await client.submit(registered_delivery=1)
    receipt = await client.next_delivered()
    assert receipt.receipted_message_id == wanted.message_id  # type: ignore[attr-defined]


async def test_outcome_mix_follows_the_weights(start: Start, clients: list[Client]) -> None:
    """Over 2,000 submits with a fixed seed, outcomes follow the configured weights."""
    weights = {"DELIVRD": 0.95, "UNDELIV": 0.03, "EXPIRED": 0.02}
    simulator, port = await start(outcomes=weights)
    client = await bound(port, clients)
    futures = [client.send(_submit()) for _ in range(2000)]
    for future in futures:
        assert (await future).command_status == CommandStatus.ESME_ROK
    await simulator.wait_until(lambda counters: counters.receipts_sent == 2000)
    stats = Counter([receipt_fields(await client.next_delivered())["stat"] for _ in range(2000)])
    assert 1850 <= stats["DELIVRD"] <= 1950
    assert 30 <= stats["UNDELIV"] <= 95
    assert 15 <= stats["EXPIRED"] <= 70
    assert sum(stats.values()) == 2000


async def test_suffix_rule_fixes_the_outcome(start: Start, clients: list[Client]) -> None:
    """Numbers ending in the rule's suffix always get its outcome; others follow the mix."""
    rule = SimulatorRule(suffix="0000", outcome="UNDELIV")
    _, port = await start(rules=(rule,))
    client = await bound(port, clients)
    await client.submit("886912340000")
    undelivered = await client.next_delivered()
    await client.submit("886912345678")
    delivered = await client.next_delivered()
    assert receipt_fields(undelivered)["stat"] == "UNDELIV"
    assert undelivered.message_state == MessageState.UNDELIVERABLE
    assert receipt_fields(delivered)["stat"] == "DELIVRD"


async def test_prefix_rule_refuses_at_submit(start: Start, clients: list[Client]) -> None:
    """A rule with submit_status refuses matching numbers with that status and no receipt."""
    rule = SimulatorRule(prefix="8869111", submit_status="ESME_RINVDSTADR")
    simulator, port = await start(rules=(rule,))
    client = await bound(port, clients)
    refused = await client.submit("886911100000")
    accepted = await client.submit("886912345678")
    receipt = await client.next_delivered()
    assert refused.command_status == CommandStatus.ESME_RINVDSTADR
    assert receipt.receipted_message_id == accepted.message_id  # type: ignore[attr-defined]
    assert simulator.counters.submits_refused == 1


async def test_throttle_refuses_above_the_rate(start: Start, clients: list[Client]) -> None:
    """Above throttle_tps submits in a second the answer is ESME_RTHROTTLED, until time passes."""
    clock = ManualClock()
    simulator, port = await start(clock, throttle_tps=5)
    client = await bound(port, clients)
    statuses = [(await client.submit(registered_delivery=0)).command_status for _ in range(8)]
    clock.now = 1.0
    later = await client.submit(registered_delivery=0)
    assert statuses == [CommandStatus.ESME_ROK] * 5 + [CommandStatus.ESME_RTHROTTLED] * 3
    assert later.command_status == CommandStatus.ESME_ROK
    assert simulator.counters.throttled == 3


async def test_duplicate_receipts_send_each_receipt_twice(
    start: Start, clients: list[Client]
) -> None:
    """With duplicate_receipts every receipt arrives twice."""
    _, port = await start(duplicate_receipts=True)
    client = await bound(port, clients)
    response = await client.submit()
    first, second = await client.next_delivered(), await client.next_delivered()
    message_id = response.message_id  # type: ignore[attr-defined]
    assert first.receipted_message_id == second.receipted_message_id == message_id


async def test_early_receipts_arrive_before_the_submit_response(
    start: Start, clients: list[Client]
) -> None:
    """With early_receipts the receipt is on the wire before the submit_sm_resp."""
    _, port = await start(early_receipts=True, receipt_delay_s=5.0)
    client = await bound(port, clients)
    response = await client.submit()
    message_id = response.message_id  # type: ignore[attr-defined]
    assert client.arrivals == [("deliver", message_id), ("response", message_id)]


async def test_jittered_receipts_arrive_out_of_submit_order(
    start: Start, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With receipt_jitter_s the receipts of 20 submits arrive shuffled, in the order their
    seeded delays fall due, all at once after a pause (as in bench/storm.py)."""
    simulator, port = await start(receipt_jitter_s=10.0)
    delays = _recorded_delays(simulator, monkeypatch)
    client = await bound(port, clients)
    loop = asyncio.get_running_loop()
    clock = StoppedLoopClock(loop.time)
    monkeypatch.setattr(loop, "time", clock)
    responses = await _deadline(asyncio.gather(*(client.send(_submit()) for _ in range(20))))
    submitted = [response.message_id for response in responses]  # type: ignore[attr-defined]
    assert simulator.receipts_sent == 0
    clock.run_on(skipped_s=10.0)  # every receipt is due now
    arrived = [(await client.next_delivered()).receipted_message_id for _ in range(20)]
    by_due_time = sorted(range(20), key=delays.__getitem__)
    assert arrived == [submitted[index] for index in by_due_time]
    assert arrived != submitted
    assert by_due_time[:5] == [9, 15, 0, 4, 11]  # seed 7: the same shuffle every run


async def test_connections_are_dropped(start: Start, clients: list[Client]) -> None:
    """With drop_every_s a connection is closed by the simulator after that many seconds."""
    simulator, port = await start(drop_every_s=0.05)
    client = await bound(port, clients)
    await _deadline(client.closed.wait())
    assert simulator.counters.drops == 1


async def test_stalled_reads_resume(start: Start, clients: list[Client]) -> None:
    """During a stall the simulator does not handle what arrives; afterwards it answers."""
    clock = ManualClock()
    simulator, port = await start(clock, stall_every_s=10.0, stall_s=5.0)
    client = await bound(port, clients)
    clock.now = 11.0
    pending = client.send(_submit())
    await _deadline(simulator.wait_until(lambda counters: counters.stalls == 1))
    assert simulator.submitted == []
    clock.now = 16.0
    assert (await _deadline(pending)).command_status == CommandStatus.ESME_ROK
    assert len(simulator.submitted) == 1


async def test_receipts_go_to_the_receiver_of_a_pair(start: Start, clients: list[Client]) -> None:
    """Submits on a transmitter get their receipts on the receiver of the same system_id."""
    _, port = await start()
    transmitter = await bound(port, clients, "transmitter")
    receiver = await bound(port, clients, "receiver")
    response = await transmitter.submit()
    receipt = await receiver.next_delivered()
    assert receipt.receipted_message_id == response.message_id  # type: ignore[attr-defined]


async def test_receipts_wait_for_a_receiver(start: Start, clients: list[Client]) -> None:
    """A receipt with no receiver bound is kept and sent when a receiver binds."""
    simulator, port = await start()
    transmitter = await bound(port, clients, "transmitter")
    response = await transmitter.submit()
    assert simulator.receipts_sent == 0
    receiver = await bound(port, clients, "receiver")
    receipt = await receiver.next_delivered()
    assert receipt.receipted_message_id == response.message_id  # type: ignore[attr-defined]


async def test_mo_reaches_a_bound_receiver(start: Start, clients: list[Client]) -> None:
    """An injected MO arrives as one GSM deliver_sm from the handset in international form."""
    simulator, port = await start()
    client = await bound(port, clients, "receiver")
    assert await simulator.inject_mo("0912345678", "0911000000", "Hi @ you") == 1
    mo = await client.next_delivered()
    assert (mo.source_addr, mo.source_addr_ton, mo.source_addr_npi) == ("886912345678", 1, 1)
    assert (mo.destination_addr, mo.dest_addr_ton) == ("0911000000", 0)
    assert (mo.esm_class, mo.data_coding) == (0, 0)
    assert mo.short_message == b"Hi \x00 you"


async def test_long_unicode_mo_arrives_in_concatenated_parts(
    start: Start, clients: list[Client]
) -> None:
    """A long UCS-2 MO arrives as parts with one 8-bit-reference UDH, that join to the text."""
    simulator, port = await start()
    client = await bound(port, clients)
    text = "你好" * 50  # 100 UCS-2 characters: two segments of 67 and 33
    await simulator.inject_mo("0912345678", "0911000000", text)
    parts = [await client.next_delivered(), await client.next_delivered()]
    headers = [part.short_message[:6] for part in parts]
    assert {part.esm_class for part in parts} == {0x40}
    assert {part.data_coding for part in parts} == {8}
    assert headers[0][:4] == headers[1][:4]
    assert [header[4:] for header in headers] == [b"\x02\x01", b"\x02\x02"]
    assert b"".join(part.short_message[6:] for part in parts).decode("utf-16-be") == text


async def test_mo_without_a_receiver_reaches_nobody(start: Start, clients: list[Client]) -> None:
    """With only a transmitter bound, an MO is delivered to no one."""
    simulator, port = await start()
    await bound(port, clients, "transmitter")
    assert await simulator.inject_mo("0912345678", "0911000000", "hi") == 0


async def test_unbind_closes_the_connection(start: Start, clients: list[Client]) -> None:
    """An unbind is answered and the connection then closes."""
    _, port = await start()
    client = await bound(port, clients)
    await client.unbind()
    assert client.closed.is_set()


def _recorded_delays(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The receipt delay the simulator decides for each submit, in submit order."""
    delays: list[float] = []
    decide = simulator.decide

    def recording(submit: SubmitSm) -> Decision:
        decision = decide(submit)
        delays.append(decision.receipt_delay_s)
        return decision

    monkeypatch.setattr(simulator, "decide", recording)
    return delays


def _submit() -> SubmitSm:
    return SubmitSm(destination_addr="886912345678", registered_delivery=1, short_message=b"x")


async def _deadline(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, timeout=5)
