"""What the simulator does with each submit and each link: one small class per behaviour.

Rules
=====

1. A submit behaviour is a step in a pipeline: it receives the submit_sm, the Decision made so
   far and the current time, and returns the Decision, changed or not. The order of
   ``submit_behaviours`` is the order of precedence: the throttle sees a submit first (a
   throttled submit is refused before anything looks at it), the outcome mix picks a fate, then
   the per-number rules override it, then the receipt shapers (delay, jitter, duplicates, early).
2. A link behaviour says how a connection misbehaves: how long reads must pause now, and after
   how many seconds a connection is dropped; ``GarbageBytes`` says what to write
   into it, and how often.
3. Behaviours read no clock: time is passed in. The only randomness is the RNG passed in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from smsgw.smpp.constants import CommandStatus

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from smsgw.config import SimulatorRule, SimulatorSettings
    from smsgw.smpp.pdu import SubmitSm


@dataclass(frozen=True, slots=True)
class Decision:
    """The fate of one submit_sm: refused with ``status``, or accepted with a receipt plan."""

    status: int = CommandStatus.ESME_ROK
    outcome: str = "DELIVRD"
    receipt_delay_s: float = 0.0
    copies: int = 1
    early: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == CommandStatus.ESME_ROK


class SubmitBehaviour(Protocol):
    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:
        """The decision after this behaviour had its say."""
        ...


class LinkBehaviour(Protocol):
    def read_pause(self, now: float) -> float:
        """Seconds reads must wait from ``now`` (0: read on)."""
        ...

    def drop_after_s(self) -> float | None:
        """Seconds after which a new connection is dropped, or None."""
        ...


class Throttle:
    """Refuses with ESME_RTHROTTLED above ``tps`` submits per second (a token bucket)."""

    def __init__(self, tps: float) -> None:
        self._tps = tps
        self._capacity = max(tps, 1.0)
        self._tokens = self._capacity
        self._last: float | None = None

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        if not decision.accepted:
            return decision
        elapsed = 0.0 if self._last is None else now - self._last
        self._last = now
        self._tokens = min(self._capacity, self._tokens + elapsed * self._tps)
        if self._tokens < 1:
            return replace(decision, status=CommandStatus.ESME_RTHROTTLED)
        self._tokens -= 1
        return decision


class OutcomeMix:
    """Picks the receipt outcome from weighted choices, e.g. 95% DELIVRD, 5% UNDELIV."""

    def __init__(self, weights: Mapping[str, float], rng: random.Random) -> None:
        self._outcomes = list(weights)
        # What choices() computes from the weights on every call (same draws, same picks).
        self._cumulative_weights = list(itertools.accumulate(weights.values()))
        self._rng = rng

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        outcome = self._rng.choices(self._outcomes, cum_weights=self._cumulative_weights)[0]
        # replace() is the costliest step of a submit; skip it when nothing changes.
        return decision if outcome == decision.outcome else replace(decision, outcome=outcome)


class NumberRule:
    """Destinations with a prefix or suffix always get one outcome, or are refused at submit."""

    def __init__(self, rule: SimulatorRule) -> None:
        self._rule = rule

    def matches(self, destination: str) -> bool:
        rule = self._rule
        if rule.prefix:
            return destination.startswith(rule.prefix)
        return bool(rule.suffix) and destination.endswith(rule.suffix)

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        if not decision.accepted or not self.matches(submit.destination_addr):
            return decision
        if self._rule.submit_status is not None:
            return replace(decision, status=CommandStatus[self._rule.submit_status])
        return replace(decision, outcome=self._rule.outcome or decision.outcome)


class ReceiptDelay:
    """Sends the receipt a fixed number of seconds after the submit."""

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        if decision.receipt_delay_s == self._delay_s:
            return decision
        return replace(decision, receipt_delay_s=self._delay_s)


class ReceiptJitter:
    """Adds up to ``jitter_s`` seconds, drawn per submit, to the receipt delay.

    A real SMSC reports each handset when it answers, not in submit order; receipts with
    different delays fall due, and so go out, in a shuffled order. The draw comes from the
    simulator's RNG, so a seeded run shuffles the same way every time.
    """

    def __init__(self, jitter_s: float, rng: random.Random) -> None:
        self._jitter_s = jitter_s
        self._rng = rng

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        if not decision.accepted:
            return decision
        extra_s = self._rng.uniform(0.0, self._jitter_s)
        return replace(decision, receipt_delay_s=decision.receipt_delay_s + extra_s)


class DuplicateReceipts:
    """Sends every receipt twice, as SMSCs do after a lost deliver_sm_resp."""

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        return replace(decision, copies=2)


class EarlyReceipts:
    """Sends the receipt before the submit_sm_resp that carries its message id."""

    def decide(self, submit: SubmitSm, decision: Decision, now: float) -> Decision:  # noqa: ARG002
        return replace(decision, early=True)


class DropConnections:
    """Drops every connection ``every_s`` seconds after it was opened, without an unbind."""

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s

    def read_pause(self, now: float) -> float:  # noqa: ARG002
        return 0.0

    def drop_after_s(self) -> float | None:
        return self._every_s


class StallReads:
    """Stops reading for ``stall_s`` seconds every ``every_s`` seconds from ``started_at``."""

    def __init__(self, every_s: float, stall_s: float, started_at: float) -> None:
        self._every_s = every_s
        self._stall_s = stall_s
        self._started_at = started_at

    def read_pause(self, now: float) -> float:
        elapsed = now - self._started_at
        if elapsed < self._every_s:
            return 0.0
        into_period = elapsed % self._every_s
        return max(self._stall_s - into_period, 0.0)

    def drop_after_s(self) -> float | None:
        return None


class GarbageBytes:
    """Writes bytes no SMPP peer can frame into each connection every ``every_s`` seconds.

    The first four bytes, read as command_length, are 0 (below the 16 of a bare header): the
    peer knows at once that the stream is broken, rather than waiting for a PDU that never ends.
    """

    SIZE = 32

    def __init__(self, every_s: float, rng: random.Random) -> None:
        self.every_s = every_s
        self._rng = rng

    def garbage(self) -> bytes:
        return bytes(4) + self._rng.randbytes(self.SIZE - 4)


def submit_behaviours(settings: SimulatorSettings, rng: random.Random) -> list[SubmitBehaviour]:
    """The submit pipeline the settings ask for, in order of precedence (see rule 1)."""
    pipeline: list[SubmitBehaviour] = []
    if settings.throttle_tps > 0:
        pipeline.append(Throttle(settings.throttle_tps))
    pipeline.append(OutcomeMix(settings.outcomes, rng))
    pipeline.extend(NumberRule(rule) for rule in settings.rules)
    pipeline.append(ReceiptDelay(settings.receipt_delay_s))
    if settings.receipt_jitter_s > 0:
        pipeline.append(ReceiptJitter(settings.receipt_jitter_s, rng))
    if settings.duplicate_receipts:
        pipeline.append(DuplicateReceipts())
    if settings.early_receipts:
        pipeline.append(EarlyReceipts())
    return pipeline


def link_behaviours(settings: SimulatorSettings, started_at: float) -> list[LinkBehaviour]:
    """The link misbehaviours the settings ask for."""
    behaviours: list[LinkBehaviour] = []
    if settings.drop_every_s > 0:
        behaviours.append(DropConnections(settings.drop_every_s))
    if settings.stall_every_s > 0 and settings.stall_s > 0:
        behaviours.append(StallReads(settings.stall_every_s, settings.stall_s, started_at))
    return behaviours


def decide(pipeline: list[SubmitBehaviour], submit: SubmitSm, now: float) -> Decision:
    """Runs ``submit`` through the pipeline."""
    decision = Decision()
    for behaviour in pipeline:
        decision = behaviour.decide(submit, decision, now)
    return decision
