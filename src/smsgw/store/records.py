"""Rows the delivery engine exchanges with the store: claims, submit results, receipts,
callbacks and replies. Frozen values; times are aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from datetime import datetime

    from smsgw.domain.model import Coding, State

CallbackKind = Literal["dlr", "mo"]
CallbackState = Literal["pending", "sent", "failed"]
CALLBACK_STATES: tuple[CallbackState, ...] = ("pending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class DueMessage:
    """A recipient claimed for submission (now ENROUTE under a lease)."""

    recipient_id: int
    msgid: int
    account_id: int
    number: str
    attempts: int  # including the attempt this claim starts
    encoding: str
    coding: Coding
    flash: bool
    body: str
    wapurl: str | None
    segments: int
    created_at: datetime  # of the request


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The outcome of submitting one claimed recipient; exactly one of the last three is set.

    ``smsc_ids``: every segment was accepted (its SMSC message ids, in segment order);
    ``retry_at``: a temporary failure, try again then; ``final_state``: REJECTD or EXPIRED.
    """

    recipient_id: int
    connector: str
    smsc_ids: tuple[str, ...] | None = None
    retry_at: datetime | None = None
    final_state: State | None = None

    def __post_init__(self) -> None:
        chosen = [
            self.smsc_ids is not None,
            self.retry_at is not None,
            self.final_state is not None,
        ]
        if chosen.count(True) != 1:
            raise ValueError("a SubmitResult sets exactly one of smsc_ids, retry_at, final_state")
        if self.smsc_ids == ():
            raise ValueError("smsc_ids needs one id per segment")
        if self.final_state is not None and not self.final_state.final:
            raise ValueError("final_state must be a final state")


@dataclass(frozen=True, slots=True)
class ReceiptUpdate:
    """A delivery receipt; ``smsc_id_forms`` are the spellings of its id to try, in order."""

    connector: str
    smsc_id_forms: tuple[str, ...]
    state: State
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptApplied:
    """``matched``: a segment had the id (else the receipt is held); ``recipient_final``:
    the state this receipt settled its recipient in, if it did."""

    matched: bool
    recipient_final: State | None = None


@dataclass(frozen=True, slots=True)
class CallbackJob:
    """A claimed callback to send; ``webhook_secret`` is the account's signing key."""

    id: int
    account_id: int
    kind: CallbackKind
    url: str
    msgid: int | None
    number: str | None
    attempts: int  # failed attempts so far
    webhook_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """How one attempt went: delivered, or failed and retried at ``retry_at`` (None: give up)."""

    id: int
    delivered: bool
    error: str | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """A callback as the operator sees it."""

    id: int
    account_id: int
    username: str
    kind: CallbackKind
    url: str
    msgid: int | None
    number: str | None
    state: CallbackState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class IncomingReply:
    """A handset's reply (MO). ``srcaddr`` is the handset (canonical), ``dstaddr`` the number
    it wrote to; ``gateway_number``, when known, is the connector's own source address."""

    connector: str
    srcaddr: str
    dstaddr: str
    body: str
    encoding: str
    received_at: datetime
    gateway_number: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyKey:
    """What one concatenated reply's parts share: the handset, the number it wrote to, the
    reference and the number of parts it announced."""

    srcaddr: str
    dstaddr: str
    reference: int
    total: int


@dataclass(frozen=True, slots=True)
class ReplyPart:
    """One part of a concatenated handset reply, kept by the store until its reply is whole.

    ``text`` may begin or end with half of a UTF-16 surrogate pair (a handset may split a
    pair across parts, see `smsgw.smpp.air`); the halves meet when the parts are joined.
    """

    srcaddr: str
    dstaddr: str
    reference: int
    total: int
    seqnum: int
    text: str
    encoding: str
    connector: str
    received_at: datetime

    @property
    def key(self) -> ReplyKey:
        return ReplyKey(self.srcaddr, self.dstaddr, self.reference, self.total)


@dataclass(frozen=True, slots=True)
class StoredReply:
    id: int
    msgid: int | None  # the message it answers; None when unmatched


@dataclass(frozen=True, slots=True)
class ReplyRow:
    id: int
    msgid: int | None
    connector: str | None
    srcaddr: str
    dstaddr: str
    body: str
    encoding: str
    received_at: datetime
    matched: bool


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One submitted segment; ``state`` is None until its final receipt."""

    seqno: int
    connector: str | None
    smsc_id: str | None
    state: State | None
    error: str | None
