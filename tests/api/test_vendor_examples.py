"""The request URLs of the vendor document's examples and sample programs, as sent."""

from __future__ import annotations

import orjson

from tests.api.conftest import PASSWORD, Env
from tests.api.test_send import lines

ASCII_EXAMPLE = (
    "/sms_gw/sendsms.aspx?username=TesterId&password={pw}&dstaddr=0912345678"
    "&encoding=ASCII&smbody=Smtest&response=http%3A%2F%2Fexample.com%2Fresponse.php"
)
BIG5_EXAMPLE = (
    "/sms_gw/sendsms.aspx?username=TesterId&password={pw}&dstaddr=0939000012"
    "&smbody=%E7%B0%A1%E8%A8%8A%E6%B8%AC%E8%A9%A6&encoding=BIG5"
    "&response=http%3A%2F%2Fexample.com%2Fresponse.php"
)
# The PUSH example's smbody bytes (%7c%21%8a...) are not UTF-8 ("請自行轉碼": encode it
# yourself); the document's own title, properly encoded, is what a client sends.
PUSH_EXAMPLE = (
    "/sms_gw/sendsms.aspx?username=TesterId&password={pw}&dstaddr=0939000012"
    "&encoding=PUSH&smbody=%E7%B0%A1%E8%A8%8A%E6%B8%AC%E8%A9%A6&wapurl=www.test.com"
    "&response=http%3A%2F%2Fexample.com%2Fresponse.php"
)
PUSH_EXAMPLE_RAW = (
    "/sms_gw/sendsms.aspx?username=TesterId&password={pw}&dstaddr=0939000012"
    "&encoding=PUSH&smbody=%7c%21%8a%0a%00%23%00%40&wapurl=www.test.com"
)
# The PHP, ASP and C# samples: BIG5 encoding, urlencoded UTF-8 body 簡訊內容.
SAMPLE_PROGRAM = (
    "/sms_gw/sendsms.aspx?username=TesterId&password={pw}&dstaddr=0988123456"
    "&encoding=BIG5&smbody=%E7%B0%A1%E8%A8%8A%E5%85%A7%E5%AE%B9"
    "&response=http%3A%2F%2Fexample.com%2Fxxx"
)


async def test_ascii_example(env: Env) -> None:
    """The ASCII example is accepted at one point."""
    await env.account("TesterId")
    reply = lines((await env.client.get(ASCII_EXAMPLE.format(pw=PASSWORD))).text)
    assert (reply["statuscode"], reply["statusstr"], reply["point"]) == ("0", "OK", "1")


async def test_big5_example_and_sample_programs(env: Env) -> None:
    """The BIG5 example and the sample programs' request are accepted at one point each."""
    await env.account("TesterId")
    for url in (BIG5_EXAMPLE, SAMPLE_PROGRAM):
        reply = lines((await env.client.get(url.format(pw=PASSWORD))).text)
        assert (reply["statuscode"], reply["point"]) == ("0", "1")


async def test_push_example(env: Env) -> None:
    """The PUSH example (title + url within 88 bytes) is one point; its raw bytes are -1."""
    await env.account("TesterId")
    reply = lines((await env.client.get(PUSH_EXAMPLE.format(pw=PASSWORD))).text)
    assert (reply["statuscode"], reply["point"]) == ("0", "1")
    raw = lines((await env.client.get(PUSH_EXAMPLE_RAW.format(pw=PASSWORD))).text)
    assert raw["statuscode"] == "-1"
    assert await env.balance("TesterId") == 99


async def test_json_examples(env: Env) -> None:
    """The JSON examples: send, point and query replies have the document's shapes."""
    await env.account("TesterId", points=6220)
    send = await env.client.get(SAMPLE_PROGRAM.format(pw=PASSWORD) + "&rtype=JSON")
    result = orjson.loads(send.content)["result"]
    assert set(result) == {"msgid", "statuscode", "statusstr", "point"}
    point = await env.client.get(
        f"/sms_gw/query_point.asp?rtype=JSON&username=TesterId&password={PASSWORD}"
    )
    assert orjson.loads(point.content) == {
        "results": {"result": [{"statuscode": "0", "point": "6219"}]}
    }
    query = await env.client.get(
        f"/sms_gw/query.asp?rtype=JSON&username=TesterId&password={PASSWORD}"
        f"&msgid={result['msgid']}&dstaddr=0988123456"
    )
    assert orjson.loads(query.content)["results"]["result"][0]["cellphone"] == "0988123456"


async def test_faq7_empty_body(env: Env) -> None:
    """FAQ 7: an empty body answers msgid=-1, statuscode=-1, CGI string error, point=0."""
    await env.account("TesterId")
    response = await env.client.get(
        f"/sms_gw/sendsms.aspx?username=TesterId&password={PASSWORD}&dstaddr=0912345678&smbody="
    )
    reply = lines(response.text)
    assert (reply["msgid"], reply["statuscode"], reply["point"]) == ("-1", "-1", "0")
    assert reply["statusstr"].startswith("CGI string error")


async def test_international_example(env: Env) -> None:
    """%2b8613681912700 (the document's China example) is accepted in UCS2 and shown with +."""
    await env.account("TesterId")
    response = await env.client.get(
        f"/sms_gw/sendsms.aspx?username=TesterId&password={PASSWORD}"
        "&dstaddr=%2b8613681912700&encoding=UCS2&smbody=%E4%BD%A0%E5%A5%BD"
    )
    msgid = lines(response.text)["msgid"]
    query = await env.client.get(
        f"/sms_gw/query.asp?username=TesterId&password={PASSWORD}&msgid={msgid}"
        "&dstaddr=%2b8613681912700"
    )
    assert query.text == "0|QUEUED|+8613681912700"


async def test_loopback_callback_needs_operator_permission(env: Env) -> None:
    """The document's own response URL (127.0.0.1) is -1 unless private networks are allowed."""
    await env.account("TesterId")
    url = ASCII_EXAMPLE.replace("example.com", "127.0.0.1").format(pw=PASSWORD)
    reply = lines((await env.client.get(url)).text)
    assert (reply["statuscode"], reply["statusstr"]) == ("-1", "CGI string error (response)")
    allowing = await env.with_settings({"SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true"})
    reply = lines((await allowing.get(url)).text)
    assert reply["statuscode"] == "0"
