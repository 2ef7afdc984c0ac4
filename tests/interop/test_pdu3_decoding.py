"""Independent decoding: PyPI ``smpp.pdu3`` reads the bytes we encode, and we read its bytes."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from smpp.pdu import constants, operations, pdu_types  # type: ignore[import-untyped]
from smpp.pdu.pdu_encoding import PDUEncoder  # type: ignore[import-untyped]

from smsgw.domain.text import plan_text
from smsgw.smpp import BindTransceiver, DeliverSm, SubmitSm, decode, encode
from smsgw.smpp.air import Address, LongForm, decode_mo, encode_mt
from smsgw.smpp.receipts import parse_receipt
from smsgw.smpp.simulator.messages import receipt_for

SOURCE = Address("smsgw", 5, 0)
DESTINATION = Address("886912345678", 1, 1)
LONG_TEXT = " ".join(f"word{number:03d}" for number in range(47))[:330]


def pdu3_decode(data: bytes) -> Any:
    return PDUEncoder().decode(io.BytesIO(data))


def pdu3_encode(pdu: Any) -> bytes:
    return bytes(PDUEncoder().encode(pdu))


def data_coding_value(coding: Any) -> int:
    if coding.scheme == pdu_types.DataCodingScheme.RAW:
        return int(coding.schemeData)
    return int(constants.data_coding_default_name_map[coding.schemeData.name])


def esm_class_value(esm: Any) -> int:
    value = constants.esm_class_mode_name_map[esm.mode.name]
    value |= constants.esm_class_type_name_map[esm.type.name]
    for feature in esm.gsmFeatures:
        value |= constants.esm_class_gsm_features_name_map[feature.name]
    return int(value)


def message_fields(pdu: Any) -> dict[str, Any]:
    """smpp.pdu3's reading of a submit_sm / deliver_sm, in wire values."""
    params = pdu.params
    return {
        "sequence_number": pdu.seqNum or 0,
        "source_addr": params["source_addr"].decode(),
        "source_addr_ton": constants.addr_ton_name_map[params["source_addr_ton"].name],
        "source_addr_npi": constants.addr_npi_name_map[params["source_addr_npi"].name],
        "destination_addr": params["destination_addr"].decode(),
        "dest_addr_ton": constants.addr_ton_name_map[params["dest_addr_ton"].name],
        "dest_addr_npi": constants.addr_npi_name_map[params["dest_addr_npi"].name],
        "esm_class": esm_class_value(params["esm_class"]),
        "data_coding": data_coding_value(params["data_coding"]),
        "short_message": params["short_message"] or b"",
    }


def our_fields(pdu: SubmitSm | DeliverSm) -> dict[str, Any]:
    return {name: getattr(pdu, name) for name in message_fields_names()}


def message_fields_names() -> tuple[str, ...]:
    return (
        "sequence_number",
        "source_addr",
        "source_addr_ton",
        "source_addr_npi",
        "destination_addr",
        "dest_addr_ton",
        "dest_addr_npi",
        "esm_class",
        "data_coding",
        "short_message",
    )


def planned(encoding: str, text: str, *, long_form: LongForm = "udh") -> list[SubmitSm]:
    pdus = encode_mt(
        plan_text(encoding, text),
        source=SOURCE,
        destination=DESTINATION,
        reference=0x1234,
        long_form=long_form,
    )
    return [replace(pdu, sequence_number=number) for number, pdu in enumerate(pdus, start=1)]


@pytest.mark.parametrize(
    ("encoding", "text", "data_coding"),
    [("ASCII", "Hello @ {world} 100€", 0), ("UCS2", "你好 世界", 8), ("PASCII", "Flash!", 0x10)],
)
def test_pdu3_reads_our_single_submit_sm(encoding: str, text: str, data_coding: int) -> None:
    """smpp.pdu3 reads every mandatory field of our GSM, UCS-2 and flash submit_sm as ours."""
    (ours,) = planned(encoding, text)
    theirs = pdu3_decode(encode(ours))
    assert theirs.id == pdu_types.CommandId.submit_sm
    assert message_fields(theirs) == our_fields(ours)
    assert message_fields(theirs)["data_coding"] == data_coding
    assert (
        theirs.params["registered_delivery"].receipt
        == pdu_types.RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED
    )


def test_pdu3_reads_our_udh_concatenation() -> None:
    """smpp.pdu3 sees the UDHI flag and our 05 00 03 ref total seq header on each part."""
    parts = planned("LASCII", LONG_TEXT)
    assert len(parts) == 3
    for seqnum, ours in enumerate(parts, start=1):
        theirs = pdu3_decode(encode(ours))
        assert message_fields(theirs) == our_fields(ours)
        assert (
            pdu_types.EsmClassGsmFeatures.UDHI_INDICATOR_SET
            in theirs.params["esm_class"].gsmFeatures
        )
        assert theirs.params["short_message"][:6] == bytes([5, 0, 3, 0x34, 3, seqnum])


def test_pdu3_reads_our_sar_tlvs() -> None:
    """smpp.pdu3 reads our SAR TLVs (16-bit reference, total, seqnum) on each part."""
    parts = planned("LASCII", LONG_TEXT, long_form="sar")
    for seqnum, ours in enumerate(parts, start=1):
        theirs = pdu3_decode(encode(ours))
        assert message_fields(theirs) == our_fields(ours)
        params = theirs.params
        assert (params["sar_msg_ref_num"], params["sar_total_segments"]) == (0x1234, 3)
        assert params["sar_segment_seqnum"] == seqnum


def test_pdu3_reads_our_message_payload() -> None:
    """smpp.pdu3 finds the whole long text in our message_payload TLV, short_message empty."""
    (ours,) = planned("LASCII", LONG_TEXT, long_form="payload")
    theirs = pdu3_decode(encode(ours))
    assert message_fields(theirs) == our_fields(ours)
    assert theirs.params["message_payload"] == ours.message_payload
    assert theirs.params["message_payload"] == LONG_TEXT.encode("ascii")


def test_pdu3_reads_our_simulator_receipt() -> None:
    """smpp.pdu3 reads our simulator's receipt: type, text, receipted_message_id, state."""
    (submit,) = planned("ASCII", "Hello")
    when = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    ours = replace(receipt_for(submit, "1A2B3C", "DELIVRD", when, when), sequence_number=9)
    theirs = pdu3_decode(encode(ours))
    assert theirs.id == pdu_types.CommandId.deliver_sm
    assert message_fields(theirs) == our_fields(ours)
    assert theirs.params["esm_class"].type == pdu_types.EsmClassType.SMSC_DELIVERY_RECEIPT
    assert theirs.params["receipted_message_id"] == b"1A2B3C"
    assert theirs.params["message_state"] == pdu_types.MessageState.DELIVERED
    assert theirs.params["short_message"].startswith(b"id:1A2B3C sub:001 dlvrd:001 ")


def test_pdu3_reads_our_bind_transceiver() -> None:
    """smpp.pdu3 reads our bind_transceiver's credentials and interface version 0x34."""
    ours = BindTransceiver(sequence_number=1, system_id="gw", password="pw", system_type="smsgw")
    theirs = pdu3_decode(encode(ours))
    assert theirs.id == pdu_types.CommandId.bind_transceiver
    assert theirs.seqNum == 1
    assert (theirs.params["system_id"], theirs.params["password"]) == (b"gw", b"pw")
    assert (theirs.params["system_type"], theirs.params["interface_version"]) == (b"smsgw", 0x34)


def test_we_read_pdu3_submit_sm_with_udh() -> None:
    """Our codec reads a UCS-2 UDH submit_sm encoded by smpp.pdu3, field by field."""
    udh = bytes([5, 0, 3, 7, 2, 1])
    theirs = operations.SubmitSM(
        seqNum=5,
        source_addr_ton=pdu_types.AddrTon.ALPHANUMERIC,
        source_addr="smsgw",
        dest_addr_ton=pdu_types.AddrTon.INTERNATIONAL,
        dest_addr_npi=pdu_types.AddrNpi.ISDN,
        destination_addr="886912345678",
        esm_class=pdu_types.EsmClass(
            pdu_types.EsmClassMode.DEFAULT,
            pdu_types.EsmClassType.DEFAULT,
            [pdu_types.EsmClassGsmFeatures.UDHI_INDICATOR_SET],
        ),
        data_coding=pdu_types.DataCoding(
            pdu_types.DataCodingScheme.DEFAULT, pdu_types.DataCodingDefault.UCS2
        ),
        short_message=udh + "你好".encode("utf-16-be"),
        sar_msg_ref_num=7,
    )
    data = pdu3_encode(theirs)
    ours = decode(data)
    assert isinstance(ours, SubmitSm)
    assert our_fields(ours) == message_fields(pdu3_decode(data))
    assert (ours.source_addr_ton, ours.dest_addr_ton, ours.esm_class, ours.data_coding) == (
        5,
        1,
        0x40,
        8,
    )
    assert ours.sar_msg_ref_num == 7


def test_we_read_pdu3_receipt_and_mo() -> None:
    """A receipt and a concatenated MO encoded by smpp.pdu3 parse with our readers."""
    receipt = operations.DeliverSM(
        seqNum=11,
        source_addr="886912345678",
        destination_addr="smsgw",
        esm_class=pdu_types.EsmClass(
            pdu_types.EsmClassMode.DEFAULT, pdu_types.EsmClassType.SMSC_DELIVERY_RECEIPT
        ),
        short_message=b"id:abc123 sub:001 dlvrd:000 submit date:2401011200 done date:2401011300"
        b" stat:UNDELIV err:001 text:x",
        receipted_message_id="abc123",
        message_state=pdu_types.MessageState.UNDELIVERABLE,
    )
    data = pdu3_encode(receipt)
    ours = decode(data)
    assert isinstance(ours, DeliverSm)
    assert our_fields(ours) == message_fields(pdu3_decode(data))
    parsed = parse_receipt(ours)
    assert (parsed.message_id, parsed.state.value, parsed.error) == ("abc123", "UNDELIV", "001")
    mo = operations.DeliverSM(
        seqNum=12,
        source_addr="886912345678",
        destination_addr="0911000000",
        esm_class=pdu_types.EsmClass(
            pdu_types.EsmClassMode.DEFAULT,
            pdu_types.EsmClassType.DEFAULT,
            [pdu_types.EsmClassGsmFeatures.UDHI_INDICATOR_SET],
        ),
        data_coding=pdu_types.DataCoding(
            pdu_types.DataCodingScheme.DEFAULT, pdu_types.DataCodingDefault.UCS2
        ),
        short_message=bytes([5, 0, 3, 9, 2, 2]) + "世界".encode("utf-16-be"),
    )
    fragment = decode_mo(decode(pdu3_encode(mo)))  # type: ignore[arg-type]
    assert (fragment.text, fragment.reference, fragment.total, fragment.seqnum) == ("世界", 9, 2, 2)
