from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from smsgw.errors import StoreError
from smsgw.store.batching import GroupCommit

if TYPE_CHECKING:
    from collections.abc import Sequence


class RecordingCommit:
    """A commit that records its batches and finishes only when the test lets it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.started.set()
        await self.release.wait()
        if self.fail:
            raise RuntimeError("disk full")
        return [item * 10 for item in items]


async def test_concurrent_submits_share_one_commit() -> None:
    """Items submitted together go to one commit and each caller gets its own result."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit)
    assert await asyncio.gather(*(group.submit(n) for n in range(5))) == [0, 10, 20, 30, 40]
    assert commit.batches == [[0, 1, 2, 3, 4]]


async def test_no_answer_before_the_commit_returns() -> None:
    """A caller waits until the commit returned; items arriving meanwhile form the next batch."""
    commit = RecordingCommit()
    group = GroupCommit(commit)
    first = asyncio.create_task(group.submit(1))
    await commit.started.wait()
    second = asyncio.create_task(group.submit(2))
    third = asyncio.create_task(group.submit(3))
    assert not first.done()
    commit.release.set()
    assert [await first, await second, await third] == [10, 20, 30]
    assert commit.batches == [[1], [2, 3]]


async def test_batches_are_capped() -> None:
    """No batch holds more than max_batch items."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, max_batch=2)
    await asyncio.gather(*(group.submit(n) for n in range(5)))
    assert commit.batches == [[0, 1], [2, 3], [4]]


async def test_failed_commit_fails_every_caller_of_the_batch() -> None:
    """When the commit raises, every caller of that batch gets a StoreError."""
    commit = RecordingCommit()
    commit.fail = True
    commit.release.set()
    group = GroupCommit(commit)
    outcomes = await asyncio.gather(*(group.submit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(outcome, StoreError) for outcome in outcomes)
    assert "disk full" not in str(outcomes[0])
    commit.fail = False
    assert await group.submit(7) == 70


async def test_close_drains_then_refuses() -> None:
    """close() waits for queued items to commit, then submit raises StoreError."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit)
    *results, _ = await asyncio.gather(group.submit(1), group.submit(2), group.close())
    assert results == [10, 20]
    with pytest.raises(StoreError, match="closed"):
        await group.submit(3)


async def lingering(group: GroupCommit[int, int], item: int) -> asyncio.Task[int]:
    """Submit ``item`` and return its task once the flusher waits for more."""
    task = asyncio.create_task(group.submit(item))
    await until_lingering(group)
    return task


async def until_lingering(group: GroupCommit[int, int]) -> None:
    """A few turns of the loop (not a delay): the submit, then the flusher's start."""
    for _ in range(10):
        if group.lingering:
            return
        await asyncio.sleep(0)
    raise AssertionError("the flusher does not linger")


async def test_a_short_queue_waits_for_min_batch() -> None:
    """Fewer than min_batch queued items wait for more and leave together."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, min_batch=2, linger_s=60)
    first = await lingering(group, 1)
    assert not commit.started.is_set()
    assert [await group.submit(2), await first] == [20, 10]
    assert commit.batches == [[1, 2]]


async def test_after_a_commit_a_short_queue_waits_again() -> None:
    """Items queued during a commit, fewer than min_batch, wait for more after it."""
    commit = RecordingCommit()
    group = GroupCommit(commit, min_batch=2, linger_s=60)
    first = asyncio.gather(group.submit(1), group.submit(2))
    await commit.started.wait()
    third = asyncio.create_task(group.submit(3))
    commit.started.clear()
    commit.release.set()
    assert list(await first) == [10, 20]
    await until_lingering(group)
    assert not commit.started.is_set()
    assert [await group.submit(4), await third] == [40, 30]
    assert commit.batches == [[1, 2], [3, 4]]


async def test_without_a_linger_an_item_commits_at_once() -> None:
    """With no linger_s, a lone item reaching an idle group is committed at once."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, min_batch=100)
    assert [await group.submit(1), await group.submit(2)] == [10, 20]
    assert commit.batches == [[1], [2]]


async def test_the_linger_is_bounded() -> None:
    """A short queue that never reaches min_batch still commits once the linger is over."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, min_batch=100, linger_s=0.001)
    assert await group.submit(1) == 10
    assert commit.batches == [[1]]


async def test_close_ends_the_linger_and_commits_what_waits() -> None:
    """close() does not wait out the linger: queued items commit at once."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, min_batch=100, linger_s=60)
    first = await lingering(group, 1)
    await group.close()
    assert await first == 10
    assert commit.batches == [[1]]


async def test_submit_all_commits_its_items_together_and_answers_in_order() -> None:
    """Several items handed over in one call share a commit and come back in their order."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit)
    assert await group.submit_all([3, 1, 2]) == [30, 10, 20]
    assert commit.batches == [[3, 1, 2]]


async def test_submit_all_respects_the_batch_cap() -> None:
    """Items beyond ``max_batch`` go to the next commit."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, max_batch=2)
    assert await group.submit_all([1, 2, 3]) == [10, 20, 30]
    assert commit.batches == [[1, 2], [3]]
