from __future__ import annotations

import struct
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.smpp.codec import InvalidPdu, PduDecoder, decode, encode, renumbered
from smsgw.smpp.constants import CommandId, CommandStatus, TlvTag
from smsgw.smpp.errors import LocalProtocolError, PduDecodeError
from smsgw.smpp.pdu import (
    FIXED_TLV_SIZES,
    PDU_CLASSES,
    BindTransceiver,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Field,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
)

# --- strategies ---------------------------------------------------------------------------


def _field_strategy(spec: Field) -> st.SearchStrategy[object]:
    if spec.kind == "u8":
        return st.integers(0, 255)
    if spec.kind == "short_message":
        return st.binary(max_size=254)
    latin1_without_nul = st.characters(min_codepoint=1, max_codepoint=255)
    return st.text(latin1_without_nul, max_size=spec.size - 1)


def _tlv_strategy() -> st.SearchStrategy[Tlv]:
    unchecked = st.builds(
        Tlv,
        st.integers(0, 0xFFFF).filter(lambda tag: tag not in FIXED_TLV_SIZES),
        st.binary(max_size=40),
    )
    fixed = st.sampled_from(sorted(FIXED_TLV_SIZES.items())).flatmap(
        lambda item: st.builds(Tlv, st.just(item[0]), st.binary(min_size=item[1], max_size=item[1]))
    )
    return unchecked | fixed


@st.composite
def pdus(draw: st.DrawFn, pdu_class: type[Pdu]) -> Pdu:
    status = draw(st.sampled_from([0, 0, CommandStatus.ESME_RTHROTTLED, 0x4242]))
    header = {"sequence_number": draw(st.integers(0, 0xFFFFFFFF)), "command_status": status}
    if not pdu_class.BODY_ON_ERROR and status != CommandStatus.ESME_ROK:
        return pdu_class(**header)  # type: ignore[arg-type]
    body = {spec.name: draw(_field_strategy(spec)) for spec in pdu_class.LAYOUT}
    if pdu_class.ACCEPTS_TLVS:
        body["tlvs"] = tuple(draw(st.lists(_tlv_strategy(), max_size=4)))
    return pdu_class(**header, **body)  # type: ignore[arg-type]


ALL_PDU_CLASSES: list[type[Pdu]] = sorted(PDU_CLASSES.values(), key=lambda c: c.command_id)
any_pdu = st.sampled_from(ALL_PDU_CLASSES).flatmap(pdus)


def _frames(data: bytes) -> list[Pdu | InvalidPdu]:
    decoder = PduDecoder()
    decoder.feed(data)
    return list(decoder)


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("pdu_class", ALL_PDU_CLASSES)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_every_pdu_type_survives_encode_then_decode(
    pdu_class: type[Pdu], data: st.DataObject
) -> None:
    """Any valid PDU of any type decodes to an equal PDU and re-encodes to the same bytes."""
    pdu = data.draw(pdus(pdu_class))
    wire = encode(pdu)
    decoded = decode(wire)
    assert decoded == pdu
    assert encode(decoded) == wire
    assert struct.unpack_from(">I", wire)[0] == len(wire)


def test_every_pdu_type_has_a_round_trip_strategy() -> None:
    """The PDU registry covers the twenty PDUs this core supports."""
    names = {cls.command_id.name for cls in PDU_CLASSES.values()}
    assert names == {
        "BIND_TRANSMITTER", "BIND_TRANSMITTER_RESP", "BIND_RECEIVER", "BIND_RECEIVER_RESP",
        "BIND_TRANSCEIVER", "BIND_TRANSCEIVER_RESP", "OUTBIND", "UNBIND", "UNBIND_RESP",
        "ENQUIRE_LINK", "ENQUIRE_LINK_RESP", "GENERIC_NACK", "SUBMIT_SM", "SUBMIT_SM_RESP",
        "DELIVER_SM", "DELIVER_SM_RESP", "DATA_SM", "DATA_SM_RESP", "QUERY_SM", "QUERY_SM_RESP",
    }  # fmt: skip


@settings(deadline=None)
@given(st.lists(any_pdu, min_size=1, max_size=5))
def test_a_stream_of_pdus_re_encodes_byte_for_byte(stream: list[Pdu]) -> None:
    """A stream of PDUs re-encodes to the identical byte stream after decoding."""
    wire = b"".join(encode(pdu) for pdu in stream)
    decoded = _frames(wire)
    assert decoded == stream
    assert b"".join(encode(pdu) for pdu in decoded if isinstance(pdu, Pdu)) == wire


# --- golden bytes (written from the spec by hand) -----------------------------------------


def test_enquire_link_matches_the_spec_bytes() -> None:
    """An enquire_link is a bare 16-octet header."""
    wire = bytes.fromhex("00000010000000150000000000000001")
    assert encode(EnquireLink(sequence_number=1)) == wire
    assert decode(wire) == EnquireLink(sequence_number=1)


def test_bind_transceiver_matches_the_spec_bytes() -> None:
    """A bind_transceiver lays out its C-strings and version octet in spec order."""
    wire = bytes.fromhex(
        "0000001e"  # command_length 30
        "00000009"  # bind_transceiver
        "00000000"  # command_status
        "00000002"  # sequence_number
        "736d73677700"  # system_id "smsgw"
        "707700"  # password "pw"
        "00"  # system_type ""
        "34"  # interface_version 3.4
        "00"  # addr_ton
        "00"  # addr_npi
        "00"  # address_range ""
    )
    pdu = BindTransceiver(sequence_number=2, system_id="smsgw", password="pw")
    assert encode(pdu) == wire
    assert decode(wire) == pdu


def test_submit_sm_with_tlvs_matches_the_spec_bytes() -> None:
    """A submit_sm carries sm_length before short_message and its TLVs after it."""
    wire = bytes.fromhex(
        "00000042"  # command_length 66
        "00000004"  # submit_sm
        "00000000"  # command_status
        "0000002a"  # sequence_number 42
        "00"  # service_type ""
        "05" "00"  # source ton alphanumeric, npi unknown
        "736d73677700"  # source_addr "smsgw"
        "01" "01"  # dest ton international, npi ISDN
        "38383639313233343536373800"  # destination_addr "886912345678"
        "00" "00" "00"  # esm_class, protocol_id, priority_flag
        "00" "00"  # schedule_delivery_time, validity_period
        "01" "00" "08" "00"  # registered_delivery, replace_if_present, data_coding UCS2, default
        "04" "00480069"  # sm_length 4, "Hi" in UCS2
        "0204" "0002" "0007"  # user_message_reference 7
        "020a" "0002" "1f90"  # source_port 8080
    )  # fmt: skip
    pdu = SubmitSm(
        sequence_number=42,
        source_addr_ton=5,
        source_addr="smsgw",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="886912345678",
        registered_delivery=1,
        data_coding=8,
        short_message="Hi".encode("utf-16-be"),
        tlvs=(Tlv.user_message_reference(7), Tlv.source_port(8080)),
    )
    assert encode(pdu) == wire
    assert decode(wire) == pdu
    assert decode(wire).user_message_reference == 7


def test_error_submit_sm_resp_is_header_only() -> None:
    """A submit_sm_resp with a non-zero status has no body, as SMPP 3.4 requires."""
    wire = encode(SubmitSmResp(sequence_number=3, command_status=CommandStatus.ESME_RTHROTTLED))
    assert wire == bytes.fromhex("00000010800000040000005800000003")


def test_a_response_without_body_decodes_with_default_fields() -> None:
    """A header-only deliver_sm_resp, as many ESMEs send, decodes to an empty message_id."""
    wire = bytes.fromhex("00000010800000050000000000000009")
    assert decode(wire) == DeliverSmResp(sequence_number=9)


# --- framing ------------------------------------------------------------------------------


def test_pdus_fed_one_byte_at_a_time_come_out_whole() -> None:
    """Feeding a stream byte by byte yields the same PDUs, each once, in order."""
    stream = [
        BindTransceiver(sequence_number=1, system_id="smsgw", password="pw"),
        SubmitSm(sequence_number=2, destination_addr="886912345678", short_message=b"hello"),
        EnquireLink(sequence_number=3),
    ]
    decoder = PduDecoder()
    received: list[Pdu | InvalidPdu] = []
    for byte in b"".join(encode(pdu) for pdu in stream):
        decoder.feed(bytes((byte,)))
        received.extend(decoder)
    assert received == stream


def test_two_pdus_in_one_chunk_are_both_decoded() -> None:
    """One chunk holding two PDUs yields both."""
    chunk = encode(EnquireLink(sequence_number=1)) + encode(EnquireLinkResp(sequence_number=7))
    assert _frames(chunk) == [EnquireLink(sequence_number=1), EnquireLinkResp(sequence_number=7)]


def test_a_large_backlog_is_decoded_across_compactions() -> None:
    """Thousands of PDUs in one chunk followed by a partial one are all framed correctly."""
    links = [EnquireLink(sequence_number=n) for n in range(1, 5001)]
    tail = encode(EnquireLink(sequence_number=5001))
    decoder = PduDecoder()
    decoder.feed(b"".join(map(encode, links)) + tail[:5])
    assert list(decoder) == links
    decoder.feed(tail[5:])
    assert list(decoder) == [EnquireLink(sequence_number=5001)]


def test_an_undersized_command_length_breaks_the_stream() -> None:
    """A command_length below 16 is a fatal RINVCMDLEN, and later bytes are ignored."""
    decoder = PduDecoder()
    decoder.feed(bytes.fromhex("0000000f") + encode(EnquireLink(sequence_number=1)))
    assert list(decoder) == [
        InvalidPdu(0, 0, CommandStatus.ESME_RINVCMDLEN, "command_length 15 below 16", fatal=True)
    ]
    decoder.feed(encode(EnquireLink(sequence_number=2)))
    assert list(decoder) == []
    assert decoder.broken


def test_an_oversized_command_length_is_refused_once_the_header_is_in() -> None:
    """A command_length above 65536 is fatal and echoes the header's sequence number."""
    header = struct.pack(">IIII", 65537, CommandId.SUBMIT_SM, 0, 77)
    decoder = PduDecoder()
    decoder.feed(header[:10])
    assert list(decoder) == []
    decoder.feed(header[10:])
    (invalid,) = list(decoder)
    assert isinstance(invalid, InvalidPdu)
    assert (invalid.command_id, invalid.sequence_number) == (CommandId.SUBMIT_SM, 77)
    assert (invalid.status, invalid.fatal) == (CommandStatus.ESME_RINVCMDLEN, True)


def test_an_unknown_command_id_is_skipped_by_its_length() -> None:
    """An unknown command yields RINVCMDID and the PDU after it still decodes."""
    unknown = struct.pack(">IIII", 20, 0x00000777, 0, 5) + b"abcd"
    (invalid, after) = _frames(unknown + encode(EnquireLink(sequence_number=6)))
    assert invalid == InvalidPdu(
        0x777, 5, CommandStatus.ESME_RINVCMDID, "unknown command_id 0x00000777"
    )
    assert after == EnquireLink(sequence_number=6)


def _submit_sm_with_body(body: bytes, sequence_number: int = 4) -> bytes:
    return struct.pack(">IIII", 16 + len(body), CommandId.SUBMIT_SM, 0, sequence_number) + body


def _status_of(wire: bytes) -> int:
    (frame,) = _frames(wire)
    assert isinstance(frame, InvalidPdu)
    assert not frame.fatal
    return frame.status


def test_a_truncated_tlv_is_an_optional_parameter_stream_error() -> None:
    """A TLV whose length runs past the body yields RINVOPTPARSTREAM."""
    valid = encode(SubmitSm(destination_addr="1"))[16:]
    assert _status_of(_submit_sm_with_body(valid + bytes.fromhex("140000056162"))) == (
        CommandStatus.ESME_RINVOPTPARSTREAM
    )
    assert _status_of(_submit_sm_with_body(valid + bytes.fromhex("1400"))) == (
        CommandStatus.ESME_RINVOPTPARSTREAM
    )


def test_a_known_tlv_of_the_wrong_size_is_a_parameter_length_error() -> None:
    """A sar_msg_ref_num of three octets yields RINVPARLEN."""
    valid = encode(SubmitSm(destination_addr="1"))[16:]
    wire = _submit_sm_with_body(valid + bytes.fromhex("020c0003010203"))
    assert _status_of(wire) == CommandStatus.ESME_RINVPARLEN


def test_a_too_long_address_gets_its_field_status() -> None:
    """A source_addr of 21 characters without NUL yields RINVSRCADR."""
    body = b"\0" + b"\x01\x01" + b"9" * 30
    assert _status_of(_submit_sm_with_body(body)) == CommandStatus.ESME_RINVSRCADR


def test_an_unterminated_string_at_the_end_of_the_body_is_a_length_error() -> None:
    """A C-string cut by the end of the body yields RINVMSGLEN."""
    assert _status_of(_submit_sm_with_body(b"\0\x01\x01abc")) == CommandStatus.ESME_RINVMSGLEN


def test_an_sm_length_beyond_the_body_is_a_length_error() -> None:
    """An sm_length larger than the bytes left yields RINVMSGLEN."""
    body = encode(SubmitSm(short_message=b"abc"))[16:]
    assert _status_of(_submit_sm_with_body(body[:-1])) == CommandStatus.ESME_RINVMSGLEN


def test_bytes_after_a_header_only_pdu_are_a_command_length_error() -> None:
    """An enquire_link with a body yields RINVCMDLEN without breaking the stream."""
    wire = struct.pack(">IIII", 18, CommandId.ENQUIRE_LINK, 0, 1) + b"xx"
    assert _status_of(wire) == CommandStatus.ESME_RINVCMDLEN


def test_decode_refuses_data_that_is_not_exactly_one_pdu() -> None:
    """decode() raises PduDecodeError when the length field disagrees with the data."""
    with pytest.raises(PduDecodeError):
        decode(encode(EnquireLink()) + b"x")
    with pytest.raises(PduDecodeError):
        decode(b"\0\0")


# --- encoding refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pdu", "status"),
    [
        (SubmitSm(source_addr="9" * 21), CommandStatus.ESME_RINVSRCADR),
        (SubmitSm(destination_addr="9" * 21), CommandStatus.ESME_RINVDSTADR),
        (SubmitSm(short_message=b"x" * 255), CommandStatus.ESME_RINVMSGLEN),
        (SubmitSm(source_addr="\u4e2d"), CommandStatus.ESME_RINVSRCADR),
        (SubmitSm(data_coding=256), CommandStatus.ESME_RINVPARLEN),
        (BindTransceiver(password="123456789"), CommandStatus.ESME_RINVPASWD),
        (EnquireLink(tlvs=(Tlv.source_port(1),)), CommandStatus.ESME_ROPTPARNOTALLWD),
        (EnquireLink(sequence_number=1 << 32), CommandStatus.ESME_RINVCMDLEN),
        (SubmitSm(tlvs=(Tlv.message_payload(b"x" * 65536),)), CommandStatus.ESME_RINVPARLEN),
    ],
)
def test_encode_refuses_fields_that_do_not_fit(pdu: Pdu, status: CommandStatus) -> None:
    """A field too long, out of range or not latin-1 raises LocalProtocolError with its status."""
    with pytest.raises(LocalProtocolError) as raised:
        encode(pdu)
    assert raised.value.status == status


def test_the_password_is_never_in_a_repr_or_an_error() -> None:
    """Neither a bind's repr nor the error for a too-long password shows the password."""
    assert "s3cret" not in repr(BindTransceiver(system_id="smsgw", password="s3cret"))
    with pytest.raises(LocalProtocolError) as raised:
        encode(BindTransceiver(password="s3cret-too-long"))
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize("pdu_class", ALL_PDU_CLASSES)
def test_pdu_fields_are_the_header_the_tlvs_and_the_layout(pdu_class: type[Pdu]) -> None:
    """Every dataclass field of every PDU is a header field, the TLVs, or in its wire layout."""
    names = [item.name for item in fields(pdu_class)]
    layout = [spec.name for spec in pdu_class.LAYOUT]
    assert names == ["sequence_number", "command_status", "tlvs", *layout]


@settings(deadline=None, max_examples=50)
@given(any_pdu, st.integers(1, 0x7FFFFFFF))
def test_renumbered_is_replace_of_the_sequence_number(pdu: Pdu, sequence_number: int) -> None:
    """renumbered() gives the same PDU as dataclasses.replace of its sequence number."""
    assert renumbered(pdu, sequence_number) == replace(pdu, sequence_number=sequence_number)


def test_message_payload_may_carry_what_short_message_cannot() -> None:
    """A 1000-octet message_payload TLV round-trips."""
    pdu = SubmitSm(tlvs=(Tlv.message_payload(b"x" * 1000),))
    assert decode(encode(pdu)).message_payload == b"x" * 1000
    assert decode(encode(pdu)).tlv(TlvTag.MESSAGE_PAYLOAD) == b"x" * 1000
