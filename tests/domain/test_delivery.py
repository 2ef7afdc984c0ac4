from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgw.domain.delivery import (
    acknowledgement,
    callback_url,
    dlr_query,
    is_ack,
    mo_query,
    next_attempt,
    receipt_state_is_final,
    recipient_outcome,
)
from smsgw.domain.model import State

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
FINAL_STATES = [state for state in State if state.final]
SUCCESSES = [State.DELIVRD, State.ACCEPTD]
FAILURES = [state for state in FINAL_STATES if state not in SUCCESSES]


def test_outcome_waits_for_every_segment() -> None:
    """The outcome is None while any segment has no final state."""
    assert recipient_outcome([State.DELIVRD, None, State.DELIVRD]) is None
    assert recipient_outcome([State.UNDELIV, State.ENROUTE]) is None
    assert recipient_outcome([]) is None


def test_outcome_of_delivered_and_accepted_segments() -> None:
    """All DELIVRD is DELIVRD; DELIVRD mixed with ACCEPTD is ACCEPTD."""
    assert recipient_outcome([State.DELIVRD] * 3) is State.DELIVRD
    assert recipient_outcome([State.DELIVRD, State.ACCEPTD]) is State.ACCEPTD
    assert recipient_outcome([State.ACCEPTD]) is State.ACCEPTD


@given(
    st.lists(st.sampled_from(SUCCESSES), max_size=4),
    st.lists(st.sampled_from(FINAL_STATES), min_size=1, max_size=4).filter(
        lambda states: states[0] in FAILURES
    ),
)
def test_outcome_is_the_first_failure(before: list[State], after: list[State]) -> None:
    """With any failed segment, the outcome is the first failure in segment order."""
    assert recipient_outcome([*before, *after]) is after[0]


def test_only_final_receipt_states_settle() -> None:
    """ENROUTE receipts only report progress; ACCEPTD and failures are final."""
    assert not receipt_state_is_final(State.ENROUTE)
    assert receipt_state_is_final(State.ACCEPTD)
    assert receipt_state_is_final(State.UNDELIV)


def test_dlr_query_fields_in_order() -> None:
    """The delivery report query lists msgid, statuscode, statusstr, dstaddr, encoded."""
    assert dlr_query(1504280910499665, State.UNDELIV, "+85291234567") == (
        "msgid=1504280910499665&statuscode=-10&statusstr=UNDELIV&dstaddr=%2B85291234567"
    )
    assert dlr_query(7, State.DELIVRD, "0912345678") == (
        "msgid=7&statuscode=0&statusstr=DELIVRD&dstaddr=0912345678"
    )


@given(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.sampled_from(list(State)),
    st.text(min_size=1, max_size=24),
)
def test_dlr_query_is_the_general_encoding(msgid: int, state: State, number: str) -> None:
    """The delivery report's own formatting gives the same bytes as urlencode would."""
    expected = urlencode(
        [
            ("msgid", msgid),
            ("statuscode", state.statuscode),
            ("statusstr", state.value),
            ("dstaddr", number),
        ],
        quote_via=quote,
        safe="",
    )
    assert dlr_query(msgid, state, number) == expected


@given(st.text(min_size=1, max_size=40), st.sampled_from(["ASCII", "UCS2"]))
def test_mo_query_round_trips(body: str, encoding: str) -> None:
    """A reply query decodes back to its fields, with the time in Taipei."""
    query = mo_query(42, "0912345678", "0911000111", body, encoding, NOW)
    assert parse_qsl(query, keep_blank_values=True) == [
        ("msgid", "42"),
        ("srcaddr", "0912345678"),
        ("dstaddr", "0911000111"),
        ("smbody", body),
        ("encoding", encoding),
        ("timestamp", "2025/03/04 13:06:07"),
    ]


def test_callback_url_picks_the_separator() -> None:
    """The query follows ``?``, or ``&`` when the base already has a query."""
    assert callback_url("https://a.test/cb", "x=1") == "https://a.test/cb?x=1"
    assert callback_url("https://a.test/cb?k=v", "x=1") == "https://a.test/cb?k=v&x=1"
    assert callback_url("https://a.test/cb?", "x=1") == "https://a.test/cb?x=1"


def test_next_attempt_follows_the_delays() -> None:
    """Each failed attempt waits its delay; after the last delay there is no next try."""
    delays = [30.0, 120.0, 600.0]
    assert next_attempt(0, delays, NOW) == NOW
    assert next_attempt(1, delays, NOW) == NOW + timedelta(seconds=30)
    assert next_attempt(3, delays, NOW) == NOW + timedelta(minutes=10)
    assert next_attempt(4, delays, NOW) is None
    with pytest.raises(ValueError, match="negative"):
        next_attempt(-1, delays, NOW)


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=6))
def test_attempts_in_all_are_one_more_than_delays(delays: list[float]) -> None:
    """There are exactly 1 + len(delays) attempts."""
    tries = 0
    while next_attempt(tries, delays, NOW) is not None:
        tries += 1
    assert tries == 1 + len(delays)


def test_ack_needs_both_lines() -> None:
    """The acknowledgement holds the magic line and the msgid line, blanks tolerated."""
    assert is_ack("magicid=tccrd_sms_gateway_rpack\nmsgid=12\n", 12)
    assert is_ack("  msgid=12 \r\nother=1\r\n magicid=tccrd_sms_gateway_rpack\r\n", 12)
    assert not is_ack("magicid=tccrd_sms_gateway_rpack\nmsgid=13\n", 12)
    assert not is_ack("msgid=12\n", 12)
    assert not is_ack("magicid=tccrd_sms_gateway_rpack msgid=12", 12)


def test_the_acknowledgement_is_what_is_ack_accepts() -> None:
    """The demo endpoint and the test receivers answer with it; the worker must accept it."""
    assert acknowledgement(42) == "magicid=tccrd_sms_gateway_rpack\nmsgid=42\n"
    assert is_ack(acknowledgement(42), 42)
    assert not is_ack(acknowledgement(42), 43)
