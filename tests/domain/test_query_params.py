from __future__ import annotations

import pytest

from smsgw.domain.query import parse_msgid, parse_msgid_list, parse_number_filter
from smsgw.errors import CgiError


@pytest.mark.parametrize(
    ("value", "msgid"), [("1", 1), (" 1504280910499665 ", 1504280910499665), ("007", 7)]
)
def test_parse_msgid(value: str, msgid: int) -> None:
    """A positive decimal of up to 16 digits, blanks stripped."""
    assert parse_msgid(value) == msgid


@pytest.mark.parametrize(
    "value", [None, "", "0", "-1", "+1", "12345678901234567", "1.0", "abc", "١٢", "1 2"]
)
def test_parse_msgid_refuses(value: str | None) -> None:
    """Anything but a positive decimal of up to 16 digits is a CGI error on msgid."""
    with pytest.raises(CgiError) as caught:
        parse_msgid(value)
    assert caught.value.detail == "msgid"


def test_msgid_list_keeps_first_order_once() -> None:
    """Duplicates collapse, empty items are ignored, order is as first given."""
    assert parse_msgid_list("3, 1,,3,2,1,") == [3, 1, 2]


@pytest.mark.parametrize("value", [None, "", " , ", "1,x", "1,0"])
def test_msgid_list_refuses_empty_or_bad(value: str | None) -> None:
    """No msgid at all, or one bad item, is a CGI error."""
    with pytest.raises(CgiError):
        parse_msgid_list(value)


def test_msgid_list_limit() -> None:
    """At most ``limit`` distinct msgids."""
    assert len(parse_msgid_list(",".join(str(n) for n in range(1, 101)))) == 100
    with pytest.raises(CgiError):
        parse_msgid_list(",".join(str(n) for n in range(1, 102)))
    assert parse_msgid_list("1,2", limit=2) == [1, 2]
    with pytest.raises(CgiError):
        parse_msgid_list("1,2,3", limit=2)


def test_number_filter_absent() -> None:
    """No number list means no filter."""
    assert parse_number_filter(None) is None
    assert parse_number_filter("") is None
    assert parse_number_filter(" , ") is None


def test_number_filter_normalises_and_keeps_bad_items() -> None:
    """Numbers get their canonical form; a bad item stays as text and never raises."""
    assert parse_number_filter("+886912345678, 8613681912700,0912-345-678, nope ") == [
        "0912345678",
        "+8613681912700",
        "nope",
    ]
