"""The store port: everything the gateway keeps, behind one typing.Protocol.

Backends: ``memory`` (reference, for unit tests), ``sqlite`` (default) and ``postgres``.
All three pass ``tests/store/contract.py``.

Invariants every backend keeps:
- ``accept`` commits the request, its recipients and the debit in one transaction, and
  returns only after that transaction is durable. Many concurrent ``accept`` calls share one
  commit (group commit); one request's failure (insufficient points) never fails another's.
- msgids are positive, at most 16 digits, unique across every node sharing the database.
- Every change to a balance is a ledger row: balance == sum(ledger deltas) for each account.
- A query never shows another account's msgid.
- A recipient is final once: a final state is never changed, and the change that makes it
  final writes its callback row (when the request has ``response``) in the same transaction.
- Delivery never moves points (balance == ledger sum holds through every method).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from smsgw.domain.lockout import LockPolicy
    from smsgw.domain.model import (
        Accepted,
        Access,
        Account,
        Cancelled,
        RecipientStatus,
        SendPlan,
        State,
    )
    from smsgw.store.records import (
        CallbackJob,
        CallbackOutcome,
        CallbackRow,
        CallbackState,
        DueMessage,
        IncomingReply,
        ReceiptApplied,
        ReceiptUpdate,
        ReplyKey,
        ReplyPart,
        ReplyRow,
        SegmentRow,
        StoredReply,
        SubmitResult,
    )


class Store(Protocol):
    async def open(self) -> None:
        """Connect and check the schema is current (raises StoreError if it is not)."""

    async def close(self) -> None:
        """Flush pending group commits, then release connections."""

    async def upgrade(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""

    async def schema_version(self) -> int: ...

    # accounts -------------------------------------------------------------------------
    async def create_account(
        self, username: str, password_hash: str, points: int, now: datetime
    ) -> Account:
        """Raises AccountExistsError. The initial points are a ledger row of kind 'topup'."""

    async def get_account(self, username: str) -> Account | None: ...

    async def record_auth_failure(self, account_id: int, now: datetime, policy: LockPolicy) -> None:
        """Count a failed authentication of the account, for every process on the store:
        the ``policy.failures``-th within ``policy.window_s`` locks it until
        ``now + policy.lock_s`` (`Account.locked_until`, also in `Account.access`).
        Failures while it is locked change nothing."""

    async def clear_auth_failures(self, account_id: int) -> None:
        """Forget the account's counted failures (`Account.recent_failures`) and lift its
        lock, if any: after a success, or by the operator (`smsgw account unlock`)."""

    async def list_accounts(self) -> list[Account]: ...

    async def set_password_hash(self, username: str, password_hash: str) -> Account: ...

    async def set_api_key_hash(self, username: str, api_key_hash: str | None) -> Account: ...

    async def set_allowed_ips(self, username: str, allowed_ips: Sequence[str]) -> Account: ...

    async def set_disabled(self, username: str, disabled: bool) -> Account: ...

    async def topup(self, username: str, points: int, now: datetime) -> Account:
        """Add points (may be negative for a correction); a ledger row of kind 'topup'."""

    async def ledger_sum(self, account_id: int) -> int:
        """Sum of every ledger delta of the account (equals its balance)."""

    # the hot path ---------------------------------------------------------------------
    async def accept(
        self, account_id: int, plan: SendPlan, now: datetime, *, seen: Access | None = None
    ) -> Accepted | None:
        """Store a request durably and debit its points; None if the balance is too low.

        Recipients start WAITING when ``plan.dlvtime`` is after ``now``, else QUEUED.
        ``seen``: the account's `Account.access` as the caller authenticated it; if the
        stored account differs when the request would commit, AccountChangedError and
        nothing is stored or debited.
        """

    # queries and cancel ---------------------------------------------------------------
    async def recipients(self, account_id: int, msgids: Sequence[int]) -> list[RecipientStatus]:
        """Recipients of those of ``msgids`` that belong to the account, in msgid order
        (as listed) then in the order the numbers were given at send time."""

    async def cancel(self, account_id: int, msgid: int, now: datetime) -> Cancelled | None:
        """Move the msgid's WAITING recipients to CANCEL and refund their share of points
        (a ledger row of kind 'refund'); None if the msgid is not the account's."""

    async def set_webhook_secret(self, username: str, secret: str | None) -> Account:
        """Set (or clear, with None) the key that signs the account's callbacks. It is
        stored as given, since signing needs it, and only ever leaves in a CallbackJob."""

    # dispatching ----------------------------------------------------------------------
    async def messages_due(self, now: datetime) -> bool:
        """Whether a claim_due at ``now`` would find a recipient: a read, cheap to poll."""

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[DueMessage]:
        """Claim up to ``limit`` recipients due for submission, oldest first.

        Due: QUEUED whose next_attempt_at has come, WAITING whose dlvtime has come, and
        ENROUTE whose lease ran out before its submit was recorded (crash recovery). Each
        becomes ENROUTE under a lease (next_attempt_at = now + lease_s), attempts + 1.
        Concurrent claimers, also on other nodes or processes, never get the same recipient.
        """

    async def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None:
        """Record submit outcomes (group-committed). Accepted: the segments with their SMSC
        ids, then any held receipts for those ids are applied. Temporary failure: QUEUED
        again at retry_at. Final state: the recipient is settled (and its callback row).
        Results for recipients no longer ENROUTE are ignored."""

    async def expire_unanswered(self, submitted_before: datetime, now: datetime) -> int:
        """Settle as UNKNOWN every ENROUTE recipient submitted before ``submitted_before``
        (with its callback row); return how many."""

    # receipts -------------------------------------------------------------------------
    async def apply_receipts(
        self, receipts: Sequence[ReceiptUpdate], now: datetime
    ) -> list[ReceiptApplied]:
        """Apply delivery receipts (group-committed), one answer per receipt, returned only
        after the commit. A final receipt settles its segment once (duplicates change
        nothing); when every segment is final the recipient is settled by
        ``recipient_outcome`` (and its callback row). An unknown id is held (counted) until
        ``record_submits`` records it."""

    async def recipient_segments(self, recipient_id: int) -> list[SegmentRow]:
        """The recipient's recorded segments in segment order."""

    # callbacks ------------------------------------------------------------------------
    async def claim_callbacks(
        self, now: datetime, limit: int, lease_s: float, per_account: int | None = None
    ) -> list[CallbackJob]:
        """Claim up to ``limit`` due pending callbacks; each stays pending and is due again
        at now + lease_s (a crash re-sends: at least once). Concurrent claimers never get the
        same row. Accounts take turns (each account's oldest, then each one's second oldest,
        ...), so one customer's backlog never fills a claim that another customer's callbacks
        wait for; ``per_account`` also caps the rows of any one account."""

    async def callbacks_due(self, now: datetime) -> bool:
        """Whether a claim at ``now`` would find a callback: a read, cheap enough to poll."""

    async def finish_callbacks(self, outcomes: Sequence[CallbackOutcome], now: datetime) -> None:
        """Record attempts (group-committed): delivered -> sent; failed -> attempts + 1 and
        pending at retry_at, or failed (kept) when retry_at is None."""

    async def retry_failed_callbacks(self, username: str | None, now: datetime) -> int:
        """Make failed callbacks (of one account, or all) pending and due now with their
        attempts reset; return how many."""

    async def list_callbacks(
        self, state: CallbackState | None, username: str | None, limit: int
    ) -> list[CallbackRow]:
        """Callbacks, newest first, optionally of one state and/or account."""

    # replies --------------------------------------------------------------------------
    async def store_reply(self, reply: IncomingReply, now: datetime) -> StoredReply:
        """Store a handset reply, matched (PROTOCOL.md 6) to the most recent message to that
        handset whose request has a replyurl and whose replydays have not run out at
        received_at; a match also gets its 'mo' callback row."""

    async def list_replies(self, unmatched_only: bool, limit: int) -> list[ReplyRow]:
        """Replies, newest first (only unmatched ones if asked)."""

    async def add_reply_part(self, part: ReplyPart) -> list[ReplyPart]:
        """Keep one part of a concatenated reply (a part already kept stays as it was) and
        return every part of its reply kept so far, in seqnum order."""

    async def complete_reply(
        self, key: ReplyKey, reply: IncomingReply, now: datetime
    ) -> StoredReply | None:
        """Store ``reply``, joined from ``key``'s parts, as `store_reply` does and drop those
        parts, in one transaction; None, and nothing stored, when no part of ``key`` is left
        (its reply was completed already)."""

    async def stale_reply_parts(self, before: datetime, limit: int) -> list[ReplyPart]:
        """The parts of at most ``limit`` replies whose earliest kept part arrived before
        ``before``, grouped by reply (oldest first), each reply's in seqnum order."""

    # metrics --------------------------------------------------------------------------
    async def state_counts(self) -> dict[State, int]:
        """Recipients per state (every state, zero included)."""

    async def callback_counts(self) -> dict[str, int]:
        """Callbacks per state: pending, sent, failed."""

    async def held_receipt_count(self) -> int:
        """Receipts held because no segment had their id (yet)."""
