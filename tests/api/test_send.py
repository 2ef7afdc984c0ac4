"""sendsms.aspx: reply shapes, every status code, fault order, atomic validation."""

from __future__ import annotations

import orjson
import pytest

from smsgw.api.app import Message
from smsgw.engine.auth import hash_secret
from smsgw.engine.gateway import ACCEPT_ATTEMPTS
from smsgw.errors import (
    AccountChangedError,
    AuthError,
    ClosedUserError,
    PointsError,
    SendFailError,
)
from tests.api.conftest import PASSWORD, Env, make_app

OK = {"username": "alice", "password": PASSWORD, "dstaddr": "0912345678"}


def lines(response_text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in response_text.splitlines())


async def test_text_reply_is_four_lines_with_final_newline(env: Env) -> None:
    """An accepted request answers msgid, statuscode 0, OK and its points, each line ending \\n."""
    await env.account("alice")
    response = await env.get("sendsms.aspx", **OK, encoding="ASCII", smbody="Smtest")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len(response.content))
    msgid = lines(response.text)["msgid"]
    assert response.text == f"msgid={msgid}\nstatuscode=0\nstatusstr=OK\npoint=1\n"
    assert 0 < int(msgid) < 10**16
    assert await env.balance("alice") == 99


async def test_json_reply_has_numeric_msgid_and_point(env: Env) -> None:
    """rtype=JSON answers the document's shape: msgid and point numbers, statuscode a string."""
    await env.account("alice")
    response = await env.get("sendsms.aspx", **OK, smbody="hi", rtype="json")
    assert response.headers["content-type"] == "application/json"
    result = orjson.loads(response.content)["result"]
    assert isinstance(result["msgid"], int)
    assert result == {"msgid": result["msgid"], "statuscode": "0", "statusstr": "OK", "point": 1}


async def test_xml_reply(env: Env) -> None:
    """rtype=XML answers the decided XML shape."""
    await env.account("alice")
    response = await env.get("sendsms.aspx", **OK, smbody="hi", rtype="XML")
    assert response.headers["content-type"] == "application/xml"
    msgid = response.text.split("<msgid>")[1].split("</msgid>")[0]
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?><result>'
        f"<msgid>{msgid}</msgid><statuscode>0</statuscode><statusstr>OK</statusstr>"
        "<point>1</point></result>"
    )


async def test_post_form_body_wins_over_query(env: Env) -> None:
    """A POST form body is read, its values win, and rtype may ride in the query string."""
    await env.account("alice")
    response = await env.client.post(
        "/sms_gw/sendsms.aspx?rtype=JSON&smbody=from-query",
        data={**OK, "smbody": "x" * 71, "encoding": "LUCS2"},
    )
    assert orjson.loads(response.content)["result"]["point"] == 2


async def test_names_and_paths_are_case_insensitive(env: Env) -> None:
    """Parameter names and paths match regardless of case, and .asp is an alias."""
    await env.account("alice")
    response = await env.client.get(
        "/SMS_GW/SendSMS.asp",
        params={"UserName": "alice", "PASSWORD": PASSWORD, "DstAddr": "0912345678", "SMBODY": "x"},
    )
    assert lines(response.text)["statuscode"] == "0"


@pytest.mark.parametrize(
    ("params", "code", "statusstr"),
    [
        ({"smbody": ""}, "-1", "CGI string error (smbody)"),
        ({"smbody": "x", "password": "wrong-pass"}, "-2", "Authorization failure"),
        ({"smbody": "x", "username": "nobody"}, "-2", "Authorization failure"),
        ({"smbody": "x", "dstaddr": "0212345678"}, "-5", "B Number violation (0212345678)"),
        ({"smbody": "x", "encoding": "EBCDIC"}, "-7", "Invalid encoding"),
        (
            {"smbody": "x", "encoding": "LASCII", "dstaddr": "+8613681912700"},
            "-7",
            "Invalid encoding (+8613681912700)",
        ),
        ({"smbody": "x", "dstaddr": ""}, "-9", "Invalid msisdn amount"),
        (
            {"smbody": "x", "dstaddr": ",".join(f"09123450{i:02}" for i in range(51))},
            "-9",
            "Invalid msisdn amount",
        ),
        ({"smbody": "x", "dlvtime": "2026/13/01 00:00:00"}, "-1", "CGI string error (dlvtime)"),
        ({"smbody": "x", "response": "ftp://example.com/"}, "-1", "CGI string error (response)"),
    ],
)
async def test_error_codes(env: Env, params: dict[str, str], code: str, statusstr: str) -> None:
    """Each fault gets its table-1 code, the code as msgid, point 0, and nothing is charged."""
    await env.account("alice")
    response = await env.get("sendsms.aspx", **{**OK, **params})
    reply = lines(response.text)
    assert reply["statuscode"] == code
    assert reply["statusstr"].startswith(statusstr.split(" (", maxsplit=1)[0])
    assert reply["statusstr"] == statusstr or "(" not in statusstr
    assert reply["msgid"] == code
    assert reply["point"] == "0"
    assert await env.balance("alice") == 100


async def test_missing_credentials_is_minus_two(env: Env) -> None:
    """A request without username or password is an authorisation failure."""
    response = await env.get("sendsms.aspx", dstaddr="0912345678", smbody="x")
    assert lines(response.text)["statuscode"] == "-2"


async def test_disabled_account_is_closed_user(env: Env) -> None:
    """A disabled account answers -6 with the right password."""
    await env.account("alice")
    await env.store.set_disabled("alice", disabled=True)
    response = await env.get("sendsms.aspx", **OK, smbody="x")
    assert lines(response.text)["statuscode"] == "-6"


async def test_insufficient_points(env: Env) -> None:
    """A request costing more than the balance is -8 and changes nothing."""
    await env.account("alice", points=2)
    response = await env.get(
        "sendsms.aspx", **{**OK, "dstaddr": "0912345678,0912345679,0912345670"}, smbody="x"
    )
    assert lines(response.text)["statuscode"] == "-8"
    assert await env.balance("alice") == 2


async def test_fault_order_first_fault_answers(env: Env) -> None:
    """With an unknown encoding, too many numbers and a bad number, -7 answers first."""
    await env.account("alice")
    many = ",".join(["0212345678"] * 51)
    response = await env.get("sendsms.aspx", **{**OK, "dstaddr": many}, encoding="X", smbody="")
    assert lines(response.text)["statuscode"] == "-7"
    response = await env.get("sendsms.aspx", **{**OK, "dstaddr": many}, smbody="")
    assert lines(response.text)["statuscode"] == "-9"
    response = await env.get("sendsms.aspx", **{**OK, "dstaddr": "0212345678"}, smbody="")
    assert lines(response.text)["statuscode"] == "-5"


async def test_one_bad_number_rejects_the_whole_request(env: Env) -> None:
    """Validation is atomic: a bad number among good ones stores and charges nothing."""
    await env.account("alice")
    response = await env.get(
        "sendsms.aspx", **{**OK, "dstaddr": "0912345678,12345,0912345679"}, smbody="x"
    )
    assert lines(response.text)["statuscode"] == "-5"
    assert await env.balance("alice") == 100
    assert await env.store.ledger_sum((await env.store.get_account("alice")).id) == 100  # type: ignore[union-attr]


async def test_fifty_numbers_with_duplicates_and_reply_surcharge(env: Env) -> None:
    """50 numbers given, duplicates merged, and replyurl adds one point per 10 messages."""
    await env.account("alice")
    numbers = [f"0912345{i:03}" for i in range(48)] + ["0912345000", "+886912345001"]
    response = await env.get(
        "sendsms.aspx",
        **{**OK, "dstaddr": ",".join(numbers)},
        smbody="x",
        replyurl="https://example.com/reply",
    )
    reply = lines(response.text)
    assert reply["statuscode"] == "0"
    assert reply["point"] == str(48 + 5)
    assert await env.balance("alice") == 100 - 53


async def test_gsm_text_with_non_gsm_character_goes_as_ucs2(env: Env) -> None:
    """ASCII text with a character GSM cannot carry is priced by UCS-2 limits."""
    await env.account("alice")
    response = await env.get("sendsms.aspx", **OK, encoding="LASCII", smbody="中" + "a" * 69 + "b")
    assert lines(response.text)["point"] == "2"


async def test_store_failure_is_send_fail(env: Env) -> None:
    """When the store cannot commit, the client hears -10 and is not charged."""
    await env.account("alice")
    env.store.fail_next_accepts(1)
    response = await env.get("sendsms.aspx", **OK, smbody="x")
    assert lines(response.text) == {
        "msgid": "-10",
        "statuscode": "-10",
        "statusstr": "Send Fail",
        "point": "0",
    }
    assert await env.balance("alice") == 100


# An account changed elsewhere (another API process, the CLI, the console) while this process
# remembers the copy it last read: sendsms must behave as if it had read the account again.
SEND = {**OK, "encoding": "ASCII", "smbody": "hi"}


async def status_of(env: Env, **params: str) -> int:
    return int(lines((await env.get("sendsms.aspx", **params)).text)["statuscode"])


async def test_an_account_disabled_elsewhere_is_closed_at_once(env: Env) -> None:
    """-6 for the next sendsms, nothing debited or stored."""
    await env.account("alice")
    assert await status_of(env, **SEND) == 0
    await env.store.set_disabled("alice", disabled=True)
    assert await status_of(env, **SEND) == ClosedUserError.code
    assert await env.balance("alice") == 99
    assert len(env.store.requests) == 1


async def test_a_password_changed_elsewhere_holds_at_once(env: Env) -> None:
    """The old password fails (-2) and stores nothing; the new one opens the account."""
    await env.account("alice")
    assert await status_of(env, **SEND) == 0
    await env.store.set_password_hash("alice", hash_secret("another-pass-2"))
    assert await status_of(env, **SEND) == AuthError.code
    assert await status_of(env, **{**SEND, "password": "another-pass-2"}) == 0
    assert await env.balance("alice") == 98


async def test_an_allow_list_set_elsewhere_holds_at_once(env: Env) -> None:
    """A client outside a newly set allow-list is refused (-2)."""
    await env.account("alice")
    assert await status_of(env, **SEND) == 0
    await env.store.set_allowed_ips("alice", ["192.0.2.0/24"])
    assert await status_of(env, **SEND) == AuthError.code
    assert await env.balance("alice") == 99


async def test_a_topup_elsewhere_opens_an_account_its_copy_says_is_empty(env: Env) -> None:
    """The remembered copy holds the balance of its read: a refusal for points is decided
    on a fresh one, so a topup since is used."""
    await env.account("alice", points=1)
    assert await status_of(env, **SEND) == 0
    assert await status_of(env, **SEND) == PointsError.code
    await env.store.topup("alice", 5, env.clock())
    assert await status_of(env, **SEND) == 0
    assert await env.balance("alice") == 4


async def test_an_account_changing_under_every_accept_is_a_send_failure(env: Env) -> None:
    """Each accept refused as changed is retried on a fresh read, ACCEPT_ATTEMPTS in all;
    then -10, nothing stored."""
    await env.account("alice")
    changed = [AccountChangedError("changed") for _ in range(ACCEPT_ATTEMPTS)]
    env.store.failures.extend(changed)
    assert await status_of(env, **SEND) == SendFailError.code
    env.store.failures.extend(changed[1:])
    assert await status_of(env, **SEND) == 0
    assert await env.balance("alice") == 99


async def test_a_body_cut_off_by_a_disconnect_is_not_a_request(env: Env) -> None:
    """A client gone before its POST body ended (or timed out by the server): what arrived
    parses as a whole request, yet nothing is accepted or charged, and nothing is sent."""
    await env.account("alice")
    app = make_app(env.settings, env.store, env.clock)
    form = f"username=alice&password={PASSWORD}&dstaddr=0912345678&smbody=Hello wor".encode()
    arriving: list[Message] = [
        {"type": "http.request", "body": form, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return arriving.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/sms_gw/sendsms.aspx",
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("203.0.113.7", 40000),
    }
    await app(scope, receive, send)
    assert sent == []
    assert arriving == []
    assert env.store.requests == {}
    assert await env.balance("alice") == 100
