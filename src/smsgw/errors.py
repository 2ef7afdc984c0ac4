"""One error tree for the gateway; each error knows its smsgo wire code.

    SmsgwError
    ├── ConfigError                 a setting is missing or invalid (name + reason)
    ├── StoreError                  the store could not do what was asked
    │   └── AccountExistsError
    └── SmsgoError                  a request answered with a negative statuscode
        ├── CgiError            -1  malformed request, bad parameter, unknown msgid
        ├── AuthError           -2  unknown user, wrong secret, IP not allowed, locked out
        ├── BNumberError        -5  a destination is not a valid mobile number / no route
        ├── ClosedUserError     -6  account disabled
        ├── EncodingError       -7  unknown encoding or not allowed for the number
        ├── PointsError         -8  balance below the cost of the request
        ├── MsisdnAmountError   -9  zero or more than 50 destination numbers
        └── SendFailError      -10  the gateway could not store the request

Foreign errors (sqlite3, asyncpg, OS errors) are translated once at the edge that meets them.
The ``detail`` of an SmsgoError is shown to the client in parentheses after the phrase; it
must never contain a secret.
"""

from __future__ import annotations

from typing import ClassVar


class SmsgwError(Exception):
    """Base of every error smsgw raises on purpose."""


class ConfigError(SmsgwError):
    """A setting is missing or invalid; the message names the setting."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class StoreError(SmsgwError):
    """The store failed; the message never contains a secret or a connection password."""


class AccountExistsError(StoreError):
    """An account with that username exists already."""


class UnknownAccountError(StoreError):
    """No account has that username."""


class AccountChangedError(StoreError):
    """An accept named the account as it was authenticated, and the stored account's
    credentials, addresses or state differ now: nothing was stored."""


class SmsgoError(SmsgwError):
    """A request that gets a negative smsgo statuscode."""

    code: ClassVar[int] = -1
    phrase: ClassVar[str] = "CGI string error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.phrase)
        self.detail = detail

    @property
    def statusstr(self) -> str:
        """The phrase of table 1, with the detail in parentheses when there is one."""
        return f"{self.phrase} ({self.detail})" if self.detail else self.phrase


class CgiError(SmsgoError):
    code = -1
    phrase = "CGI string error"


class AuthError(SmsgoError):
    code = -2
    phrase = "Authorization failure"


class BNumberError(SmsgoError):
    code = -5
    phrase = "B Number violation"


class ClosedUserError(SmsgoError):
    code = -6
    phrase = "Closed User"


class EncodingError(SmsgoError):
    code = -7
    phrase = "Invalid encoding"


class PointsError(SmsgoError):
    code = -8
    phrase = "Insufficient points"


class MsisdnAmountError(SmsgoError):
    code = -9
    phrase = "Invalid msisdn amount"


class SendFailError(SmsgoError):
    code = -10
    phrase = "Send Fail"
