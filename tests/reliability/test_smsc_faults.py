"""SMSC faults under a bounded load (issue 5, item 2): the gateway in-process over real TCP,
its simulator misbehaving one way at a time and all at once.

At the end of every run: every accepted recipient is final and DELIVRD (nothing stuck, nothing
lost), the connector is bound again by itself (``/readyz`` 200), nobody was charged twice
(ledger sum == balance == initial points - points of the accepted requests), and each
recipient's callback arrived exactly once.

The wall clock is a FakeClock: temporary refusals (connection lost, throttled) wait out the
dispatcher's retry delays only when the test moves the clock, which it does only while no
submission is in flight (every recipient final or QUEUED), so no lease runs out under one.
"""

from __future__ import annotations

from collections import Counter

import pytest

from smsgw.domain.model import State
from smsgw.engine.testing import FakeClock
from smsgw.server import utc_now
from smsgw.smpp.simulator import Counters
from tests.engine.conftest import (  # noqa: F401 - fixtures used by name
    WAIT_S,
    Gateway,
    GatewayFactory,
    make_gateway,
    receiver,
)

INITIAL_POINTS = 1000  # what make_gateway gives each account
REQUESTS = 30
RECIPIENTS_PER_REQUEST = 10  # 300 recipients in all: a bounded load
RETRY_ROUNDS = 40
RETRY_STEP_S = 301  # past the dispatcher's longest retry delay
# 100 submits/s: the load takes about three seconds, long enough for every periodic fault.
CONNECTOR = """
[[connectors]]
name = "sim"
kind = "simulator"
tps = 100
window = 10
throttle_backoff_s = 0.05
"""
DROPS = {"SMSGW_SIMULATOR_DROP_EVERY_S": "1"}
STALLS = {"SMSGW_SIMULATOR_STALL_EVERY_S": "1", "SMSGW_SIMULATOR_STALL_S": "0.4"}
THROTTLING = {"SMSGW_SIMULATOR_THROTTLE_TPS": "40"}
EARLY = {"SMSGW_SIMULATOR_EARLY_RECEIPTS": "true"}
DUPLICATES = {"SMSGW_SIMULATOR_DUPLICATE_RECEIPTS": "true"}
GARBAGE = {"SMSGW_SIMULATOR_GARBAGE_EVERY_S": "0.7"}


def happened_drops(counters: Counters) -> bool:
    return counters.drops >= 1 and counters.binds >= 2  # bound again by itself


def happened_stalls(counters: Counters) -> bool:
    return counters.stalls >= 1


def happened_throttling(counters: Counters) -> bool:
    return counters.throttled >= 1


def happened_duplicates(counters: Counters) -> bool:
    return counters.receipts_sent >= 2 * (counters.submits - counters.submits_refused)


def happened_garbage(counters: Counters) -> bool:
    return counters.garbage >= 1 and counters.binds >= 2  # bound again by itself


def happened_anything(counters: Counters) -> bool:
    return counters.receipts_sent >= 1


FAULTS = {
    "dropped connections": (DROPS, happened_drops),
    "stalled reads": (STALLS, happened_stalls),
    "throttling storm": (THROTTLING, happened_throttling),
    "receipts before submit responses": (EARLY, happened_anything),
    "duplicate receipts": (DUPLICATES, happened_duplicates),
    "garbage bytes": (GARBAGE, happened_garbage),
    "all at once": (
        DROPS | STALLS | THROTTLING | EARLY | DUPLICATES | GARBAGE,
        # Garbage makes the ESME reconnect, which restarts the drop timer: either fault
        # cutting the link proves the connection was lost.
        lambda c: (happened_drops(c) or happened_garbage(c)) and happened_throttling(c),
    ),
}


def numbers(request: int) -> list[str]:
    first = 10_000_000 + request * RECIPIENTS_PER_REQUEST
    return [f"09{n:08d}" for n in range(first, first + RECIPIENTS_PER_REQUEST)]


async def send_load(gateway: Gateway) -> dict[str, tuple[list[str], int]]:
    """Send every request; the accepted msgids with their numbers and points."""
    accepted: dict[str, tuple[list[str], int]] = {}
    for request in range(REQUESTS):
        wanted = numbers(request)
        reply = await gateway.send(
            dstaddr=",".join(wanted), smbody=f"load {request}", response=gateway.receiver.base
        )
        assert reply["statuscode"] == "0", reply
        accepted[reply["msgid"]] = (wanted, int(reply["point"]))
    return accepted


async def settle(gateway: Gateway, clock: FakeClock, total: int) -> None:
    """Move the clock past each retry delay, only between rounds, until all ``total`` are final."""
    dispatcher = gateway.engine.dispatcher
    assert dispatcher is not None
    for _ in range(RETRY_ROUNDS):
        counts: dict[State, int] = {}

        async def final_or_queued() -> bool:
            nonlocal counts
            counts = await gateway.store.state_counts()
            settled = sum(n for state, n in counts.items() if state.final or state is State.QUEUED)
            return settled == total

        await gateway.until(final_or_queued, timeout_s=60)
        if sum(n for state, n in counts.items() if state.final) == total:
            return
        clock.advance(RETRY_STEP_S)
        await dispatcher.dispatch_due()  # claimed now, so the next wait sees them ENROUTE
    raise AssertionError(f"not final after {RETRY_ROUNDS} retry rounds: {counts}")


async def assert_ready(gateway: Gateway) -> None:
    """The connector binds again by itself and /readyz says so.

    A periodic fault may break the link again between the bind and the request: then wait for
    the next bind (a bounded number of times).
    """
    for _ in range(10):
        assert await gateway.engine.esmes["sim"].wait_bound(WAIT_S)
        if (await gateway.client.get("/readyz")).status_code == 200:
            return
    raise AssertionError("/readyz never answered 200 although the connector bound")


async def assert_charged_once(gateway: Gateway, points: int) -> None:
    account = await gateway.store.get_account("alice")
    assert account is not None
    assert account.balance == INITIAL_POINTS - points
    assert await gateway.store.ledger_sum(account.id) == account.balance


async def assert_one_callback_each(gateway: Gateway, accepted: dict[str, list[str]]) -> None:
    total = sum(len(wanted) for wanted in accepted.values())

    async def outbox_done() -> bool:
        counts = await gateway.store.callback_counts()
        return counts.get("sent", 0) == total and counts.get("pending", 0) == 0

    await gateway.until(outbox_done, timeout_s=60)
    arrived = Counter((hit.params["msgid"], hit.params["dstaddr"]) for hit in gateway.receiver.hits)
    expected = {(msgid, number) for msgid, wanted in accepted.items() for number in wanted}
    assert set(arrived) == expected
    assert set(arrived.values()) == {1}
    assert {hit.params["statusstr"] for hit in gateway.receiver.hits} == {"DELIVRD"}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_smsc_fault_loses_nothing_and_charges_once(
    make_gateway: GatewayFactory,  # noqa: F811 - the imported fixture
    fault: str,
) -> None:
    """Under an SMSC fault every accepted recipient ends DELIVRD, charged once, called back once."""
    environ, happened = FAULTS[fault]
    clock = FakeClock(utc_now())
    gateway = await make_gateway(CONNECTOR, clock, **environ)
    accepted = await send_load(gateway)
    total = REQUESTS * RECIPIENTS_PER_REQUEST
    await settle(gateway, clock, total)
    simulator = gateway.simulator
    assert happened(simulator.counters), simulator.counters
    for msgid, (wanted, _) in accepted.items():
        states = await gateway.states(msgid)
        assert sorted(states) == wanted
        assert set(states.values()) == {State.DELIVRD}
    submitted = {pdu.destination_addr for pdu in simulator.submitted}
    assert len(submitted) == total
    await assert_ready(gateway)
    await assert_charged_once(gateway, sum(points for _, points in accepted.values()))
    await assert_one_callback_each(gateway, {m: wanted for m, (wanted, _) in accepted.items()})
