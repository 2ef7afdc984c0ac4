from __future__ import annotations

import pytest

from smsgw.domain.pricing import Rate, Rates, reply_surcharge


def test_default_rate_is_one_point() -> None:
    """With no matching prefix a segment costs one point."""
    assert Rates().points_per_segment("0912345678") == 1
    assert Rates([Rate("+86", 3)]).points_per_segment("0912345678") == 1


def test_longest_prefix_wins() -> None:
    """The most specific configured prefix decides the rate."""
    rates = Rates([Rate("+", 5), Rate("+86", 3), Rate("+8613", 4), Rate("09", 2)])
    assert rates.points_per_segment("+8613681912700") == 4
    assert rates.points_per_segment("+8618612345678") == 3
    assert rates.points_per_segment("+14155552671") == 5
    assert rates.points_per_segment("0912345678") == 2


def test_empty_prefix_is_a_catch_all() -> None:
    """An empty prefix matches every number when nothing longer does."""
    rates = Rates([Rate("", 7), Rate("09", 2)])
    assert rates.points_per_segment("+14155552671") == 7
    assert rates.points_per_segment("0912345678") == 2


def test_later_rate_replaces_earlier_for_same_prefix() -> None:
    """Configuring a prefix twice keeps the last rate."""
    assert Rates([Rate("09", 2), Rate("09", 6)]).points_per_segment("0912345678") == 6


def test_negative_rate_is_refused() -> None:
    """A rate below zero is a configuration mistake."""
    with pytest.raises(ValueError, match="negative"):
        Rates([Rate("09", -1)])


@pytest.mark.parametrize(
    ("messages", "points"), [(0, 0), (1, 1), (9, 1), (10, 1), (11, 2), (20, 2), (21, 3)]
)
def test_reply_surcharge_per_ten_messages(messages: int, points: int) -> None:
    """One point per 10 messages or part of 10."""
    assert reply_surcharge(messages) == points
