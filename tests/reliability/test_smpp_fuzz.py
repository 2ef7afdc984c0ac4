"""Fuzzing the SMPP decoder and session beyond tests/smpp/test_smpp_fuzz.py (random bytes and
mutated streams live there): frames with a valid header and a random body, sequences of
well-formed PDUs in every session state, and streams that claim huge lengths.

Properties: only protocol errors (a Pdu, or an InvalidPdu/ProtocolError with a status), no
hangs (each frame yields at most one item, so work is bounded by the input), and bounded
memory (tracemalloc's peak stays far below what a stream claims or carries).
"""

from __future__ import annotations

import struct
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.smpp.codec import InvalidPdu, PduDecoder, encode
from smsgw.smpp.constants import MAX_COMMAND_LENGTH, CommandStatus
from smsgw.smpp.events import ConnectionShouldClose, Event, ProtocolError
from smsgw.smpp.pdu import PDU_CLASSES, EnquireLink, EnquireLinkResp, Pdu
from smsgw.smpp.session import Session, SessionState

HEADER = struct.Struct(">IIII")
COMMAND_IDS = [*PDU_CLASSES, 0x00000000, 0x00000005, 0x80000005, 0x00000103, 0x7FFFFFFF]
MIB = 1 << 20


def frame(command_id: int, status: int, sequence: int, body: bytes) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


frames = st.builds(
    frame,
    st.sampled_from(COMMAND_IDS),
    st.sampled_from([0, 0, 1, 8, 0x45, 0xFFFFFFFF]),
    st.integers(0, 0xFFFFFFFF),
    st.one_of(
        st.binary(max_size=300),
        # Bodies made of C-string-ish pieces reach deeper into the field decoders.
        st.lists(
            st.sampled_from([b"\x00", b"abc\x00", b"\x01", b"\x05", b"\xff"]), max_size=40
        ).map(b"".join),
    ),
)


def _decoded(stream: bytes, chunk: int) -> list[Pdu | InvalidPdu]:
    decoder = PduDecoder()
    items: list[Pdu | InvalidPdu] = []
    for start in range(0, len(stream), chunk):
        decoder.feed(stream[start : start + chunk])
        items.extend(decoder)
    return items


@settings(deadline=None, max_examples=1000, derandomize=True)
@given(st.lists(frames, min_size=1, max_size=6), st.integers(1, 64))
def test_random_bodies_under_valid_headers_are_skipped_frame_by_frame(
    bodies: list[bytes], chunk: int
) -> None:
    """Each well-framed PDU with a random body yields exactly one Pdu or non-fatal InvalidPdu."""
    sentinel = encode(EnquireLink(sequence_number=424242))
    items = _decoded(b"".join(bodies) + sentinel, chunk)
    assert len(items) == len(bodies) + 1
    for item in items[:-1]:
        assert isinstance(item, Pdu) or (isinstance(item, InvalidPdu) and not item.fatal)
        if isinstance(item, InvalidPdu):
            assert item.status != CommandStatus.ESME_ROK
    assert items[-1] == EnquireLink(sequence_number=424242)


def _session(role: str, state: SessionState) -> Session:
    session = Session(role, window=4, enquire_link_s=30.0, response_timeout_s=10.0)  # type: ignore[arg-type]
    session._state = state
    return session


def _check_events(events: list[Event], frames_fed: int) -> None:
    assert all(isinstance(event, Event) for event in events)
    # A frame makes at most two events (e.g. Unbound + ConnectionShouldClose, or a
    # ProtocolError + ConnectionShouldClose): work stays proportional to the input.
    assert len(events) <= 2 * frames_fed + 2
    for event in events:
        if isinstance(event, ProtocolError):
            assert event.status != CommandStatus.ESME_ROK


@settings(deadline=None, max_examples=400, derandomize=True)
@given(
    st.sampled_from(["esme", "smsc"]),
    st.sampled_from(list(SessionState)),
    st.lists(frames, min_size=1, max_size=8),
)
def test_session_in_any_state_answers_random_frames_with_protocol_errors_only(
    role: str, state: SessionState, bodies: list[bytes]
) -> None:
    """In every state and role, random frames give only events, and the answers decode."""
    session = _session(role, state)
    events: list[Event] = []
    for now, body in enumerate(bodies):
        events += session.receive_data(body, float(now)) + session.poll(float(now))
    _check_events(events, len(bodies))
    answers = PduDecoder()
    answers.feed(session.data_to_send())
    assert all(isinstance(answer, Pdu) for answer in answers)
    assert not answers.broken


def test_session_still_answers_enquire_link_after_a_bad_body() -> None:
    """After a malformed submit_sm the bound session still answers the next enquire_link."""
    session = _session("smsc", SessionState.BOUND_TRX)
    bad = frame(0x00000004, 0, 7, b"no-nul-terminator")
    events = session.receive_data(bad + encode(EnquireLink(sequence_number=8)), 1.0)
    assert any(isinstance(event, ProtocolError) for event in events)
    assert not any(isinstance(event, ConnectionShouldClose) for event in events)
    answers = PduDecoder()
    answers.feed(session.data_to_send())
    replies = list(answers)
    assert replies[-1] == EnquireLinkResp(sequence_number=8)
    assert replies[0].command_status != CommandStatus.ESME_ROK  # type: ignore[union-attr]


def _peak_while(feed: bytes, chunk: int, repeats: int, decoder: PduDecoder) -> tuple[int, int]:
    """Feed ``feed`` in ``chunk``-sized pieces ``repeats`` times; (items seen, peak bytes)."""
    pieces = [feed[start : start + chunk] for start in range(0, len(feed), chunk)]
    seen = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for _ in range(repeats):
            for piece in pieces:
                decoder.feed(piece)
                seen += sum(1 for _ in decoder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seen, peak


def test_a_huge_claimed_length_is_refused_and_nothing_more_is_buffered() -> None:
    """A header claiming 4 GiB breaks the stream at once; 32 MiB fed afterwards is not kept."""
    decoder = PduDecoder()
    decoder.feed(HEADER.pack(0xFFFFFFFF, 4, 0, 99))
    (refusal,) = list(decoder)
    assert isinstance(refusal, InvalidPdu)
    assert refusal.fatal
    assert refusal.status == CommandStatus.ESME_RINVCMDLEN
    assert refusal.sequence_number == 99
    seen, peak = _peak_while(b"\xab" * MIB, 65536, 32, decoder)
    assert seen == 0
    assert peak < MIB // 4


def test_length_just_over_the_limit_is_refused_before_its_body_arrives() -> None:
    """command_length one above the limit is refused once the header is in, not buffered."""
    decoder = PduDecoder()
    decoder.feed(HEADER.pack(MAX_COMMAND_LENGTH + 1, 4, 0, 5))
    (refusal,) = list(decoder)
    assert isinstance(refusal, InvalidPdu)
    assert refusal.fatal
    assert decoder.broken


def test_largest_allowed_frames_of_garbage_keep_memory_bounded() -> None:
    """16 MiB of maximum-size frames with garbage bodies never hold more than a few frames."""
    garbage = frame(0x00000004, 0, 1, b"\xff" * (MAX_COMMAND_LENGTH - 16))
    decoder = PduDecoder()
    seen, peak = _peak_while(garbage, 4096, 256, decoder)
    assert seen == 256
    assert not decoder.broken
    assert peak < 4 * MAX_COMMAND_LENGTH + MIB // 4


def test_a_frame_that_never_completes_holds_at_most_its_claimed_length() -> None:
    """A frame claiming the maximum length, fed one short of it, buffers no more than that."""
    decoder = PduDecoder()
    partial = frame(0x00000004, 0, 1, b"\x00" * (MAX_COMMAND_LENGTH - 16))[:-1]
    seen, peak = _peak_while(partial, 1024, 1, decoder)
    assert seen == 0
    assert peak < 2 * MAX_COMMAND_LENGTH + MIB // 4
