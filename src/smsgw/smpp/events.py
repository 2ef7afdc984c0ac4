"""What a Session reports: one small frozen dataclass per kind of event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsgw.smpp.pdu import Pdu


@dataclass(frozen=True, slots=True)
class PduReceived:
    """The peer sent a request the application must handle and answer (submit_sm, bind, ...).

    enquire_link and unbind are answered by the session itself and not reported this way.
    """

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response (or generic_nack) to one of our requests; the request left the window."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class UnmatchedResponse:
    """A response whose sequence number and type match none of our outstanding requests."""

    response: Pdu


@dataclass(frozen=True, slots=True)
class BindSucceeded:
    """Our bind was accepted; the session is now bound."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class BindFailed:
    """Our bind was refused (its response or a generic_nack); the session stays OPEN."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class Unbound:
    """The unbind handshake finished, whichever side started it."""


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The peer broke the protocol; the session answered with ``status`` where it could."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionShouldClose:
    """Nothing more can happen on this connection: flush ``data_to_send()`` and close it."""

    reason: str


@dataclass(frozen=True, slots=True)
class EnquireLinkDue:
    """The link was idle for ``enquire_link_s``: send an EnquireLink now."""


@dataclass(frozen=True, slots=True)
class ResponseOverdue:
    """No response to ``request`` within ``response_timeout_s``; it left the window.

    An overdue enquire_link or bind means the peer is gone: close the connection.
    """

    request: Pdu


Event = (
    PduReceived
    | ResponseReceived
    | UnmatchedResponse
    | BindSucceeded
    | BindFailed
    | Unbound
    | ProtocolError
    | ConnectionShouldClose
    | EnquireLinkDue
    | ResponseOverdue
)
