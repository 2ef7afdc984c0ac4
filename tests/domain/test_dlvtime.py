from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smsgw.domain.times import format_taipei, parse_dlvtime
from smsgw.errors import CgiError

NOW = datetime(2024, 3, 1, 4, 0, 0, tzinfo=UTC)  # 2024/03/01 12:00:00 in Taipei


@pytest.mark.parametrize("value", ["2024/03/02 09:30:00", "2024-03-02 09:30:00"])
def test_parses_both_formats_as_taipei_time(value: str) -> None:
    """Slash and dash dates are Taipei time and come back in UTC."""
    assert parse_dlvtime(value, NOW) == datetime(2024, 3, 2, 1, 30, tzinfo=UTC)


def test_empty_is_none() -> None:
    """No dlvtime means no schedule."""
    assert parse_dlvtime("", NOW) is None
    assert parse_dlvtime("  ", NOW) is None


def test_past_and_present_are_returned_as_is() -> None:
    """A time not in the future is returned for the caller to send at once."""
    assert parse_dlvtime("2024/03/01 12:00:00", NOW) == NOW
    assert parse_dlvtime("2000/01/01 08:00:00", NOW) == datetime(2000, 1, 1, tzinfo=UTC)


def test_366_days_ahead_is_the_limit() -> None:
    """Exactly 366 days ahead is accepted, one second more is refused."""
    limit = NOW + timedelta(days=366)
    assert parse_dlvtime(format_taipei(limit), NOW) == limit
    with pytest.raises(CgiError) as caught:
        parse_dlvtime(format_taipei(limit + timedelta(seconds=1)), NOW)
    assert caught.value.detail == "dlvtime"


@pytest.mark.parametrize(
    "value",
    [
        "2024/02/30 10:00:00",
        "2024/13/01 10:00:00",
        "2024/03/02 24:00:00",
        "2024/03/02 10:60:00",
        "2024/03/02",
        "2024/03/02T10:00:00",
        "2024/03-02 10:00:00",
        "24/03/02 10:00:00",
        "2024/3/2 10:00:00",
        "0001/01/01 00:00:00",
        "tomorrow",
    ],
)
def test_malformed_or_impossible_is_cgi_error(value: str) -> None:
    """A dlvtime that is not a real time in the accepted formats is refused."""
    with pytest.raises(CgiError) as caught:
        parse_dlvtime(value, NOW)
    assert caught.value.detail == "dlvtime"


def test_format_taipei() -> None:
    """A moment in any zone is written in Taipei time."""
    assert format_taipei(NOW) == "2024/03/01 12:00:00"
    moment = datetime(2024, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert format_taipei(moment) == "2025/01/01 12:00:00"


def test_format_taipei_refuses_naive() -> None:
    """A naive datetime has no meaning here."""
    with pytest.raises(ValueError, match="aware"):
        format_taipei(datetime(2024, 1, 1))  # noqa: DTZ001
