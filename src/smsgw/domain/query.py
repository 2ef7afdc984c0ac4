"""Parameters of the query and cancel endpoints: msgids and number filters (PROTOCOL.md 5)."""

from __future__ import annotations

import re
from typing import Final

from smsgw.domain.numbers import canonical
from smsgw.errors import BNumberError, CgiError

MAX_BULK_MSGIDS: Final = 100

_MSGID = re.compile(r"[0-9]{1,16}")


def parse_msgid(value: str | None) -> int:
    """A positive decimal msgid of at most 16 digits; ``CgiError("msgid")`` otherwise."""
    text = (value or "").strip()
    if not _MSGID.fullmatch(text) or int(text) == 0:
        raise CgiError(detail="msgid")
    return int(text)


def parse_msgid_list(value: str | None, limit: int = MAX_BULK_MSGIDS) -> list[int]:
    """Comma-separated msgids, each once in first-given order; 1 to ``limit`` of them."""
    items = [item for item in (value or "").split(",") if item.strip()]
    msgids = list(dict.fromkeys(parse_msgid(item) for item in items))
    if not msgids or len(msgids) > limit:
        raise CgiError(detail="msgid")
    return msgids


def parse_number_filter(value: str | None) -> list[str] | None:
    """Canonical forms of comma-separated numbers, or None for no filter; never raises.

    An item that is not a valid number is kept as its stripped text, so it matches nothing.
    """
    items = [item for item in (value or "").split(",") if item.strip()]
    if not items:
        return None
    return list(dict.fromkeys(_canonical_or_raw(item) for item in items))


def _canonical_or_raw(item: str) -> str:
    try:
        return canonical(item)
    except BNumberError:
        return item.strip()
