from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.smpp.codec import PduDecoder, encode
from smsgw.smpp.constants import MessageState
from smsgw.smpp.events import Event
from smsgw.smpp.pdu import (
    BindTransceiver,
    BindTransceiverResp,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
)
from smsgw.smpp.session import Session, SessionState

SAMPLES: list[Pdu] = [
    BindTransceiver(sequence_number=1, system_id="smsgw", password="pw"),
    BindTransceiverResp(sequence_number=1, system_id="smsc", tlvs=(Tlv.sc_interface_version(),)),
    SubmitSm(
        sequence_number=2,
        source_addr="smsgw",
        destination_addr="886912345678",
        short_message=b"hello",
        tlvs=(Tlv.sar_msg_ref_num(1), Tlv.sar_total_segments(2), Tlv.sar_segment_seqnum(1)),
    ),
    SubmitSmResp(sequence_number=2, message_id="abc"),
    DeliverSm(
        sequence_number=3,
        esm_class=4,
        short_message=b"id:abc stat:DELIVRD",
        tlvs=(Tlv.receipted_message_id("abc"), Tlv.message_state(MessageState.DELIVERED)),
    ),
    DeliverSmResp(sequence_number=3),
    DataSm(sequence_number=4, tlvs=(Tlv.message_payload(b"x" * 300), Tlv(0x1400, b"v"))),
    QuerySm(sequence_number=5, message_id="abc"),
    EnquireLink(sequence_number=6),
    GenericNack(sequence_number=7, command_status=3),
    Unbind(sequence_number=8),
]
VALID_STREAM = b"".join(map(encode, SAMPLES))


def _sessions() -> list[Session]:
    sessions = []
    for role in ("esme", "smsc"):
        opened = Session(role, window=5, enquire_link_s=30.0, response_timeout_s=10.0)
        bound = Session(role, window=5, enquire_link_s=30.0, response_timeout_s=10.0)
        bound._state = SessionState.BOUND_TRX
        sessions += [opened, bound]
    return sessions


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[start:end] for start, end in pairwise(points)]


def _feed_and_check(data: bytes, cuts: list[int]) -> None:
    for session in _sessions():
        now = 0.0
        for chunk in _chunks(data, cuts):
            now += 1.0
            events = session.receive_data(chunk, now) + session.poll(now)
            assert all(isinstance(event, Event) for event in events)
        own_output = PduDecoder()
        own_output.feed(session.data_to_send())
        assert all(isinstance(frame, Pdu) for frame in own_output)
        assert not own_output.broken


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8))
def test_random_bytes_never_raise_and_answers_stay_well_formed(
    data: bytes, cuts: list[int]
) -> None:
    """Arbitrary bytes in arbitrary chunks yield only events, and every answer decodes cleanly."""
    _feed_and_check(data, cuts)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    stream = bytearray(VALID_STREAM)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(stream)))
        action = draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip" and position < len(stream):
            stream[position] = draw(st.integers(0, 255))
        elif action == "delete":
            del stream[position : position + draw(st.integers(1, 8))]
        else:
            stream[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(stream)


@settings(deadline=None, max_examples=300)
@given(mutated_streams(), st.lists(st.integers(0, 2000), max_size=12))
def test_mutated_valid_pdus_never_raise(data: bytes, cuts: list[int]) -> None:
    """Valid PDU streams with flipped, deleted or inserted bytes never make the session raise."""
    _feed_and_check(data, cuts)


def test_the_unmutated_sample_stream_decodes_to_the_samples() -> None:
    """The fuzzing seed is itself a valid stream of the sample PDUs."""
    decoder = PduDecoder()
    decoder.feed(VALID_STREAM)
    assert list(decoder) == SAMPLES
