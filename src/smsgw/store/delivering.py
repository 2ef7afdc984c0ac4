"""What every backend decides the same way about submit results, receipts and replies.

Pure functions, like ``accepting``: a backend reads the rows a batch touches (inside its
transaction, the recipients locked), asks these functions what to write, and writes it
with one statement per table. The memory backend calls them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from smsgw.domain.delivery import callback_url, dlr_query, mo_query, recipient_outcome
from smsgw.domain.model import State
from smsgw.store.records import ReceiptApplied, ReceiptUpdate, SubmitResult

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from smsgw.store.records import CallbackKind, IncomingReply

SmscKey = tuple[str, str]  # (connector, smsc_id)
MAX_REPLYDAYS = 30


@dataclass(frozen=True, slots=True)
class TimedReceipt:
    receipt: ReceiptUpdate
    now: datetime


@dataclass(frozen=True, slots=True)
class TimedSubmit:
    result: SubmitResult
    now: datetime


@dataclass(slots=True)
class RecipientFacts:
    """A recipient as delivery needs it; ``state`` is the current one."""

    id: int
    msgid: int
    account_id: int
    number: str
    state: State
    response: str | None


@dataclass(slots=True)
class KnownSegment:
    id: int
    recipient_id: int
    seqno: int
    connector: str | None
    smsc_id: str | None
    state: State | None


@dataclass(frozen=True, slots=True)
class NewCallback:
    account_id: int
    kind: CallbackKind
    url: str
    msgid: int
    number: str
    payload: str  # the query string
    now: datetime


@dataclass(frozen=True, slots=True)
class SegmentChange:
    segment_id: int
    state: State
    error: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class FinalChange:
    recipient_id: int
    state: State
    now: datetime


@dataclass(slots=True)
class ReceiptPlan:
    applied: list[ReceiptApplied] = field(default_factory=list)
    segments: list[SegmentChange] = field(default_factory=list)
    finals: list[FinalChange] = field(default_factory=list)
    callbacks: list[NewCallback] = field(default_factory=list)
    held: list[TimedReceipt] = field(default_factory=list)


@dataclass(slots=True)
class SubmitPlan:
    recorded: list[TimedSubmit] = field(default_factory=list)
    retries: list[TimedSubmit] = field(default_factory=list)
    finals: list[FinalChange] = field(default_factory=list)
    callbacks: list[NewCallback] = field(default_factory=list)

    def recorded_keys(self) -> list[SmscKey]:
        return [
            (item.result.connector, smsc_id)
            for item in self.recorded
            for smsc_id in item.result.smsc_ids or ()
        ]


def dlr_callback(facts: RecipientFacts, state: State, now: datetime) -> NewCallback | None:
    """The delivery report row for a recipient that became final, if its request wants one."""
    if facts.response is None:
        return None
    query = dlr_query(facts.msgid, state, facts.number)
    url = callback_url(facts.response, query)
    return NewCallback(facts.account_id, "dlr", url, facts.msgid, facts.number, query, now)


def finalize(
    facts: RecipientFacts, state: State, now: datetime, finals: list[FinalChange]
) -> NewCallback | None:
    """Record ``facts`` as final in ``state``; its callback row, if any."""
    facts.state = state
    finals.append(FinalChange(facts.id, state, now))
    return dlr_callback(facts, state, now)


def receipt_keys(items: Iterable[TimedReceipt]) -> list[SmscKey]:
    """Every (connector, smsc_id) a batch of receipts may match, without repeats."""
    keys = ((item.receipt.connector, form) for item in items for form in item.receipt.smsc_id_forms)
    return list(dict.fromkeys(keys))


def plan_receipts(
    items: Sequence[TimedReceipt],
    segments: Iterable[KnownSegment],
    recipients: Mapping[int, RecipientFacts],
) -> ReceiptPlan:
    """Apply receipts in order to the segments they match.

    ``segments`` must hold every segment of every recipient a receipt may touch, read
    after those recipients were locked, and ``recipients`` those recipients.
    """
    by_key: dict[SmscKey, KnownSegment] = {}
    siblings: dict[int, list[KnownSegment]] = {}
    for segment in segments:
        if segment.connector is not None and segment.smsc_id is not None:
            by_key.setdefault((segment.connector, segment.smsc_id), segment)
        siblings.setdefault(segment.recipient_id, []).append(segment)
    for group in siblings.values():
        group.sort(key=lambda segment: segment.seqno)
    plan = ReceiptPlan()
    for item in items:
        match = _first_match(item.receipt, by_key)
        if match is None:
            plan.held.append(item)
            plan.applied.append(ReceiptApplied(matched=False))
        else:
            facts = recipients[match.recipient_id]
            plan.applied.append(_settle(item, match, siblings[match.recipient_id], facts, plan))
    return plan


def _first_match(
    receipt: ReceiptUpdate, by_key: Mapping[SmscKey, KnownSegment]
) -> KnownSegment | None:
    for form in receipt.smsc_id_forms:
        segment = by_key.get((receipt.connector, form))
        if segment is not None:
            return segment
    return None


def _settle(
    item: TimedReceipt,
    segment: KnownSegment,
    siblings: Sequence[KnownSegment],
    facts: RecipientFacts,
    plan: ReceiptPlan,
) -> ReceiptApplied:
    receipt = item.receipt
    if not receipt.state.final or segment.state is not None:
        return ReceiptApplied(matched=True)  # progress, or a duplicate: nothing changes
    segment.state = receipt.state
    plan.segments.append(SegmentChange(segment.id, receipt.state, receipt.error, item.now))
    outcome = recipient_outcome([sibling.state for sibling in siblings])
    if outcome is None or facts.state.final:
        return ReceiptApplied(matched=True)
    callback = finalize(facts, outcome, item.now, plan.finals)
    if callback is not None:
        plan.callbacks.append(callback)
    return ReceiptApplied(matched=True, recipient_final=outcome)


def plan_submits(
    items: Sequence[TimedSubmit], recipients: Mapping[int, RecipientFacts]
) -> SubmitPlan:
    """Sort submit results by what they do; results for recipients no longer ENROUTE (a
    lease that ran out and was claimed again, or a recipient settled meanwhile) are dropped."""
    plan = SubmitPlan()
    for item in items:
        facts = recipients.get(item.result.recipient_id)
        if facts is None or facts.state is not State.ENROUTE:
            continue
        result = item.result
        if result.smsc_ids is not None:
            plan.recorded.append(item)
        elif result.retry_at is not None:
            facts.state = State.QUEUED
            plan.retries.append(item)
        elif result.final_state is not None:
            callback = finalize(facts, result.final_state, item.now, plan.finals)
            if callback is not None:
                plan.callbacks.append(callback)
    return plan


def expiry_plan(
    recipients: Iterable[RecipientFacts], state: State, now: datetime
) -> tuple[list[FinalChange], list[NewCallback]]:
    """Settle every recipient in ``state`` now: the changes and the callback rows."""
    finals: list[FinalChange] = []
    callbacks = [finalize(facts, state, now, finals) for facts in recipients]
    return finals, [callback for callback in callbacks if callback is not None]


def reply_window_start(received_at: datetime) -> datetime:
    """No message older than this can be replied to (replydays is at most 30)."""
    return received_at - timedelta(days=MAX_REPLYDAYS)


def gateway_number_matches(reply: IncomingReply) -> bool:
    """A reply to another number than the connector's own source address matches nothing."""
    return reply.gateway_number is None or reply.gateway_number == reply.dstaddr


def mo_callback(
    reply: IncomingReply, msgid: int, account_id: int, replyurl: str, now: datetime
) -> NewCallback:
    query = mo_query(
        msgid, reply.srcaddr, reply.dstaddr, reply.body, reply.encoding, reply.received_at
    )
    return NewCallback(
        account_id,
        "mo",
        callback_url(replyurl, query),
        msgid,
        reply.srcaddr,
        query,
        now,
    )
