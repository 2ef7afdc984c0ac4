"""Times on the wire: ``dlvtime`` in and timestamps out, in Asia/Taipei (PROTOCOL.md 3, 6)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from smsgw.errors import CgiError

TAIPEI: Final = ZoneInfo("Asia/Taipei")
MAX_SCHEDULE_AHEAD: Final = timedelta(days=366)
WIRE_FORMAT: Final = "%Y/%m/%d %H:%M:%S"

_DLVTIME = re.compile(
    r"(?P<year>[0-9]{4})(?P<sep>[/-])(?P<month>[0-9]{2})(?P=sep)(?P<day>[0-9]{2})"
    r" (?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
)
_FIELDS: Final = ("year", "month", "day", "hour", "minute", "second")


def parse_dlvtime(value: str, now: datetime) -> datetime | None:
    """``dlvtime`` (Taipei time) as an aware UTC datetime; None when empty.

    A past time is returned as is (the caller sends at once). Malformed text, an impossible
    date, or a time more than 366 days after ``now`` is ``CgiError("dlvtime")``.
    """
    text = value.strip()
    if not text:
        return None
    match = _DLVTIME.fullmatch(text)
    if match is None:
        raise CgiError(detail="dlvtime")
    try:
        year, month, day, hour, minute, second = (int(match.group(f)) for f in _FIELDS)
        local = datetime(year, month, day, hour, minute, second, tzinfo=TAIPEI)
        moment = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CgiError(detail="dlvtime") from None
    if moment - now > MAX_SCHEDULE_AHEAD:
        raise CgiError(detail="dlvtime")
    return moment


def format_taipei(moment: datetime) -> str:
    """An aware datetime as ``YYYY/MM/DD hh:mm:ss`` in Taipei time."""
    if moment.tzinfo is None:
        raise ValueError("format_taipei needs an aware datetime")
    return moment.astimezone(TAIPEI).strftime(WIRE_FORMAT)
