"""What the engine's claim loops share: waiting for work, and settling work in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import Final

from smsgw.errors import StoreError

# How often a loop alone in its process asks the store whether work is due: the most a
# message or a delivery report then waits for it, instead of engine.poll_s.
PROBE_S: Final = 0.05


async def idle(
    wake: asyncio.Event,
    idle_s: float,
    probe: Callable[[], Awaitable[bool]] | None = None,
    probe_s: float = PROBE_S,
) -> None:
    """Wait until woken or ``idle_s`` passed, whichever comes first; with a ``probe``, also
    until it says there is work, asked every ``probe_s``. A loop that nothing wakes (its work
    is written by another process) probes with a read, far cheaper than its claim, a write
    transaction."""
    wake.clear()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + idle_s
    step = idle_s if probe is None else probe_s
    while (left := deadline - loop.time()) > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(step, left)):
                await wake.wait()
        if wake.is_set() or (probe is not None and await probe()):
            return


def store_probe(
    due: Callable[[datetime], Awaitable[bool]], clock: Callable[[], datetime]
) -> Callable[[], Awaitable[bool]]:
    """A probe for `idle` asking ``due(clock())`` (a store's read); a store error counts as
    work, so that the claim meets the same failure and reports it."""

    async def probe() -> bool:
        try:
            return await due(clock())
        except StoreError:
            return True

    return probe


async def settle(tasks: Collection[asyncio.Task[None]], grace_s: float) -> None:
    """Let ``tasks`` finish for ``grace_s``, then cancel what is left and wait for it."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
