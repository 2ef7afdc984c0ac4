"""msgid blocks: each process reserves ranges from the database counter and hands them out.

A reservation is a short transaction of its own, so two processes never hand out the same
msgid, and the hot path touches the counter row once per block, not once per message.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from smsgw.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

FIRST_MSGID = 1_000_000_000
LAST_MSGID = 9_999_999_999_999_999  # 16 digits: what smsgo clients are known to parse


class MsgidBlocks:
    """The msgids this process has reserved and not yet used."""

    def __init__(self, block_size: int = 1000) -> None:
        if block_size < 1:
            raise ValueError("block_size must be positive")
        self.block_size = block_size
        self._ranges: deque[range] = deque()

    @property
    def available(self) -> int:
        return sum(len(block) for block in self._ranges)

    def shortfall(self, needed: int) -> int:
        """How many to reserve so that ``needed`` msgids are at hand (0 if enough)."""
        missing = needed - self.available
        return max(missing, self.block_size) if missing > 0 else 0

    def add(self, first: int, count: int) -> None:
        block = range(first, first + count)
        if block.start < 1 or block.stop - 1 > LAST_MSGID:
            raise StoreError("msgid space exhausted")
        self._ranges.append(block)

    def take_many(self, count: int) -> list[int]:
        return [self.take() for _ in range(count)]

    def put_back(self, msgids: Sequence[int]) -> None:
        """Hand ``msgids`` (taken, not used) out again first, in their order."""
        self._ranges.extendleft(range(msgid, msgid + 1) for msgid in reversed(msgids))

    def take(self) -> int:
        if not self._ranges:
            raise StoreError("no msgid reserved")
        block = self._ranges[0]
        if len(block) == 1:
            self._ranges.popleft()
        else:
            self._ranges[0] = block[1:]
        return block[0]
