"""Test doubles of the engine's collaborators, shipped with the package (as httpx does).

- ``FakeClock``: a wall clock that moves only when told, for timer-driven behaviour.
- ``ScriptedSubmitter``: a connector that answers submit_sm from a script instead of an SMSC.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

from smsgw.smpp.esme import Refused, Submitted
from smsgw.smpp.pdu import SubmitSm


class FakeClock:
    """Returns ``now`` until ``advance`` or ``set`` moves it; pass it where a Clock is wanted."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


class ScriptedSubmitter:
    """Answers each submit_sm with the next scripted outcome, then accepts every one.

    Accepted submits get the SMSC ids ``m1``, ``m2``, ...; ``submitted`` keeps every PDU.
    With a ``gate``, each submit is answered only once the gate is set (an SMSC that has
    not answered yet).
    """

    def __init__(
        self, script: Iterable[Submitted | Refused] = (), gate: asyncio.Event | None = None
    ) -> None:
        self.script: deque[Submitted | Refused] = deque(script)
        self.submitted: list[SubmitSm] = []
        self._ids = itertools.count(1)
        self._gate = gate

    async def submit(self, pdu: SubmitSm) -> Submitted | Refused:
        self.submitted.append(pdu)
        if self._gate is not None:
            await self._gate.wait()
        if self.script:
            return self.script.popleft()
        return Submitted(f"m{next(self._ids)}")
