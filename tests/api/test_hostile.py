"""Hostile and malformed requests: protocol errors, no stack traces, nothing changed."""

from __future__ import annotations

import string

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import PASSWORD, Env
from tests.api.test_send import lines

ALICE = {"username": "alice", "password": PASSWORD}
PATHS = ["sendsms.aspx", "query.asp", "queryBulk.asp", "query_point.asp", "sendsms_cancel.asp"]


async def test_oversized_body_is_minus_one(env: Env) -> None:
    """A POST body over 64 KiB answers -1 and stores nothing."""
    await env.account("alice")
    response = await env.client.post(
        "/sms_gw/sendsms.aspx",
        content=b"username=alice&smbody=" + b"a" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert lines(response.text)["statuscode"] == "-1"
    assert await env.balance("alice") == 100


async def test_invalid_utf8_is_minus_one(env: Env) -> None:
    """Percent-escapes that are not UTF-8 answer -1 in the requested format."""
    response = await env.client.get("/sms_gw/query_point.asp?rtype=JSON&username=%ff%fe")
    assert orjson.loads(response.content)["results"]["result"][0]["statuscode"] == "-1"


async def test_thousands_of_parameters(env: Env) -> None:
    """Thousands of parameters answer -1 instead of being parsed."""
    query = "&".join(f"p{i}=1" for i in range(5000))
    response = await env.client.get(f"/sms_gw/sendsms.aspx?{query}")
    assert lines(response.text)["statuscode"] == "-1"


async def test_unknown_path_and_method(env: Env) -> None:
    """Unknown paths are 404 and other methods 405, without a stack trace."""
    assert (await env.client.get("/sms_gw/nothing.asp")).status_code == 404
    response = await env.client.put("/sms_gw/sendsms.aspx")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_unexpected_error_answers_in_protocol_format(env: Env) -> None:
    """An exception inside the gateway answers -10 in the send shape, not a traceback."""
    await env.account("alice")
    env.store.fail_next_accepts(1, error=RuntimeError("boom"))
    response = await env.get("sendsms.aspx", **ALICE, dstaddr="0912345678", smbody="x")
    assert response.status_code == 200
    assert lines(response.text)["statuscode"] == "-10"
    assert "Traceback" not in response.text
    assert "boom" not in response.text


param_names = st.sampled_from(
    [
        "username",
        "dstaddr",
        "smbody",
        "encoding",
        "dlvtime",
        "msgid",
        "rtype",
        "replyurl",
        "replydays",
        "response",
        "wapurl",
        "USERNAME",
        "x",
    ]
)
param_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "alice",
            "0912345678",
            "+8613681912700",
            "PUSH",
            "LBIG5",
            "JSON",
            "XML",
            "2026/12/01 10:00:00",
            "1000000000",
            "https://e.com/",
        ]
    ),
    st.text(alphabet=string.digits + ",+ -", max_size=60),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PATHS),
    method=st.sampled_from(["GET", "POST"]),
    params=st.dictionaries(param_names, param_values, max_size=8),
    # The real password only ever in `password` (the one parameter logs redact), so that
    # random requests authenticate as often as they fail.
    password=st.one_of(st.none(), st.just(PASSWORD), st.text(max_size=20)),
)
async def test_random_parameters_never_break_the_books(
    env: Env, path: str, method: str, params: dict[str, str], password: str | None
) -> None:
    """Random parameters get a 200 protocol reply and the ledger always matches the balance."""
    if password is not None:
        params = {**params, "password": password}
    if await env.store.get_account("alice") is None:
        await env.account("alice", points=1000)
    if method == "GET":
        response = await env.client.get(f"/sms_gw/{path}", params=params)
    else:
        response = await env.client.post(f"/sms_gw/{path}", data=params)
    assert response.status_code == 200
    assert "Traceback" not in response.text
    account = await env.store.get_account("alice")
    assert account is not None
    assert account.balance == await env.store.ledger_sum(account.id)
    assert account.balance == 1000 - await env.store.points_of_live_recipients(account.id)
