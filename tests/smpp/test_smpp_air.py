from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.domain.text import TextPlan, plan_text
from smsgw.smpp.air import (
    Address,
    LongForm,
    MoFragment,
    MoMessage,
    alphabet_of,
    decode_mo,
    encode_gsm_septets,
    encode_mt,
    join_fragments,
)
from smsgw.smpp.codec import decode, encode
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.errors import PduDecodeError
from smsgw.smpp.pdu import DataSm, DeliverSm, SubmitSm, Tlv
from smsgw.smpp.wap import si_push

SOURCE = Address("0911000000", 2, 1)
DESTINATION = Address("886912345678", 1, 1)
PORTS_UDH = bytes.fromhex("0605040B8423F0")  # UDHL 6, IE 05 len 4, dst 2948, src 9200
GSM_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)


def mt(plan: TextPlan, long_form: LongForm = "udh", reference: int = 0x1234) -> list[SubmitSm]:
    return encode_mt(
        plan, source=SOURCE, destination=DESTINATION, reference=reference, long_form=long_form
    )


def delivered(submit: SubmitSm) -> DeliverSm:
    """The deliver_sm an SMSC would hand on for ``submit``, through the wire codec."""
    pdu = DeliverSm(
        source_addr=submit.source_addr,
        destination_addr=submit.destination_addr,
        esm_class=submit.esm_class,
        data_coding=submit.data_coding,
        short_message=submit.short_message,
        tlvs=submit.tlvs,
    )
    decoded = decode(encode(pdu))
    assert isinstance(decoded, DeliverSm)
    return decoded


def reassemble(fragments: list[MoFragment]) -> MoMessage:
    """The message of a complete set of parts, as the engine joins them (in seqnum order)."""
    assert sorted(fragment.seqnum for fragment in fragments) == list(range(1, len(fragments) + 1))
    assert {fragment.total for fragment in fragments} == {len(fragments)}
    in_order = sorted(fragments, key=lambda fragment: fragment.seqnum)
    return join_fragments("a", "b", in_order)


# --- MT -----------------------------------------------------------------------------------


def test_gsm_single_sms_is_unpacked_septets_with_escapes() -> None:
    """'@' is septet 0x00 and '€' is ESC 0x65, one octet per septet, data_coding 0."""
    [submit] = mt(plan_text("ASCII", "@A€"))
    assert submit.short_message == bytes.fromhex("00411B65")
    assert (submit.data_coding, submit.esm_class, submit.registered_delivery) == (0, 0, 1)
    assert submit.sequence_number == 0
    assert (submit.source_addr, submit.source_addr_ton, submit.source_addr_npi) == (
        "0911000000",
        2,
        1,
    )
    assert (submit.destination_addr, submit.dest_addr_ton, submit.dest_addr_npi) == (
        "886912345678",
        1,
        1,
    )


def test_extension_table_characters_take_two_octets() -> None:
    """Every extension character is ESC followed by its 3GPP 23.038 code."""
    [submit] = mt(plan_text("ASCII", "^{}\\[~]|\f"))
    assert submit.short_message == bytes.fromhex("1B14 1B28 1B29 1B2F 1B3C 1B3D 1B3E 1B40 1B0A")


def test_septet_encoder_agrees_with_the_gsm0338_codec() -> None:
    """The fast septet encoder gives the codec's octets for every GSM character."""
    for char in GSM_ALPHABET:
        assert encode_gsm_septets(char) == char.encode("gsm03.38")


def test_septet_encoder_refuses_characters_outside_gsm() -> None:
    """A character GSM 03.38 lacks raises UnicodeEncodeError rather than passing through."""
    with pytest.raises(UnicodeEncodeError):
        encode_gsm_septets("caf\u00ff")


def test_ucs2_single_sms_is_utf16be_with_surrogate_pairs() -> None:
    """UCS-2 text goes as UTF-16BE with data_coding 8, a non-BMP character as a pair."""
    [submit] = mt(plan_text("UCS2", "中😀"))
    assert submit.short_message == bytes.fromhex("4E2D D83D DE00")
    assert submit.data_coding == 8


@pytest.mark.parametrize(("encoding", "data_coding"), [("PASCII", 0x10), ("PBIG5", 0x18)])
def test_flash_sets_message_class_zero(encoding: str, data_coding: int) -> None:
    """Flash GSM is data_coding 0x10 and flash UCS-2 is 0x18."""
    [submit] = mt(plan_text(encoding, "hi"))
    assert submit.data_coding == data_coding


def test_registered_delivery_is_passed_through() -> None:
    """The receipt request given by the caller is set on every segment."""
    plan = plan_text("LASCII", "x" * 200)
    submits = encode_mt(
        plan, source=SOURCE, destination=DESTINATION, reference=1, registered_delivery=0
    )
    assert [submit.registered_delivery for submit in submits] == [0, 0]


def test_long_gsm_with_udh_has_a_concatenation_header_per_part() -> None:
    """Each part starts 05 00 03 ref total seq with the reference's low octet, esm_class 0x40."""
    plan = plan_text("LASCII", "a" * 153 + "b" * 153 + "c" * 10)
    submits = mt(plan)
    assert [submit.short_message[:6] for submit in submits] == [
        bytes.fromhex("050003340301"),
        bytes.fromhex("050003340302"),
        bytes.fromhex("050003340303"),
    ]
    assert [submit.short_message[6:] for submit in submits] == [b"a" * 153, b"b" * 153, b"c" * 10]
    assert {submit.esm_class for submit in submits} == {0x40}


def test_long_ucs2_with_sar_uses_tlvs_and_no_udh() -> None:
    """SAR segments carry ref/total/seqnum in TLVs, plain UTF-16BE text and esm_class 0."""
    plan = plan_text("LUCS2", "中" * 100)
    submits = mt(plan, long_form="sar")
    assert [(s.sar_msg_ref_num, s.sar_total_segments, s.sar_segment_seqnum) for s in submits] == [
        (0x1234, 2, 1),
        (0x1234, 2, 2),
    ]
    assert [submit.short_message for submit in submits] == [
        "中".encode("utf-16-be") * 67,
        "中".encode("utf-16-be") * 33,
    ]
    assert {(submit.esm_class, submit.data_coding) for submit in submits} == {(0, 8)}


def test_long_message_as_payload_is_one_submit() -> None:
    """The payload form sends the whole text in message_payload with an empty short_message."""
    plan = plan_text("LASCII", "x" * 300)
    [submit] = mt(plan, long_form="payload")
    assert submit.message_payload == b"x" * 300
    assert submit.short_message == b""
    assert submit.esm_class == 0


def test_single_sms_ignores_the_long_form() -> None:
    """A message that fits one SMS goes in short_message whatever the long form."""
    for long_form in ("udh", "sar", "payload"):
        [submit] = mt(plan_text("LASCII", "short"), long_form=long_form)
        assert (submit.short_message, submit.tlvs, submit.esm_class) == (b"short", (), 0)


def test_push_is_wap_si_to_port_2948() -> None:
    """A PUSH is 8-bit data with the WDP port UDH followed by the WSP push of the SI."""
    [submit] = mt(plan_text("PUSH", "Hi", "www.example.com/x"), reference=9)
    assert submit.data_coding == 4
    assert submit.esm_class == 0x40
    assert submit.short_message == PORTS_UDH + si_push("Hi", "www.example.com/x", 9)
    assert len(submit.short_message) <= 140


def test_long_push_is_split_with_ports_and_concatenation() -> None:
    """A PUSH over 140 octets goes in parts whose UDH holds both the ports and the 8-bit IE."""
    url = "http://example.com/" + "p" * 200
    plan = TextPlan("push", flash=False, body="Title", parts=("Title",), wapurl=url)
    submits = mt(plan, reference=0x0102)
    payload = si_push("Title", url, 0x0102)
    total = len(submits)
    assert total == -(-len(payload) // 128)
    for seqnum, submit in enumerate(submits, start=1):
        assert submit.short_message[:12] == bytes.fromhex("0B05040B8423F00003") + bytes(
            [0x02, total, seqnum]
        )
        assert len(submit.short_message) <= 140
    assert b"".join(submit.short_message[12:] for submit in submits) == payload


def test_push_without_url_is_refused() -> None:
    """A push plan without its wapurl is a programming error."""
    plan = TextPlan("push", flash=False, body="t", parts=("t",), wapurl=None)
    with pytest.raises(ValueError, match="wapurl"):
        mt(plan)


# --- MO decoding --------------------------------------------------------------------------


def mo(
    short_message: bytes, data_coding: int = 0, esm_class: int = 0, tlvs: tuple[Tlv, ...] = ()
) -> MoFragment:
    pdu = DeliverSm(
        short_message=short_message, data_coding=data_coding, esm_class=esm_class, tlvs=tlvs
    )
    return decode_mo(pdu)


def test_gsm_mo_decodes_septets_and_extensions() -> None:
    """Unpacked septets decode through the basic and extension tables."""
    fragment = mo(bytes.fromhex("00 41 1B65 1B3C"))
    assert fragment == MoFragment("@A€[", "ASCII", reference=None, total=1, seqnum=1)


def test_gsm_mo_unknown_escape_shows_the_basic_character() -> None:
    """An escape before a septet the extension table lacks shows the basic character."""
    assert mo(bytes.fromhex("1B41 42 1B")).text == "AB"


def test_gsm_mo_with_high_octets_is_read_as_latin1() -> None:
    """data_coding 0 with octets above 0x7F is an 8-bit SMSC default, read as Latin-1."""
    assert mo("café".encode("latin-1")).text == "café"


@pytest.mark.parametrize(
    ("data_coding", "octets", "text", "encoding"),
    [
        (1, b"hello", "hello", "ASCII"),
        (3, "naïve".encode("latin-1"), "naïve", "ASCII"),
        (8, "你好😀".encode("utf-16-be"), "你好😀", "UCS2"),
        (0x10, b"\x00", "@", "ASCII"),
        (0x18, "你".encode("utf-16-be"), "你", "UCS2"),
        (0xF0, b"\x00\x41", "@A", "ASCII"),
        (0xF4, b"\xe9", "é", "ASCII"),
        (0xE0, "好".encode("utf-16-be"), "好", "UCS2"),
        (0x06, "Жа".encode("iso8859-5"), "Жа", "ASCII"),
        (0x05, b"\xe9", "é", "ASCII"),
        (0x04, b"\x01\xff", "\x01ÿ", "ASCII"),
    ],
)
def test_mo_text_follows_data_coding(
    data_coding: int, octets: bytes, text: str, encoding: str
) -> None:
    """Each data_coding is read by its alphabet; unknown ones as Latin-1."""
    fragment = mo(octets, data_coding)
    assert (fragment.text, fragment.encoding) == (text, encoding)


def test_alphabet_of_compressed_and_reserved_codings_is_latin1() -> None:
    """Compressed, reserved and 8-bit general-group codings are read as Latin-1 octets."""
    assert {alphabet_of(coding) for coding in (0x20, 0x3C, 0x80, 0xBF, 0x14)} == {"latin1"}
    assert alphabet_of(0xC0) == "gsm"


def test_mo_8bit_udh_reference() -> None:
    """The 8-bit concatenation IE gives reference, total and sequence; the UDH is removed."""
    fragment = mo(bytes.fromhex("050003AB0302") + b"hi", esm_class=0x40)
    assert fragment == MoFragment("hi", "ASCII", reference=0xAB, total=3, seqnum=2)


def test_mo_16bit_udh_reference_after_other_elements() -> None:
    """The 16-bit concatenation IE is found after an unrelated IE."""
    udh = bytes.fromhex("0C0504 0B84 23F00804 BEEF 0201")
    fragment = mo(udh + "好".encode("utf-16-be"), data_coding=8, esm_class=0x40)
    assert fragment == MoFragment("好", "UCS2", reference=0xBEEF, total=2, seqnum=1)


def test_mo_sar_tlvs_and_message_payload_in_data_sm() -> None:
    """A data_sm with SAR TLVs and its text in message_payload decodes like a deliver_sm."""
    pdu = DataSm(
        data_coding=3,
        tlvs=(
            Tlv.sar_msg_ref_num(300),
            Tlv.sar_total_segments(2),
            Tlv.sar_segment_seqnum(2),
            Tlv.message_payload(b"tail"),
        ),
    )
    assert decode_mo(pdu) == MoFragment("tail", "ASCII", reference=300, total=2, seqnum=2)


def test_mo_with_impossible_sequence_is_a_whole_message() -> None:
    """A concatenation IE with seq > total or total 1 is ignored rather than waited on."""
    assert mo(bytes.fromhex("0500030A0203") + b"x", esm_class=0x40).reference is None
    assert mo(bytes.fromhex("0500030A0101") + b"x", esm_class=0x40).reference is None


@pytest.mark.parametrize(
    ("octets", "data_coding", "esm_class"),
    [
        (b"", 0, 0x40),
        (bytes.fromhex("0500"), 0, 0x40),
        (bytes.fromhex("0300") + b"ab", 0, 0x40),
        (bytes.fromhex("020003"), 0, 0x40),
        (b"\x00\x41\x00", 8, 0),
    ],
)
def test_undecodable_mo_raises_decode_error(
    octets: bytes, data_coding: int, esm_class: int
) -> None:
    """A truncated UDH or odd-length UCS-2 raises PduDecodeError with a status."""
    with pytest.raises(PduDecodeError) as caught:
        mo(octets, data_coding, esm_class)
    assert caught.value.status == CommandStatus.ESME_RINVMSGLEN


# --- reassembly ---------------------------------------------------------------------------


def test_surrogate_pair_split_across_parts_is_joined() -> None:
    """A UCS-2 pair split by the sender becomes one character once both parts are joined."""
    first = decode_mo(
        DeliverSm(
            data_coding=8, esm_class=0x40, short_message=bytes.fromhex("0500030102010041D83D")
        )
    )
    second = decode_mo(
        DeliverSm(
            data_coding=8, esm_class=0x40, short_message=bytes.fromhex("050003010202DE000042")
        )
    )
    assert reassemble([first, second]) == MoMessage("a", "b", "A😀B", "UCS2")


def test_half_a_pair_that_never_completes_becomes_a_replacement_character() -> None:
    """A lone surrogate left by a missing part is replaced, so the text stays valid UTF-8."""
    first = decode_mo(
        DeliverSm(
            data_coding=8, esm_class=0x40, short_message=bytes.fromhex("0500030102010041D83D")
        )
    )
    message = join_fragments("a", "b", [first])  # its second part never came
    assert message.text.encode() == "A\ufffd".encode()


# --- round trip ---------------------------------------------------------------------------

gsm_texts = st.text(alphabet=GSM_ALPHABET, min_size=1, max_size=400)
any_texts = st.text(min_size=1, max_size=400)


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(gsm_texts, any_texts),
    encoding=st.sampled_from(["ASCII", "UCS2", "PASCII", "PBIG5", "LASCII", "LUCS2", "LBIG5"]),
    long_form=st.sampled_from(["udh", "sar", "payload"]),
    reference=st.integers(min_value=0, max_value=0xFFFF),
)
def test_mt_encoding_round_trips_through_mo_decoding(
    text: str, encoding: str, long_form: LongForm, reference: int
) -> None:
    """encode_mt then decode_mo then reassembly gives back the planned text."""
    plan = plan_text(encoding, text)
    submits = mt(plan, long_form=long_form, reference=reference)
    fragments = [decode_mo(delivered(submit)) for submit in submits]
    message = reassemble(fragments)
    assert message.text == plan.body
    assert message.encoding == ("UCS2" if plan.coding == "ucs2" else "ASCII")
