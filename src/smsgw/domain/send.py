"""sendsms validation and pricing: request parameters in, a priced SendPlan out (PROTOCOL.md 2, 3).

Faults are checked in the order of PROTOCOL.md section 2 (after authentication, which the
caller did), and the first one answers:

1. unknown ``encoding``                                    EncodingError     -7
2. zero or more than 50 numbers, counted as given          MsisdnAmountError -9
3. a number that is not a mobile number, or has no route   BNumberError      -5
4. an international number with a domestic-only encoding   EncodingError     -7
5. any other bad parameter (detail names it)               CgiError          -1

Duplicate numbers count once for pricing and recipients, in first-given order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from smsgw.domain.model import RecipientPlan, SendPlan
from smsgw.domain.numbers import canonical, is_international, safe_detail, split_numbers
from smsgw.domain.pricing import Rates, reply_surcharge
from smsgw.domain.text import ENCODINGS, plan_text
from smsgw.domain.times import parse_dlvtime
from smsgw.domain.urls import check_callback_url
from smsgw.errors import BNumberError, CgiError, EncodingError, MsisdnAmountError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from smsgw.domain.text import TextPlan

DEFAULT_ENCODING: Final = "BIG5"
MAX_NUMBERS: Final = 50
# Document note 5 (international numbers) and the replyurl/replydays rows.
PLAIN_ENCODINGS: Final = frozenset({"BIG5", "ASCII", "UCS2"})
REPLYURL_MAX_LENGTH: Final = 300
RESPONSE_MAX_LENGTH: Final = 1024
DEFAULT_REPLYDAYS: Final = 3
MAX_REPLYDAYS: Final = 30

_REPLYDAYS = re.compile(r"[0-9]{1,2}")


def _route_all(_number: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Options:
    """The parameters checked in step 5, other than the text itself."""

    wapurl: str | None
    response: str | None
    replyurl: str | None
    replydays: int
    dlvtime: datetime | None


def plan_send(
    params: Mapping[str, str],
    rates: Rates,
    now: datetime,
    *,
    allow_private: bool,
    routable: Callable[[str], bool] = _route_all,
) -> SendPlan:
    """Validate and price a sendsms request whose parameter names are lower-case."""
    encoding = _encoding(params)
    numbers = _numbers(params.get("dstaddr", ""), routable)
    _check_international(numbers, encoding)
    smbody = params.get("smbody", "")
    if not smbody:
        raise CgiError(detail="smbody")
    if "\x00" in smbody:
        # No text a handset shows holds U+0000, and PostgreSQL text cannot store it: the
        # same clear refusal on every backend rather than a -10 on one of them.
        raise CgiError(detail="smbody holds a NUL character")
    options = _options(params, encoding, now, allow_private=allow_private)
    text = plan_text(encoding, smbody, options.wapurl)
    return _priced(encoding, text, numbers, options, rates)


def _encoding(params: Mapping[str, str]) -> str:
    encoding = params.get("encoding", "").strip().upper() or DEFAULT_ENCODING
    if encoding not in ENCODINGS:
        raise EncodingError(detail=safe_detail(encoding))
    return encoding


def _numbers(dstaddr: str, routable: Callable[[str], bool]) -> list[str]:
    raw_numbers = split_numbers(dstaddr)
    if not 1 <= len(raw_numbers) <= MAX_NUMBERS:
        raise MsisdnAmountError(detail=str(len(raw_numbers)))
    numbers: dict[str, None] = {}
    for raw in raw_numbers:
        number = canonical(raw)
        if not routable(number):
            raise BNumberError(detail=safe_detail(raw))
        numbers[number] = None
    return list(numbers)


def _check_international(numbers: Sequence[str], encoding: str) -> None:
    if encoding in PLAIN_ENCODINGS:
        return
    for number in numbers:
        if is_international(number):
            raise EncodingError(detail=number)


def _options(
    params: Mapping[str, str], encoding: str, now: datetime, *, allow_private: bool
) -> _Options:
    wapurl = _given(params, "wapurl") if encoding == "PUSH" else None
    if encoding == "PUSH" and wapurl is None:
        raise CgiError(detail="wapurl")
    replyurl = _given(params, "replyurl")
    replydays = _given(params, "replydays")
    for name, value in (("replyurl", replyurl), ("replydays", replydays)):
        if value is not None and encoding not in PLAIN_ENCODINGS:
            raise CgiError(detail=name)
    response = _given(params, "response")
    return _Options(
        wapurl=wapurl,
        replyurl=_callback(replyurl, "replyurl", REPLYURL_MAX_LENGTH, allow_private),
        response=_callback(response, "response", RESPONSE_MAX_LENGTH, allow_private),
        replydays=_replydays(replydays),
        dlvtime=parse_dlvtime(params.get("dlvtime", ""), now),
    )


def _given(params: Mapping[str, str], name: str) -> str | None:
    """The stripped value of ``name``, or None when it is absent or blank."""
    return params.get(name, "").strip() or None


def _callback(value: str | None, name: str, max_length: int, allow_private: bool) -> str | None:
    if value is None:
        return None
    return check_callback_url(value, name, max_length, allow_private)


def _replydays(value: str | None) -> int:
    if value is None:
        return DEFAULT_REPLYDAYS
    if not _REPLYDAYS.fullmatch(value) or not 1 <= int(value) <= MAX_REPLYDAYS:
        raise CgiError(detail="replydays")
    return int(value)


def _priced(
    encoding: str, text: TextPlan, numbers: Sequence[str], options: _Options, rates: Rates
) -> SendPlan:
    recipients = tuple(
        RecipientPlan(number, text.segments * rates.points_per_segment(number))
        for number in numbers
    )
    surcharge = reply_surcharge(len(recipients) * text.segments) if options.replyurl else 0
    return SendPlan(
        encoding=encoding,
        body=text.body,
        coding=text.coding,
        flash=text.flash,
        segments=text.segments,
        recipients=recipients,
        reply_surcharge=surcharge,
        points=sum(recipient.points for recipient in recipients) + surcharge,
        wapurl=text.wapurl,
        response=options.response,
        replyurl=options.replyurl,
        replydays=options.replydays,
        dlvtime=options.dlvtime,
    )
