"""The dispatcher's policy: what the store records for each combination of submit outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smsgw.domain.model import State
from smsgw.engine.dispatcher import RETRY_DELAYS_S, decide
from smsgw.smpp.esme import Refused, Submitted
from smsgw.store.records import DueMessage

CREATED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DAY = 86400.0


def due(attempts: int = 1) -> DueMessage:
    return DueMessage(
        recipient_id=7,
        msgid=1000000001,
        account_id=1,
        number="0912345678",
        attempts=attempts,
        encoding="ASCII",
        coding="gsm7",
        flash=False,
        body="hi",
        wapurl=None,
        segments=3,
        created_at=CREATED,
    )


def test_every_segment_accepted_records_their_ids_in_order() -> None:
    """All segments accepted: the SMSC ids are recorded in segment order."""
    outcomes = [Submitted("a1"), Submitted("a2"), Submitted("a3")]
    result = decide(due(), "sim", outcomes, CREATED, DAY)
    assert result.smsc_ids == ("a1", "a2", "a3")
    assert result.connector == "sim"


def test_a_permanent_refusal_rejects() -> None:
    """One permanent refusal makes the recipient REJECTD."""
    outcomes: list[Submitted | Refused] = [
        Submitted("a1"),
        Refused(0x0B, temporary=False, reason="bad dest"),
    ]
    assert decide(due(), "sim", outcomes, CREATED, DAY).final_state is State.REJECTD


def test_temporary_refusals_retry_with_growing_delays() -> None:
    """Temporary refusals retry after the attempt's delay, growing and then capped."""
    refused = [Refused(0x58, temporary=True, reason="throttled")]
    delays = [
        (decide(due(n), "sim", refused, CREATED, DAY).retry_at or CREATED) - CREATED
        for n in range(1, len(RETRY_DELAYS_S) + 3)
    ]
    assert delays == sorted(delays)
    assert delays[0] == timedelta(seconds=RETRY_DELAYS_S[0])
    assert delays[-1] == timedelta(seconds=RETRY_DELAYS_S[-1])


def test_temporary_refusal_after_validity_expires() -> None:
    """A retry that would fall after the validity period makes the recipient EXPIRED."""
    refused = [Refused(0x58, temporary=True, reason="throttled")]
    late = CREATED + timedelta(seconds=DAY - 1)
    assert decide(due(), "sim", refused, late, DAY).final_state is State.EXPIRED
