"""What the engine's claim loops share: waiting for work, and settling work in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection


async def idle(wake: asyncio.Event, idle_s: float) -> None:
    """Wait until woken or ``idle_s`` passed, whichever comes first."""
    wake.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=idle_s)


async def settle(tasks: Collection[asyncio.Task[None]], grace_s: float) -> None:
    """Let ``tasks`` finish for ``grace_s``, then cancel what is left and wait for it."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
