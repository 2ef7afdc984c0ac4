"""The real server: uvicorn on a loopback port, SQLite on disk, httpx over TCP."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from smsgw.config import load_settings
from smsgw.domain.times import format_taipei
from smsgw.server import build, utc_now
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
