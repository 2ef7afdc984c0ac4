"""The SMPP 3.4 session state machine, for either side of the link (sans-IO).

Rules
=====

1. Everything that decides what may be sent or received in which state lives in this file, and as
   much of it as possible in the tables just below. The same tables serve both roles: a Session
   checks what it sends against its own role's row and what it receives against its peer's.

2. States (SMPP 3.4 section 2.3): OPEN (connected, not bound), BOUND_TX, BOUND_RX, BOUND_TRX,
   UNBOUND (the unbind handshake is done; only the close remains) and CLOSED (nothing more
   happens: after a fatal framing error, an unanswered unbind, or ``close()``).

3. Transitions:

       OPEN      --bind_*_resp(ESME_ROK) exchanged-->  BOUND_TX / BOUND_RX / BOUND_TRX
       BOUND_*   --unbind_resp exchanged------------>  UNBOUND
       any       --bad command_length, unbind overdue, close()-->  CLOSED

   The ESME moves when it receives the positive bind response, the SMSC when it sends it.

4. A request is allowed only if its command_id is in ``MAY_SEND[role][state]``. Sending one that
   is not raises LocalProtocolError and changes nothing. Receiving one that is not is answered
   with its response carrying ESME_RINVBNDSTS (ESME_RALYBND for a bind while bound) and reported
   as ProtocolError. Responses may be sent in any state but CLOSED; a received response must
   match an outstanding request by sequence number and type, else it is reported as
   UnmatchedResponse. generic_nack answers any request.

5. The session answers by itself, into ``data_to_send()``: enquire_link, unbind, unknown command
   ids (generic_nack ESME_RINVCMDID), malformed bodies (their response with the decoder's status)
   and bad command lengths (generic_nack ESME_RINVCMDLEN, then CLOSED). Everything else the
   peer sends is handed to the application as PduReceived, which must answer it with ``send``.

6. Windowing: at most ``window`` submit_sm, data_sm and deliver_sm we sent may await their
   response. Other requests are tracked for matching and timeouts but not counted.

7. Time is only what the caller passes in (``now``, seconds as a float, never decreasing).
   ``poll(now)`` reports ResponseOverdue for requests older than ``response_timeout_s`` and
   EnquireLinkDue when a bound link received nothing for ``enquire_link_s`` and no enquire_link
   is outstanding; ``next_deadline()`` says when to poll next.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal, NamedTuple

from smsgw.smpp.codec import InvalidPdu, PduDecoder, encode, renumbered
from smsgw.smpp.constants import (
    MAX_SEQUENCE_NUMBER,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
    is_response_id,
)
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
from smsgw.smpp.pdu import PDU_CLASSES, RESPONSE_CLASSES, GenericNack, Pdu

Role = Literal["esme", "smsc"]


class SessionState(Enum):
    OPEN = "OPEN"
    BOUND_TX = "BOUND_TX"
    BOUND_RX = "BOUND_RX"
    BOUND_TRX = "BOUND_TRX"
    UNBOUND = "UNBOUND"
    CLOSED = "CLOSED"


OPEN: Final = SessionState.OPEN
BOUND_TX: Final = SessionState.BOUND_TX
BOUND_RX: Final = SessionState.BOUND_RX
BOUND_TRX: Final = SessionState.BOUND_TRX
UNBOUND: Final = SessionState.UNBOUND
CLOSED: Final = SessionState.CLOSED

C = CommandId
_NOTHING: Final[frozenset[CommandId]] = frozenset()
_BINDS: Final = frozenset({C.BIND_TRANSMITTER, C.BIND_RECEIVER, C.BIND_TRANSCEIVER})
_LINK: Final = frozenset({C.ENQUIRE_LINK, C.UNBIND})

# Requests each role may send, by state (SMPP 3.4 table 2-1). enquire_link is also accepted in
# OPEN, as SMPP 5.0 allows and many SMSCs do, so a slow bind never looks like a dead link.
MAY_SEND: Final[dict[Role, dict[SessionState, frozenset[CommandId]]]] = {
    "esme": {
        OPEN: _BINDS | {C.ENQUIRE_LINK},
        BOUND_TX: _LINK | {C.SUBMIT_SM, C.DATA_SM, C.QUERY_SM},
        BOUND_RX: _LINK,
        BOUND_TRX: _LINK | {C.SUBMIT_SM, C.DATA_SM, C.QUERY_SM},
        UNBOUND: _NOTHING,
        CLOSED: _NOTHING,
    },
    "smsc": {
        OPEN: frozenset({C.OUTBIND, C.ENQUIRE_LINK}),
        BOUND_TX: _LINK,
        BOUND_RX: _LINK | {C.DELIVER_SM, C.DATA_SM},
        BOUND_TRX: _LINK | {C.DELIVER_SM, C.DATA_SM},
        UNBOUND: _NOTHING,
        CLOSED: _NOTHING,
    },
}

# The state a positive response to each bind leads to.
BOUND_BY: Final[dict[int, SessionState]] = {
    C.BIND_TRANSMITTER_RESP: BOUND_TX,
    C.BIND_RECEIVER_RESP: BOUND_RX,
    C.BIND_TRANSCEIVER_RESP: BOUND_TRX,
}

# Members bound once: reading an Enum member off its class costs a lookup on every use.
_ENQUIRE_LINK: Final = C.ENQUIRE_LINK
_UNBIND: Final = C.UNBIND
_OUTBIND: Final = C.OUTBIND
_GENERIC_NACK: Final = C.GENERIC_NACK

# Requests that occupy a slot of the window until answered.
WINDOWED: Final = frozenset({C.SUBMIT_SM, C.DATA_SM, C.DELIVER_SM})

_BOUND_STATES: Final = frozenset({BOUND_TX, BOUND_RX, BOUND_TRX})
_PEER: Final[dict[Role, Role]] = {"esme": "smsc", "smsc": "esme"}


class _Outstanding(NamedTuple):
    request: Pdu
    deadline: float


class Session:
    """One side of one SMPP connection: bytes and PDUs in, bytes and events out."""

    def __init__(
        self,
        role: Role,
        *,
        window: int,
        enquire_link_s: float,
        response_timeout_s: float,
    ) -> None:
        if role not in _PEER:
            raise ValueError(f"role must be 'esme' or 'smsc', not {role!r}")
        if window < 1 or enquire_link_s <= 0 or response_timeout_s <= 0:
            raise ValueError("window, enquire_link_s and response_timeout_s must be positive")
        self.role: Role = role
        self.window = window
        self.enquire_link_s = enquire_link_s
        self.response_timeout_s = response_timeout_s
        self._state = OPEN
        self._decoder = PduDecoder()
        self._to_send = bytearray()
        # Insertion order is deadline order, because ``now`` never decreases.
        self._outstanding: dict[int, _Outstanding] = {}
        self._in_window = 0
        self._enquire_links_out = 0
        self._next_sequence = 1
        self._bind_out = False
        self._unbind_out = False
        self._bind_in: CommandId | None = None
        self._enquire_deadline: float | None = None

    # --- introspection ----------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def window_available(self) -> int:
        """How many more submit_sm / data_sm / deliver_sm may be sent before a response."""
        return self.window - self._in_window

    @property
    def outstanding_requests(self) -> tuple[Pdu, ...]:
        """Our requests still awaiting a response, oldest first (to requeue after a close)."""
        return tuple(item.request for item in self._outstanding.values())

    def data_to_send(self) -> bytes:
        """The bytes the session queued by itself (automatic answers); empties the queue."""
        data = bytes(self._to_send)
        self._to_send.clear()
        return data

    def _is_closed(self) -> bool:
        return self._state is CLOSED

    def close(self) -> None:
        """The connection is gone or being closed: nothing more is sent or received."""
        self._state = CLOSED
        self._enquire_deadline = None

    # --- sending ----------------------------------------------------------------------------

    def send(self, pdu: Pdu, now: float) -> bytes:
        """The bytes of ``pdu``; a request gets the next sequence number and is tracked.

        Raises LocalProtocolError, leaving the session unchanged, when the state forbids the
        PDU, the window is full, or a field does not fit.
        """
        if self._state is CLOSED:
            raise LocalProtocolError("the session is closed")
        if pdu.command_id & RESPONSE_BIT:  # is_response without two property calls
            return self._send_response(pdu, now)
        return self._send_request(pdu, now)

    def _send_request(self, pdu: Pdu, now: float) -> bytes:
        self._check_may_send(pdu.command_id)
        request = renumbered(pdu, self._free_sequence_number())
        data = encode(request)
        self._next_sequence = request.sequence_number % MAX_SEQUENCE_NUMBER + 1
        if pdu.command_id is not _OUTBIND:
            self._track(request, now)
        return data

    def _check_may_send(self, command_id: CommandId) -> None:
        if command_id not in MAY_SEND[self.role][self._state]:
            name = command_id.name.lower()
            raise LocalProtocolError(f"{name} not allowed in {self._state.value}")
        if self._unbind_out:
            name = command_id.name.lower()
            raise LocalProtocolError(f"{name} not allowed while unbinding")
        if self._bind_out and command_id in _BINDS:
            raise LocalProtocolError("a bind is already outstanding", CommandStatus.ESME_RALYBND)
        if command_id in WINDOWED and self._in_window >= self.window:
            raise LocalProtocolError("the window is full", CommandStatus.ESME_RTHROTTLED)

    def _free_sequence_number(self) -> int:
        candidate = self._next_sequence
        while candidate in self._outstanding:
            candidate = candidate % MAX_SEQUENCE_NUMBER + 1
        return candidate

    def _track(self, request: Pdu, now: float) -> None:
        command_id = request.command_id
        self._outstanding[request.sequence_number] = _Outstanding(
            request, now + self.response_timeout_s
        )
        self._in_window += command_id in WINDOWED
        self._enquire_links_out += command_id is _ENQUIRE_LINK
        self._bind_out = self._bind_out or command_id in _BINDS
        self._unbind_out = self._unbind_out or command_id is _UNBIND

    def _send_response(self, pdu: Pdu, now: float) -> bytes:
        data = encode(pdu)
        bind_in = self._bind_in
        if bind_in is not None and pdu.command_id in BOUND_BY and self._state is OPEN:
            self._answer_bind(bind_in, pdu, now)
        return data

    def _answer_bind(self, bind_in: CommandId, response: Pdu, now: float) -> None:
        if bind_in | RESPONSE_BIT != response.command_id:
            raise LocalProtocolError(f"{response.command_id.name.lower()} answers another bind")
        self._bind_in = None
        if response.command_status == CommandStatus.ESME_ROK:
            self._enter_bound(BOUND_BY[response.command_id], now)

    def _enter_bound(self, bound: SessionState, now: float) -> None:
        self._state = bound
        self._enquire_deadline = now + self.enquire_link_s

    # --- receiving --------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the peer; returns what happened. Never raises on bad input."""
        if self._state is CLOSED:
            return []
        if data and self._state in _BOUND_STATES:
            self._enquire_deadline = now + self.enquire_link_s
        self._decoder.feed(data)
        events: list[Event] = []
        for item in self._decoder:
            if isinstance(item, InvalidPdu):
                self._on_invalid(item, events)
            elif item.command_id & RESPONSE_BIT:
                self._on_response(item, now, events)
            else:
                self._on_request(item, events)
            if self._is_closed():
                break
        return events

    def _on_request(self, pdu: Pdu, events: list[Event]) -> None:
        command_id = pdu.command_id
        if not self._peer_may_send(command_id):
            status = self._refusal_status(command_id)
            self._answer(command_id, pdu.sequence_number, status)
            reason = f"{command_id.name.lower()} not allowed in {self._state.value}"
            events.append(ProtocolError(status, reason))
        elif command_id is _ENQUIRE_LINK:
            self._answer(command_id, pdu.sequence_number, CommandStatus.ESME_ROK)
        elif command_id is _UNBIND:
            self._answer(command_id, pdu.sequence_number, CommandStatus.ESME_ROK)
            self._finish_unbind(events)
        else:
            if command_id in _BINDS:
                self._bind_in = command_id
            events.append(PduReceived(pdu))

    def _peer_may_send(self, command_id: CommandId) -> bool:
        allowed = command_id in MAY_SEND[_PEER[self.role]][self._state]
        return allowed and not (command_id in _BINDS and self._bind_in is not None)

    def _refusal_status(self, command_id: CommandId) -> CommandStatus:
        if command_id in _BINDS and (self._state in _BOUND_STATES or self._bind_in is not None):
            return CommandStatus.ESME_RALYBND
        return CommandStatus.ESME_RINVBNDSTS

    def _on_response(self, response: Pdu, now: float, events: list[Event]) -> None:
        outstanding = self._outstanding.get(response.sequence_number)
        if outstanding is None or not _answers(outstanding.request, response):
            events.append(UnmatchedResponse(response))
            return
        request = self._forget(response.sequence_number)
        if request.command_id in _BINDS:
            self._on_bind_response(request, response, now, events)
        elif request.command_id is _UNBIND:
            self._finish_unbind(events)
        else:
            events.append(ResponseReceived(request, response))

    def _on_bind_response(
        self, request: Pdu, response: Pdu, now: float, events: list[Event]
    ) -> None:
        if response.command_status == CommandStatus.ESME_ROK and self._state is OPEN:
            self._enter_bound(BOUND_BY[response.command_id], now)
            events.append(BindSucceeded(request, response))
        else:
            events.append(BindFailed(request, response))

    def _finish_unbind(self, events: list[Event]) -> None:
        self._state = UNBOUND
        self._enquire_deadline = None
        events.append(Unbound())
        events.append(ConnectionShouldClose("unbound"))

    def _on_invalid(self, invalid: InvalidPdu, events: list[Event]) -> None:
        events.append(ProtocolError(invalid.status, invalid.reason))
        known_response = is_response_id(invalid.command_id) and invalid.command_id in PDU_CLASSES
        if invalid.fatal:
            self._to_send += encode(
                GenericNack(sequence_number=invalid.sequence_number, command_status=invalid.status)
            )
            self.close()
            events.append(ConnectionShouldClose(invalid.reason))
        elif not known_response:
            self._answer(invalid.command_id, invalid.sequence_number, invalid.status)

    def _answer(self, command_id: int, sequence_number: int, status: int) -> None:
        response_class = RESPONSE_CLASSES.get(command_id, GenericNack)
        self._to_send += encode(
            response_class(sequence_number=sequence_number, command_status=status)
        )

    def _forget(self, sequence_number: int) -> Pdu:
        request = self._outstanding.pop(sequence_number).request
        command_id = request.command_id
        self._in_window -= command_id in WINDOWED
        self._enquire_links_out -= command_id is _ENQUIRE_LINK
        if command_id in _BINDS:
            self._bind_out = False
        return request

    # --- timers -----------------------------------------------------------------------------

    def poll(self, now: float) -> list[Event]:
        """Timer events due at ``now``: overdue requests first, then EnquireLinkDue."""
        if self._state is CLOSED:
            return []
        events: list[Event] = []
        while self._outstanding:
            sequence_number, oldest = next(iter(self._outstanding.items()))
            if oldest.deadline > now:
                break
            self._forget(sequence_number)
            events.append(ResponseOverdue(oldest.request))
            if oldest.request.command_id is _UNBIND:
                self.close()
                events.append(ConnectionShouldClose("unbind not answered"))
                return events
        if self._enquire_link_due(now):
            self._enquire_deadline = now + self.enquire_link_s
            events.append(EnquireLinkDue())
        return events

    def _enquire_link_due(self, now: float) -> bool:
        deadline = self._enquire_deadline
        return deadline is not None and deadline <= now and not self._waiting_on_link()

    def _waiting_on_link(self) -> bool:
        return self._enquire_links_out > 0 or self._unbind_out

    def next_deadline(self) -> float | None:
        """When ``poll`` next has something to report, or None when no timer runs."""
        if self._state is CLOSED:
            return None
        deadlines: list[float] = []
        if self._outstanding:
            deadlines.append(next(iter(self._outstanding.values())).deadline)
        if self._enquire_deadline is not None and not self._waiting_on_link():
            deadlines.append(self._enquire_deadline)
        return min(deadlines, default=None)


def _answers(request: Pdu, response: Pdu) -> bool:
    expected = request.command_id | RESPONSE_BIT
    return response.command_id in (expected, _GENERIC_NACK)
