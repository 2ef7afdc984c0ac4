"""Destination numbers: splitting, canonical form, and the SMPP address forms (PROTOCOL.md 3, 8).

A canonical number is either domestic ``09xxxxxxxx`` (Taiwan mobile) or international
``+<E.164 digits>``. Taiwan's own numbers given in international form (``+8869...``,
``8869...``) are domestic. International numbers are checked with ``phonenumbers`` as
possible mobile numbers.
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers

from smsgw.errors import BNumberError

MAX_E164_DIGITS: Final = 15
DETAIL_LENGTH: Final = 20

TON_INTERNATIONAL: Final = 1
TON_NATIONAL: Final = 2
NPI_ISDN: Final = 1

_TAIWAN_CODE: Final = "886"
_DOMESTIC = re.compile(r"09[0-9]{8}")
_TAIWAN_INTERNATIONAL = re.compile(r"\+?8869([0-9]{8})")
_TAIWAN_NATIONAL_WITHOUT_TRUNK = re.compile(r"9[0-9]{8}")
_INTERNATIONAL = re.compile(r"\+([1-9][0-9]*)")
_INSIDE_SEPARATORS = re.compile(r"[ \-]")
_MOBILE_TYPES: Final = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def split_numbers(dstaddr: str) -> list[str]:
    """The comma-separated items of ``dstaddr`` as given, without blank items.

    Items keep their surrounding blanks: a leading space is how a ``+`` arrives from an
    unencoded query string, so only :func:`canonical` may interpret it.
    """
    return [item for item in dstaddr.split(",") if item.strip()]


def canonical(raw: str) -> str:
    """``raw`` as ``09xxxxxxxx`` or ``+<E.164>``; BNumberError when it is not a mobile number."""
    compact = _compact(raw)
    domestic = _as_domestic(compact)
    if domestic is not None:
        return domestic
    international = _as_international(compact)
    if international is None:
        raise BNumberError(detail=safe_detail(raw))
    return international


def is_international(number: str) -> bool:
    """Whether a canonical number is international (``+...``)."""
    return number.startswith("+")


def smpp_address(number: str, national: bool) -> tuple[str, int, int]:
    """(digits, TON, NPI) of a canonical number for submit_sm.

    The national form applies to domestic numbers only; an international number always
    goes in international form.
    """
    if is_international(number):
        return number[1:], TON_INTERNATIONAL, NPI_ISDN
    if national:
        return number, TON_NATIONAL, NPI_ISDN
    return _TAIWAN_CODE + number[1:], TON_INTERNATIONAL, NPI_ISDN


def from_smpp_address(digits: str, ton: int) -> str:
    """The canonical form of a handset address read from an MO (either form, any TON)."""
    compact = _compact(digits)
    if compact.startswith("+"):
        return canonical(compact)
    if ton == TON_INTERNATIONAL:
        return canonical("+" + compact)
    if _TAIWAN_NATIONAL_WITHOUT_TRUNK.fullmatch(compact):
        return "0" + compact
    try:
        return canonical(compact)
    except BNumberError:
        if ton == TON_NATIONAL:
            raise
        return canonical("+" + compact)


def safe_detail(text: str) -> str:
    """``text`` fit to echo in a statusstr: stripped, printable, at most 20 characters."""
    return "".join(char if char.isprintable() else "?" for char in text.strip()[:DETAIL_LENGTH])


def _compact(raw: str) -> str:
    """``raw`` without blanks and dashes; a leading blank stands for ``+``."""
    compact = _INSIDE_SEPARATORS.sub("", raw.strip())
    if raw[:1].isspace() and compact[:1].isdigit() and _as_domestic(compact) is None:
        return "+" + compact
    return compact


def _as_domestic(compact: str) -> str | None:
    if _DOMESTIC.fullmatch(compact):
        return compact
    taiwan = _TAIWAN_INTERNATIONAL.fullmatch(compact)
    return "09" + taiwan.group(1) if taiwan else None


def _as_international(compact: str) -> str | None:
    match = _INTERNATIONAL.fullmatch(compact)
    if match is None or len(match.group(1)) > MAX_E164_DIGITS:
        return None
    if match.group(1).startswith(_TAIWAN_CODE):
        return None  # the only Taiwan numbers we take are mobiles, handled as domestic
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        return None
    if not _is_mobile(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _is_mobile(parsed: phonenumbers.PhoneNumber) -> bool:
    if not phonenumbers.is_valid_number(parsed):
        return False
    if phonenumbers.number_type(parsed) in _MOBILE_TYPES:
        return True
    return not _region_knows_mobiles(parsed)


def _region_knows_mobiles(parsed: phonenumbers.PhoneNumber) -> bool:
    """Whether phonenumbers can tell a mobile number of this region from other numbers."""
    region = phonenumbers.region_code_for_number(parsed)
    if parsed.country_code is None or region is None:
        return False
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        parsed.country_code, region
    )
    mobile = None if metadata is None else metadata.mobile
    return mobile is not None and mobile.national_number_pattern is not None
