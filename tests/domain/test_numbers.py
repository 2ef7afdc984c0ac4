from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.domain.numbers import (
    canonical,
    from_smpp_address,
    is_international,
    safe_detail,
    smpp_address,
    split_numbers,
)
from smsgw.errors import BNumberError


def test_split_counts_numbers_as_given() -> None:
    """A trailing comma adds no number and empty items between commas are ignored."""
    assert split_numbers("0912345678,") == ["0912345678"]
    assert split_numbers("0912345678,,0912345679") == ["0912345678", "0912345679"]
    assert split_numbers("") == []
    assert split_numbers(" , ,") == []


def test_split_keeps_duplicates_and_leading_blanks() -> None:
    """Duplicates are counted as given and a leading blank survives for canonical()."""
    assert split_numbers("0912345678,0912345678, 8613681912700") == [
        "0912345678",
        "0912345678",
        " 8613681912700",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "0912345678"),
        ("+886912345678", "0912345678"),
        ("886912345678", "0912345678"),
        (" 886912345678", "0912345678"),
        ("0912-345 678", "0912345678"),
        (" 0912345678 ", "0912345678"),
        ("+8613681912700", "+8613681912700"),
        (" 8613681912700", "+8613681912700"),
        ("+86 136-8191-2700", "+8613681912700"),
        ("+14155552671", "+14155552671"),
        ("+447911123456", "+447911123456"),
        ("+85291234567", "+85291234567"),
    ],
)
def test_canonical_accepts_mobile_numbers(raw: str, expected: str) -> None:
    """Domestic and international mobile numbers in any accepted spelling get one form."""
    assert canonical(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0212345678",  # Taipei landline
        "091234567",  # one digit short
        "09123456789",  # one digit long
        "+442071838750",  # London landline
        "+886212345678",  # Taipei landline, international form
        "+8860912345678",  # trunk prefix inside the international form
        "8613681912700",  # international without + or a leading blank
        "+0912345678",
        "+1234567890123456",  # 16 digits
        "+",
        "09l2345678",
        "\uff10\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
        "+86136819127OO",
    ],
)
def test_canonical_refuses_other_numbers(raw: str) -> None:
    """Landlines, wrong lengths and non-digits are B number violations."""
    with pytest.raises(BNumberError):
        canonical(raw)


def test_bnumber_detail_is_the_raw_item_truncated() -> None:
    """The error detail shows the number as given, cut to 20 characters."""
    with pytest.raises(BNumberError) as caught:
        canonical(" 0212345678901234567890123")
    assert caught.value.detail == "02123456789012345678"


def test_safe_detail_replaces_control_characters() -> None:
    """A detail echoed to the client cannot carry a line break."""
    assert safe_detail("ab\ncd\r") == "ab?cd"


def test_is_international() -> None:
    """Only numbers starting with + are international."""
    assert is_international("+8613681912700")
    assert not is_international("0912345678")


def test_smpp_address_forms() -> None:
    """Domestic numbers go international by default or national on request; foreign stay."""
    assert smpp_address("0912345678", national=False) == ("886912345678", 1, 1)
    assert smpp_address("0912345678", national=True) == ("0912345678", 2, 1)
    assert smpp_address("+8613681912700", national=True) == ("8613681912700", 1, 1)
    assert smpp_address("+8613681912700", national=False) == ("8613681912700", 1, 1)


@pytest.mark.parametrize(
    ("digits", "ton", "expected"),
    [
        ("886912345678", 1, "0912345678"),
        ("+886912345678", 1, "0912345678"),
        ("0912345678", 2, "0912345678"),
        ("912345678", 2, "0912345678"),
        ("8613681912700", 1, "+8613681912700"),
        ("8613681912700", 0, "+8613681912700"),
        ("0912345678", 0, "0912345678"),
    ],
)
def test_from_smpp_address_reads_either_form(digits: str, ton: int, expected: str) -> None:
    """A handset address in international or national form reads as its canonical form."""
    assert from_smpp_address(digits, ton) == expected


@pytest.mark.parametrize(("digits", "ton"), [("12", 1), ("8613681912700", 2), ("", 0)])
def test_from_smpp_address_refuses_unreadable(digits: str, ton: int) -> None:
    """An address that is no mobile number in the form its TON claims is refused."""
    with pytest.raises(BNumberError):
        from_smpp_address(digits, ton)


@given(st.from_regex(r"09[0-9]{8}", fullmatch=True))
def test_domestic_round_trips_through_smpp(number: str) -> None:
    """Every domestic number survives both SMPP forms and back."""
    for national in (False, True):
        digits, ton, _ = smpp_address(number, national=national)
        assert from_smpp_address(digits, ton) == number


@settings(deadline=None)  # the first lookups load phonenumbers metadata
@given(st.text(max_size=30))
def test_canonical_only_raises_bnumber(raw: str) -> None:
    """Arbitrary text is either a canonical number or a B number violation."""
    try:
        number = canonical(raw)
    except BNumberError:
        return
    assert number.startswith(("09", "+"))
    assert canonical(number) == number
