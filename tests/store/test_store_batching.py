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


async def lingering_after_first_commit(
    group: GroupCommit[int, int], commit: RecordingCommit
) -> asyncio.Task[int]:
    """Commit item 1, queue item 2 during that commit; return item 2's task, now lingering."""
    first = asyncio.create_task(group.submit(1))
    await commit.started.wait()
    second = asyncio.create_task(group.submit(2))
    commit.started.clear()
    commit.release.set()
    assert await first == 10
    return second


async def test_after_a_commit_a_short_queue_waits_for_min_batch() -> None:
    """Right after a commit, fewer than min_batch queued items wait and leave together."""
    commit = RecordingCommit()
    group = GroupCommit(commit, min_batch=2, linger_s=60)
    second = await lingering_after_first_commit(group, commit)
    assert not commit.started.is_set()
    assert list(await asyncio.gather(second, group.submit(3))) == [20, 30]
    assert commit.batches == [[1], [2, 3]]


async def test_an_item_reaching_an_idle_group_commits_at_once() -> None:
    """With nothing committing, an item is committed at once, whatever the linger."""
    commit = RecordingCommit()
    commit.release.set()
    group = GroupCommit(commit, min_batch=100, linger_s=60)
    assert [await group.submit(1), await group.submit(2)] == [10, 20]
    assert commit.batches == [[1], [2]]


async def test_the_linger_is_bounded() -> None:
    """A short queue that never reaches min_batch still commits once the linger is over."""
    commit = RecordingCommit()
    group = GroupCommit(commit, min_batch=100, linger_s=0.001)
    second = await lingering_after_first_commit(group, commit)
    assert await second == 20
    assert commit.batches == [[1], [2]]


async def test_close_ends_the_linger_and_commits_what_waits() -> None:
    """close() does not wait out the linger: queued items commit at once."""
    commit = RecordingCommit()
    group = GroupCommit(commit, min_batch=100, linger_s=60)
    second = await lingering_after_first_commit(group, commit)
    await group.close()
    assert await second == 20
    assert commit.batches == [[1], [2]]


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
