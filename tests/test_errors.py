"""The status code table of PROTOCOL.md section 2: each error's code and statusstr phrase."""

from __future__ import annotations

import pytest

from smsgw.errors import (
    AuthError,
    BNumberError,
    CgiError,
    ClosedUserError,
    EncodingError,
    MsisdnAmountError,
    PointsError,
    SendFailError,
    SmsgoError,
)

TABLE: list[tuple[type[SmsgoError], int, str]] = [
    (CgiError, -1, "CGI string error"),
    (AuthError, -2, "Authorization failure"),
    (BNumberError, -5, "B Number violation"),
    (ClosedUserError, -6, "Closed User"),
    (EncodingError, -7, "Invalid encoding"),
    (PointsError, -8, "Insufficient points"),
    (MsisdnAmountError, -9, "Invalid msisdn amount"),
    (SendFailError, -10, "Send Fail"),
]


@pytest.mark.parametrize(("error", "code", "phrase"), TABLE)
def test_code_and_phrase(error: type[SmsgoError], code: int, phrase: str) -> None:
    """Each emitted code carries the table's phrase; a detail follows in parentheses."""
    assert error.code == code
    assert error().statusstr == phrase
    assert error("0912").statusstr == f"{phrase} (0912)"


def test_codes_minus_three_and_four_are_never_emitted() -> None:
    """-3 (priority) and -4 (A number) have no error class: this API cannot produce them."""
    codes = {cls.code for cls in SmsgoError.__subclasses__()}
    assert -3 not in codes
    assert -4 not in codes
    assert codes == {code for _, code, _ in TABLE}
