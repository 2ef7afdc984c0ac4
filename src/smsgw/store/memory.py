"""The in-memory reference Store: simple enough to be obviously right.

Used by the unit tests of other layers, and as the model the SQL backends are checked
against by the contract suite. Nothing survives the process. Every method runs without an
``await`` in between its reads and writes, so asyncio tasks cannot interleave inside one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

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
from smsgw.errors import AccountExistsError, StoreError, UnknownAccountError
from smsgw.store.accepting import (
    AcceptItem,
    check_plan,
    grant,
    initial_state,
    refusal,
    settle,
)
from smsgw.store.delivering import (
    FinalChange,
    KnownSegment,
    NewCallback,
    RecipientFacts,
    TimedReceipt,
    TimedSubmit,
    expiry_plan,
    gateway_number_matches,
    mo_callback,
    plan_receipts,
    plan_submits,
    receipt_keys,
)
from smsgw.store.msgids import FIRST_MSGID
from smsgw.store.records import (
    CALLBACK_STATES,
    CallbackJob,
    CallbackKind,
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
from smsgw.store.schema import latest_version

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

LedgerKind = Literal["topup", "debit", "refund"]


@dataclass(slots=True)
class _Recipient:
    id: int
    msgid: int
    number: str
    state: State
    points: int
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: int = 0
    connector: str | None = None
    submitted_at: datetime | None = None
    done_at: datetime | None = None


@dataclass(slots=True)
class _Request:
    account_id: int
    plan: SendPlan
    recipients: list[_Recipient]


@dataclass(slots=True)
class _Segment:
    id: int
    recipient_id: int
    seqno: int
    connector: str
    smsc_id: str
    state: State | None = None
    error: str | None = None


@dataclass(slots=True)
class _Callback:
    id: int
    account_id: int
    kind: CallbackKind
    url: str
    msgid: int
    number: str
    next_attempt_at: datetime
    created_at: datetime
    state: CallbackState = "pending"
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    account_id: int
    delta: int
    kind: LedgerKind
    msgid: int | None
    at: datetime


@dataclass(slots=True)
class MemoryStore:
    accounts: dict[str, Account] = field(default_factory=dict)
    requests: dict[int, _Request] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    next_msgid: int = FIRST_MSGID
    closed: bool = False
    failures: list[Exception] = field(default_factory=list)
    by_id: dict[int, _Recipient] = field(default_factory=dict)
    segments: list[_Segment] = field(default_factory=list)
    held: list[TimedReceipt] = field(default_factory=list)
    callbacks: list[_Callback] = field(default_factory=list)
    replies: list[ReplyRow] = field(default_factory=list)
    reply_parts: dict[ReplyKey, dict[int, ReplyPart]] = field(default_factory=dict)
    auth_failures: dict[int, list[datetime]] = field(default_factory=dict)
    webhook_secrets: dict[int, str] = field(default_factory=dict, repr=False)

    async def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def upgrade(self) -> list[int]:
        return []

    async def schema_version(self) -> int:
        return latest_version("sqlite")

    # accounts -------------------------------------------------------------------------
    async def create_account(
        self, username: str, password_hash: str, points: int, now: datetime
    ) -> Account:
        self._check_open()
        if username in self.accounts:
            raise AccountExistsError(f"account {username!r} exists already")
        account = Account(
            id=len(self.accounts) + 1,
            username=username,
            password_hash=password_hash,
            api_key_hash=None,
            balance=points,
            disabled=False,
            allowed_ips=(),
            created_at=now,
        )
        self.accounts[username] = account
        self.ledger.append(LedgerEntry(account.id, points, "topup", None, now))
        return account

    async def get_account(self, username: str) -> Account | None:
        self._check_open()
        return self.accounts.get(username)

    async def record_auth_failure(self, account_id: int, now: datetime, policy: LockPolicy) -> None:
        self._check_open()
        account = self._by_id(account_id)
        if account is None or account.locked(now):
            return
        horizon = now - timedelta(seconds=policy.window_s)
        recent = [at for at in self.auth_failures.get(account_id, []) if at > horizon] + [now]
        self.auth_failures[account_id] = recent
        if len(recent) >= policy.failures:
            until = now + timedelta(seconds=policy.lock_s)
            self._update(account.username, locked_until=until, recent_failures=0)
            del self.auth_failures[account_id]
        else:
            self._update(account.username, recent_failures=len(recent))

    async def clear_auth_failures(self, account_id: int) -> None:
        self._check_open()
        self.auth_failures.pop(account_id, None)
        account = self._by_id(account_id)
        if account is not None:
            self._update(account.username, recent_failures=0, locked_until=None)

    async def list_accounts(self) -> list[Account]:
        self._check_open()
        return sorted(self.accounts.values(), key=lambda account: account.username)

    async def set_password_hash(self, username: str, password_hash: str) -> Account:
        return self._update(username, password_hash=password_hash)

    async def set_api_key_hash(self, username: str, api_key_hash: str | None) -> Account:
        return self._update(username, api_key_hash=api_key_hash)

    async def set_allowed_ips(self, username: str, allowed_ips: Sequence[str]) -> Account:
        return self._update(username, allowed_ips=tuple(allowed_ips))

    async def set_disabled(self, username: str, disabled: bool) -> Account:
        return self._update(username, disabled=disabled)

    async def topup(self, username: str, points: int, now: datetime) -> Account:
        account = self._update(username)
        self._move_points(account.id, points, "topup", None, now)
        return self._update(username)

    async def ledger_sum(self, account_id: int) -> int:
        self._check_open()
        return sum(entry.delta for entry in self.ledger if entry.account_id == account_id)

    # the hot path ---------------------------------------------------------------------
    async def accept(
        self, account_id: int, plan: SendPlan, now: datetime, *, seen: Access | None = None
    ) -> Accepted | None:
        self._check_open()
        if self.failures:
            raise self.failures.pop(0)
        check_plan(plan)
        balances = {account.id: account.balance for account in self.accounts.values()}
        access = {account.id: account.access for account in self.accounts.values()}
        item = AcceptItem(account_id, plan, now, seen)
        if not grant(balances, [item], access)[0]:
            return settle(refusal(item, access))
        msgid = self.next_msgid
        self.next_msgid += 1
        state = initial_state(plan, now)
        due = plan.dlvtime if state is State.WAITING else now
        recipients = [
            _Recipient(len(self.by_id) + i + 1, msgid, r.number, state, r.points, now, due)
            for i, r in enumerate(plan.recipients)
        ]
        self.by_id.update((r.id, r) for r in recipients)
        self.requests[msgid] = _Request(account_id, plan, recipients)
        self._move_points(account_id, -plan.points, "debit", msgid, now)
        return Accepted(msgid=msgid, points=plan.points)

    # queries and cancel ---------------------------------------------------------------
    async def recipients(self, account_id: int, msgids: Sequence[int]) -> list[RecipientStatus]:
        self._check_open()
        found: list[RecipientStatus] = []
        for msgid in dict.fromkeys(msgids):
            request = self.requests.get(msgid)
            if request is not None and request.account_id == account_id:
                found += [RecipientStatus(msgid, r.number, r.state) for r in request.recipients]
        return found

    async def cancel(self, account_id: int, msgid: int, now: datetime) -> Cancelled | None:
        self._check_open()
        request = self.requests.get(msgid)
        if request is None or request.account_id != account_id:
            return None
        waiting = [r for r in request.recipients if r.state is State.WAITING]
        for recipient in waiting:
            recipient.state = State.CANCEL
        refund = sum(recipient.points for recipient in waiting)
        if waiting and all(r.state is State.CANCEL for r in request.recipients):
            refund += request.plan.reply_surcharge
        if refund:
            self._move_points(account_id, refund, "refund", msgid, now)
        return Cancelled(msgid=msgid, recipients=len(waiting), points=refund)

    async def set_webhook_secret(self, username: str, secret: str | None) -> Account:
        account = self._update(username)
        if secret is None:
            self.webhook_secrets.pop(account.id, None)
        else:
            self.webhook_secrets[account.id] = secret
        return account

    # dispatching ----------------------------------------------------------------------
    async def messages_due(self, now: datetime) -> bool:
        self._check_open()
        return any(_is_due(r, now) for r in self.by_id.values())

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[DueMessage]:
        self._check_open()
        due = sorted(
            (r for r in self.by_id.values() if _is_due(r, now)),
            key=lambda r: (r.next_attempt_at or now, r.id),
        )[:limit]
        claimed: list[DueMessage] = []
        for recipient in due:
            recipient.state = State.ENROUTE
            recipient.next_attempt_at = now + timedelta(seconds=lease_s)
            recipient.attempts += 1
            claimed.append(self._due_message(recipient))
        return claimed

    async def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None:
        self._check_open()
        items = [TimedSubmit(result, now) for result in results]
        plan = plan_submits(items, self._facts(result.recipient_id for result in results))
        for item in plan.recorded:
            self._record_segments(item.result, now)
        for item in plan.retries:
            recipient = self.by_id[item.result.recipient_id]
            recipient.state, recipient.next_attempt_at = State.QUEUED, item.result.retry_at
        self._write_finals(plan.finals, plan.callbacks)
        keys = set(plan.recorded_keys())
        held = [h for h in self.held if not keys.isdisjoint(receipt_keys([h]))]
        self.held = [h for h in self.held if h not in held]
        self._apply([TimedReceipt(h.receipt, now) for h in held])

    async def expire_unanswered(self, submitted_before: datetime, now: datetime) -> int:
        self._check_open()
        stale = [
            r.id
            for r in self.by_id.values()
            if r.state is State.ENROUTE
            and r.submitted_at is not None
            and r.submitted_at < submitted_before
        ]
        finals, callbacks = expiry_plan(self._facts(stale).values(), State.UNKNOWN, now)
        self._write_finals(finals, callbacks)
        return len(finals)

    # receipts -------------------------------------------------------------------------
    async def apply_receipts(
        self, receipts: Sequence[ReceiptUpdate], now: datetime
    ) -> list[ReceiptApplied]:
        self._check_open()
        return self._apply([TimedReceipt(receipt, now) for receipt in receipts])

    async def recipient_segments(self, recipient_id: int) -> list[SegmentRow]:
        self._check_open()
        found = sorted(
            (s for s in self.segments if s.recipient_id == recipient_id), key=lambda s: s.seqno
        )
        return [SegmentRow(s.seqno, s.connector, s.smsc_id, s.state, s.error) for s in found]

    # callbacks ------------------------------------------------------------------------
    async def callbacks_due(self, now: datetime) -> bool:
        self._check_open()
        return any(c.state == "pending" and c.next_attempt_at <= now for c in self.callbacks)

    async def claim_callbacks(
        self, now: datetime, limit: int, lease_s: float, per_account: int | None = None
    ) -> list[CallbackJob]:
        self._check_open()
        ordered = sorted(
            (c for c in self.callbacks if c.state == "pending" and c.next_attempt_at <= now),
            key=lambda c: (c.next_attempt_at, c.id),
        )
        taken: dict[int, int] = {}
        turns: list[tuple[int, datetime, int, _Callback]] = []
        for callback in ordered:
            turn = taken.get(callback.account_id, 0) + 1
            if per_account is None or turn <= per_account:
                taken[callback.account_id] = turn
                turns.append((turn, callback.next_attempt_at, callback.id, callback))
        due = [callback for *_, callback in sorted(turns, key=lambda t: t[:3])[:limit]]
        for callback in due:
            callback.next_attempt_at = now + timedelta(seconds=lease_s)
        return [
            CallbackJob(
                *(c.id, c.account_id, c.kind, c.url, c.msgid, c.number, c.attempts),
                webhook_secret=self.webhook_secrets.get(c.account_id),
            )
            for c in due
        ]

    async def finish_callbacks(self, outcomes: Sequence[CallbackOutcome], now: datetime) -> None:
        self._check_open()
        by_id = {callback.id: callback for callback in self.callbacks}
        for outcome in outcomes:
            callback = by_id.get(outcome.id)
            if callback is None or callback.state != "pending":
                continue
            if outcome.delivered:
                callback.state, callback.sent_at = "sent", now
                continue
            callback.attempts += 1
            callback.last_error = outcome.error
            if outcome.retry_at is None:
                callback.state = "failed"
            else:
                callback.next_attempt_at = outcome.retry_at

    async def retry_failed_callbacks(self, username: str | None, now: datetime) -> int:
        self._check_open()
        if username is not None:
            self._update(username)  # raises UnknownAccountError
        account_ids = self._account_ids(username)
        failed = [c for c in self.callbacks if c.state == "failed" and c.account_id in account_ids]
        for callback in failed:
            callback.state, callback.attempts, callback.next_attempt_at = "pending", 0, now
        return len(failed)

    async def list_callbacks(
        self, state: CallbackState | None, username: str | None, limit: int
    ) -> list[CallbackRow]:
        self._check_open()
        account_ids = self._account_ids(username)
        names = {account.id: account.username for account in self.accounts.values()}
        rows = [
            c
            for c in reversed(self.callbacks)
            if c.account_id in account_ids and (state is None or c.state == state)
        ][:limit]
        return [_callback_row(c, names[c.account_id]) for c in rows]

    # replies --------------------------------------------------------------------------
    async def store_reply(self, reply: IncomingReply, now: datetime) -> StoredReply:
        self._check_open()
        match = self._reply_match(reply)
        msgid = None if match is None else match.msgid
        row = ReplyRow(
            *(len(self.replies) + 1, msgid, reply.connector, reply.srcaddr, reply.dstaddr),
            *(reply.body, reply.encoding, reply.received_at, match is not None),
        )
        self.replies.append(row)
        if match is not None:
            request = self.requests[match.msgid]
            replyurl = request.plan.replyurl or ""
            self._add_callback(mo_callback(reply, match.msgid, request.account_id, replyurl, now))
        return StoredReply(row.id, msgid)

    async def list_replies(self, unmatched_only: bool, limit: int) -> list[ReplyRow]:
        self._check_open()
        rows = [r for r in reversed(self.replies) if not (unmatched_only and r.matched)]
        return rows[:limit]

    async def add_reply_part(self, part: ReplyPart) -> list[ReplyPart]:
        self._check_open()
        self.reply_parts.setdefault(part.key, {}).setdefault(part.seqnum, part)
        return self._parts_of(part.key)

    async def complete_reply(
        self, key: ReplyKey, reply: IncomingReply, now: datetime
    ) -> StoredReply | None:
        self._check_open()
        if key not in self.reply_parts:
            return None
        stored = await self.store_reply(reply, now)
        del self.reply_parts[key]
        return stored

    async def stale_reply_parts(self, before: datetime, limit: int) -> list[ReplyPart]:
        self._check_open()
        firsts = sorted(
            (min(part.received_at for part in kept.values()), index, key)
            for index, (key, kept) in enumerate(self.reply_parts.items())
        )
        stale = [key for first, _, key in firsts if first < before][:limit]
        return [part for key in stale for part in self._parts_of(key)]

    def _parts_of(self, key: ReplyKey) -> list[ReplyPart]:
        kept = self.reply_parts[key]
        return [kept[seqnum] for seqnum in sorted(kept)]

    # metrics --------------------------------------------------------------------------
    async def state_counts(self) -> dict[State, int]:
        self._check_open()
        counts = dict.fromkeys(State, 0)
        for recipient in self.by_id.values():
            counts[recipient.state] += 1
        return counts

    async def callback_counts(self) -> dict[str, int]:
        self._check_open()
        counts: dict[str, int] = dict.fromkeys(CALLBACK_STATES, 0)
        for callback in self.callbacks:
            counts[callback.state] += 1
        return counts

    async def held_receipt_count(self) -> int:
        self._check_open()
        return len(self.held)

    # test double helpers -------------------------------------------------------------------
    def fail_next_accepts(self, count: int, error: Exception | None = None) -> None:
        """Make the next ``count`` accepts raise ``error`` (a StoreError by default), as a
        failed commit would: nothing is written."""
        self.failures += [error or StoreError("simulated commit failure") for _ in range(count)]

    async def points_of_live_recipients(self, account_id: int) -> int:
        """Points still charged for the account's requests: the points of every recipient
        not cancelled, plus the reply surcharge of each request not wholly cancelled."""
        total = 0
        for request in self.requests.values():
            live = [r for r in request.recipients if r.state is not State.CANCEL]
            if request.account_id == account_id and live:
                total += sum(r.points for r in live) + request.plan.reply_surcharge
        return total

    # helpers ----------------------------------------------------------------------------
    def _due_message(self, recipient: _Recipient) -> DueMessage:
        request = self.requests[recipient.msgid]
        plan = request.plan
        return DueMessage(
            recipient_id=recipient.id,
            msgid=recipient.msgid,
            account_id=request.account_id,
            number=recipient.number,
            attempts=recipient.attempts,
            encoding=plan.encoding,
            coding=plan.coding,
            flash=plan.flash,
            body=plan.body,
            wapurl=plan.wapurl,
            segments=plan.segments,
            created_at=recipient.created_at,
        )

    def _facts(self, recipient_ids: Iterable[int]) -> dict[int, RecipientFacts]:
        facts: dict[int, RecipientFacts] = {}
        for recipient_id in recipient_ids:
            recipient = self.by_id.get(recipient_id)
            if recipient is not None:
                request = self.requests[recipient.msgid]
                facts[recipient_id] = RecipientFacts(
                    *(recipient.id, recipient.msgid, request.account_id, recipient.number),
                    *(recipient.state, request.plan.response),
                )
        return facts

    def _record_segments(self, result: SubmitResult, now: datetime) -> None:
        recipient = self.by_id[result.recipient_id]
        recipient.submitted_at, recipient.connector = now, result.connector
        recipient.next_attempt_at = None
        last_id = max((s.id for s in self.segments), default=0)
        self.segments = [s for s in self.segments if s.recipient_id != recipient.id]
        self.segments += [
            _Segment(last_id + seqno, recipient.id, seqno, result.connector, smsc_id)
            for seqno, smsc_id in enumerate(result.smsc_ids or (), start=1)
        ]

    def _apply(self, items: Sequence[TimedReceipt]) -> list[ReceiptApplied]:
        keys = set(receipt_keys(items))
        touched = {s.recipient_id for s in self.segments if (s.connector, s.smsc_id) in keys}
        known = {
            s.id: KnownSegment(s.id, s.recipient_id, s.seqno, s.connector, s.smsc_id, s.state)
            for s in self.segments
            if s.recipient_id in touched
        }
        plan = plan_receipts(items, known.values(), self._facts(touched))
        by_id = {segment.id: segment for segment in self.segments}
        for change in plan.segments:
            by_id[change.segment_id].state = change.state
            by_id[change.segment_id].error = change.error
        self._write_finals(plan.finals, plan.callbacks)
        self.held += plan.held
        return plan.applied

    def _write_finals(
        self, finals: Sequence[FinalChange], callbacks: Sequence[NewCallback]
    ) -> None:
        for final in finals:
            recipient = self.by_id[final.recipient_id]
            recipient.state, recipient.done_at = final.state, final.now
            recipient.next_attempt_at = None
        for callback in callbacks:
            self._add_callback(callback)

    def _add_callback(self, new: NewCallback) -> None:
        self.callbacks.append(
            _Callback(
                *(len(self.callbacks) + 1, new.account_id, new.kind, new.url, new.msgid),
                *(new.number, new.now, new.now),
            )
        )

    def _account_ids(self, username: str | None) -> set[int]:
        return {a.id for a in self.accounts.values() if username in {None, a.username}}

    def _reply_match(self, reply: IncomingReply) -> _Recipient | None:
        if not gateway_number_matches(reply):
            return None
        candidates = [
            r
            for r in self.by_id.values()
            if r.number == reply.srcaddr and _replyable(self.requests[r.msgid].plan, r, reply)
        ]
        return max(candidates, key=lambda r: (r.created_at, r.id), default=None)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("store is closed")

    def _update(self, username: str, **changes: object) -> Account:
        self._check_open()
        account = self.accounts.get(username)
        if account is None:
            raise UnknownAccountError(f"no account {username!r}")
        account = replace(account, **changes)  # type: ignore[arg-type]
        self.accounts[username] = account
        return account

    def _by_id(self, account_id: int) -> Account | None:
        return next((a for a in self.accounts.values() if a.id == account_id), None)

    def _move_points(
        self, account_id: int, delta: int, kind: LedgerKind, msgid: int | None, now: datetime
    ) -> None:
        for username, account in self.accounts.items():
            if account.id == account_id:
                self.accounts[username] = replace(account, balance=account.balance + delta)
        self.ledger.append(LedgerEntry(account_id, delta, kind, msgid, now))


_CLAIMABLE = frozenset({State.QUEUED, State.WAITING, State.ENROUTE})


def _is_due(recipient: _Recipient, now: datetime) -> bool:
    # An ENROUTE recipient keeps next_attempt_at only while its submit is unrecorded.
    due_at = recipient.next_attempt_at
    return recipient.state in _CLAIMABLE and due_at is not None and due_at <= now


def _replyable(plan: SendPlan, recipient: _Recipient, reply: IncomingReply) -> bool:
    window = timedelta(days=plan.replydays)
    return (
        plan.replyurl is not None
        and recipient.created_at <= reply.received_at <= recipient.created_at + window
    )


def _callback_row(callback: _Callback, username: str) -> CallbackRow:
    c = callback
    return CallbackRow(
        *(c.id, c.account_id, username, c.kind, c.url, c.msgid, c.number, c.state),
        *(c.attempts, c.next_attempt_at, c.last_error, c.created_at, c.sent_at),
    )
