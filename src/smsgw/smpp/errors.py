"""Errors of the SMPP core; each carries the SMPP command_status that describes it.

    SmsgwError
    └── SmppError                   status: the command_status naming the fault
        ├── LocalProtocolError      we asked the core to do something SMPP forbids (raised by
        │                           Session.send and encode): wrong state, window full, a field
        │                           too long. Nothing was sent; the session is unchanged.
        └── PduDecodeError          bytes from the peer do not form a valid PDU body. Never
                                    escapes Session.receive_data: it becomes a ProtocolError
                                    event and an error response.

Messages name fields, never their values, so a password cannot leak into a log.
"""

from __future__ import annotations

from smsgw.errors import SmsgwError
from smsgw.smpp.constants import CommandStatus


class SmppError(SmsgwError):
    """Base of the SMPP errors; ``status`` is the command_status describing the fault."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LocalProtocolError(SmppError):
    """The caller tried to send something SMPP or the session state forbids."""

    def __init__(self, reason: str, status: int = CommandStatus.ESME_RINVBNDSTS) -> None:
        super().__init__(status, reason)


class PduDecodeError(SmppError):
    """A PDU body from the peer is malformed; ``status`` is what to answer."""
