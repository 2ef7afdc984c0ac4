from __future__ import annotations

import pytest

from smsgw.smpp.codec import decode, encode
from smsgw.smpp.constants import CommandStatus, MessageState, TlvTag, is_permanent, is_temporary
from smsgw.smpp.constants import status_name as name_of
from smsgw.smpp.pdu import (
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    NetworkErrorCode,
    Outbind,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    response_to,
)


def test_typed_accessors_read_what_the_builders_wrote() -> None:
    """Each known TLV reads back, after a round trip, as the value it was built from."""
    receipt = DeliverSm(
        esm_class=0x04,
        tlvs=(
            Tlv.receipted_message_id("msg-42"),
            Tlv.message_state(MessageState.DELIVERED),
            Tlv.network_error_code(1, 0x0123),
            Tlv.sar_msg_ref_num(0xBEEF),
            Tlv.sar_total_segments(3),
            Tlv.sar_segment_seqnum(2),
            Tlv.message_payload(b"payload"),
            Tlv.user_message_reference(65535),
            Tlv.source_port(5000),
            Tlv.destination_port(5001),
            Tlv.sc_interface_version(),
        ),
    )
    decoded = decode(encode(receipt))
    assert decoded.receipted_message_id == "msg-42"
    assert decoded.message_state == MessageState.DELIVERED
    assert decoded.network_error_code == NetworkErrorCode(1, 0x0123)
    assert decoded.sar_msg_ref_num == 0xBEEF
    assert (decoded.sar_total_segments, decoded.sar_segment_seqnum) == (3, 2)
    assert decoded.message_payload == b"payload"
    assert decoded.user_message_reference == 65535
    assert (decoded.source_port, decoded.destination_port) == (5000, 5001)
    assert decoded.sc_interface_version == 0x34


def test_absent_tlvs_read_as_none() -> None:
    """A PDU without optional parameters answers None for every typed accessor."""
    pdu = SubmitSm()
    readings = [
        pdu.receipted_message_id,
        pdu.message_state,
        pdu.network_error_code,
        pdu.sar_msg_ref_num,
        pdu.sar_total_segments,
        pdu.sar_segment_seqnum,
        pdu.message_payload,
        pdu.user_message_reference,
        pdu.source_port,
        pdu.destination_port,
        pdu.sc_interface_version,
    ]
    assert readings == [None] * len(readings)


def test_unknown_tlvs_are_preserved_in_order_and_re_encoded_identically() -> None:
    """Vendor TLVs around a known one keep their order and bytes through decode and encode."""
    tlvs = (Tlv(0x1401, b"\x00\x01"), Tlv.sar_msg_ref_num(9), Tlv(0x1400, b""), Tlv(0x1401, b"z"))
    wire = encode(SubmitSm(tlvs=tlvs))
    decoded = decode(wire)
    assert decoded.tlvs == tlvs
    assert encode(decoded) == wire
    assert decoded.tlv(0x1401) == b"\x00\x01"


def test_a_receipted_message_id_without_nul_is_still_read() -> None:
    """Some SMSCs omit the NUL of receipted_message_id; the accessor reads it anyway."""
    pdu = DeliverSm(tlvs=(Tlv(TlvTag.RECEIPTED_MESSAGE_ID, b"abc123"),))
    assert decode(encode(pdu)).receipted_message_id == "abc123"


def test_query_sm_resp_message_state_is_its_mandatory_field() -> None:
    """On query_sm_resp, message_state is the mandatory octet, not a TLV."""
    pdu = QuerySmResp(message_id="m1", message_state=MessageState.EXPIRED, error_code=7)
    assert decode(encode(pdu)).message_state == MessageState.EXPIRED


def test_response_to_answers_with_the_request_sequence_number() -> None:
    """response_to builds the matching response type, or a generic_nack for outbind."""
    assert response_to(SubmitSm(sequence_number=8)) == SubmitSmResp(sequence_number=8)
    assert response_to(DeliverSm(sequence_number=9), CommandStatus.ESME_RX_T_APPN) == (
        DeliverSmResp(sequence_number=9, command_status=CommandStatus.ESME_RX_T_APPN)
    )
    assert response_to(Outbind(sequence_number=1)) == GenericNack(sequence_number=1)


@pytest.mark.parametrize(
    "status",
    [
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RSUBMITFAIL,
    ],
)
def test_overload_and_internal_failures_are_temporary(status: CommandStatus) -> None:
    """Throttling, full queues and SMSC-internal failures may be retried."""
    assert is_temporary(status)
    assert not is_permanent(status)


@pytest.mark.parametrize(
    "status",
    [
        CommandStatus.ESME_RINVDSTADR,
        CommandStatus.ESME_RINVSRCADR,
        CommandStatus.ESME_RX_P_APPN,
        CommandStatus.ESME_RX_R_APPN,
        CommandStatus.ESME_RINVDCS,
        CommandStatus.ESME_RINVESMCLASS,
        CommandStatus.ESME_RUNKNOWNERR,
        0x4242,
    ],
)
def test_address_content_and_unknown_failures_are_permanent(status: int) -> None:
    """Refusals that the same PDU would get again, and unknown codes, are permanent."""
    assert is_permanent(status)
    assert not is_temporary(status)


def test_success_is_neither_temporary_nor_permanent() -> None:
    """ESME_ROK is not a failure of either kind."""
    assert not is_temporary(CommandStatus.ESME_ROK)
    assert not is_permanent(CommandStatus.ESME_ROK)


def test_status_names_are_the_spec_names() -> None:
    """Known statuses print their spec name, unknown ones their hex value."""
    assert name_of(0x58) == "ESME_RTHROTTLED"
    assert name_of(0x4242) == "0x00004242"
