from __future__ import annotations

import pytest

from smsgw.errors import StoreError
from smsgw.store.msgids import LAST_MSGID, MsgidBlocks


def test_hands_out_reserved_msgids_in_order_across_blocks() -> None:
    """take() uses the blocks in the order they were reserved, without gaps or repeats."""
    blocks = MsgidBlocks(block_size=2)
    blocks.add(100, 2)
    blocks.add(500, 2)
    assert [blocks.take() for _ in range(4)] == [100, 101, 500, 501]
    assert blocks.available == 0


def test_shortfall_reserves_at_least_a_block() -> None:
    """shortfall is 0 when enough are at hand, else the larger of block size and the need."""
    blocks = MsgidBlocks(block_size=10)
    assert blocks.shortfall(3) == 10
    assert blocks.shortfall(25) == 25
    blocks.add(1, 10)
    assert blocks.shortfall(10) == 0
    assert blocks.shortfall(11) == 10


def test_take_without_reservation_fails() -> None:
    """take() with nothing reserved raises StoreError."""
    with pytest.raises(StoreError):
        MsgidBlocks().take()


def test_block_beyond_sixteen_digits_is_refused() -> None:
    """A block that would exceed 16 digits raises StoreError."""
    with pytest.raises(StoreError, match="exhausted"):
        MsgidBlocks().add(LAST_MSGID, 2)


def test_block_size_must_be_positive() -> None:
    """A block size below one is a programming error."""
    with pytest.raises(ValueError, match="positive"):
        MsgidBlocks(0)


def test_put_back_msgids_are_taken_again_first_in_order() -> None:
    """Msgids taken but not used come out again before the rest of their blocks."""
    blocks = MsgidBlocks(block_size=3)
    blocks.add(100, 3)
    blocks.add(500, 3)
    taken = blocks.take_many(4)
    assert taken == [100, 101, 102, 500]
    blocks.put_back(taken[2:])
    assert blocks.available == 4
    assert blocks.take_many(4) == [102, 500, 501, 502]
