"""Delivery rules: a recipient's outcome, callback queries and retry times (PROTOCOL.md 4, 6).

Pure functions: no clock, no I/O; ``now`` is passed in.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode, urlsplit

from smsgw.domain.model import State
from smsgw.domain.times import format_taipei

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

MAGIC_ID_LINE: Final = "magicid=tccrd_sms_gateway_rpack"
_SUCCESSES: Final = frozenset({State.DELIVRD, State.ACCEPTD})


def receipt_state_is_final(state: State) -> bool:
    """Whether a receipt in ``state`` settles its segment (ENROUTE only reports progress)."""
    return state.final


def recipient_outcome(segment_states: Sequence[State | None]) -> State | None:
    """The recipient's final state from its segments' states, in segment order.

    None while any segment has no final state; DELIVRD when all are delivered; ACCEPTD when
    all succeeded with at least one ACCEPTD; otherwise the first failure's state.
    """
    if not segment_states or any(s is None or not s.final for s in segment_states):
        return None
    settled = [s for s in segment_states if s is not None]
    failures = [s for s in settled if s not in _SUCCESSES]
    if failures:
        return failures[0]
    return State.DELIVRD if all(s is State.DELIVRD for s in settled) else State.ACCEPTD


def _query(pairs: Sequence[tuple[str, object]]) -> str:
    # %20 rather than "+" for a space: every query parser decodes it the same way.
    return urlencode(pairs, quote_via=quote, safe="")


def dlr_query(msgid: int, state: State, number: str) -> str:
    """The query of a delivery report: ``msgid``, ``statuscode``, ``statusstr``, ``dstaddr``.

    What ``_query`` makes of them, without its general machinery (one per message): the
    integers and the state's name (capital letters) need no quoting.
    """
    return (
        f"msgid={int(msgid)}&statuscode={int(state.statuscode)}&statusstr={state.value}"
        f"&dstaddr={quote(number, safe='')}"
    )


def mo_query(  # noqa: PLR0917 - the parameters in the order of the wire query
    msgid: int, srcaddr: str, dstaddr: str, body: str, encoding: str, timestamp: datetime
) -> str:
    """The query of a forwarded reply; ``timestamp`` goes out in Taipei time."""
    return _query(
        [
            ("msgid", msgid),
            ("srcaddr", srcaddr),
            ("dstaddr", dstaddr),
            ("smbody", body),
            ("encoding", encoding),
            ("timestamp", format_taipei(timestamp)),
        ]
    )


def callback_url(base: str, query: str) -> str:
    """``base`` with ``query`` appended after ``?``, or after ``&`` when it has a query."""
    return f"{base}{_separator(base)}{query}"


@functools.lru_cache(maxsize=1024)  # a customer's code sends the same URL every time
def _separator(base: str) -> str:
    if base.endswith(("?", "&")):
        return ""
    return "&" if urlsplit(base).query else "?"


def next_attempt(attempts_done: int, delays: Sequence[float], now: datetime) -> datetime | None:
    """When to try again after ``attempts_done`` failed attempts; None once delays run out.

    ``delays[i]`` (seconds) follows failed attempt ``i + 1``, so there are
    ``1 + len(delays)`` attempts in all; with no failed attempt the next try is ``now``.
    """
    if attempts_done < 0:
        raise ValueError("attempts_done must not be negative")
    if attempts_done == 0:
        return now
    if attempts_done > len(delays):
        return None
    return now + timedelta(seconds=delays[attempts_done - 1])


def acknowledgement(msgid: int | str) -> str:
    """The answer by which a customer's endpoint acknowledges a callback for ``msgid``."""
    return f"{MAGIC_ID_LINE}\nmsgid={msgid}\n"


def is_ack(body: str, msgid: int) -> bool:
    """Whether a callback answer holds the magic acknowledgement lines for ``msgid``."""
    lines = {line.strip() for line in body.splitlines()}
    return MAGIC_ID_LINE in lines and f"msgid={msgid}" in lines
