"""End to end: a handset reply (MO) forwarded to replyurl within replydays, kept after."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from smsgw import cli
from smsgw.engine.testing import FakeClock
from smsgw.server import utc_now
from smsgw.smpp.simulator.messages import mo_deliver_sms
from tests.engine.conftest import Gateway, GatewayFactory

GATEWAY_NUMBER = "55123"


async def replied_count(gateway: Gateway, matched: str) -> float:
    value = gateway.runtime.metrics.registry.get_sample_value(
        "smsgw_replies_total", {"matched": matched}
    )
    return value or 0.0


async def test_reply_forwarded_within_replydays(make_gateway: GatewayFactory) -> None:
    """A reply within replydays is matched to the message and forwarded to its replyurl."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    sent = await gateway.send(
        dstaddr="0912345678", smbody="yes or no?", replyurl=f"{receiver.base}/mo", replydays="1"
    )
    assert sent["statuscode"] == "0"
    await gateway.until_all_final(sent["msgid"])
    assert await gateway.simulator.inject_mo("0912345678", GATEWAY_NUMBER, "yes please") == 1
    await receiver.until(lambda: len(receiver.for_path("/mo")) == 1)
    params = receiver.for_path("/mo")[0].params
    assert params["msgid"] == sent["msgid"]
    assert params["srcaddr"] == "0912345678"
    assert params["dstaddr"] == GATEWAY_NUMBER
    assert params["smbody"] == "yes please"
    assert params["encoding"] == "ASCII"


async def test_a_long_reply_is_joined_and_forwarded_once(make_gateway: GatewayFactory) -> None:
    """A reply too long for one SMS comes as concatenated parts, each kept in the store
    before it is acknowledged; the last one forwards the whole text, once."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    sent = await gateway.send(
        dstaddr="0912345678", smbody="tell me more", replyurl=f"{receiver.base}/mo"
    )
    await gateway.until_all_final(sent["msgid"])
    text = "A long answer, " * 20  # 300 characters: 2 parts of GSM 7-bit
    assert len(mo_deliver_sms("0912345678", GATEWAY_NUMBER, text, reference=1)) == 2
    assert await gateway.simulator.inject_mo("0912345678", GATEWAY_NUMBER, text) == 1
    await receiver.until(lambda: len(receiver.for_path("/mo")) == 1)
    params = receiver.for_path("/mo")[0].params
    assert (params["msgid"], params["smbody"]) == (sent["msgid"], text)
    replies = await gateway.runtime.store.list_replies(unmatched_only=False, limit=10)
    assert [reply.body for reply in replies] == [text]


async def test_reply_after_replydays_is_kept_unmatched(
    make_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reply after replydays ran out is not forwarded, stored unmatched, and listed by the CLI."""
    clock = FakeClock(utc_now())
    gateway = await make_gateway(clock=clock)
    receiver = gateway.receiver
    sent = await gateway.send(
        dstaddr="0912345678", smbody="yes or no?", replyurl=f"{receiver.base}/mo", replydays="1"
    )
    await gateway.until_all_final(sent["msgid"])
    clock.advance(timedelta(days=1, minutes=1).total_seconds())
    await gateway.simulator.inject_mo("0912345678", GATEWAY_NUMBER, "too late")

    async def stored_unmatched() -> bool:
        return await replied_count(gateway, "false") == 1

    await gateway.until(stored_unmatched)
    await gateway.engine.callbacks.send_due()
    await gateway.engine.callbacks.drain()
    assert receiver.for_path("/mo") == []
    capsys.readouterr()
    argv = ["--config", str(gateway.config_path), "replies", "list", "--unmatched"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("\t0912345678\t55123\tunmatched\ttoo late")
