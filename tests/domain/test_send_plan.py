from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.domain.model import RecipientPlan
from smsgw.domain.pricing import Rate, Rates
from smsgw.domain.send import plan_send
from smsgw.errors import (
    BNumberError,
    CgiError,
    EncodingError,
    MsisdnAmountError,
    SmsgoError,
)

NOW = datetime(2024, 3, 1, 4, 0, 0, tzinfo=UTC)
RATES = Rates([Rate("+86", 3)])
CN = "+8613681912700"


def test_minimal_request_defaults_to_big5() -> None:
    """A number and a body make a one-point BIG5 (UCS-2) plan with default options."""
    result = plan_send({"dstaddr": "0912345678", "smbody": "hi"}, RATES, NOW, allow_private=False)
    assert result.encoding == "BIG5"
    assert (result.body, result.coding, result.flash, result.segments) == ("hi", "ucs2", False, 1)
    assert result.recipients == (RecipientPlan("0912345678", 1),)
    assert (result.points, result.reply_surcharge) == (1, 0)
    assert (result.replyurl, result.response, result.wapurl, result.dlvtime) == (
        None,
        None,
        None,
        None,
    )
    assert result.replydays == 3


def test_encoding_is_case_insensitive_and_stripped() -> None:
    """The encoding name is upper-cased and trimmed before use."""
    result = plan_send(
        {"dstaddr": "0912345678", "smbody": "hi", "encoding": " lascii "},
        RATES,
        NOW,
        allow_private=False,
    )
    assert (result.encoding, result.coding) == ("LASCII", "gsm7")


def test_duplicates_count_once_in_first_order_and_are_priced_per_prefix() -> None:
    """Duplicate numbers merge; each recipient pays its prefix rate."""
    params = {"dstaddr": f"0912345678,{CN},+886912345678,0912000000,{CN}", "smbody": "hi"}
    result = plan_send(params, RATES, NOW, allow_private=False)
    assert result.recipients == (
        RecipientPlan("0912345678", 1),
        RecipientPlan(CN, 3),
        RecipientPlan("0912000000", 1),
    )
    assert result.points == 5


def test_points_multiply_segments_by_rate() -> None:
    """A recipient of a two-segment message pays twice its rate per segment."""
    rates = Rates([Rate("0912", 3)])
    params = {"dstaddr": "0912345678,0987654321", "smbody": "中" * 71, "encoding": "LBIG5"}
    result = plan_send(params, rates, NOW, allow_private=False)
    assert result.segments == 2
    assert result.recipients == (
        RecipientPlan("0912345678", 6),
        RecipientPlan("0987654321", 2),
    )
    assert result.points == 8


@pytest.mark.parametrize(("recipients", "surcharge"), [(10, 1), (11, 2)])
def test_reply_surcharge_counts_messages(recipients: int, surcharge: int) -> None:
    """replyurl adds one point per 10 messages or part of 10."""
    numbers = ",".join(f"09120000{index:02d}" for index in range(recipients))
    params = {"dstaddr": numbers, "smbody": "hi", "replyurl": "https://example.com/mo"}
    result = plan_send(params, RATES, NOW, allow_private=False)
    assert result.reply_surcharge == surcharge
    assert result.points == recipients + surcharge
    assert result.replyurl == "https://example.com/mo"


def test_options_are_carried() -> None:
    """response, replyurl, replydays and dlvtime end up in the plan."""
    params = {
        "dstaddr": "0912345678",
        "smbody": "hi",
        "response": "http://example.com/dlr",
        "replyurl": "http://example.com/mo",
        "replydays": "30",
        "dlvtime": "2024/03/02 09:30:00",
    }
    result = plan_send(params, RATES, NOW, allow_private=False)
    assert result.response == "http://example.com/dlr"
    assert result.replydays == 30
    assert result.dlvtime == datetime(2024, 3, 2, 1, 30, tzinfo=UTC)
    assert result.points == 2


def test_push_plan_keeps_wapurl() -> None:
    """A short PUSH is one push message carrying its URL."""
    params = {"dstaddr": "0912345678", "smbody": "t", "encoding": "PUSH", "wapurl": " www.x.tw"}
    result = plan_send(params, RATES, NOW, allow_private=False)
    assert (result.coding, result.body, result.wapurl, result.points) == (
        "push",
        "t",
        "www.x.tw",
        1,
    )


def test_wapurl_is_ignored_without_push() -> None:
    """A wapurl given with another encoding plays no part."""
    params = {"dstaddr": "0912345678", "smbody": "t", "wapurl": "http://example.com/"}
    assert plan_send(params, RATES, NOW, allow_private=False).wapurl is None


def test_private_callback_allowed_by_operator() -> None:
    """allow_private lets a loopback response URL through."""
    params = {"dstaddr": "0912345678", "smbody": "t", "response": "http://127.0.0.1/dlr"}
    assert plan_send(params, RATES, NOW, allow_private=True).response == "http://127.0.0.1/dlr"


@pytest.mark.parametrize(
    ("params", "error", "detail"),
    [
        ({"dstaddr": "0912345678", "smbody": "x", "encoding": "KOI8"}, EncodingError, "KOI8"),
        ({"smbody": "x"}, MsisdnAmountError, "0"),
        ({"dstaddr": " , ", "smbody": "x"}, MsisdnAmountError, "0"),
        ({"dstaddr": "0912345678,0212345678", "smbody": "x"}, BNumberError, "0212345678"),
        ({"dstaddr": CN, "smbody": "x", "encoding": "LBIG5"}, EncodingError, CN),
        ({"dstaddr": CN, "smbody": "x", "encoding": "PUSH"}, EncodingError, CN),
        ({"dstaddr": "0912345678"}, CgiError, "smbody"),
        ({"dstaddr": "0912345678", "smbody": ""}, CgiError, "smbody"),
        (
            {"dstaddr": "0912345678", "smbody": "a\x00b", "encoding": "UCS2"},
            CgiError,
            "smbody holds a NUL character",
        ),
        ({"dstaddr": "0912345678", "smbody": "x", "encoding": "PUSH"}, CgiError, "wapurl"),
        (
            {"dstaddr": "0912345678", "smbody": "x", "encoding": "LBIG5", "replyurl": "http://a.b"},
            CgiError,
            "replyurl",
        ),
        (
            {"dstaddr": "0912345678", "smbody": "x", "encoding": "PBIG5", "replydays": "3"},
            CgiError,
            "replydays",
        ),
        ({"dstaddr": "0912345678", "smbody": "x", "replyurl": "ftp://a.b"}, CgiError, "replyurl"),
        (
            {"dstaddr": "0912345678", "smbody": "x", "replyurl": "http://a.b/" + "p" * 290},
            CgiError,
            "replyurl",
        ),
        (
            {"dstaddr": "0912345678", "smbody": "x", "response": "http://10.0.0.1/"},
            CgiError,
            "response",
        ),
        ({"dstaddr": "0912345678", "smbody": "x", "replydays": "0"}, CgiError, "replydays"),
        ({"dstaddr": "0912345678", "smbody": "x", "replydays": "31"}, CgiError, "replydays"),
        ({"dstaddr": "0912345678", "smbody": "x", "replydays": "1.5"}, CgiError, "replydays"),
        ({"dstaddr": "0912345678", "smbody": "x", "dlvtime": "soon"}, CgiError, "dlvtime"),
        (
            {"dstaddr": "0912345678", "smbody": "x", "dlvtime": "2025/03/02 12:00:01"},
            CgiError,
            "dlvtime",
        ),
    ],
)
def test_each_fault_answers_with_its_error(
    params: dict[str, str], error: type[SmsgoError], detail: str
) -> None:
    """Each kind of bad request raises its own smsgo error naming the culprit."""
    with pytest.raises(error) as caught:
        plan_send(params, RATES, NOW, allow_private=False)
    assert type(caught.value) is error
    assert caught.value.detail == detail


def test_number_count_is_counted_as_given() -> None:
    """50 numbers pass, 51 fail even when they are all the same number."""
    fifty = {"dstaddr": ",".join(["0912345678"] * 50), "smbody": "x"}
    assert len(plan_send(fifty, RATES, NOW, allow_private=False).recipients) == 1
    with pytest.raises(MsisdnAmountError):
        plan_send(
            {"dstaddr": ",".join(["0912345678"] * 51), "smbody": "x"},
            RATES,
            NOW,
            allow_private=False,
        )


def test_unroutable_number_is_a_bnumber_violation() -> None:
    """A valid number that no route serves is refused with its raw form."""
    params = {"dstaddr": "0912345678, 8613681912700", "smbody": "x"}
    with pytest.raises(BNumberError) as caught:
        plan_send(params, RATES, NOW, allow_private=False, routable=lambda n: not n.startswith("+"))
    assert caught.value.detail == "8613681912700"


# Each step of the fault order, with every later fault present too.
ALL_FAULTS = {
    "encoding": "LBIG5x",
    "dstaddr": ",".join(["0212345678", CN] + ["0912345678"] * 50),
    "replyurl": "http://127.0.0.1/",
    "dlvtime": "bad",
}


@pytest.mark.parametrize(
    ("fixes", "error"),
    [
        ({}, EncodingError),
        ({"encoding": "LBIG5"}, MsisdnAmountError),
        ({"encoding": "LBIG5", "dstaddr": f"0212345678,{CN}"}, BNumberError),
        ({"encoding": "LBIG5", "dstaddr": f"0912345678,{CN}"}, EncodingError),
        ({"encoding": "BIG5", "dstaddr": f"0912345678,{CN}"}, CgiError),
    ],
)
def test_fault_order(fixes: dict[str, str], error: type[SmsgoError]) -> None:
    """The first fault in PROTOCOL.md order answers when several are present."""
    with pytest.raises(error) as caught:
        plan_send(ALL_FAULTS | fixes, RATES, NOW, allow_private=False)
    assert type(caught.value) is error


def test_smbody_is_checked_before_other_parameters() -> None:
    """Among the other bad parameters, the empty body is reported first."""
    params = {"dstaddr": "0912345678", "replyurl": "ftp://x", "dlvtime": "bad"}
    with pytest.raises(CgiError) as caught:
        plan_send(params, RATES, NOW, allow_private=False)
    assert caught.value.detail == "smbody"


PARAM_NAMES = st.sampled_from(
    ["dstaddr", "smbody", "encoding", "wapurl", "replyurl", "replydays", "response", "dlvtime"]
)
PARAM_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["0912345678", CN, "LASCII", "PUSH", "http://example.com/", "5"]),
)


@settings(deadline=None)  # the first lookups load phonenumbers metadata
@given(st.dictionaries(PARAM_NAMES, PARAM_VALUES))
def test_arbitrary_params_raise_only_smsgo_errors(params: dict[str, str]) -> None:
    """Whatever the parameters, plan_send plans or raises an smsgo error."""
    try:
        result = plan_send(params, RATES, NOW, allow_private=False)
    except SmsgoError:
        return
    assert result.points == sum(r.points for r in result.recipients) + result.reply_surcharge
    assert 1 <= len(result.recipients) <= 50
