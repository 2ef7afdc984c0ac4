"""SMPP 3.4 without I/O: PDUs, their codec, and the session state machine (like h11).

The core never touches a socket, a task or a clock: the adapter feeds it bytes and the current
time, and writes what it returns. Modules:

- ``constants``: CommandId, CommandStatus (all 3.4 codes; ``is_temporary`` / ``is_permanent``
  classify refusals for retrying), TlvTag, MessageState, limits.
- ``pdu``: one frozen dataclass per PDU (SubmitSm, DeliverSm, BindTransceiver, ...). Header
  fields ``sequence_number`` and ``command_status``; optional parameters as ``tlvs`` (raw
  ``Tlv(tag, value)``, built with ``Tlv.sar_msg_ref_num(7)`` etc.) read through typed
  properties (``pdu.receipted_message_id``, ``pdu.message_state``, ...).
- ``codec``: ``encode(pdu) -> bytes``, ``decode(bytes) -> Pdu`` and ``PduDecoder`` (``feed``,
  then iterate PDUs and ``InvalidPdu`` items) for a stream.
- ``session``: ``Session(role, window=, enquire_link_s=, response_timeout_s=)``.
- ``events``: what ``Session`` reports.
- ``errors``: LocalProtocolError (we misused the session) and PduDecodeError.

Driving a session (the ESME side; the SMSC side is the same class with role "smsc")::

    session = Session("esme", window=10, enquire_link_s=30.0, response_timeout_s=10.0)
    sock.send(session.send(BindTransceiver(system_id="smsgw", password=secret), now()))
    while True:
        events = session.receive_data(sock.recv(65536), now())  # or poll(now()) on a timer
        sock.send(session.data_to_send())      # automatic answers: enquire_link_resp, nacks
        for event in events:
            match event:
                case BindSucceeded(): ...      # session.state is BOUND_TRX
                case PduReceived(pdu=DeliverSm() as pdu):
                    ...                        # commit the receipt, then:
                    sock.send(session.send(response_to(pdu), now()))
                case ResponseReceived(request, response): ...   # a slot of the window freed
                case EnquireLinkDue(): sock.send(session.send(EnquireLink(), now()))
                case ResponseOverdue(request): ...              # retry or give up
                case ConnectionShouldClose(): sock.close()

``send`` numbers requests itself (1..0x7FFFFFFF, wrapping) and raises LocalProtocolError when
the state or the window forbids a request (check ``window_available`` first). Responses are
built by the application with the request's sequence number (``response_to`` helps). Timers run
only when the adapter calls ``poll(now)``; ``next_deadline()`` says when.
"""

from smsgw.smpp.codec import InvalidPdu, PduDecoder, decode, encode
from smsgw.smpp.constants import (
    CommandId,
    CommandStatus,
    MessageState,
    TlvTag,
    is_permanent,
    is_temporary,
)
from smsgw.smpp.errors import LocalProtocolError, PduDecodeError, SmppError
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
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    NetworkErrorCode,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    response_to,
)
from smsgw.smpp.session import Session, SessionState

__all__ = [
    "BindFailed",
    "BindReceiver",
    "BindReceiverResp",
    "BindSucceeded",
    "BindTransceiver",
    "BindTransceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "CommandId",
    "CommandStatus",
    "ConnectionShouldClose",
    "DataSm",
    "DataSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "EnquireLink",
    "EnquireLinkDue",
    "EnquireLinkResp",
    "Event",
    "GenericNack",
    "InvalidPdu",
    "LocalProtocolError",
    "MessageState",
    "NetworkErrorCode",
    "Outbind",
    "Pdu",
    "PduDecodeError",
    "PduDecoder",
    "PduReceived",
    "ProtocolError",
    "QuerySm",
    "QuerySmResp",
    "ResponseOverdue",
    "ResponseReceived",
    "Session",
    "SessionState",
    "SmppError",
    "SubmitSm",
    "SubmitSmResp",
    "Tlv",
    "TlvTag",
    "Unbind",
    "UnbindResp",
    "Unbound",
    "UnmatchedResponse",
    "decode",
    "encode",
    "is_permanent",
    "is_temporary",
    "response_to",
]
