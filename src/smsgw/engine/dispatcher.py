"""The dispatcher: due recipients out to their SMSC, at the rate each connector allows.

Flow: claim a batch of due recipients (QUEUED, WAITING whose dlvtime came, and ENROUTE ones a
crashed node never recorded) under a lease; for each, route by the longest prefix, encode
its segments, submit them through the connector's ESME (which enforces window and TPS), and
record the outcome in the store, where results of concurrent submissions share one commit.

``decide`` is the policy: pure, with ``now`` passed in. Temporary failures retry with backoff
until the validity period runs out (then EXPIRED); a permanent refusal is REJECTD; a number
no route serves is EXPIRED (PROTOCOL.md section 4).

At-least-once: a segment whose submit_sm_resp arrived but whose result was not yet recorded
when the process died is submitted again after the lease (``lease_s``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from smsgw.config import ConnectorSettings, Settings
from smsgw.domain.model import State
from smsgw.domain.numbers import smpp_address
from smsgw.domain.text import plan_text
from smsgw.engine.pacing import idle, settle, store_probe
from smsgw.engine.unrecorded import Unrecorded
from smsgw.smpp.air import Address, encode_mt
from smsgw.smpp.esme import Refused, Submitted
from smsgw.smpp.pdu import SubmitSm
from smsgw.store.port import Store
from smsgw.store.records import DueMessage, SubmitResult

log = logging.getLogger("smsgw.dispatcher")

Clock = Callable[[], datetime]
# Seconds before the n-th retry of a temporary failure (the last repeats).
RETRY_DELAYS_S: tuple[float, ...] = (5, 15, 30, 60, 120, 300)
# Bounds on what one claim takes and how many submissions start per event-loop turn: a
# burst claimed and started at once (thousands of rows built, thousands of encodes in one
# turn) stalls the API sharing the loop for hundreds of milliseconds (issue 6).
CLAIM_LIMIT = 500
STARTS_PER_TURN = 32


class Submitter(Protocol):
    """What the dispatcher needs of a connector (an Esme, or a test double)."""

    async def submit(self, pdu: SubmitSm) -> Submitted | Refused: ...


@dataclass(frozen=True, slots=True)
class Link:
    """A connector as the dispatcher uses it: its settings and its submitter."""

    settings: ConnectorSettings
    submitter: Submitter

    @property
    def source(self) -> Address:
        s = self.settings
        return Address(s.source_addr, s.source_ton, s.source_npi)


def decide(
    message: DueMessage,
    connector: str,
    outcomes: Sequence[Submitted | Refused],
    now: datetime,
    validity_s: float,
) -> SubmitResult:
    """The store's next step for a recipient whose segments got these outcomes."""
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    if not refusals:
        ids = tuple(outcome.message_id for outcome in outcomes if isinstance(outcome, Submitted))
        return SubmitResult(message.recipient_id, connector, smsc_ids=ids)
    if any(not refusal.temporary for refusal in refusals):
        return SubmitResult(message.recipient_id, connector, final_state=State.REJECTD)
    return retry_or_expire(message, connector, now, validity_s)


def retry_or_expire(
    message: DueMessage, connector: str, now: datetime, validity_s: float
) -> SubmitResult:
    delay = RETRY_DELAYS_S[min(message.attempts, len(RETRY_DELAYS_S)) - 1]
    retry_at = now + timedelta(seconds=delay)
    if retry_at > message.created_at + timedelta(seconds=validity_s):
        return SubmitResult(message.recipient_id, connector, final_state=State.EXPIRED)
    return SubmitResult(message.recipient_id, connector, retry_at=retry_at)


def segments_for(message: DueMessage, link: Link) -> list[SubmitSm]:
    """The submit_sm PDUs of one recipient, re-planned from the stored text."""
    text = plan_text(message.encoding, message.body, message.wapurl)
    digits, ton, npi = smpp_address(message.number, national=link.settings.national_numbers)
    return encode_mt(
        text,
        source=link.source,
        destination=Address(digits, ton, npi),
        reference=message.recipient_id & 0xFFFF,
        long_form=link.settings.long_form,
        registered_delivery=link.settings.registered_delivery,
    )


class Dispatcher:
    """Claims due recipients and submits them; ``wake()`` after an accept skips the idle wait."""

    def __init__(
        self,
        store: Store,
        links: Mapping[str, Link],
        settings: Settings,
        clock: Clock,
        *,
        concurrency: int | None = None,
        lease_s: float = 120.0,
        idle_s: float = 0.2,
        probe: bool = False,
        on_result: Callable[[SubmitResult], None] | None = None,
        unrecorded: Unrecorded | None = None,
    ) -> None:
        self._store = store
        self._links = dict(links)
        self._settings = settings
        self._clock = clock
        windows = sum(link.settings.window for link in self._links.values())
        self._concurrency = concurrency or max(64, windows * 4)
        self._lease_s = lease_s
        self._idle_s = idle_s
        # Apart from the API no accept wakes it: it reads whether work is due (pacing.idle).
        self._probe = store_probe(store.messages_due, clock) if probe else None
        self._on_result = on_result
        self._unrecorded = unrecorded
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def wake(self) -> None:
        """Work may be due (an accept, a signal from another process). Ignored while more
        than half the room is taken: a claim then would take a handful, a transaction each
        (bench/accept.py on PostgreSQL: 13-25% fewer accepts/s), and the half-room wake
        (`_finished`) claims a batch soon anyway."""
        if self._in_flight and len(self._in_flight) > self._concurrency // 2:
            return
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            if await self.dispatch_due() == 0:
                await self._idle()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; give submissions in flight ``grace_s`` to finish and be recorded.

        Whatever is cancelled stays ENROUTE without SMSC ids and is claimed again after its
        lease: nothing is lost, a segment may go twice.
        """
        self._stopping = True
        self._wake.set()
        await settle(set(self._in_flight), grace_s)

    async def dispatch_due(self) -> int:
        """Claim what is due (as much as there is room for) and start submitting it."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0 or self._stopping:
            return 0
        limit = min(free, CLAIM_LIMIT)
        due = await self._store.claim_due(self._clock(), limit, self._lease_s)
        for first in range(0, len(due), STARTS_PER_TURN):
            if first:
                await asyncio.sleep(0)  # let the loop poll I/O between groups of starts
            if self._stopping:
                # stop() began while we claimed: what is left returns after its lease,
                # and nothing starts that would outlive the store.
                return first
            for message in due[first : first + STARTS_PER_TURN]:
                self._start(message)
        return len(due)

    def _start(self, message: DueMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._dispatch(message))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A full dispatcher idles; when half its room is free again, it claims at once
        (not after ``idle_s``, nor one row per completion)."""
        self._in_flight.discard(task)
        if len(self._in_flight) == self._concurrency // 2:
            self._wake.set()

    async def drain(self) -> None:
        """Wait until every submission started so far is recorded."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight))

    async def _dispatch(self, message: DueMessage) -> None:
        result, answered = await self._submission(message)
        try:
            await self._store.record_submits([result], self._clock())
        finally:
            if answered and self._unrecorded is not None:
                self._unrecorded.recorded(result.connector, answered)
        if self._on_result is not None:
            self._on_result(result)

    async def _submission(self, message: DueMessage) -> tuple[SubmitResult, list[str]]:
        """The result to record, and the message ids the SMSC gave the segments it took."""
        connector = self._settings.route_for(message.number)
        link = self._links.get(connector) if connector is not None else None
        if connector is None or link is None:
            expired = SubmitResult(message.recipient_id, connector or "", final_state=State.EXPIRED)
            return expired, []
        try:
            pdus = segments_for(message, link)
        except Exception:
            log.exception("cannot encode recipient %s", message.recipient_id)
            return SubmitResult(message.recipient_id, connector, final_state=State.REJECTD), []
        if len(pdus) == 1:  # the common case: no gather, no task around the one submit
            outcomes: Sequence[Submitted | Refused] = [await link.submitter.submit(pdus[0])]
        else:
            outcomes = await asyncio.gather(*(link.submitter.submit(pdu) for pdu in pdus))
        answered = [outcome.message_id for outcome in outcomes if isinstance(outcome, Submitted)]
        validity_s = self._settings.engine.validity_s
        return decide(message, connector, outcomes, self._clock(), validity_s), answered

    async def _idle(self) -> None:
        await idle(self._wake, self._idle_s, self._probe)
