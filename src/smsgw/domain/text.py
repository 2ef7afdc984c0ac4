"""Message text: which coding goes on the air, truncation, and segmentation (PROTOCOL.md 3).

GSM 03.38 septets are measured with the ``gsm0338`` codec, which maps the basic table and the
extension table (``^{}\\[~]|€`` and form feed, two septets each) correctly. Its one quirk is
that it accepts a lone ESC character as one septet; ESC is not a character a message can
carry (it announces an extension character), so it is treated here as not GSM-encodable.

Invariants of a :class:`TextPlan`: ``"".join(parts) == body``; a GSM part holds at most 160
septets (one SMS) or 153 (a segment), a UCS-2 part 70 or 67 UTF-16 units; no part ends
inside an extension character or a surrogate pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

import gsm0338  # noqa: F401  (importing it registers the "gsm03.38" codec)

from smsgw.domain.numbers import safe_detail
from smsgw.errors import CgiError, EncodingError

if TYPE_CHECKING:
    from smsgw.domain.model import Coding

ENCODINGS: Final = frozenset(
    {"BIG5", "ASCII", "UCS2", "PBIG5", "PASCII", "LBIG5", "LASCII", "LUCS2", "PUSH"}
)

GSM_SINGLE_SEPTETS: Final = 160
GSM_SEGMENT_SEPTETS: Final = 153
UCS2_SINGLE_UNITS: Final = 70
UCS2_SEGMENT_UNITS: Final = 67
LONG_MAX_CHARACTERS: Final = 330
PUSH_MAX_BYTES: Final = 88

_GSM_PREFERRED: Final = frozenset({"ASCII", "PASCII", "LASCII"})
_FLASH: Final = frozenset({"PASCII", "PBIG5"})
_LONG: Final = frozenset({"LASCII", "LBIG5", "LUCS2"})
_ESCAPE: Final = "\x1b"
_LAST_BMP_CODE_POINT: Final = 0xFFFF

CharCost = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class TextPlan:
    """How one message body goes on the air."""

    coding: Coding
    flash: bool
    body: str  # the text after truncation (for PUSH, the title)
    parts: tuple[str, ...]  # the text of each SMS; one part for a single SMS or a PUSH
    wapurl: str | None

    @property
    def segments(self) -> int:
        return len(self.parts)


def plan_text(encoding: str, smbody: str, wapurl: str | None = None) -> TextPlan:
    """Plan ``smbody`` for an upper-cased smsgo ``encoding``; EncodingError if it is unknown."""
    if encoding not in ENCODINGS:
        raise EncodingError(detail=safe_detail(encoding))
    if encoding == "PUSH":
        return _plan_push(smbody, wapurl)
    text = smbody[:LONG_MAX_CHARACTERS] if encoding in _LONG else smbody
    gsm = encoding in _GSM_PREFERRED and gsm_septets(text) is not None
    if encoding in _LONG:
        return _plan_long(text, gsm=gsm)
    return _plan_single(text, gsm=gsm, flash=encoding in _FLASH)


def gsm_septets(text: str) -> int | None:
    """Septets ``text`` takes in GSM 7-bit, or None when GSM 7-bit cannot carry it."""
    total = 0
    for char in text:
        septets = _char_septets(char)
        if septets is None:
            return None
        total += septets
    return total


def utf16_units(text: str) -> int:
    """UTF-16 code units of ``text`` (a character beyond the BMP takes a surrogate pair)."""
    return sum(_char_units(char) for char in text)


def _plan_single(text: str, *, gsm: bool, flash: bool) -> TextPlan:
    if gsm:
        body = _head(text, _gsm_cost, GSM_SINGLE_SEPTETS)
        return TextPlan("gsm7", flash=flash, body=body, parts=(body,), wapurl=None)
    body = _head(text, _char_units, UCS2_SINGLE_UNITS)
    return TextPlan("ucs2", flash=flash, body=body, parts=(body,), wapurl=None)


def _plan_long(text: str, *, gsm: bool) -> TextPlan:
    if gsm:
        parts = _split(text, _gsm_cost, GSM_SINGLE_SEPTETS, GSM_SEGMENT_SEPTETS)
        return TextPlan("gsm7", flash=False, body=text, parts=parts, wapurl=None)
    parts = _split(text, _char_units, UCS2_SINGLE_UNITS, UCS2_SEGMENT_UNITS)
    return TextPlan("ucs2", flash=False, body=text, parts=parts, wapurl=None)


def _plan_push(title: str, wapurl: str | None) -> TextPlan:
    if not wapurl:
        raise CgiError(detail="wapurl")
    if _utf8_bytes(title) + _utf8_bytes(wapurl) <= PUSH_MAX_BYTES:
        return TextPlan("push", flash=False, body=title, parts=(title,), wapurl=wapurl)
    # The document: a PUSH over 88 bytes goes as a long SMS and costs its segments.
    text = f"{title} {wapurl}"[:LONG_MAX_CHARACTERS]
    return _plan_long(text, gsm=gsm_septets(text) is not None)


def _split(text: str, cost: CharCost, single_limit: int, segment_limit: int) -> tuple[str, ...]:
    """``text`` as one SMS when it fits ``single_limit``, else as segments of ``segment_limit``."""
    if sum(cost(char) for char in text) <= single_limit:
        return (text,)
    parts: list[str] = []
    rest = text
    while rest:
        part = _head(rest, cost, segment_limit)
        parts.append(part)
        rest = rest[len(part) :]
    return tuple(parts)


def _head(text: str, cost: CharCost, limit: int) -> str:
    """The longest prefix of ``text`` whose characters cost at most ``limit`` in total."""
    used = 0
    for index, char in enumerate(text):
        used += cost(char)
        if used > limit:
            return text[:index]
    return text


def _gsm_cost(char: str) -> int:
    septets = _char_septets(char)
    if septets is None:
        raise ValueError(f"not a GSM 7-bit character: {char!r}")
    return septets


@lru_cache(maxsize=1024)
def _char_septets(char: str) -> int | None:
    if char == _ESCAPE:
        return None
    try:
        return len(char.encode("gsm03.38"))
    except UnicodeError:
        return None


def _char_units(char: str) -> int:
    return 2 if ord(char) > _LAST_BMP_CODE_POINT else 1


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
