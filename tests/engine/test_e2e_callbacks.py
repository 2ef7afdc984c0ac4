"""End to end: phase-two callbacks retried, failed, re-sent by the CLI, signed, isolated."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from smsgw import cli
from smsgw.store.records import CallbackRow
from tests.engine.conftest import Gateway, GatewayFactory, running_receiver
from tests.engine.test_e2e import numbers

SECRET = "whsec-e2e-0123"


async def only_callback(gateway: Gateway) -> CallbackRow:
    (row,) = await gateway.store.list_callbacks(None, None, 10)
    return row


async def until_callbacks(gateway: Gateway, **wanted: int) -> None:
    """Wait until the outbox holds exactly these counts (pending, sent, failed)."""

    async def reached() -> bool:
        counts = await gateway.store.callback_counts()
        return all(counts.get(state, 0) == count for state, count in wanted.items())

    await gateway.until(reached)


def outcome_count(gateway: Gateway, outcome: str) -> float:
    value = gateway.runtime.metrics.registry.get_sample_value(
        "smsgw_callbacks_total", {"kind": "dlr", "outcome": outcome}
    )
    return value or 0.0


async def run_cli(gateway: Gateway, *argv: str) -> int:
    """``smsgw --config <the gateway's file> ...`` in a thread (the CLI runs its own loop)."""
    return await asyncio.to_thread(cli.main, ["--config", str(gateway.config_path), *argv])


async def test_fails_twice_then_succeeds(make_gateway: GatewayFactory) -> None:
    """An endpoint failing twice gets three hits and exactly one recorded success."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    receiver.failures_left = 2
    await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d")
    await until_callbacks(gateway, sent=1, pending=0)
    assert len(receiver.hits) == 3
    row = await only_callback(gateway)
    assert (row.state, row.attempts) == ("sent", 2)
    assert outcome_count(gateway, "sent") == 1
    assert outcome_count(gateway, "retried") == 2


async def test_always_failing_then_resent_by_cli(
    make_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four failed attempts mark it failed; the CLI re-sends it when the endpoint is back."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    receiver.always_fail = True
    await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d")
    await until_callbacks(gateway, failed=1, pending=0)
    assert len(receiver.hits) == 4
    row = await only_callback(gateway)
    assert (row.state, row.attempts, row.last_error) == ("failed", 4, "HTTP 500")
    receiver.always_fail = False
    capsys.readouterr()
    assert await run_cli(gateway, "callbacks", "retry", "--failed") == 0
    assert "1 failed callback(s) queued again" in capsys.readouterr().out
    gateway.engine.callbacks.wake()
    await until_callbacks(gateway, sent=1, failed=0, pending=0)
    assert len(receiver.hits) == 5


async def test_wrong_body_is_a_failure(make_gateway: GatewayFactory) -> None:
    """HTTP 200 without the magic acknowledgement counts as a failed attempt."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    receiver.ack_magic = False
    await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d")
    await until_callbacks(gateway, failed=1, pending=0)
    row = await only_callback(gateway)
    assert (row.attempts, row.last_error) == (4, "no acknowledgement in the answer")
    assert outcome_count(gateway, "sent") == 0


async def test_signed_when_the_account_has_a_secret(make_gateway: GatewayFactory) -> None:
    """With a webhook secret set by the CLI, the callback carries a valid HMAC signature."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    assert await run_cli(gateway, "account", "set-webhook-secret", "alice", SECRET) == 0
    await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d?a=1")
    await receiver.until(lambda: len(receiver.hits) == 1)
    hit = receiver.hits[0]
    fields = dict(part.split("=", 1) for part in hit.headers["x-smsgw-signature"].split(","))
    signed = f"{fields['t']}.{receiver.base}{hit.target}".encode()
    assert fields["v1"] == hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()


async def test_unsigned_without_a_secret(make_gateway: GatewayFactory) -> None:
    """Without a webhook secret the callback has no signature header."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d")
    await receiver.until(lambda: len(receiver.hits) == 1)
    assert "x-smsgw-signature" not in receiver.hits[0].headers


async def test_dead_endpoint_does_not_hold_other_customers(make_gateway: GatewayFactory) -> None:
    """While one customer's endpoint hangs on many callbacks, another's callbacks arrive."""
    gateway = await make_gateway()
    healthy = gateway.receiver
    async with running_receiver() as dead:
        dead.hang = True
        await gateway.send(dstaddr=",".join(numbers(20)), smbody="hi", response=f"{dead.base}/d")
        await dead.until(lambda: len(dead.hits) == 8)  # every slot of that host taken
        sent = await gateway.send(
            "bob", dstaddr="0987654321,0987654322", smbody="hi", response=f"{healthy.base}/d"
        )
        assert sent["statuscode"] == "0"
        await healthy.until(lambda: len(healthy.hits) == 2)
        assert len(dead.hits) == 8
        assert len(await gateway.store.list_callbacks("pending", "alice", 100)) == 20
