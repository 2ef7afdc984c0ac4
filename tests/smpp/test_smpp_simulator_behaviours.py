"""The simulator's behaviours as pure decisions: time and randomness passed in."""

from __future__ import annotations

import random

import pytest

from smsgw.config import SimulatorRule, SimulatorSettings
from smsgw.smpp import CommandStatus, SubmitSm
from smsgw.smpp.simulator.behaviours import (
    Decision,
    ReceiptJitter,
    StallReads,
    Throttle,
    decide,
    link_behaviours,
    submit_behaviours,
)
from smsgw.smpp.simulator.messages import mo_deliver_sms, preview

SUBMIT = SubmitSm(destination_addr="886912340000", registered_delivery=1)


@pytest.mark.parametrize(
    ("now", "pause"),
    [(0.0, 0.0), (9.9, 0.0), (10.0, 3.0), (12.5, 0.5), (13.0, 0.0), (19.0, 0.0), (21.0, 2.0)],
)
def test_stall_reads_pauses_at_the_start_of_each_period(now: float, pause: float) -> None:
    """Reads pause for stall_s seconds at every multiple of every_s after the start."""
    assert StallReads(every_s=10.0, stall_s=3.0, started_at=0.0).read_pause(now) == pause


def test_throttle_refills_with_time() -> None:
    """The throttle lets tps submits through per second and refills as time passes."""
    throttle = Throttle(tps=2)
    statuses = [throttle.decide(SUBMIT, Decision(), 0.0).status for _ in range(3)]
    assert statuses == [0, 0, CommandStatus.ESME_RTHROTTLED]
    assert throttle.decide(SUBMIT, Decision(), 0.5).accepted
    assert not throttle.decide(SUBMIT, Decision(), 0.5).accepted


def test_rules_override_the_outcome_mix_and_throttle_comes_first() -> None:
    """A matching rule fixes the outcome after the mix; a throttled submit meets no rule."""
    settings = SimulatorSettings(
        outcomes={"DELIVRD": 1.0},
        rules=(SimulatorRule(suffix="0000", outcome="EXPIRED"),),
        throttle_tps=1,
        receipt_delay_s=2.5,
        duplicate_receipts=True,
    )
    pipeline = submit_behaviours(settings, random.Random(1))  # noqa: S311
    first = decide(pipeline, SUBMIT, 0.0)
    second = decide(pipeline, SUBMIT, 0.0)
    other = decide(pipeline, SubmitSm(destination_addr="886912345678"), 5.0)
    assert first == Decision(outcome="EXPIRED", receipt_delay_s=2.5, copies=2)
    assert second.status == CommandStatus.ESME_RTHROTTLED
    assert other.outcome == "DELIVRD"


def test_receipt_jitter_adds_a_seeded_draw_within_its_bound() -> None:
    """Each receipt waits delay_s plus a draw in [0, jitter_s]; the same seed, the same draws."""
    settings = SimulatorSettings(receipt_delay_s=2.0, receipt_jitter_s=3.0)

    def delays(seed: int) -> list[float]:
        pipeline = submit_behaviours(settings, random.Random(seed))  # noqa: S311
        return [decide(pipeline, SUBMIT, 0.0).receipt_delay_s for _ in range(200)]

    drawn = delays(5)
    assert all(2.0 <= delay <= 5.0 for delay in drawn)
    assert len(set(drawn)) == len(drawn)
    assert max(drawn) - min(drawn) > 2.5  # spread over the bound, not bunched at one end
    assert drawn == delays(5)
    assert drawn != delays(6)


def test_receipt_jitter_leaves_refused_submits_alone() -> None:
    """A refused submit gets no receipt, so no draw: the decision passes unchanged."""
    refused = Decision(status=CommandStatus.ESME_RTHROTTLED)
    jitter = ReceiptJitter(1.0, random.Random(1))  # noqa: S311
    assert jitter.decide(SUBMIT, refused, 0.0) is refused


def test_no_jitter_no_draw() -> None:
    """Without receipt_jitter_s every receipt waits exactly receipt_delay_s."""
    pipeline = submit_behaviours(SimulatorSettings(receipt_delay_s=2.0), random.Random(1))  # noqa: S311
    assert {decide(pipeline, SUBMIT, 0.0).receipt_delay_s for _ in range(50)} == {2.0}


def test_only_configured_link_behaviours_run() -> None:
    """Without drop or stall settings no link behaviour is built."""
    assert link_behaviours(SimulatorSettings(), 0.0) == []
    built = link_behaviours(SimulatorSettings(drop_every_s=3, stall_every_s=5, stall_s=1), 0.0)
    assert [behaviour.drop_after_s() for behaviour in built] == [3, None]


def test_receipt_preview_skips_the_udh_and_decodes_ucs2() -> None:
    """The receipt text is the start of the message, without its concatenation header."""
    body = bytes((5, 0, 3, 9, 2, 1)) + "你好世界".encode("utf-16-be")
    submit = SubmitSm(esm_class=0x40, data_coding=8, short_message=body)
    assert preview(submit) == "你好世界"


def test_long_gsm_mo_is_split_with_one_reference() -> None:
    """A 200-character GSM MO becomes two deliver_sm with the same 8-bit reference."""
    parts = mo_deliver_sms("0912345678", "0911000000", "a" * 200, reference=300)
    assert [part.short_message[:6] for part in parts] == [
        bytes((5, 0, 3, 44, 2, 1)),
        bytes((5, 0, 3, 44, 2, 2)),
    ]
    assert b"".join(part.short_message[6:] for part in parts) == b"a" * 200
