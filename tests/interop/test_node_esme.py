"""Our SMSC simulator against an independent ESME: the npm ``smpp`` client, over loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smsgw.smpp.air import decode_text
from tests.interop.conftest import PASSWORD, SYSTEM_ID, NodePeer

if TYPE_CHECKING:
    from smsgw.smpp.simulator import Simulator

GSM_TEXT = "Hello @ {world} 100€"
UCS2_TEXT = "你好 世界 ☺"
FLASH_TEXT = "Flash: read me now"
PARTS = ("First part of a long message, ", "the second part, ", "and the third part.")
DESTINATION = "886912345678"
MESSAGE_STATE_DELIVERED = 2


async def bound_esme(port: int, node_peers: list[NodePeer]) -> NodePeer:
    esme = await NodePeer.start("esme.js", str(port), SYSTEM_ID, PASSWORD)
    node_peers.append(esme)
    bound = await esme.wait_for(lambda event: event["event"] == "bound")
    assert bound["command_status"] == 0
    return esme


async def submit_all(esme: NodePeer) -> None:
    base = {"op": "submit", "destination_addr": DESTINATION, "source_addr": "smsgw"}
    await esme.send(**base, tag="gsm", data_coding=0, text=GSM_TEXT)
    await esme.send(**base, tag="ucs2", data_coding=8, text=UCS2_TEXT)
    await esme.send(**base, tag="flash", data_coding=0x10, text=FLASH_TEXT)
    for seqnum, part in enumerate(PARTS, start=1):
        udh = f"0500034203{seqnum:02x}"
        await esme.send(**base, tag=f"part{seqnum}", data_coding=0, text=part, udh=udh)


async def test_node_esme_submits_reach_the_simulator_as_sent(
    simulator: tuple[Simulator, int], node_peers: list[NodePeer]
) -> None:
    """GSM, UCS-2, flash and a 3-part UDH message from node decode in our SMSC as written."""
    sim, port = simulator
    esme = await bound_esme(port, node_peers)
    await submit_all(esme)
    responses = await esme.collect("submit_sm_resp", 6)
    assert all(response["command_status"] == 0 for response in responses)
    gsm, ucs2, flash, *parts = sim.submitted
    assert (gsm.data_coding, decode_text(gsm.short_message, "gsm")) == (0, GSM_TEXT)
    assert (ucs2.data_coding, decode_text(ucs2.short_message, "ucs2")) == (8, UCS2_TEXT)
    assert (flash.data_coding, decode_text(flash.short_message, "gsm")) == (0x10, FLASH_TEXT)
    for seqnum, (part, text) in enumerate(zip(parts, PARTS, strict=True), start=1):
        assert part.esm_class & 0x40
        assert part.short_message[:6] == bytes([5, 0, 3, 0x42, 3, seqnum])
        assert decode_text(part.short_message[6:], "gsm") == text
    assert {submit.destination_addr for submit in sim.submitted} == {DESTINATION}


async def test_node_esme_gets_a_receipt_for_each_submit(
    simulator: tuple[Simulator, int], node_peers: list[NodePeer]
) -> None:
    """Each receipt node decodes names the id of its submit_sm_resp and says DELIVRD."""
    _, port = simulator
    esme = await bound_esme(port, node_peers)
    await submit_all(esme)
    responses = await esme.collect("submit_sm_resp", 6)
    receipts = await esme.collect("deliver_sm", 6)
    ids = sorted(response["message_id"] for response in responses)
    assert len(set(ids)) == 6
    assert sorted(receipt["receipted_message_id"] for receipt in receipts) == ids
    for receipt in receipts:
        assert receipt["esm_class"] == 4
        assert receipt["message_state"] == MESSAGE_STATE_DELIVERED
        assert receipt["text"].startswith(f"id:{receipt['receipted_message_id']} ")
        assert " stat:DELIVRD " in receipt["text"]
        assert receipt["source_addr"] == DESTINATION


async def test_node_esme_receives_injected_mo_in_gsm_and_ucs2(
    simulator: tuple[Simulator, int], node_peers: list[NodePeer]
) -> None:
    """MOs injected into our simulator reach node decoded to the same GSM and UCS-2 text."""
    sim, port = simulator
    esme = await bound_esme(port, node_peers)
    assert await sim.inject_mo("0912345678", "0911000000", "Reply @ 5 {ok}") == 1
    assert await sim.inject_mo("0912345678", "0911000000", "收到 謝謝") == 1
    gsm, ucs2 = await esme.collect("deliver_sm", 2)
    assert (gsm["data_coding"], gsm["text"], gsm["esm_class"]) == (0, "Reply @ 5 {ok}", 0)
    assert (ucs2["data_coding"], ucs2["text"]) == (8, "收到 謝謝")
    assert gsm["source_addr"] == "886912345678"
    assert gsm["destination_addr"] == "0911000000"


async def test_node_esme_unbinds_cleanly(
    simulator: tuple[Simulator, int], node_peers: list[NodePeer]
) -> None:
    """Node's unbind gets our unbind_resp and the connection closes."""
    _, port = simulator
    esme = await bound_esme(port, node_peers)
    await esme.send(op="unbind")
    await esme.wait_for(lambda event: event["event"] == "unbound")
    await esme.wait_for(lambda event: event["event"] == "closed")
