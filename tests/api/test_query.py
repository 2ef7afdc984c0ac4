"""query.asp, queryBulk.asp, query_point.asp and sendsms_cancel.asp."""

from __future__ import annotations

import orjson

from tests.api.conftest import PASSWORD, Env
from tests.api.test_send import lines

ALICE = {"username": "alice", "password": PASSWORD}
BOB = {"username": "bob", "password": PASSWORD}


async def send(env: Env, dstaddr: str = "0912345678", **extra: str) -> int:
    response = await env.get("sendsms.aspx", **ALICE, dstaddr=dstaddr, smbody="x", **extra)
    reply = lines(response.text)
    assert reply["statuscode"] == "0", response.text
    return int(reply["msgid"])


async def test_query_shows_state_without_final_newline(env: Env) -> None:
    """query.asp answers statuscode|statusstr|dstaddr for one recipient, no line end."""
    await env.account("alice")
    msgid = await send(env)
    response = await env.get("query.asp", **ALICE, msgid=str(msgid), dstaddr="0912345678")
    assert response.text == "0|QUEUED|0912345678"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_query_normalises_the_number(env: Env) -> None:
    """A number given as +886... is found and shown canonically."""
    await env.account("alice")
    msgid = await send(env)
    response = await env.get("query.asp", **ALICE, msgid=str(msgid), dstaddr="+886912345678")
    assert response.text == "0|QUEUED|0912345678"


async def test_query_json_and_xml(env: Env) -> None:
    """JSON uses the document's camelCase members; XML carries the same names."""
    await env.account("alice")
    msgid = await send(env)
    response = await env.get(
        "query.asp", **ALICE, msgid=str(msgid), dstaddr="0912345678", rtype="JSON"
    )
    assert orjson.loads(response.content) == {
        "results": {
            "result": [{"statusCode": "0", "statusStr": "QUEUED", "cellphone": "0912345678"}]
        }
    }
    response = await env.get(
        "query.asp", **ALICE, msgid=str(msgid), dstaddr="0912345678", rtype="xml"
    )
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?><results><result><statusCode>0</statusCode>'
        "<statusStr>QUEUED</statusStr><cellphone>0912345678</cellphone></result></results>"
    )


async def test_query_not_found_cases(env: Env) -> None:
    """Unknown msgid, another account's msgid, or a non-recipient number: -1|NOTFOUND."""
    await env.account("alice")
    await env.account("bob")
    msgid = await send(env)
    for who, qid, number in (
        (ALICE, "999", "0912345678"),
        (BOB, str(msgid), "0912345678"),
        (ALICE, str(msgid), "0912000000"),
    ):
        response = await env.get("query.asp", **who, msgid=qid, dstaddr=number)
        assert response.text == f"-1|NOTFOUND|{number}"


async def test_query_auth_failure_row(env: Env) -> None:
    """A wrong password answers -2|Authorization failure|<dstaddr>."""
    await env.account("alice")
    response = await env.get(
        "query.asp", username="alice", password="nope-nope", msgid="1", dstaddr="0912345678"
    )
    assert response.text.startswith("-2|Authorization failure")
    assert response.text.endswith("|0912345678")


async def test_query_bulk_rows(env: Env) -> None:
    """queryBulk lists each recipient of each msgid, CRLF-joined; unknown msgids NOTFOUND."""
    await env.account("alice")
    first = await send(env, "0912345678,0912345679")
    second = await send(env, "0912345670")
    response = await env.get("queryBulk.asp", **ALICE, msgid=f"{first},777,{second}")
    assert response.text == "\r\n".join(
        [
            f"0|QUEUED|0912345678|{first}",
            f"0|QUEUED|0912345679|{first}",
            "-1|NOTFOUND||777",
            f"0|QUEUED|0912345670|{second}",
        ]
    )


async def test_query_bulk_number_filter_and_json(env: Env) -> None:
    """A number list narrows the rows; a msgid without them is NOTFOUND; JSON msgid is a number."""
    await env.account("alice")
    first = await send(env, "0912345678,0912345679")
    second = await send(env, "0912345670")
    response = await env.post(
        "querybulk.aspx",
        **ALICE,
        msgid=f"{first},{second}",
        dstaddr="0912345679",
        rtype="JSON",
    )
    assert orjson.loads(response.content)["results"]["result"] == [
        {"statusCode": "0", "statusStr": "QUEUED", "cellphone": "0912345679", "msgid": first},
        {"statusCode": "-1", "statusStr": "NOTFOUND", "cellphone": "", "msgid": second},
    ]


async def test_query_bulk_auth_failure_and_limit(env: Env) -> None:
    """Auth failure is one row -2|...||; more than 100 msgids is -1."""
    await env.account("alice")
    response = await env.get("queryBulk.asp", username="alice", password="bad-bad-bad", msgid="1")
    assert response.text.startswith("-2|Authorization failure")
    assert response.text.endswith("||")
    many = ",".join(str(n) for n in range(1, 102))
    response = await env.get("queryBulk.asp", **ALICE, msgid=many)
    assert response.text.startswith("-1|CGI string error")


async def test_query_point(env: Env) -> None:
    """query_point answers the bare balance, a bare code on error, and the JSON shape."""
    await env.account("alice", points=6220)
    assert (await env.get("query_point.asp", **ALICE)).text == "6220"
    assert (await env.get("query_point.asp", username="alice", password="x" * 9)).text == "-2"
    response = await env.get("query_point.aspx", **ALICE, rtype="JSON")
    assert orjson.loads(response.content) == {
        "results": {"result": [{"statuscode": "0", "point": "6220"}]}
    }
    response = await env.get("query_point.aspx", username="zed", password="x" * 9, rtype="JSON")
    assert orjson.loads(response.content) == {
        "results": {"result": [{"statuscode": "-2", "point": "0"}]}
    }


async def test_cancel_scheduled_refunds(env: Env) -> None:
    """Cancelling a scheduled message moves it to CANCEL and refunds its points."""
    await env.account("alice")
    msgid = await send(env, "0912345678,0912345679", dlvtime="2026/12/01 10:00:00")
    assert await env.balance("alice") == 98
    waiting = await env.get("query.asp", **ALICE, msgid=str(msgid), dstaddr="0912345678")
    assert waiting.text == "0|WAITING|0912345678"
    response = await env.get("sendsms_cancel.asp", **ALICE, msgid=str(msgid))
    assert response.text == f"msgid={msgid}\nstatuscode=0\nstatusstr=OK\npoint=2\n"
    assert await env.balance("alice") == 100
    after = await env.get("query.asp", **ALICE, msgid=str(msgid), dstaddr="0912345679")
    assert after.text == "0|CANCEL|0912345679"


async def test_cancel_nothing_left(env: Env) -> None:
    """Cancel of a sent, unknown, already-cancelled or foreign msgid is -1 and refunds nothing."""
    await env.account("alice")
    await env.account("bob")
    queued = await send(env)
    scheduled = await send(env, dlvtime="2026/12/01 10:00:00")
    assert (
        lines((await env.get("sendsms_cancel.asp", **ALICE, msgid=str(scheduled))).text)[
            "statuscode"
        ]
        == "0"
    )
    for who, msgid in ((ALICE, queued), (ALICE, 424242), (ALICE, scheduled), (BOB, scheduled)):
        reply = lines((await env.get("sendsms_cancel.asp", **who, msgid=str(msgid))).text)
        assert reply["statuscode"] == "-1"
        assert reply["msgid"] == "-1"
        assert reply["point"] == "0"
    assert await env.balance("alice") == 99


async def test_scheduled_time_in_the_past_is_queued(env: Env) -> None:
    """A dlvtime already passed sends at once (QUEUED, not WAITING)."""
    await env.account("alice")
    msgid = await send(env, dlvtime="2020-01-01 00:00:00")
    response = await env.get("query.asp", **ALICE, msgid=str(msgid), dstaddr="0912345678")
    assert response.text == "0|QUEUED|0912345678"
