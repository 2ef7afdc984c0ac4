"""The real server: uvicorn on a loopback port, SQLite on disk, httpx over TCP."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from smsgw.config import load_settings
from smsgw.domain.times import format_taipei
from smsgw.server import CoalescingTransport, build, utc_now
from smsgw.store.sqlite import SqliteStore
from tests.api.conftest import PASSWORD
from tests.api.test_send import lines
from tests.live import serving, with_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

ALICE = {"username": "alice", "password": PASSWORD}


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = load_settings(None, {"SMSGW_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}"})
    runtime = build(settings)
    await with_account(runtime, "alice", PASSWORD, 100)
    async with serving(runtime, settings) as port:
        yield f"http://127.0.0.1:{port}/sms_gw"


@pytest.mark.parametrize(("with_engine", "inline"), [(False, True), (True, False)])
def test_only_an_api_only_process_writes_sqlite_on_its_loop(
    tmp_path: Path, with_engine: bool, inline: bool
) -> None:
    """The API alone writes inline; with the engine on the same loop, on the writer thread."""
    settings = load_settings(None, {"SMSGW_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}"})
    store = build(settings, with_engine=with_engine).store
    assert isinstance(store, SqliteStore)
    assert store.inline_writes is inline


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_every_endpoint_over_tcp(base_url: str, method: str) -> None:
    """Each endpoint answers over real HTTP, by GET and by POST, against SQLite on disk."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

        async def call(path: str, **params: str) -> httpx.Response:
            if method == "GET":
                return await client.get(path, params={**ALICE, **params})
            return await client.post(path, data={**ALICE, **params})

        sent = await call("/sendsms.aspx", dstaddr="0912345678", smbody="hi")
        assert "transfer-encoding" not in sent.headers
        msgid = lines(sent.text)["msgid"]
        scheduled = lines(
            (
                await call(
                    "/sendsms.aspx",
                    dstaddr="0912345679",
                    smbody="later",
                    dlvtime="2099/01/01 00:00:00",
                )
            ).text
        )
        assert scheduled["statuscode"] == "-1"  # more than 366 days ahead
        soon = format_taipei(utc_now() + timedelta(days=30))
        waiting = await call("/sendsms.aspx", dstaddr="0912345679", smbody="later", dlvtime=soon)
        later = lines(waiting.text)["msgid"]
        assert (await call("/query.asp", msgid=msgid, dstaddr="0912345678")).text == (
            "0|QUEUED|0912345678"
        )
        bulk = await call("/queryBulk.asp", msgid=f"{msgid},{later}")
        assert bulk.text == f"0|QUEUED|0912345678|{msgid}\r\n0|WAITING|0912345679|{later}"
        assert (await call("/query_point.asp")).text == "98"
        cancel = await call("/sendsms_cancel.asp", msgid=later)
        assert cancel.text == f"msgid={later}\nstatuscode=0\nstatusstr=OK\npoint=1\n"
        assert (await call("/query_point.asp")).text == "99"


class Peer(asyncio.Protocol):
    """The far end of a socket pair: what it received, and whether the stream ended."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's
        self.closed.set()


async def coalescing_pair() -> tuple[CoalescingTransport, list[bytes], Peer]:
    """A CoalescingTransport over a real socket pair; the writes reaching the real one."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    peer = Peer()
    await loop.connect_accepted_socket(lambda: peer, theirs)
    writes: list[bytes] = []
    real_write = transport.write

    def spy(data: bytes) -> None:
        writes.append(bytes(data))
        real_write(data)

    transport.write = spy  # type: ignore[assignment]
    return CoalescingTransport(transport), writes, peer


async def test_a_response_head_and_body_leave_in_one_write() -> None:
    """Writes made in one turn of the loop reach the socket as one write, in order."""
    coalescing, writes, peer = await coalescing_pair()
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    coalescing.write(head)
    coalescing.write(b"ok")
    assert writes == []
    assert coalescing.get_write_buffer_size() == len(head) + 2
    coalescing.close()
    await peer.closed.wait()
    assert writes == [head + b"ok"]
    assert peer.received == writes[0]


async def test_writes_of_later_turns_leave_in_later_writes() -> None:
    """A write is handed on at the end of its turn, not held for the next one."""
    coalescing, writes, peer = await coalescing_pair()
    coalescing.write(b"first")
    await asyncio.sleep(0)  # one turn of the loop
    coalescing.write(b"second")
    coalescing.close()
    await peer.closed.wait()
    assert writes == [b"first", b"second"]
    assert peer.received == b"firstsecond"


async def test_abort_drops_what_was_not_written() -> None:
    """abort() resets the connection without sending what the turn buffered."""
    coalescing, writes, peer = await coalescing_pair()
    coalescing.write(b"never sent")
    coalescing.abort()
    await peer.closed.wait()
    assert writes == []
    assert peer.received == b""
