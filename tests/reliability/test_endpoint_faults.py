"""Customer endpoint faults (issue 5, item 3): the gateway in-process over real TCP, callbacks
going to endpoints that are down, slow past the timeout, or answer the wrong body.

The contract (PROTOCOL.md section 6, ``webhooks.retry_delays_s``): a callback is tried at most
``1 + len(retry_delays_s)`` times, the n-th retry ``retry_delays_s[n - 1]`` seconds after the
n-th failed attempt, and is then kept as failed. One customer's dead endpoint must not delay
another customer's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

import uvicorn

from smsgw.domain.model import State
from smsgw.engine.testing import FakeClock
from smsgw.server import utc_now
from smsgw.store.records import CallbackRow
from tests.engine.conftest import (  # noqa: F401 - fixtures used by name
    WAIT_S,
    Gateway,
    GatewayFactory,
    make_gateway,
    receiver,
    running_receiver,
)
from tests.engine.receiver import Receiver

NUMBER = "0912345678"
RETRY_DELAYS = (10.0, 20.0, 30.0)
PENDING_OF_A_DEAD_ENDPOINT = 10_000
ISOLATION_BOUND = timedelta(seconds=1)
OTHER_CUSTOMER_MESSAGES = 5


async def callback_rows(gateway: Gateway, username: str = "alice") -> list[CallbackRow]:
    return await gateway.store.list_callbacks(None, username, 100)


async def until_attempts(gateway: Gateway, attempts: int, state: str = "pending") -> CallbackRow:
    """Wait until alice's one callback has ``attempts`` failed attempts recorded in ``state``."""
    found: list[CallbackRow] = []

    async def recorded() -> bool:
        found[:] = await callback_rows(gateway)
        return len(found) == 1 and found[0].attempts == attempts and found[0].state == state

    await gateway.until(recorded)
    return found[0]


async def send_one(gateway: Gateway, response: str) -> str:
    reply = await gateway.send(dstaddr=NUMBER, smbody="hi", response=response)
    assert reply["statuscode"] == "0", reply
    assert await gateway.until_all_final(reply["msgid"]) == {NUMBER: State.DELIVRD}
    return reply["msgid"]


class closed_port:  # noqa: N801 - used like a function: ``async with closed_port()``
    """A loopback port bound but not listening (connections are refused) until ``open``, then
    served by ``endpoint`` until the block ends."""

    def __init__(self, endpoint: Receiver) -> None:
        self._receiver = endpoint
        self._sock = socket.socket()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._sock.bind(("127.0.0.1", 0))
        self._receiver.port = self._sock.getsockname()[1]
        return self

    def open(self) -> None:
        self._sock.listen(128)
        config = uvicorn.Config(
            self._receiver, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._sock.close()


async def test_endpoint_down_then_up_is_retried_on_schedule(
    make_gateway: GatewayFactory,  # noqa: F811 - the imported fixture
) -> None:
    """A callback to a refusing endpoint is retried at each set delay and lands once it is up."""
    clock = FakeClock(utc_now())
    delays = ",".join(str(delay) for delay in RETRY_DELAYS)
    gateway = await make_gateway("", clock, SMSGW_WEBHOOKS_RETRY_DELAYS_S=delays)
    endpoint = Receiver()
    async with closed_port(endpoint) as port:
        await send_one(gateway, f"{endpoint.base}/dlr")
        first = await until_attempts(gateway, 1)
        assert first.next_attempt_at == clock.now + timedelta(seconds=RETRY_DELAYS[0])
        assert first.last_error is not None
        clock.advance(RETRY_DELAYS[0])
        gateway.engine.callbacks.wake()
        second = await until_attempts(gateway, 2)
        assert second.next_attempt_at == clock.now + timedelta(seconds=RETRY_DELAYS[1])
        port.open()
        clock.advance(RETRY_DELAYS[1])
        gateway.engine.callbacks.wake()
        sent = await until_attempts(gateway, 2, state="sent")
        assert sent.sent_at == clock.now
        assert len(endpoint.hits) == 1
        assert endpoint.hits[0].params["statusstr"] == "DELIVRD"


async def test_endpoint_slow_past_the_timeout_fails_after_every_attempt(
    make_gateway: GatewayFactory,  # noqa: F811 - the imported fixture
) -> None:
    """An endpoint slower than timeout_s gets 1 + len(retry_delays_s) attempts, then fails."""
    gateway = await make_gateway(
        SMSGW_WEBHOOKS_TIMEOUT_S="0.2", SMSGW_WEBHOOKS_RETRY_DELAYS_S="0,0"
    )
    slow = gateway.receiver
    slow.hang = True
    await send_one(gateway, f"{slow.base}/slow")
    failed = await until_attempts(gateway, 3, state="failed")
    assert failed.last_error is not None
    assert "Timeout" in failed.last_error
    assert len(slow.for_path("/slow")) == 3
    assert (await gateway.store.callback_counts()).get("failed") == 1


async def test_endpoint_answering_without_the_magic_fails_after_every_attempt(
    make_gateway: GatewayFactory,  # noqa: F811 - the imported fixture
) -> None:
    """A 200 without the magic is retried, then failed after 1 + len(retry_delays_s) attempts."""
    gateway = await make_gateway()  # retry_delays_s = 0,0,0: four attempts
    wrong = gateway.receiver
    wrong.ack_magic = False
    await send_one(gateway, f"{wrong.base}/wrong")
    failed = await until_attempts(gateway, 4, state="failed")
    assert failed.last_error == "no acknowledgement in the answer"
    assert len(wrong.for_path("/wrong")) == 4


async def test_endpoint_answering_an_error_status_is_retried_until_acknowledged(
    make_gateway: GatewayFactory,  # noqa: F811 - the imported fixture
) -> None:
    """Two 503 answers then the magic: three attempts, the callback sent, none after it."""
    gateway = await make_gateway()
    busy = gateway.receiver
    busy.failures_left = 2
    await send_one(gateway, f"{busy.base}/busy")
    sent = await until_attempts(gateway, 2, state="sent")
    assert sent.last_error == "HTTP 503"
    assert len(busy.for_path("/busy")) == 3


def insert_pending_callbacks(database: Path, username: str, url: str, count: int) -> None:
    """Put ``count`` due dlr callbacks of ``username`` straight into the store's outbox."""
    now = int(utc_now().timestamp() * 1_000_000)
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        (account_id,) = conn.execute(
            "SELECT id FROM accounts WHERE username = ?", (username,)
        ).fetchone()
        conn.executemany(
            "INSERT INTO callbacks (account_id, kind, url, msgid, number, payload,"
            " next_attempt_at, created_at) VALUES (?, 'dlr', ?, ?, ?, '', ?, ?)",
            [(account_id, f"{url}?msgid={n}", n, NUMBER, now, now) for n in range(1, count + 1)],
        )


@contextlib.asynccontextmanager
async def hanging_receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as dead:
        dead.hang = True
        yield dead


async def test_dead_endpoint_with_a_huge_backlog_does_not_delay_another_customer(
    make_gateway: GatewayFactory,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    """With 10,000 callbacks pending to alice's hanging endpoint, bob's arrive within a second."""
    async with hanging_receiver() as dead:
        gateway = await make_gateway(SMSGW_WEBHOOKS_TIMEOUT_S="5")
        insert_pending_callbacks(
            tmp_path / "e2e.db", "alice", f"{dead.base}/dead", PENDING_OF_A_DEAD_ENDPOINT
        )
        gateway.engine.callbacks.wake()
        await dead.until(lambda: len(dead.hits) >= 1, WAIT_S)
        live = gateway.receiver
        for _ in range(OTHER_CUSTOMER_MESSAGES):
            await send_one_as(gateway, "bob", f"{live.base}/live")
        await live.until(lambda: len(live.hits) == OTHER_CUSTOMER_MESSAGES, WAIT_S)
        delays = await delivery_delays(gateway, "bob")
        assert len(delays) == OTHER_CUSTOMER_MESSAGES
        assert max(delays) < ISOLATION_BOUND, delays
        assert len(dead.hits) <= PENDING_OF_A_DEAD_ENDPOINT


async def send_one_as(gateway: Gateway, username: str, response: str) -> str:
    reply = await gateway.send(username, dstaddr=NUMBER, smbody="hi", response=response)
    assert reply["statuscode"] == "0", reply
    assert await gateway.until_all_final(reply["msgid"], username) == {NUMBER: State.DELIVRD}
    return reply["msgid"]


async def delivery_delays(gateway: Gateway, username: str) -> list[timedelta]:
    """Per acknowledged callback: from its row's creation (committed with the final state) to
    its acknowledgement being recorded (after the endpoint got it: an upper bound)."""

    async def all_recorded() -> bool:
        rows = await callback_rows(gateway, username)
        return all(row.state == "sent" for row in rows)

    await gateway.until(all_recorded)
    rows = await callback_rows(gateway, username)
    return [_sent_at(row) - row.created_at for row in rows]


def _sent_at(row: CallbackRow) -> datetime:
    assert row.sent_at is not None
    return row.sent_at
