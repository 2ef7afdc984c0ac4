from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.domain.model import State
from smsgw.smpp.constants import CommandStatus, MessageState
from smsgw.smpp.errors import PduDecodeError
from smsgw.smpp.pdu import DataSm, DeliverSm, Tlv
from smsgw.smpp.receipts import (
    Receipt,
    is_receipt,
    message_id_forms,
    parse_receipt,
    receipt_fields,
)

STANDARD = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2401311230 done date:2401311231 "
    b"stat:DELIVRD err:000 text:Hello"
)


def receipt(text: bytes, *tlvs: Tlv, esm_class: int = 0x04) -> DeliverSm:
    return DeliverSm(esm_class=esm_class, short_message=text, tlvs=tlvs)


def test_standard_receipt_is_read() -> None:
    """The appendix B text form gives id, state, error and both dates as written."""
    assert parse_receipt(receipt(STANDARD)) == Receipt(
        message_id="0123456789",
        state=State.DELIVRD,
        error="000",
        submitted="2401311230",
        done="2401311231",
    )


def test_fields_in_any_order_and_case_with_12_digit_dates() -> None:
    """Reordered, upper-case keys and 12-digit dates (with seconds) are read the same."""
    text = b"STAT:UNDELIV Done Date:240131123159 ERR:005 ID:abc SUBMIT DATE:240131123000"
    assert parse_receipt(receipt(text)) == Receipt(
        message_id="abc",
        state=State.UNDELIV,
        error="005",
        submitted="240131123000",
        done="240131123159",
    )


def test_missing_fields_are_none() -> None:
    """A receipt with only an id and a state has no error and no dates."""
    assert parse_receipt(receipt(b"id:77 stat:EXPIRED")) == Receipt(
        message_id="77", state=State.EXPIRED, error=None, submitted=None, done=None
    )


def test_receipt_without_text_field() -> None:
    """A receipt ending after err: (no text:) loses nothing."""
    text = STANDARD.split(b" text:")[0]
    assert parse_receipt(receipt(text)).error == "000"


def test_text_containing_keys_and_colons_does_not_override_fields() -> None:
    """A text: value holding 'id:' and colons leaves the earlier fields alone."""
    text = b"id:42 stat:DELIVRD err:000 text:your id: 99 stat:UNDELIV at 12:30"
    parsed = parse_receipt(receipt(text))
    assert (parsed.message_id, parsed.state, parsed.error) == ("42", State.DELIVRD, "000")
    assert receipt_fields(text.decode())["text"] == "your id: 99 stat:UNDELIV at 12:30"


def test_nul_terminated_text_is_read() -> None:
    """A receipt text ending in a NUL, as if a C string, keeps its last field clean."""
    assert parse_receipt(receipt(b"id:9 stat:DELIVRD\0")).state == State.DELIVRD


def test_underscored_date_keys_are_accepted() -> None:
    """submit_date / done_date spellings are the same fields."""
    parsed = parse_receipt(receipt(b"id:1 submit_date:2401010000 done_date:2401010001 stat:x"))
    assert (parsed.submitted, parsed.done) == ("2401010000", "2401010001")


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", State.DELIVRD),
        ("delivered", State.DELIVRD),
        ("EXPIRED", State.EXPIRED),
        ("DELETED", State.DELETED),
        ("UNDELIV", State.UNDELIV),
        ("UNDELIVERABLE", State.UNDELIV),
        ("ACCEPTD", State.ACCEPTD),
        ("ACCEPTED", State.ACCEPTD),
        ("UNKNOWN", State.UNKNOWN),
        ("REJECTD", State.REJECTD),
        ("REJECTED", State.REJECTD),
        ("ENROUTE", State.ENROUTE),
        ("ABSENT", State.ABSENT),
        ("SPAM", State.SPAM),
        ("BLOCK", State.BLOCK),
        ("SYNTAXE", State.SYNTAXE),
        ("WHATEVER", State.UNKNOWN),
    ],
)
def test_text_states_map_onto_domain_states(stat: str, state: State) -> None:
    """Each stat: word, short or long, maps onto its state; an unknown one is UNKNOWN."""
    assert parse_receipt(receipt(b"id:1 stat:" + stat.encode())).state == state


def test_missing_stat_is_unknown() -> None:
    """A receipt without stat: and without message_state is UNKNOWN."""
    assert parse_receipt(receipt(b"id:1 err:000")).state == State.UNKNOWN


@pytest.mark.parametrize(
    ("message_state", "state"),
    [
        (MessageState.ENROUTE, State.ENROUTE),
        (MessageState.DELIVERED, State.DELIVRD),
        (MessageState.EXPIRED, State.EXPIRED),
        (MessageState.DELETED, State.DELETED),
        (MessageState.UNDELIVERABLE, State.UNDELIV),
        (MessageState.ACCEPTED, State.ACCEPTD),
        (MessageState.UNKNOWN, State.UNKNOWN),
        (MessageState.REJECTED, State.REJECTD),
    ],
)
def test_message_state_tlv_wins_over_text(message_state: int, state: State) -> None:
    """The message_state TLV decides the state even when the text says otherwise."""
    pdu = receipt(b"id:1 stat:SPAM", Tlv.message_state(message_state))
    assert parse_receipt(pdu).state == state


def test_unknown_message_state_falls_back_to_text() -> None:
    """A message_state outside SMPP 3.4 leaves the text stat: to decide."""
    pdu = receipt(b"id:1 stat:DELIVRD", Tlv.message_state(9))
    assert parse_receipt(pdu).state == State.DELIVRD


def test_receipted_message_id_tlv_wins_over_text_id() -> None:
    """The receipted_message_id TLV is the id even when the text names another."""
    pdu = receipt(STANDARD, Tlv.receipted_message_id("1A2B"))
    assert parse_receipt(pdu).message_id == "1A2B"


def test_tlv_only_receipt_in_data_sm() -> None:
    """A data_sm receipt with TLVs and no text is read from its TLVs."""
    pdu = DataSm(tlvs=(Tlv.receipted_message_id("m-1"), Tlv.message_state(MessageState.DELIVERED)))
    assert is_receipt(pdu)
    assert parse_receipt(pdu) == Receipt("m-1", State.DELIVRD, None, None, None)


def test_text_in_message_payload_is_read() -> None:
    """A receipt whose text travels in message_payload is read from there."""
    pdu = receipt(b"", Tlv.message_payload(b"id:5 stat:DELIVRD"))
    assert parse_receipt(pdu).message_id == "5"


def test_leading_zeros_and_hex_ids_are_kept_as_received() -> None:
    """The id is kept exactly as the SMSC wrote it."""
    assert parse_receipt(receipt(b"id:000123 stat:DELIVRD")).message_id == "000123"
    assert parse_receipt(receipt(b"id:0A1b2C stat:DELIVRD")).message_id == "0A1b2C"


def test_receipt_without_any_id_is_a_decode_error() -> None:
    """No TLV id and no text id raises PduDecodeError naming an invalid message id."""
    with pytest.raises(PduDecodeError) as caught:
        parse_receipt(receipt(b"stat:DELIVRD err:000"))
    assert caught.value.status == CommandStatus.ESME_RINVMSGID


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (receipt(b"", esm_class=0x04), True),
        (receipt(b"", esm_class=0x44), True),
        (receipt(b"", esm_class=0x00), False),
        (receipt(b"", esm_class=0x08), False),
        (receipt(b"", Tlv.receipted_message_id("x"), esm_class=0), True),
    ],
)
def test_is_receipt(pdu: DeliverSm, expected: bool) -> None:
    """A receipt has esm_class message type 0x04 or a receipted_message_id TLV."""
    assert is_receipt(pdu) is expected


@pytest.mark.parametrize(
    ("message_id", "forms"),
    [
        ("1A2B", ("1A2B", "6699", "1a2b")),
        ("6699", ("6699", "1a2b", "1A2B")),
        ("000123", ("000123", "7b", "123", "7B")),
        ("00ff", ("00ff", "255", "ff", "FF")),
        ("0", ("0",)),
        ("msg-1", ("msg-1",)),
        ("", ("",)),
    ],
)
def test_message_id_forms(message_id: str, forms: tuple[str, ...]) -> None:
    """An id comes first, then its hex/decimal alternate and case or zero-stripped variants."""
    assert message_id_forms(message_id) == forms


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=254), st.integers(min_value=0, max_value=255))
def test_parse_receipt_raises_only_decode_errors(short_message: bytes, esm_class: int) -> None:
    """Arbitrary receipt bytes give a Receipt with a non-empty id or a PduDecodeError."""
    try:
        parsed = parse_receipt(receipt(short_message, esm_class=esm_class))
    except PduDecodeError:
        return
    assert parsed.message_id


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_message_id_forms_start_with_the_id(message_id: str) -> None:
    """Every id's forms start with itself and hold no duplicates."""
    forms = message_id_forms(message_id)
    assert forms[0] == message_id
    assert len(set(forms)) == len(forms)


def fields_by_the_rules(text: str) -> dict[str, str]:
    """The parsing rules of smsgw.smpp.receipts, spelled out match by match: a key's value
    runs to the next key not seen before; the first occurrence of a key wins."""
    found = list(
        re.finditer(
            r"\b(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:", text, re.IGNORECASE
        )
    )
    firsts: dict[str, tuple[int, int]] = {}
    for match in found:
        key = match.group(1).lower().replace("_", "").replace(" ", "")
        key = key.replace("date", " date") if key.endswith("date") else key
        firsts.setdefault(key, (match.start(), match.end()))
    starts = sorted(firsts.values())
    fields = {}
    for key, (start, value_start) in firsts.items():
        later = [s for s, _ in starts if s > start]
        value = text[value_start : later[0] if later else len(text)].strip()
        if key != "text":
            value = value.split(maxsplit=1)[0] if value else ""
        if value:
            fields[key] = value
    return fields


WORDS = ["id:", "ID :", "sub:", "dlvrd:", "submit date:", "Done_Date:", "stat:", "err:"]


@given(st.lists(st.one_of(st.sampled_from([*WORDS, "text:", " ", "x"]), st.text(max_size=6))))
def test_fields_follow_the_rules_for_any_text(pieces: list[str]) -> None:
    """Any mix of keys, repeats, colons and other text reads as the rules say."""
    text = "".join(pieces)
    assert receipt_fields(text) == fields_by_the_rules(text)
