"""Security suite (issue 5 item 5): the gaps left by tests/api/test_security.py (lockout, API
key, allow-list, X-Forwarded-For, isolation, TLS, access-log redaction) and by the engine's
callback tests: SSRF at request time and at callback time for every forbidden kind of address,
allow-lists behind proxy chains, isolation in bulk queries, lockout per username, and the
run-wide log check of tests/conftest.py.
"""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from smsgw.config import WebhookSettings
from smsgw.engine import accounts
from smsgw.engine.callback_http import HttpxGetter
from smsgw.engine.callbacks import CallbackSender, CallbackWorker
from smsgw.engine.testing import FakeClock
from smsgw.store.memory import MemoryStore
from tests.api import conftest as api_conftest
from tests.api.conftest import PASSWORD, Env
from tests.api.test_security import proxied_client
from tests.api.test_send import lines
from tests.conftest import RUN_LOG, leaked_secrets, secrets_in_use
from tests.engine.test_engine_timers import START, final_with_callback, send, worker_for

ALICE = {"username": "alice", "password": PASSWORD}
BOB = {"username": "bob", "password": PASSWORD}
SUITE_API_KEY = "suite-api-key-5f0c1e"
env = api_conftest.env  # the API suite's fixture: a gateway on the in-memory store
FORBIDDEN_URLS = [
    "http://127.0.0.1/dlr",
    "http://[::1]/dlr",
    "http://10.0.0.1/dlr",
    "http://10.255.1.2:8080/dlr",
    "http://169.254.169.254/latest/meta-data",
    "http://localhost/dlr",
    "http://2130706433/dlr",
    "http://[::ffff:127.0.0.1]/dlr",
]
FORBIDDEN_ADDRESSES = ["127.0.0.1", "::1", "10.0.0.7", "169.254.169.254", "::ffff:10.1.1.1"]


def recording_transport(contacted: list[httpx.Request]) -> httpx.MockTransport:
    """A transport that answers 200 and remembers every request that reached it."""

    def answer(request: httpx.Request) -> httpx.Response:
        contacted.append(request)
        return httpx.Response(200)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
@pytest.mark.parametrize("name", ["response", "replyurl"])
async def test_forbidden_callback_targets_are_refused_at_request_time(
    env: Env, url: str, name: str
) -> None:
    """A loopback, private, link-local or metadata callback URL is -1 and charges nothing."""
    await env.account("alice")
    sent = await env.get("sendsms.aspx", **ALICE, dstaddr="0912345678", smbody="x", **{name: url})
    assert lines(sent.text)["statuscode"] == "-1"
    assert await env.balance("alice") == 100


@pytest.mark.parametrize("url", FORBIDDEN_URLS[:5])
async def test_forbidden_callback_targets_pass_when_the_operator_allows(env: Env, url: str) -> None:
    """With webhooks.allow_private_networks the same URLs are accepted."""
    await env.account("alice")
    allowed = await env.with_settings({"SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true"})
    sent = await allowed.get(
        "/sms_gw/sendsms.aspx",
        params={**ALICE, "dstaddr": "0912345678", "smbody": "x", "response": url},
    )
    assert lines(sent.text)["statuscode"] == "0"


@pytest.mark.parametrize("address", FORBIDDEN_ADDRESSES)
async def test_names_resolving_inwards_are_refused_at_callback_time(address: str) -> None:
    """A callback host whose name resolves to a forbidden address is never contacted."""
    clock = FakeClock(START)
    store = MemoryStore()
    await final_with_callback(store, clock, "http://innocent.example.com/d")
    contacted: list[httpx.Request] = []
    transport = recording_transport(contacted)
    webhooks = WebhookSettings(allow_private_networks=False, retry_delays_s=(0.0,))
    worker = worker_for(store, clock, transport, webhooks, [address])
    assert await send(worker) == 1
    assert contacted == []
    (row,) = await store.list_callbacks(None, None, 10)
    assert row.state == "failed"


async def test_a_name_mixing_public_and_private_addresses_is_refused() -> None:
    """One forbidden address among a name's answers is enough to refuse the callback."""
    clock = FakeClock(START)
    store = MemoryStore()
    await final_with_callback(store, clock, "http://mixed.example.com/d")
    contacted: list[httpx.Request] = []
    transport = recording_transport(contacted)
    webhooks = WebhookSettings(allow_private_networks=False, retry_delays_s=(0.0,))
    worker = worker_for(store, clock, transport, webhooks, ["93.184.216.34", "10.0.0.8"])
    assert await send(worker) == 1
    assert contacted == []


async def test_localhost_resolved_by_the_real_resolver_is_refused_at_callback_time() -> None:
    """A stored callback to localhost, resolved through the system resolver, is refused."""
    clock = FakeClock(START)
    store = MemoryStore()
    await final_with_callback(store, clock, "http://localhost:9/d")
    contacted: list[httpx.Request] = []
    transport = recording_transport(contacted)
    webhooks = WebhookSettings(allow_private_networks=False, retry_delays_s=(0.0,))
    async with httpx.AsyncClient(transport=transport) as client:
        sender = CallbackSender(webhooks, HttpxGetter(client))
        worker = CallbackWorker(store, sender, webhooks, clock)
        assert await send(worker) == 1
    assert contacted == []
    (row,) = await store.list_callbacks(None, None, 10)
    assert row.state == "failed"


async def _scheduled(env: Env, who: dict[str, str], number: str) -> str:
    sent = await env.get(
        "sendsms.aspx", **who, dstaddr=number, smbody="x", dlvtime="2026/12/01 10:00:00"
    )
    return lines(sent.text)["msgid"]


async def test_bulk_query_mixing_own_and_foreign_msgids_shows_only_own(env: Env) -> None:
    """In one bulk query, B's own msgid is shown and A's is NOTFOUND, in text and JSON."""
    await env.account("alice")
    await env.account("bob")
    alices = await _scheduled(env, ALICE, "0912345678")
    bobs = await _scheduled(env, BOB, "0922333444")
    text = await env.get("queryBulk.asp", **BOB, msgid=f"{alices},{bobs}")
    assert text.text == f"-1|NOTFOUND||{alices}\r\n0|WAITING|0922333444|{bobs}"
    filtered = await env.get("queryBulk.asp", **BOB, msgid=alices, dstaddr="0912345678")
    assert filtered.text == f"-1|NOTFOUND||{alices}"
    as_json = await env.get("queryBulk.asp", **BOB, msgid=f"{alices},{bobs}", rtype="JSON")
    rows = orjson.loads(as_json.content)["results"]["result"]
    assert [row["statusCode"] for row in rows] == ["-1", "0"]
    assert "0912345678" not in as_json.text


async def test_cancel_of_a_foreign_msgid_refunds_nothing_and_keeps_it_waiting(env: Env) -> None:
    """B cancelling A's scheduled msgid gets -1; A's message stays WAITING and A keeps paying."""
    await env.account("alice")
    await env.account("bob")
    alices = await _scheduled(env, ALICE, "0912345678")
    cancel = await env.post("sendsms_cancel.asp", **BOB, msgid=alices)
    assert lines(cancel.text)["statuscode"] == "-1"
    assert (await env.balance("alice"), await env.balance("bob")) == (99, 100)
    query = await env.get("query.asp", **ALICE, msgid=alices, dstaddr="0912345678")
    assert query.text == "0|WAITING|0912345678"


async def test_lockout_is_per_username_and_covers_the_api_key(env: Env) -> None:
    """Failures lock alice (even her API key) but never bob."""
    await env.account("alice")
    await env.account("bob")
    await accounts.set_api_key(env.store, "alice", SUITE_API_KEY)
    for _ in range(10):
        failed = await env.get("query_point.asp", username="alice", password="wrong-guess-1")
        assert failed.text == "-2"
    key = await env.get("query_point.asp", username="alice", password=SUITE_API_KEY)
    assert key.text == "-2"
    assert (await env.get("query_point.asp", **BOB)).text == "100"
    env.clock.advance(15 * 60 + 1)
    key = await env.get("query_point.asp", username="alice", password=SUITE_API_KEY)
    assert key.text == "100"


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ("198.51.100.9", "100"),  # the client as the trusted proxy saw it
        ("203.0.113.66, 198.51.100.9", "100"),  # a client-written left part is ignored
        ("198.51.100.9, 203.0.113.66", "-2"),  # the nearest untrusted hop is the client
        ("198.51.100.9, 10.0.0.9", "100"),  # trusted hops are skipped
        ("198.51.100.9, garbage", "-2"),  # garbage stops the walk at the proxy itself
    ],
)
async def test_allow_list_behind_a_trusted_proxy_chain(env: Env, chain: str, expected: str) -> None:
    """X-Forwarded-For is read from the right, past trusted hops only."""
    await env.account("alice")
    await accounts.set_allowed_ips(env.store, "alice", ["198.51.100.9"])
    async with proxied_client(env, "10.0.0.5", ["10.0.0.0/8"]) as client:
        response = await client.get(
            "/sms_gw/query_point.asp", params=ALICE, headers={"X-Forwarded-For": chain}
        )
    assert response.text == expected


async def test_forwarded_for_from_a_peer_without_trusted_proxies_is_ignored(env: Env) -> None:
    """With no trusted proxy configured, a spoofed X-Forwarded-For changes nothing."""
    await env.account("alice")
    await accounts.set_allowed_ips(env.store, "alice", ["198.51.100.9"])
    response = await env.client.get(
        "/sms_gw/query_point.asp", params=ALICE, headers={"X-Forwarded-For": "198.51.100.9"}
    )
    assert response.text == "-2"


def test_the_run_log_check_knows_this_suites_secrets() -> None:
    """The run-wide log check collects the secrets of loaded test modules, this one's included."""
    in_use = secrets_in_use()
    assert {PASSWORD, SUITE_API_KEY} <= in_use


def test_the_run_log_check_would_catch_a_leak() -> None:
    """A captured line holding a secret is reported; the redacting pipeline masks pairs."""
    assert leaked_secrets([f"bind failed token {SUITE_API_KEY}"], {SUITE_API_KEY})
    before = len(RUN_LOG.lines)
    logging.getLogger("smsgw.test").warning("retry with password=%s", SUITE_API_KEY)
    assert len(RUN_LOG.lines) == before + 1
    assert SUITE_API_KEY not in RUN_LOG.lines[-1]
    assert "password=***" in RUN_LOG.lines[-1]
