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
