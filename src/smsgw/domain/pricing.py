"""Points: the rate of each destination prefix and the reply surcharge (PROTOCOL.md 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_POINTS_PER_SEGMENT: Final = 1
MESSAGES_PER_SURCHARGE_POINT: Final = 10


@dataclass(frozen=True, slots=True)
class Rate:
    """``points_per_segment`` for canonical numbers starting with ``prefix``."""

    prefix: str
    points_per_segment: int


class Rates:
    """A rate table; the longest prefix matching a canonical number wins (default 1 point).

    A lookup tries each prefix of the number, longest first, in a dict: its cost grows with
    the length of the number, not with the size of the table. A later rate for the same
    prefix replaces an earlier one.
    """

    def __init__(self, rates: Sequence[Rate] = ()) -> None:
        for rate in rates:
            if rate.points_per_segment < 0:
                raise ValueError(f"negative rate for prefix {rate.prefix!r}")
        self._by_prefix = {rate.prefix: rate.points_per_segment for rate in rates}
        self._longest = max((len(prefix) for prefix in self._by_prefix), default=0)

    def points_per_segment(self, number: str) -> int:
        """The rate of the longest configured prefix of ``number``."""
        for length in range(min(len(number), self._longest), -1, -1):
            points = self._by_prefix.get(number[:length])
            if points is not None:
                return points
        return DEFAULT_POINTS_PER_SEGMENT


def reply_surcharge(messages: int) -> int:
    """One point for every 10 messages or part of 10 (messages = recipients x segments)."""
    if messages <= 0:
        return 0
    return -(-messages // MESSAGES_PER_SURCHARGE_POINT)
