"""Group commit: many concurrent callers, one transaction, one durable commit.

Callers ``submit`` an item and wait. A single flusher task takes everything queued (at most
``max_batch`` items), hands it to ``commit`` and resolves each caller only after ``commit``
returned, that is after the transaction is durable. While one batch commits the next one
accumulates, so batches grow with load and no timer is needed.

With few concurrent callers (the callbacks worker records at most a handful of outcomes while
one commit runs) batches stay tiny and each pays a whole commit. So do all batches when
``commit`` does not yield to the loop (a store writing inline, on the loop's own thread):
nothing can queue while it runs. ``linger_s`` and ``min_batch`` trade a bounded delay for
fuller batches: before each batch, if some items but fewer than ``min_batch`` are queued,
the flusher waits up to ``linger_s`` for more. Without ``linger_s`` an item is never
delayed, and ``close`` ends a wait at once.

If ``commit`` raises, every caller of that batch gets a StoreError (the API answers -10).
A caller cancelled while waiting does not undo its item: it commits with its batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from smsgw.errors import StoreError

Item = TypeVar("Item")
Result = TypeVar("Result")

# Callback outcomes: nothing acknowledged to anyone waits on them (the customer already
# acknowledged), so a few milliseconds' delay buys commits many times fuller.
OUTCOMES_MIN_BATCH = 64
OUTCOMES_LINGER_S = 0.005

# Engine batches (submit results, receipts, callback outcomes) share the writer with accepts;
# a smaller cap keeps the commit an accept may wait behind short (issue 6).
ENGINE_MAX_BATCH = 128
# Receipts come in storms (a whole campaign's receipts within seconds, in any order, each
# touching its own pages): twice the rows per commit took bench/storm.py from 4,280 to 5,356
# receipts/s with 100k pending, while a burst's sendsms p99 did not move.
RECEIPTS_MAX_BATCH = 256
# A store writing inline (the engine's own processes; see smsgw.store.sqlite) forms batches
# only while lingering: up to 3 ms for 64 items. Without it, submit results and receipts
# committed ~33 at a time and callback outcomes ~3 (bench/e2e.py).
ENGINE_MIN_BATCH = 64
ENGINE_LINGER_S = 0.003

CommitBatch = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        commit: CommitBatch[Item, Result],
        *,
        max_batch: int = 512,
        min_batch: int = 1,
        linger_s: float = 0.0,
    ) -> None:
        self._commit = commit
        self.max_batch = max_batch
        self.min_batch = min(min_batch, max_batch)
        self.linger_s = linger_s
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._enough: asyncio.Event | None = None  # set while lingering, fired by min_batch
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def lingering(self) -> bool:
        """The flusher is waiting for ``min_batch`` items (or ``linger_s``) to commit."""
        return self._enough is not None

    async def submit(self, item: Item) -> Result:
        (future,) = self._enqueue([item])
        return await future

    async def submit_all(self, items: Sequence[Item]) -> list[Result]:
        """``submit`` for several items, waited on together (no task per item)."""
        futures = self._enqueue(items)
        if len(futures) == 1:  # the engine's usual call: one item, no gathering future
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _enqueue(self, items: Sequence[Item]) -> list[asyncio.Future[Result]]:
        if self._closed:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Result]] = [loop.create_future() for _ in items]
        self._queue.extend(zip(items, futures, strict=True))
        if self._enough is not None and self.pending >= self.min_batch:
            self._enough.set()
        if self._flusher is None:
            self._flusher = loop.create_task(self._drain())
        return futures

    async def close(self) -> None:
        """Refuse new items, then wait until every queued item is committed."""
        self._closed = True
        if self._enough is not None:
            self._enough.set()
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._linger()
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, self.pending))]
                await self._commit_and_resolve(batch)
        finally:
            self._flusher = None

    async def _linger(self) -> None:
        if self._closed or self.linger_s <= 0 or not 0 < self.pending < self.min_batch:
            return
        self._enough = asyncio.Event()
        try:
            async with asyncio.timeout(self.linger_s):
                await self._enough.wait()
        except TimeoutError:
            pass
        finally:
            self._enough = None

    async def _commit_and_resolve(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._commit([item for item, _ in batch])
        # Any failure must reach every waiting caller; a dead flusher would hang them all.
        except Exception as exc:  # noqa: BLE001
            message = str(exc) if isinstance(exc, StoreError) else "the batch did not commit"
            for _, future in batch:
                if not future.done():
                    future.set_exception(_failure(message, exc))
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _failure(message: str, cause: Exception) -> StoreError:
    error = StoreError(message)
    error.__cause__ = cause
    return error
