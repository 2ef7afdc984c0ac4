"""Our ESME connector against an independent SMSC: the npm ``smpp`` server, over loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from smsgw.config import ConnectorSettings
from smsgw.domain.model import State
from smsgw.domain.text import plan_text
from smsgw.engine.inbound import Inbound
from smsgw.engine.testing import FakeClock
from smsgw.smpp import CommandStatus, DataSm, DeliverSm, SubmitSm
from smsgw.smpp.air import Address, LongForm, encode_mt
from smsgw.smpp.esme import Esme, Submitted, one_at_a_time
from smsgw.smpp.receipts import is_receipt, parse_receipt
from smsgw.smpp.wap import si_push
from smsgw.store.memory import MemoryStore
from tests.interop.conftest import PASSWORD, PEER_DEADLINE_S, SYSTEM_ID, Event, NodePeer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SOURCE = Address("smsgw", 5, 0)
DESTINATION = Address("886912345678", 1, 1)
GSM_TEXT = "Hello @ {world} 100€"
UCS2_TEXT = "你好 世界 ☺"
FLASH_TEXT = "Flash: read me now"
LONG_TEXT = " ".join(f"word{number:03d}" for number in range(47))[:330]
LONG_UCS2 = "長訊息測試" * 20
PUSH_TITLE = "News"
PUSH_URL = "http://example.com/a"


class Deliveries:
    """The deliver handler: records each deliver_sm and answers ESME_ROK."""

    def __init__(self) -> None:
        self.received: list[DeliverSm | DataSm] = []
        self._arrived = asyncio.Condition()

    async def __call__(self, pdu: DeliverSm | DataSm) -> CommandStatus:
        async with self._arrived:
            self.received.append(pdu)
            self._arrived.notify_all()
        return CommandStatus.ESME_ROK

    async def wait_for(self, count: int) -> list[DeliverSm | DataSm]:
        """The first ``count`` deliveries, waiting (bounded) for them."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received) >= count), PEER_DEADLINE_S
            )
        return self.received[:count]


@pytest.fixture
async def node_smsc(node_peers: list[NodePeer]) -> NodePeer:
    """The npm smpp server on a free loopback port (its port in ``events[0]``)."""
    smsc = await NodePeer.start("smsc.js", SYSTEM_ID, PASSWORD)
    node_peers.append(smsc)
    await smsc.wait_for(lambda event: event["event"] == "listening")
    return smsc


@pytest.fixture
async def deliveries() -> Deliveries:
    return Deliveries()


@pytest.fixture
async def esme(node_smsc: NodePeer, deliveries: Deliveries) -> AsyncIterator[Esme]:
    """Our ESME bound as transceiver to the node SMSC; stopped (unbound) at the end."""
    settings = ConnectorSettings(
        name="node",
        kind="smpp",
        port=node_smsc.events[0]["port"],
        system_id=SYSTEM_ID,
        password=PASSWORD,
        tps=1_000_000.0,
        response_timeout_s=PEER_DEADLINE_S,
    )
    connector = Esme(settings, one_at_a_time(deliveries))
    await connector.start()
    try:
        assert await connector.wait_bound(PEER_DEADLINE_S)
        yield connector
    finally:
        await connector.stop()


def mt(
    encoding: str, text: str, wapurl: str | None = None, *, long_form: LongForm = "udh"
) -> list[SubmitSm]:
    plan = plan_text(encoding, text, wapurl)
    return encode_mt(
        plan, source=SOURCE, destination=DESTINATION, reference=0x2A, long_form=long_form
    )


async def submit_all(esme: Esme, pdus: list[SubmitSm]) -> list[str]:
    """Submit ``pdus`` in order; the message ids the SMSC answered."""
    ids = []
    for pdu in pdus:
        outcome = await esme.submit(pdu)
        assert isinstance(outcome, Submitted), outcome
        ids.append(outcome.message_id)
    return ids


async def test_our_esme_binds_to_node_with_its_credentials(node_smsc: NodePeer, esme: Esme) -> None:
    """Node's server sees one bind_transceiver with our system_id and password, and accepts it."""
    bind = await node_smsc.wait_for(lambda event: event["event"] == "bind")
    assert (bind["command"], bind["system_id"], bind["accepted"]) == (
        "bind_transceiver",
        SYSTEM_ID,
        True,
    )


async def test_gsm_ucs2_and_flash_decode_in_node_as_planned(
    node_smsc: NodePeer, esme: Esme
) -> None:
    """Node decodes our single GSM, UCS-2 and flash submit_sm to the text we planned."""
    pdus = mt("ASCII", GSM_TEXT) + mt("UCS2", UCS2_TEXT) + mt("PASCII", FLASH_TEXT)
    ids = await submit_all(esme, pdus)
    gsm, ucs2, flash = await node_smsc.collect("submit_sm", 3)
    assert [event["message_id"] for event in (gsm, ucs2, flash)] == ids
    assert (gsm["data_coding"], gsm["text"], gsm["esm_class"]) == (0, GSM_TEXT, 0)
    assert (ucs2["data_coding"], ucs2["text"]) == (8, UCS2_TEXT)
    assert (flash["data_coding"], flash["text"]) == (0x10, FLASH_TEXT)
    assert (gsm["destination_addr"], gsm["dest_addr_ton"], gsm["dest_addr_npi"]) == (
        DESTINATION.addr,
        1,
        1,
    )
    assert (gsm["source_addr"], gsm["source_addr_ton"], gsm["registered_delivery"]) == (
        "smsgw",
        5,
        1,
    )


async def test_three_part_udh_message_reassembles_in_node(node_smsc: NodePeer, esme: Esme) -> None:
    """Node reads our 3 concatenated GSM parts: one UDH reference, seq 1..3, text in order."""
    pdus = mt("LASCII", LONG_TEXT)
    assert len(pdus) == 3
    await submit_all(esme, pdus)
    parts = await node_smsc.collect("submit_sm", 3)
    assert [part["udh"] for part in parts] == [[f"00032a03{seq:02x}"] for seq in (1, 2, 3)]
    assert all(part["esm_class"] & 0x40 for part in parts)
    assert "".join(part["text"] for part in parts) == LONG_TEXT


async def test_sar_long_ucs2_message_reads_in_node(node_smsc: NodePeer, esme: Esme) -> None:
    """Node reads the SAR TLVs and UCS-2 text of our long message in SAR form."""
    pdus = mt("LUCS2", LONG_UCS2, long_form="sar")
    await submit_all(esme, pdus)
    parts = await node_smsc.collect("submit_sm", len(pdus))
    assert [(part["sar_msg_ref_num"], part["sar_segment_seqnum"]) for part in parts] == [
        (0x2A, seq) for seq in range(1, len(pdus) + 1)
    ]
    assert {part["sar_total_segments"] for part in parts} == {len(pdus)}
    assert "".join(part["text"] for part in parts) == LONG_UCS2


async def test_wap_push_reads_in_node_as_8bit_with_port_udh(
    node_smsc: NodePeer, esme: Esme
) -> None:
    """Node sees our WAP push as 8-bit data with ports 2948/9200 and the SI bytes intact."""
    await submit_all(esme, mt("PUSH", PUSH_TITLE, PUSH_URL))
    (push,) = await node_smsc.collect("submit_sm", 1)
    assert (push["data_coding"], push["esm_class"] & 0x40) == (4, 0x40)
    assert push["udh"] == ["05040b8423f0"]
    assert bytes.fromhex(push["octets"]) == si_push(PUSH_TITLE, PUSH_URL, transaction_id=0x2A)


def receipt_command(message_id: str, stat: str, dates: tuple[str, str], tag: str) -> Event:
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:{dates[0]} done date:{dates[1]}"
        f" stat:{stat} err:000 text:Hello"
    )
    return {
        "op": "deliver",
        "tag": tag,
        "source_addr": DESTINATION.addr,
        "destination_addr": SOURCE.addr,
        "esm_class": 4,
        "text": text,
    }


async def test_node_receipts_parse_with_our_receipt_reader(
    node_smsc: NodePeer, esme: Esme, deliveries: Deliveries
) -> None:
    """Receipts node sends (TLVs, text only, 12-digit dates) parse to our ids and states."""
    ids = await submit_all(esme, mt("ASCII", "a") + mt("ASCII", "b") + mt("ASCII", "c"))
    await node_smsc.send(
        **receipt_command(ids[0], "DELIVRD", ("2401011200", "2401011201"), "tlv"),
        receipted_message_id=ids[0],
        message_state=2,
    )
    await node_smsc.send(
        **receipt_command(ids[1], "UNDELIV", ("240101120000", "240101120105"), "12")
    )
    await node_smsc.send(**receipt_command(ids[2], "EXPIRED", ("2401011200", "2401021200"), "text"))
    responses = await node_smsc.collect("deliver_sm_resp", 3)
    assert [response["command_status"] for response in responses] == [0, 0, 0]
    received = await deliveries.wait_for(3)
    assert all(is_receipt(pdu) for pdu in received)
    receipts = sorted((parse_receipt(pdu) for pdu in received), key=lambda item: item.message_id)
    assert [(receipt.message_id, receipt.state) for receipt in receipts] == [
        (ids[0], State.DELIVRD),
        (ids[1], State.UNDELIV),
        (ids[2], State.EXPIRED),
    ]
    assert receipts[1].done == "240101120105"


async def test_node_mo_decodes_and_reassembles_with_ours(
    node_smsc: NodePeer, esme: Esme, deliveries: Deliveries
) -> None:
    """GSM, UCS-2 and a 2-part UDH MO from node decode and reassemble to the handset's text."""
    mo = {"op": "deliver", "source_addr": "886912345678", "destination_addr": "0911000000"}
    await node_smsc.send(**mo, tag="gsm", data_coding=0, text="Reply @ 5 {ok}")
    await node_smsc.send(**mo, tag="ucs2", data_coding=8, text="收到 謝謝")
    for seq, half in enumerate(("第一部分 ", "第二部分。"), start=1):
        await node_smsc.send(
            **mo, tag=f"part{seq}", data_coding=8, text=half, udh=f"0500037702{seq:02x}"
        )
    await node_smsc.collect("deliver_sm_resp", 4)
    received = await deliveries.wait_for(4)
    assert not any(is_receipt(pdu) for pdu in received)
    store = MemoryStore()  # what the engine does with them: decode, reassemble, store
    inbound = Inbound(store, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    connector = ConnectorSettings(name="node")
    assert await inbound.handle(connector, received) == [CommandStatus.ESME_ROK] * 4
    stored = reversed(await store.list_replies(unmatched_only=False, limit=10))
    texts = [(reply.body, reply.encoding) for reply in stored]
    assert texts == [
        ("Reply @ 5 {ok}", "ASCII"),
        ("收到 謝謝", "UCS2"),
        ("第一部分 第二部分。", "UCS2"),
    ]
    assert received[0].source_addr == "886912345678"
