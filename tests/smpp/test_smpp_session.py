from __future__ import annotations

import struct

import pytest

from smsgw.smpp.codec import PduDecoder, decode, encode
from smsgw.smpp.constants import MAX_SEQUENCE_NUMBER, CommandId, CommandStatus
from smsgw.smpp.errors import LocalProtocolError
from smsgw.smpp.events import (
    BindFailed,
    BindSucceeded,
    ConnectionShouldClose,
    EnquireLinkDue,
    Event,
    PduReceived,
    ProtocolError,
    ResponseOverdue,
    ResponseReceived,
    Unbound,
    UnmatchedResponse,
)
from smsgw.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    response_to,
)
from smsgw.smpp.session import Session, SessionState

ENQUIRE_S = 30.0
TIMEOUT_S = 10.0


def _esme(window: int = 10) -> Session:
    return Session("esme", window=window, enquire_link_s=ENQUIRE_S, response_timeout_s=TIMEOUT_S)


def _smsc(window: int = 10) -> Session:
    return Session("smsc", window=window, enquire_link_s=ENQUIRE_S, response_timeout_s=TIMEOUT_S)


def _transfer(sender: Session, receiver: Session, pdu: Pdu, now: float = 0.0) -> list[Event]:
    return receiver.receive_data(sender.send(pdu, now), now)


def _bound(bind: Pdu | None = None, window: int = 10) -> tuple[Session, Session]:
    esme, smsc = _esme(window), _smsc(window)
    (received,) = _transfer(esme, smsc, bind or BindTransceiver(system_id="smsgw", password="pw"))
    assert isinstance(received, PduReceived)
    _transfer(smsc, esme, response_to(received.pdu))
    return esme, smsc


def _answers(session: Session) -> list[Pdu]:
    decoder = PduDecoder()
    decoder.feed(session.data_to_send())
    frames = list(decoder)
    assert all(isinstance(frame, Pdu) for frame in frames)
    return [frame for frame in frames if isinstance(frame, Pdu)]


# --- binding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "state"),
    [
        (BindTransmitter(), SessionState.BOUND_TX),
        (BindReceiver(), SessionState.BOUND_RX),
        (BindTransceiver(), SessionState.BOUND_TRX),
    ],
)
def test_a_bind_handshake_binds_both_sides(bind: Pdu, state: SessionState) -> None:
    """A positive bind response moves the SMSC when sent and the ESME when received."""
    esme, smsc = _esme(), _smsc()
    (received,) = _transfer(esme, smsc, bind)
    assert received == PduReceived(bind.__class__(sequence_number=1))
    events = _transfer(smsc, esme, response_to(bind.__class__(sequence_number=1)))
    assert smsc.state is state
    assert esme.state is state
    assert [type(event) for event in events] == [BindSucceeded]


def test_a_refused_bind_leaves_the_esme_open() -> None:
    """A bind response with an error status reports BindFailed and the session stays OPEN."""
    esme, smsc = _esme(), _smsc()
    _transfer(esme, smsc, BindTransmitter(system_id="smsgw", password="bad"))
    refusal = BindTransmitterResp(sequence_number=1, command_status=CommandStatus.ESME_RINVPASWD)
    (event,) = _transfer(smsc, esme, refusal)
    assert isinstance(event, BindFailed)
    assert event.response == refusal
    assert (esme.state, smsc.state) == (SessionState.OPEN, SessionState.OPEN)


def test_a_generic_nack_to_a_bind_is_a_failed_bind() -> None:
    """A generic_nack answering the bind is reported as BindFailed."""
    esme = _esme()
    esme.send(BindTransceiver(), 0.0)
    nack = GenericNack(sequence_number=1, command_status=CommandStatus.ESME_RINVCMDID)
    (event,) = esme.receive_data(encode(nack), 0.0)
    assert isinstance(event, BindFailed)


def test_a_second_bind_cannot_be_sent_while_one_is_outstanding() -> None:
    """Sending a bind while another awaits its response raises RALYBND."""
    esme = _esme()
    esme.send(BindTransceiver(), 0.0)
    with pytest.raises(LocalProtocolError) as raised:
        esme.send(BindTransceiver(), 0.0)
    assert raised.value.status == CommandStatus.ESME_RALYBND


def test_a_bind_while_bound_is_answered_already_bound() -> None:
    """The SMSC answers a second bind with ESME_RALYBND and reports a protocol error."""
    _, smsc = _bound()
    events = smsc.receive_data(encode(BindTransmitter(sequence_number=5)), 1.0)
    assert events == [
        ProtocolError(CommandStatus.ESME_RALYBND, "bind_transmitter not allowed in BOUND_TRX")
    ]
    assert _answers(smsc) == [
        BindTransmitterResp(sequence_number=5, command_status=CommandStatus.ESME_RALYBND)
    ]


def test_the_smsc_must_answer_a_bind_with_its_own_response_type() -> None:
    """Answering a bind_receiver with a bind_transceiver_resp raises LocalProtocolError."""
    smsc = _smsc()
    smsc.receive_data(encode(BindReceiver(sequence_number=1)), 0.0)
    with pytest.raises(LocalProtocolError):
        smsc.send(BindTransceiverResp(sequence_number=1), 0.0)
    smsc.send(BindReceiverResp(sequence_number=1), 0.0)
    assert smsc.state is SessionState.BOUND_RX


def test_an_outbind_reaches_the_esme_and_expects_no_response() -> None:
    """An SMSC's outbind is handed to the ESME and is not tracked as outstanding."""
    esme, smsc = _esme(), _smsc()
    events = _transfer(smsc, esme, Outbind(system_id="smsc", password="pw"))
    assert [type(event) for event in events] == [PduReceived]
    assert smsc.outstanding_requests == ()


# --- state table --------------------------------------------------------------------------


def test_a_submit_before_bind_cannot_be_sent() -> None:
    """The ESME refuses to send submit_sm in OPEN, with RINVBNDSTS, and numbers nothing."""
    esme = _esme()
    with pytest.raises(LocalProtocolError) as raised:
        esme.send(SubmitSm(destination_addr="886912345678"), 0.0)
    assert raised.value.status == CommandStatus.ESME_RINVBNDSTS
    assert esme.outstanding_requests == ()


def test_a_submit_before_bind_is_answered_invalid_bind_status() -> None:
    """The SMSC answers a submit_sm received in OPEN with ESME_RINVBNDSTS."""
    smsc = _smsc()
    events = smsc.receive_data(encode(SubmitSm(sequence_number=3)), 0.0)
    assert [type(event) for event in events] == [ProtocolError]
    assert _answers(smsc) == [
        SubmitSmResp(sequence_number=3, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_a_receiver_cannot_submit() -> None:
    """An ESME bound as receiver may not send submit_sm."""
    esme, _ = _bound(BindReceiver())
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(), 1.0)


def test_an_smsc_does_not_accept_deliver_sm_from_the_esme() -> None:
    """A deliver_sm sent to the SMSC is answered with ESME_RINVBNDSTS."""
    _, smsc = _bound()
    smsc.receive_data(encode(DeliverSm(sequence_number=4)), 1.0)
    assert _answers(smsc) == [
        DeliverSmResp(sequence_number=4, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_requests_allowed_in_the_state_reach_the_application() -> None:
    """A submit_sm to a bound SMSC and a deliver_sm to a bound ESME are reported as received."""
    esme, smsc = _bound()
    (submitted,) = _transfer(esme, smsc, SubmitSm(destination_addr="886912345678"), 1.0)
    (delivered,) = _transfer(smsc, esme, DeliverSm(source_addr="886912345678"), 1.0)
    assert isinstance(submitted, PduReceived)
    assert isinstance(submitted.pdu, SubmitSm)
    assert isinstance(delivered, PduReceived)
    assert isinstance(delivered.pdu, DeliverSm)


# --- sequence numbers and window ----------------------------------------------------------


def test_requests_are_numbered_in_order() -> None:
    """Each request gets the next sequence number, whatever number the caller put in it."""
    esme, _ = _bound()
    first = decode(esme.send(SubmitSm(sequence_number=999), 1.0))
    second = decode(esme.send(EnquireLink(), 1.0))
    assert (first.sequence_number, second.sequence_number) == (2, 3)


def test_sequence_numbers_wrap_to_one_after_the_maximum() -> None:
    """After 0x7FFFFFFF the next sequence number is 1."""
    esme, _ = _bound()
    esme._next_sequence = MAX_SEQUENCE_NUMBER
    assert decode(esme.send(EnquireLink(), 1.0)).sequence_number == MAX_SEQUENCE_NUMBER
    assert decode(esme.send(EnquireLink(), 1.0)).sequence_number == 1


def test_sequence_numbers_skip_those_still_outstanding() -> None:
    """A wrapped sequence number still awaiting a response is not reused."""
    esme, _ = _bound()
    held = decode(esme.send(SubmitSm(), 1.0)).sequence_number
    esme._next_sequence = held
    assert decode(esme.send(SubmitSm(), 1.0)).sequence_number == held + 1


def test_the_window_limits_unacknowledged_messages() -> None:
    """With a window of 2 a third submit_sm is refused until a response frees a slot."""
    esme, smsc = _bound(window=2)
    first = decode(esme.send(SubmitSm(), 1.0))
    esme.send(SubmitSm(), 1.0)
    assert esme.window_available == 0
    with pytest.raises(LocalProtocolError) as raised:
        esme.send(SubmitSm(), 1.0)
    assert raised.value.status == CommandStatus.ESME_RTHROTTLED
    esme.send(EnquireLink(), 1.0)
    events = _transfer(
        smsc, esme, SubmitSmResp(sequence_number=first.sequence_number, message_id="m1")
    )
    assert [type(event) for event in events] == [ResponseReceived]
    assert esme.window_available == 1
    esme.send(SubmitSm(), 1.0)


def test_the_window_counts_deliver_sm_and_data_sm_but_not_link_requests() -> None:
    """An SMSC's deliver_sm and data_sm occupy its window; enquire_link does not."""
    _, smsc = _bound(window=2)
    smsc.send(DeliverSm(), 1.0)
    smsc.send(EnquireLink(), 1.0)
    smsc.send(DataSm(), 1.0)
    assert smsc.window_available == 0
    assert len(smsc.outstanding_requests) == 3


def test_a_generic_nack_answers_a_submit_and_frees_its_slot() -> None:
    """A generic_nack with the submit's sequence number is its response."""
    esme, _ = _bound(window=1)
    request = decode(esme.send(SubmitSm(), 1.0))
    nack = GenericNack(sequence_number=request.sequence_number, command_status=0x58)
    assert esme.receive_data(encode(nack), 1.0) == [ResponseReceived(request, nack)]
    assert esme.window_available == 1


def test_a_response_nobody_asked_for_is_reported_unmatched() -> None:
    """A response with an unknown sequence number, or the wrong type, is UnmatchedResponse."""
    esme, _ = _bound()
    request = decode(esme.send(SubmitSm(), 1.0))
    stray = SubmitSmResp(sequence_number=4242)
    wrong_type = EnquireLinkResp(sequence_number=request.sequence_number)
    events = esme.receive_data(encode(stray) + encode(wrong_type), 1.0)
    assert events == [UnmatchedResponse(stray), UnmatchedResponse(wrong_type)]
    assert esme.outstanding_requests == (request,)


# --- automatic answers and errors ---------------------------------------------------------


def test_an_enquire_link_is_answered_by_the_session() -> None:
    """A peer's enquire_link gets enquire_link_resp with its sequence number and no event."""
    esme, smsc = _bound()
    assert _transfer(smsc, esme, EnquireLink(), 1.0) == []
    (answer,) = _answers(esme)
    assert answer == EnquireLinkResp(sequence_number=1)
    assert smsc.receive_data(encode(answer), 1.0) == [
        ResponseReceived(EnquireLink(sequence_number=1), answer)
    ]


def test_an_unknown_command_is_nacked_and_the_stream_goes_on() -> None:
    """An unknown command_id gets generic_nack RINVCMDID and the next PDU is still handled."""
    esme, _ = _bound()
    unknown = struct.pack(">IIII", 16, 0x00000099, 0, 12)
    events = esme.receive_data(unknown + encode(DeliverSm(sequence_number=13)), 1.0)
    assert [type(event) for event in events] == [ProtocolError, PduReceived]
    assert _answers(esme) == [
        GenericNack(sequence_number=12, command_status=CommandStatus.ESME_RINVCMDID)
    ]
    assert esme.state is SessionState.BOUND_TRX


@pytest.mark.parametrize("length", [8, 70000])
def test_a_bad_command_length_is_nacked_and_closes(length: int) -> None:
    """A command_length out of bounds gets generic_nack RINVCMDLEN and closes the session."""
    esme, _ = _bound()
    events = esme.receive_data(struct.pack(">IIII", length, CommandId.DELIVER_SM, 0, 5), 1.0)
    assert [type(event) for event in events] == [ProtocolError, ConnectionShouldClose]
    (nack,) = _answers(esme)
    assert isinstance(nack, GenericNack)
    assert nack.command_status == CommandStatus.ESME_RINVCMDLEN
    assert esme.state is SessionState.CLOSED
    assert esme.receive_data(encode(DeliverSm()), 2.0) == []
    with pytest.raises(LocalProtocolError):
        esme.send(EnquireLink(), 2.0)


def test_a_malformed_request_is_answered_with_the_decoder_status() -> None:
    """A submit_sm whose TLV is truncated gets submit_sm_resp RINVOPTPARSTREAM."""
    _, smsc = _bound()
    wire = bytearray(encode(SubmitSm(sequence_number=6)) + b"\x14\x00\x00")
    wire[:4] = struct.pack(">I", len(wire))
    (event,) = smsc.receive_data(bytes(wire), 1.0)
    assert isinstance(event, ProtocolError)
    assert _answers(smsc) == [
        SubmitSmResp(sequence_number=6, command_status=CommandStatus.ESME_RINVOPTPARSTREAM)
    ]


def test_a_malformed_response_is_reported_but_never_answered() -> None:
    """A submit_sm_resp with an unterminated message_id is a ProtocolError and nothing is sent."""
    esme, _ = _bound()
    esme.send(SubmitSm(), 1.0)
    wire = struct.pack(">IIII", 19, CommandId.SUBMIT_SM_RESP, 0, 2) + b"abc"
    (event,) = esme.receive_data(wire, 1.0)
    assert event == ProtocolError(CommandStatus.ESME_RINVMSGLEN, "message_id not terminated")
    assert esme.data_to_send() == b""


# --- unbind -------------------------------------------------------------------------------


def test_an_unbind_handshake_unbinds_both_sides() -> None:
    """unbind is answered by the peer's session and both sides report Unbound then close."""
    esme, smsc = _bound()
    smsc_events = _transfer(esme, smsc, Unbind(), 2.0)
    assert smsc_events == [Unbound(), ConnectionShouldClose("unbound")]
    assert smsc.state is SessionState.UNBOUND
    (answer,) = _answers(smsc)
    assert answer == UnbindResp(sequence_number=2)
    assert esme.receive_data(encode(answer), 2.0) == [Unbound(), ConnectionShouldClose("unbound")]
    assert esme.state is SessionState.UNBOUND


def test_nothing_new_is_sent_while_unbinding() -> None:
    """After sending unbind, a submit_sm is refused even though the state is still bound."""
    esme, _ = _bound()
    esme.send(Unbind(), 2.0)
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(), 2.0)


def test_requests_after_unbind_are_refused() -> None:
    """An unbound SMSC answers a late submit_sm with ESME_RINVBNDSTS."""
    esme, smsc = _bound()
    _transfer(esme, smsc, Unbind(), 2.0)
    smsc.data_to_send()
    smsc.receive_data(encode(SubmitSm(sequence_number=9)), 2.0)
    assert _answers(smsc) == [
        SubmitSmResp(sequence_number=9, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


# --- timers -------------------------------------------------------------------------------


def test_an_idle_link_asks_for_one_enquire_link() -> None:
    """EnquireLinkDue comes once after enquire_link_s of silence, not on every poll."""
    esme, _ = _bound()
    assert esme.next_deadline() == ENQUIRE_S
    assert esme.poll(ENQUIRE_S - 0.5) == []
    assert esme.poll(ENQUIRE_S) == [EnquireLinkDue()]
    assert esme.poll(ENQUIRE_S + 1.0) == []
    assert esme.next_deadline() == 2 * ENQUIRE_S


def test_received_data_postpones_the_enquire_link() -> None:
    """Any bytes from the peer restart the idle timer."""
    esme, smsc = _bound()
    _transfer(smsc, esme, DeliverSm(), 20.0)
    assert esme.poll(ENQUIRE_S) == []
    assert esme.next_deadline() == 20.0 + ENQUIRE_S


def test_no_enquire_link_is_due_while_one_is_outstanding() -> None:
    """While an enquire_link awaits its answer the response timer governs, then it is overdue."""
    esme, _ = _bound()
    request = decode(esme.send(EnquireLink(), 5.0))
    assert esme.next_deadline() == 5.0 + TIMEOUT_S
    assert esme.poll(5.0 + TIMEOUT_S) == [ResponseOverdue(request)]
    assert esme.poll(ENQUIRE_S + 5.0) == [EnquireLinkDue()]


def test_an_unanswered_submit_becomes_overdue_and_leaves_the_window() -> None:
    """An unanswered submit_sm is overdue after response_timeout_s; a late answer is unmatched."""
    esme, _ = _bound(window=1)
    request = decode(esme.send(SubmitSm(), 1.0))
    assert esme.poll(1.0 + TIMEOUT_S - 0.1) == []
    assert esme.poll(1.0 + TIMEOUT_S) == [ResponseOverdue(request)]
    assert esme.window_available == 1
    late = SubmitSmResp(sequence_number=request.sequence_number)
    assert esme.receive_data(encode(late), 30.0) == [UnmatchedResponse(late)]


def test_overdue_requests_come_out_oldest_first() -> None:
    """Several overdue requests are reported in the order they were sent."""
    esme, _ = _bound()
    first = decode(esme.send(SubmitSm(), 1.0))
    second = decode(esme.send(SubmitSm(), 2.0))
    assert esme.next_deadline() == 1.0 + TIMEOUT_S
    assert esme.poll(20.0) == [ResponseOverdue(first), ResponseOverdue(second)]


def test_an_unanswered_unbind_closes_the_session() -> None:
    """When the peer never answers unbind, the session closes."""
    esme, _ = _bound()
    request = decode(esme.send(Unbind(), 1.0))
    events = esme.poll(1.0 + TIMEOUT_S)
    assert events == [ResponseOverdue(request), ConnectionShouldClose("unbind not answered")]
    assert esme.state is SessionState.CLOSED
    assert esme.next_deadline() is None


def test_no_timer_runs_before_bind() -> None:
    """An open session with nothing outstanding has no deadline."""
    assert _esme().next_deadline() is None
    assert _esme().poll(1000.0) == []


# --- construction and closing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "window", "enquire", "timeout"),
    [("client", 1, 1.0, 1.0), ("esme", 0, 1.0, 1.0), ("esme", 1, 0.0, 1.0), ("esme", 1, 1.0, -1)],
)
def test_bad_settings_are_refused(role: str, window: int, enquire: float, timeout: float) -> None:
    """An unknown role or a non-positive window or timer raises ValueError."""
    with pytest.raises(ValueError, match="must be"):
        Session(role, window=window, enquire_link_s=enquire, response_timeout_s=timeout)  # type: ignore[arg-type]


def test_close_keeps_the_outstanding_requests_for_requeueing() -> None:
    """After close, outstanding requests are still listed and nothing more happens."""
    esme, _ = _bound()
    request = decode(esme.send(SubmitSm(), 1.0))
    esme.close()
    assert esme.outstanding_requests == (request,)
    assert esme.poll(100.0) == []
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSmResp(), 1.0)
