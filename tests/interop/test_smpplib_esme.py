"""Our SMSC simulator against an independent blocking ESME: PyPI ``smpplib``, over loopback."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import pytest

from smsgw.smpp.air import decode_text
from tests.interop.conftest import PASSWORD, SYSTEM_ID
from tests.interop.smpplib_peer import (
    DATA_CODING_FLASH,
    DATA_CODING_UCS2,
    SmpplibEsme,
    encoded_parts,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from smsgw.smpp.simulator import Simulator

GSM_TEXT = "Hello @ world, 5 $ [ok]"
UCS2_TEXT = "你好 世界"
FLASH_TEXT = "Flash: read me now"
LONG_TEXT = " ".join(f"word{number:03d}" for number in range(50))  # 399 GSM characters
RECEIPT = re.compile(r"id:(?P<id>\S+) .*stat:(?P<stat>[A-Z]+) ")
MESSAGE_STATE_DELIVERED = 2


@pytest.fixture
async def esme(simulator: tuple[Simulator, int]) -> AsyncIterator[SmpplibEsme]:
    """An smpplib transceiver bound to our simulator; unbound and closed at the end."""
    _, port = simulator
    client = SmpplibEsme(port)
    try:
        assert await asyncio.to_thread(client.bind, SYSTEM_ID, PASSWORD) == 0
        yield client
    finally:
        await asyncio.to_thread(client.close)


def submit_everything(esme: SmpplibEsme) -> list[int]:
    """GSM, UCS-2, flash and a 3-part message, each encoded by smpplib; their sequences."""
    (gsm,), gsm_coding, _ = encoded_parts(GSM_TEXT)
    (ucs2,), ucs2_coding, _ = encoded_parts(UCS2_TEXT, DATA_CODING_UCS2)
    (flash,), _, _ = encoded_parts(FLASH_TEXT)
    parts, long_coding, esm_class = encoded_parts(LONG_TEXT)
    assert (gsm_coding, ucs2_coding, long_coding, len(parts)) == (0, 8, 0, 3)
    sequences = [
        esme.submit(gsm, data_coding=gsm_coding),
        esme.submit(ucs2, data_coding=ucs2_coding),
        esme.submit(flash, data_coding=DATA_CODING_FLASH),
    ]
    sequences += [esme.submit(part, data_coding=0, esm_class=esm_class) for part in parts]
    return sequences


async def test_smpplib_submits_decode_in_the_simulator(
    simulator: tuple[Simulator, int], esme: SmpplibEsme
) -> None:
    """smpplib's GSM, UCS-2, flash and UDH-concatenated bytes decode in our SMSC to its text."""
    sim, _ = simulator
    await asyncio.to_thread(submit_everything, esme)
    await asyncio.to_thread(esme.read_until, responses=6)
    assert [int(response.status) for response in esme.responses] == [0] * 6
    gsm, ucs2, flash, *parts = sim.submitted
    assert decode_text(gsm.short_message, "gsm") == GSM_TEXT
    assert (ucs2.data_coding, decode_text(ucs2.short_message, "ucs2")) == (8, UCS2_TEXT)
    assert (flash.data_coding, decode_text(flash.short_message, "gsm")) == (0x10, FLASH_TEXT)
    references = set()
    texts = []
    for seqnum, part in enumerate(parts, start=1):
        udh, body = part.short_message[:6], part.short_message[6:]
        assert part.esm_class & 0x40
        assert (udh[:3], udh[4:]) == (bytes([5, 0, 3]), bytes([3, seqnum]))
        references.add(udh[3])
        texts.append(decode_text(body, "gsm"))
    assert len(references) == 1
    assert "".join(texts) == LONG_TEXT


async def test_smpplib_gets_receipts_naming_the_submit_sm_resp_ids(esme: SmpplibEsme) -> None:
    """Every receipt smpplib reads carries the id of a submit_sm_resp, DELIVRD in TLV and text."""
    await asyncio.to_thread(submit_everything, esme)
    await asyncio.to_thread(esme.read_until, responses=6, deliveries=6)
    ids = sorted(response.message_id.decode() for response in esme.responses)
    assert len(set(ids)) == 6
    receipt_ids = []
    for receipt in esme.deliveries:
        match = RECEIPT.match(receipt.short_message.decode())
        assert match is not None
        assert int(receipt.esm_class) == 4
        assert match["stat"] == "DELIVRD"
        assert int(receipt.message_state) == MESSAGE_STATE_DELIVERED
        assert receipt.receipted_message_id.decode() == match["id"]
        receipt_ids.append(match["id"])
    assert sorted(receipt_ids) == ids


async def test_smpplib_receives_injected_mo_in_gsm_and_ucs2(
    simulator: tuple[Simulator, int], esme: SmpplibEsme
) -> None:
    """MOs injected into our simulator reach smpplib with the same GSM and UCS-2 text."""
    sim, _ = simulator
    assert await sim.inject_mo("0912345678", "0911000000", "Reply @ 5") == 1
    assert await sim.inject_mo("0912345678", "0911000000", "收到 謝謝") == 1
    await asyncio.to_thread(esme.read_until, deliveries=2)
    gsm, ucs2 = esme.deliveries
    assert (int(gsm.data_coding), int(gsm.esm_class)) == (0, 0)
    (expected_gsm,), _, _ = encoded_parts("Reply @ 5")
    assert gsm.short_message == expected_gsm
    assert int(ucs2.data_coding) == 8
    assert ucs2.short_message.decode("utf-16-be") == "收到 謝謝"
    assert gsm.source_addr.decode() == "886912345678"
