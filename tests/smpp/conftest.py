"""Fixtures shared by the SMPP tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tests.smpp.fakesmsc import FakeSmsc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    """A scriptable SMSC on a free loopback port, stopped after the test."""
    fake = FakeSmsc()
    await fake.start()
    yield fake
    await fake.stop()
