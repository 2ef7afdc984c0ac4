"""Value types shared by every layer: message states, accounts, send plans, stored rows.

Pure data: no I/O, no clock. Times are timezone-aware UTC datetimes passed in by callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class State(StrEnum):
    """A recipient's state; its value is the ``statusstr`` of queries and callbacks."""

    WAITING = "WAITING"
    QUEUED = "QUEUED"
    ENROUTE = "ENROUTE"
    DELIVRD = "DELIVRD"
    ACCEPTD = "ACCEPTD"
    CANCEL = "CANCEL"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIV = "UNDELIV"
    ABSENT = "ABSENT"
    SPAM = "SPAM"
    BLOCK = "BLOCK"
    UNKNOWN = "UNKNOWN"
    REJECTD = "REJECTD"
    SYNTAXE = "SYNTAXE"

    @property
    def final(self) -> bool:
        return self not in _NOT_FINAL

    @property
    def statuscode(self) -> int:
        """0 for pending and successful states, -10 for failures (PROTOCOL.md section 4)."""
        return 0 if self in _NOT_FINAL or self in _SUCCESS else -10


_NOT_FINAL = frozenset({State.WAITING, State.QUEUED, State.ENROUTE})
_SUCCESS = frozenset({State.DELIVRD, State.ACCEPTD, State.CANCEL})

Coding = Literal["gsm7", "ucs2", "push"]


# What authentication reads of an account: password hash, API key hash, disabled, addresses,
# and until when it is locked.
Access = tuple[str, str | None, bool, tuple[str, ...], datetime | None]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    password_hash: str
    api_key_hash: str | None
    balance: int
    disabled: bool
    allowed_ips: tuple[str, ...]
    created_at: datetime
    # Until when repeated authentication failures, counted by every process on the store,
    # lock the account (PROTOCOL.md section 7); None, or a past time, when it is not locked.
    locked_until: datetime | None = None
    # Failures counted towards the lock within its window (a success clears them).
    recent_failures: int = 0

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    @property
    def access(self) -> Access:
        """What authentication reads of the account (not the balance, which the accept
        re-checks anyway): a request authenticated on a remembered copy is accepted only
        while the stored account still has these values."""
        return (
            self.password_hash,
            self.api_key_hash,
            self.disabled,
            self.allowed_ips,
            self.locked_until,
        )


@dataclass(frozen=True, slots=True)
class RecipientPlan:
    """One destination of a send request, priced."""

    number: str  # canonical: 09xxxxxxxx or +<E.164>
    points: int  # segments x rate of this number's prefix


@dataclass(frozen=True, slots=True)
class SendPlan:
    """A validated, priced sendsms request: everything the store needs to accept it.

    ``body`` is the text after truncation (for PUSH, the title); ``coding`` is what goes on
    the air; ``segments`` the number of SMS per recipient. ``points`` is the whole cost:
    the recipients' points plus ``reply_surcharge``.
    """

    encoding: str  # the smsgo encoding name as given, upper-cased (BIG5, LASCII, PUSH, ...)
    body: str
    coding: Coding
    flash: bool
    segments: int
    recipients: tuple[RecipientPlan, ...]
    reply_surcharge: int
    points: int
    wapurl: str | None = None
    response: str | None = None
    replyurl: str | None = None
    replydays: int = 3
    dlvtime: datetime | None = None  # UTC; None or a past time sends at once


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the store answers for an accepted request."""

    msgid: int
    points: int


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """A recipient as the query endpoints show it."""

    msgid: int
    number: str
    state: State


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The outcome of a cancel: how many recipients left WAITING and the points refunded."""

    msgid: int
    recipients: int
    points: int
