"""End to end with a fake wall clock: scheduled messages, cancellation, receipt timeout."""

from __future__ import annotations

from datetime import timedelta

from smsgw.domain.model import State
from smsgw.domain.times import format_taipei
from smsgw.engine.runner import Engine
from smsgw.engine.testing import FakeClock
from smsgw.server import utc_now
from tests.engine.conftest import PASSWORD, Gateway, GatewayFactory

NO_RECEIPTS = """
[[connectors]]
name = "sim"
kind = "simulator"
registered_delivery = 0
"""


def whole_second_clock() -> FakeClock:
    return FakeClock(utc_now().replace(microsecond=0))


async def claim_now(engine: Engine) -> int:
    """Let the dispatcher look for due work at the fake clock's time; the number claimed."""
    assert engine.dispatcher is not None
    claimed = await engine.dispatcher.dispatch_due()
    await engine.dispatcher.drain()
    return claimed


async def balance(gateway: Gateway) -> int:
    account = await gateway.store.get_account("alice")
    assert account is not None
    return account.balance


async def test_scheduled_then_cancelled_is_never_submitted(make_gateway: GatewayFactory) -> None:
    """A cancelled scheduled message is refunded and never submitted, even after its dlvtime."""
    clock = whole_second_clock()
    gateway = await make_gateway(clock=clock)
    dlvtime = clock.now + timedelta(hours=1)
    sent = await gateway.send(dstaddr="0912345678", smbody="hi", dlvtime=format_taipei(dlvtime))
    assert await gateway.query(sent["msgid"], "0912345678") == "0|WAITING|0912345678"
    assert await balance(gateway) == 1000 - int(sent["point"])
    response = await gateway.client.get(
        "/sms_gw/sendsms_cancel.asp",
        params={"username": "alice", "password": PASSWORD, "msgid": sent["msgid"]},
    )
    assert "statuscode=0" in response.text
    assert await balance(gateway) == 1000
    clock.set(dlvtime + timedelta(seconds=5))
    assert await claim_now(gateway.engine) == 0
    assert gateway.simulator.submitted == []
    assert await gateway.states(sent["msgid"]) == {"0912345678": State.CANCEL}


async def test_scheduled_then_sent_on_time(make_gateway: GatewayFactory) -> None:
    """A scheduled message stays WAITING until its dlvtime, then is submitted and delivered."""
    clock = whole_second_clock()
    gateway = await make_gateway(clock=clock)
    dlvtime = clock.now + timedelta(minutes=30)
    sent = await gateway.send(dstaddr="0912345678", smbody="hi", dlvtime=format_taipei(dlvtime))
    clock.set(dlvtime - timedelta(seconds=1))
    assert await claim_now(gateway.engine) == 0
    assert gateway.simulator.submitted == []
    assert await gateway.query(sent["msgid"], "0912345678") == "0|WAITING|0912345678"
    clock.set(dlvtime)
    assert await claim_now(gateway.engine) == 1
    assert len(gateway.simulator.submitted) == 1
    assert await gateway.until_all_final(sent["msgid"]) == {"0912345678": State.DELIVRD}


async def test_receipt_timeout_gives_unknown(make_gateway: GatewayFactory) -> None:
    """No receipt within the receipt timeout makes the recipient UNKNOWN, with its callback."""
    clock = whole_second_clock()
    gateway = await make_gateway(NO_RECEIPTS, clock)
    receiver = gateway.receiver
    sent = await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d")
    await gateway.until_simulator(lambda counters: counters.submits == 1)
    assert gateway.engine.dispatcher is not None
    await gateway.engine.dispatcher.drain()
    assert await gateway.states(sent["msgid"]) == {"0912345678": State.ENROUTE}
    timeout_s = gateway.engine.settings.engine.receipt_timeout_s
    clock.advance(timeout_s - 1)
    await gateway.engine.housekeeping()
    assert await gateway.states(sent["msgid"]) == {"0912345678": State.ENROUTE}
    clock.advance(2)
    await gateway.engine.housekeeping()
    assert await gateway.states(sent["msgid"]) == {"0912345678": State.UNKNOWN}
    gateway.engine.callbacks.wake()
    await receiver.until(lambda: len(receiver.hits) == 1)
    assert receiver.hits[0].params["statusstr"] == "UNKNOWN"
    assert receiver.hits[0].params["statuscode"] == "-10"
