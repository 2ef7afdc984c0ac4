"""End to end over real TCP and HTTP: sendsms, store, ESME, simulator, receipt, callback."""

from __future__ import annotations

from tests.engine.conftest import Gateway, GatewayFactory


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
