"""Who gets in: lockout, API key versus password, IP allow-list, proxies, TLS, log redaction."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
import trustme

from smsgw.api.app import SmsgoApp, redact_query
from smsgw.config import load_settings
from smsgw.domain.lockout import Lockout
from smsgw.engine import accounts
from smsgw.engine.auth import Authenticator
from smsgw.engine.gateway import Gateway
from smsgw.server import build
from tests.api.conftest import PASSWORD, Env
from tests.api.test_send import lines
from tests.live import serving, with_account

API_KEY = "api-key-0123456789"


async def point(env: Env, secret: str, client: httpx.AsyncClient | None = None) -> str:
    target = client or env.client
    response = await target.get(
        "/sms_gw/query_point.asp", params={"username": "alice", "password": secret}
    )
    return response.text


async def test_lockout_after_ten_failures(env: Env) -> None:
    """Ten failures in five minutes lock the username for fifteen, even for the right secret."""
    await env.account("alice")
    for _ in range(10):
        assert await point(env, "wrong-password") == "-2"
    assert await point(env, PASSWORD) == "-2"
    env.clock.advance(15 * 60 + 1)
    assert await point(env, PASSWORD) == "100"


async def test_api_key_replaces_the_password_for_the_api(env: Env) -> None:
    """Once an API key is set only the key opens the API; clearing it restores the password."""
    await env.account("alice")
    await accounts.set_api_key(env.store, "alice", API_KEY)
    assert await point(env, API_KEY) == "100"
    assert await point(env, PASSWORD) == "-2"
    await accounts.set_api_key(env.store, "alice", None)
    assert await point(env, PASSWORD) == "100"
    assert await point(env, API_KEY) == "-2"


async def test_api_key_may_not_equal_the_password(env: Env) -> None:
    """Setting an API key equal to the login password is refused."""
    await env.account("alice")
    with pytest.raises(accounts.AccountRuleError):
        await accounts.set_api_key(env.store, "alice", PASSWORD)


async def test_ip_allow_list(env: Env) -> None:
    """With an allow-list set, a request from elsewhere is -2; from inside it works."""
    await env.account("alice")
    await accounts.set_allowed_ips(env.store, "alice", ["198.51.100.0/24"])
    assert await point(env, PASSWORD) == "-2"  # the test client is 203.0.113.7
    await accounts.set_allowed_ips(env.store, "alice", ["203.0.113.7", "198.51.100.0/24"])
    assert await point(env, PASSWORD) == "100"


def proxied_client(env: Env, peer: str, trusted: list[str]) -> httpx.AsyncClient:
    auth = Authenticator(env.store, Lockout(10, 300, 900), env.clock.monotonic)
    app = SmsgoApp(
        Gateway(env.settings, env.store, auth, env.clock),
        trusted_proxies=[ip_network(net) for net in trusted],
    )
    transport = httpx.ASGITransport(app=app, client=(peer, 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


async def test_forwarded_for_only_from_trusted_proxies(env: Env) -> None:
    """X-Forwarded-For names the client only when the peer is a trusted proxy."""
    await env.account("alice")
    await accounts.set_allowed_ips(env.store, "alice", ["198.51.100.9"])
    headers = {"X-Forwarded-For": "198.51.100.9"}
    params = {"username": "alice", "password": PASSWORD}
    async with proxied_client(env, "10.0.0.5", ["10.0.0.0/8"]) as trusted:
        response = await trusted.get("/sms_gw/query_point.asp", params=params, headers=headers)
        assert response.text == "100"
    async with proxied_client(env, "192.0.2.50", ["10.0.0.0/8"]) as untrusted:
        response = await untrusted.get("/sms_gw/query_point.asp", params=params, headers=headers)
        assert response.text == "-2"


async def test_accounts_cannot_see_each_other(env: Env) -> None:
    """Account B can neither query nor cancel account A's msgid."""
    await env.account("alice")
    await env.account("bob")
    sent = await env.get(
        "sendsms.aspx",
        username="alice",
        password=PASSWORD,
        dstaddr="0912345678",
        smbody="x",
        dlvtime="2026/12/01 10:00:00",
    )
    msgid = lines(sent.text)["msgid"]
    bob = {"username": "bob", "password": PASSWORD}
    query = await env.get("query.asp", **bob, msgid=msgid, dstaddr="0912345678")
    assert query.text == "-1|NOTFOUND|0912345678"
    bulk = await env.get("queryBulk.asp", **bob, msgid=msgid)
    assert bulk.text == f"-1|NOTFOUND||{msgid}"
    cancel = await env.get("sendsms_cancel.asp", **bob, msgid=msgid)
    assert lines(cancel.text)["statuscode"] == "-1"
    assert await env.balance("alice") == 99


def test_redact_query_hides_every_spelling_of_password() -> None:
    """password= is redacted whatever its case or percent-encoding; nothing else is."""
    query = "username=a&password=s3cret&PassWord=x2&pass%77ord=y3&smbody=password"
    redacted = redact_query(query)
    assert "s3cret" not in redacted
    assert "x2" not in redacted
    assert "y3" not in redacted
    assert "smbody=password" in redacted


async def test_access_log_never_shows_the_password(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The access log line of a request carries the path but not the secret."""
    await env.account("alice")
    with caplog.at_level(logging.INFO, logger="smsgw.access"):
        await point(env, PASSWORD)
        await point(env, "a-wrong-secret")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "query_point.asp" in logged
    assert PASSWORD not in logged
    assert "a-wrong-secret" not in logged


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, trustme.CA]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    settings = load_settings(
        None,
        {
            "SMSGW_DATABASE_URL": f"sqlite:///{tmp_path / 'tls.db'}",
            "SMSGW_HTTP_TLS_CERT": str(cert_path),
            "SMSGW_HTTP_TLS_KEY": str(key_path),
        },
    )
    runtime = build(settings)
    await with_account(runtime, "alice", PASSWORD, 7)
    async with serving(runtime, settings) as port:
        yield port, ca


async def test_tls_serves_https_and_refuses_plain_http(tls_server: tuple[int, trustme.CA]) -> None:
    """With tls_cert and tls_key the port speaks HTTPS, and a plain HTTP request gets no answer."""
    port, ca = tls_server
    context = ssl.create_default_context()
    ca.configure_trust(context)
    params = {"username": "alice", "password": PASSWORD}
    async with httpx.AsyncClient(verify=context) as client:
        response = await client.get(
            f"https://127.0.0.1:{port}/sms_gw/query_point.asp", params=params
        )
    assert response.text == "7"
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.get(f"http://127.0.0.1:{port}/sms_gw/query_point.asp", params=params)


async def sendsms(client: httpx.AsyncClient, secret: str) -> str:
    params = {"username": "alice", "password": secret, "dstaddr": "0912345678"}
    response = await client.get("/sms_gw/sendsms.aspx", params=params | {"smbody": "hi"})
    return response.text


async def test_failures_spread_over_two_processes_lock_both(env: Env) -> None:
    """The lock is the username's, not one process's (PROTOCOL.md section 7): ten failures
    split between two API processes on one store lock it in both, for the right secret too,
    although neither process counted ten itself."""
    await env.account("alice")
    other = await env.with_settings({})  # a second process (worker or node) on the store
    for client in (env.client, other) * 5:
        assert await point(env, "wrong-password", client) == "-2"
    assert await point(env, PASSWORD) == "-2"
    assert await point(env, PASSWORD, other) == "-2"
    env.clock.advance(15 * 60 + 1)
    assert await point(env, PASSWORD, other) == "100"


async def test_a_lock_set_elsewhere_holds_against_a_remembered_account(env: Env) -> None:
    """A process whose sendsms opens on its remembered copy of the account (no store read)
    still refuses once another process locked the account: the accept's transaction sees
    the lock, and nothing is charged."""
    await env.account("alice")
    other = await env.with_settings({})
    assert "statuscode=0" in await sendsms(env.client, PASSWORD)  # remembered from now on
    for _ in range(10):
        assert await point(env, "wrong-password", other) == "-2"
    assert "statuscode=-2" in await sendsms(env.client, PASSWORD)
    assert await env.balance("alice") == 99


async def test_a_success_clears_failures_counted_by_any_process(env: Env) -> None:
    """Failures before a success do not count towards a later lock, wherever they were."""
    await env.account("alice")
    other = await env.with_settings({})
    for _ in range(9):
        assert await point(env, "wrong-password", other) == "-2"
    assert await point(env, PASSWORD) == "100"
    for _ in range(9):
        assert await point(env, "wrong-password") == "-2"
    assert await point(env, PASSWORD, other) == "100"


async def test_an_operator_unlock_holds_at_once(env: Env) -> None:
    """`smsgw account unlock` lifts a lock on every process, also one whose own count
    locked the name: for an account the store's lock is the one that holds."""
    await env.account("alice")
    for _ in range(10):
        assert await point(env, "wrong-password") == "-2"
    assert await point(env, PASSWORD) == "-2"
    await accounts.unlock(env.store, "alice")
    assert await point(env, PASSWORD) == "100"
