"""What every gateway process sets in the interpreter before it serves (smsgw.server)."""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING

import pytest

from smsgw.server import (
    GC_YOUNG_THRESHOLD,
    GIL_SWITCH_INTERVAL_S,
    collect_garbage_less_often,
    share_the_gil_quickly,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def restored_interpreter() -> Iterator[None]:
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("restored_interpreter")
def test_the_collector_runs_rarely_and_skips_what_was_alive_at_start() -> None:
    """Objects alive at start are frozen out of collections; young ones wait for 20,000."""
    gc.unfreeze()
    collect_garbage_less_often()
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_interpreter")
def test_cyclic_garbage_is_still_collected() -> None:
    """A raised threshold delays collections; garbage in cycles still goes."""
    collect_garbage_less_often()

    class Node:
        other: object = None

    node = Node()
    node.other = node
    del node
    assert gc.collect() >= 1


@pytest.mark.usefixtures("restored_interpreter")
def test_the_gil_switch_interval_is_short() -> None:
    share_the_gil_quickly()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
