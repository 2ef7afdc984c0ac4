"""End to end over real TCP and HTTP: sendsms, store, ESME, simulator, receipt, callback."""

from __future__ import annotations

from smsgw.domain.model import State
from smsgw.engine.testing import FakeClock
from smsgw.server import utc_now
from tests.engine.conftest import Gateway, GatewayFactory

UDHI = 0x40
THROTTLED_CONNECTOR = """
[[connectors]]
name = "sim"
kind = "simulator"
tps = 1000
window = 10
throttle_backoff_s = 0.05
"""


def numbers(count: int) -> list[str]:
    return [f"09{n:08d}" for n in range(12340001, 12340001 + count)]


async def settle(gateway: Gateway, clock: FakeClock, msgid: str) -> dict[str, State]:
    """Move the fake clock past each retry delay until every recipient of ``msgid`` is final.

    The clock moves only while no recipient is ENROUTE without its submit recorded (they are
    all final or QUEUED), so no lease runs out under a submission in flight.
    """
    for _ in range(30):

        async def final_or_retrying() -> bool:
            states = (await gateway.states(msgid)).values()
            return all(state.final or state is State.QUEUED for state in states)

        await gateway.until(final_or_retrying)
        states = await gateway.states(msgid)
        if all(state.final for state in states.values()):
            return states
        clock.advance(301)
        dispatcher = gateway.engine.dispatcher
        assert dispatcher is not None
        await dispatcher.dispatch_due()  # claims now, so the next wait sees them ENROUTE
    raise AssertionError(f"not final after 30 retry rounds: {states}")


async def test_delivered_with_callback(make_gateway: GatewayFactory) -> None:
    """A message goes QUEUED -> ENROUTE -> DELIVRD and its callback is acknowledged once."""
    gateway: Gateway = await make_gateway()
    receiver = gateway.receiver
    sent = await gateway.send(
        dstaddr="0912345678", smbody="hello", response=f"{receiver.base}/dlr?x=1"
    )
    assert sent["statuscode"] == "0"
    shown = await gateway.until_state(sent["msgid"], "0912345678", "DELIVRD")
    assert shown == "0|DELIVRD|0912345678"
    await receiver.until(lambda: len(receiver.for_path("/dlr")) == 1)
    hit = receiver.for_path("/dlr")[0]
    assert hit.params == {
        "x": "1",
        "msgid": sent["msgid"],
        "statuscode": "0",
        "statusstr": "DELIVRD",
        "dstaddr": "0912345678",
    }


async def test_undelivered_by_number_rule(make_gateway: GatewayFactory) -> None:
    """A number the simulator's rule marks UNDELIV ends UNDELIV, statuscode -10 in its callback."""
    rules = '[[simulator.rules]]\nsuffix = "0000"\noutcome = "UNDELIV"\n'
    gateway = await make_gateway(rules)
    receiver = gateway.receiver
    sent = await gateway.send(
        dstaddr="0912340000,0912345678", smbody="hi", response=f"{receiver.base}/dlr"
    )
    assert await gateway.until_all_final(sent["msgid"]) == {
        "0912340000": State.UNDELIV,
        "0912345678": State.DELIVRD,
    }
    await receiver.until(lambda: len(receiver.hits) == 2)
    by_number = {hit.params["dstaddr"]: hit.params for hit in receiver.hits}
    assert by_number["0912340000"]["statusstr"] == "UNDELIV"
    assert by_number["0912340000"]["statuscode"] == "-10"


async def test_expired_receipt(make_gateway: GatewayFactory) -> None:
    """A receipt saying EXPIRED makes the recipient EXPIRED."""
    gateway = await make_gateway("[simulator.outcomes]\nEXPIRED = 1.0\n")
    sent = await gateway.send(dstaddr="0912345678", smbody="hi")
    shown = await gateway.until_state(sent["msgid"], "0912345678", "EXPIRED")
    assert shown == "-10|EXPIRED|0912345678"


async def test_rejected_at_submit(make_gateway: GatewayFactory) -> None:
    """A permanent refusal at submit (ESME_RINVDSTADR) is REJECTD, never retried."""
    rules = '[[simulator.rules]]\nsuffix = "5678"\nsubmit_status = "ESME_RINVDSTADR"\n'
    gateway = await make_gateway(rules)
    sent = await gateway.send(
        dstaddr="0912345678", smbody="hi", response=f"{gateway.receiver.base}/d"
    )
    assert await gateway.until_all_final(sent["msgid"]) == {"0912345678": State.REJECTD}
    assert gateway.simulator.counters.submits == 1
    assert gateway.simulator.counters.submits_refused == 1
    receiver = gateway.receiver
    await receiver.until(lambda: len(receiver.hits) == 1)
    assert receiver.hits[0].params["statusstr"] == "REJECTD"


async def test_throttled_messages_all_delivered(make_gateway: GatewayFactory) -> None:
    """Under an SMSC throttling at 20 submits/s every message still ends DELIVRD."""
    clock = FakeClock(utc_now())
    gateway = await make_gateway(THROTTLED_CONNECTOR, clock, SMSGW_SIMULATOR_THROTTLE_TPS="20")
    sent = await gateway.send(dstaddr=",".join(numbers(40)), smbody="hi")
    states = await settle(gateway, clock, sent["msgid"])
    assert set(states.values()) == {State.DELIVRD}
    assert len(states) == 40
    assert gateway.simulator.counters.throttled > 0


async def test_connection_dropped_mid_flight_loses_nothing(make_gateway: GatewayFactory) -> None:
    """With the SMSC dropping the connection repeatedly, every message still ends final."""
    clock = FakeClock(utc_now())
    connector = THROTTLED_CONNECTOR.replace("tps = 1000", "tps = 20")
    gateway = await make_gateway(connector, clock, SMSGW_SIMULATOR_DROP_EVERY_S="0.3")
    sent = await gateway.send(dstaddr=",".join(numbers(30)), smbody="hi")
    states = await settle(gateway, clock, sent["msgid"])
    assert len(states) == 30
    assert set(states.values()) == {State.DELIVRD}
    assert gateway.simulator.counters.drops >= 1


async def test_three_part_message(make_gateway: GatewayFactory) -> None:
    """A 400-character LASCII text goes as 3 UDH segments and is DELIVRD once all three are."""
    gateway = await make_gateway()
    sent = await gateway.send(dstaddr="0912345678", smbody="a" * 400, encoding="LASCII")
    assert sent["statuscode"] == "0"
    assert await gateway.until_all_final(sent["msgid"]) == {"0912345678": State.DELIVRD}
    submitted = gateway.simulator.submitted
    assert len(submitted) == 3
    assert all(pdu.esm_class & UDHI for pdu in submitted)
    assert [pdu.short_message[5] for pdu in submitted] == [1, 2, 3]
    assert {pdu.short_message[4] for pdu in submitted} == {3}
    assert gateway.simulator.receipts_sent == 3


async def test_fifty_recipients(make_gateway: GatewayFactory) -> None:
    """A 50-recipient request ends with 50 final recipients and 50 callbacks."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    wanted = numbers(50)
    sent = await gateway.send(dstaddr=",".join(wanted), smbody="hi", response=f"{receiver.base}/d")
    states = await gateway.until_all_final(sent["msgid"])
    assert sorted(states) == wanted
    assert set(states.values()) == {State.DELIVRD}
    await receiver.until(lambda: len(receiver.hits) == 50)
    assert sorted(hit.params["dstaddr"] for hit in receiver.hits) == wanted


async def test_receipt_before_submit_response(make_gateway: GatewayFactory) -> None:
    """Receipts sent before their submit_sm_resp are held, then applied: DELIVRD, none left held."""
    gateway = await make_gateway(SMSGW_SIMULATOR_EARLY_RECEIPTS="true")
    sent = await gateway.send(dstaddr=",".join(numbers(5)), smbody="hi")
    states = await gateway.until_all_final(sent["msgid"])
    assert set(states.values()) == {State.DELIVRD}
    assert await gateway.store.held_receipt_count() == 0


async def test_duplicate_receipts_one_callback(make_gateway: GatewayFactory) -> None:
    """Every receipt sent twice still gives one callback per recipient."""
    gateway = await make_gateway(SMSGW_SIMULATOR_DUPLICATE_RECEIPTS="true")
    receiver = gateway.receiver
    sent = await gateway.send(
        dstaddr=",".join(numbers(5)), smbody="hi", response=f"{receiver.base}/d"
    )
    await gateway.until_all_final(sent["msgid"])
    await gateway.until_simulator(lambda counters: counters.receipts_sent == 10)

    async def all_sent_and_duplicates_stored() -> bool:
        counts = await gateway.store.callback_counts()
        registry = gateway.runtime.metrics.registry
        receipts = sum(
            registry.get_sample_value("smsgw_receipts_total", {"state": "DELIVRD", "matched": m})
            or 0
            for m in ("true", "false")
        )
        return counts.get("sent") == 5 and counts.get("pending") == 0 and receipts == 10

    await gateway.until(all_sent_and_duplicates_stored)
    assert sorted(hit.params["dstaddr"] for hit in receiver.hits) == numbers(5)
