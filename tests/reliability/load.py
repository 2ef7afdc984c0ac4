"""The bounded load of the crash test: sendsms requests with ``response`` set, a few at a time,
each text carrying a unique token so the simulator's submits can be traced to their request.

A request counts as accepted only when its reply arrived with statuscode 0; one in flight when
the gateway was killed fails and is counted as such (it may still have been committed)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import httpx
import orjson

TOKEN_PREFIX: Final = "crash"
LONG_SHARE: Final = 0.25  # requests sent as LASCII of two segments
MAX_RECIPIENTS: Final = 3
REQUEST_TIMEOUT_S: Final = 30.0


def token_text(serial: int, *, long: bool) -> str:
    """The smbody of request ``serial``: its token once, or repeated over two segments."""
    token = f"{TOKEN_PREFIX}{serial:06d}"
    return f"{token} " * 25 if long else f"{token} hello"


@dataclass(frozen=True, slots=True)
class AcceptedRequest:
    msgid: int
    points: int
    numbers: tuple[str, ...]


@dataclass
class LoadGenerator:
    """Sends batches of requests with at most ``concurrency`` in flight; seeded numbers/texts."""

    base_url: str
    username: str
    password: str
    callback_url: str
    rng: random.Random
    concurrency: int = 4
    accepted: dict[int, AcceptedRequest] = field(default_factory=dict)
    failed: int = 0
    refused: list[str] = field(default_factory=list)
    on_accept: Callable[[], None] | None = None
    _serial: int = 0
    _halted: bool = False

    def halt(self) -> None:
        """Start no further request of the current batch (those in flight carry on)."""
        self._halted = True

    async def send_batch(self, count: int) -> None:
        """Send ``count`` requests (fewer if halted), ``concurrency`` at a time."""
        self._halted = False
        plans = [self._plan() for _ in range(count)]
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        for plan in plans:
            queue.put_nowait(plan)
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
        ) as client:
            workers = [self._worker(client, queue) for _ in range(self.concurrency)]
            await asyncio.gather(*workers)

    async def _worker(
        self, client: httpx.AsyncClient, queue: asyncio.Queue[dict[str, str]]
    ) -> None:
        while not self._halted and not queue.empty():
            await self._send(client, queue.get_nowait())

    async def _send(self, client: httpx.AsyncClient, params: dict[str, str]) -> None:
        try:
            response = await client.post("/sms_gw/sendsms.aspx", data=params)
        except httpx.HTTPError:
            self.failed += 1
            return
        try:
            result = orjson.loads(response.content)["result"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.refused.append(f"HTTP {response.status_code}: {response.text[:200]}")
            return
        if result["statuscode"] != "0":
            self.refused.append(str(result))
            return
        numbers = tuple(params["dstaddr"].split(","))
        msgid = int(result["msgid"])
        self.accepted[msgid] = AcceptedRequest(msgid, int(result["point"]), numbers)
        if self.on_accept is not None:
            self.on_accept()

    def _plan(self) -> dict[str, str]:
        self._serial += 1
        long = self.rng.random() < LONG_SHARE
        count = self.rng.randint(1, MAX_RECIPIENTS)
        numbers = {f"09{self.rng.randrange(10**8):08d}" for _ in range(count)}
        return {
            "username": self.username,
            "password": self.password,
            "dstaddr": ",".join(sorted(numbers)),
            "smbody": token_text(self._serial, long=long),
            "encoding": "LASCII" if long else "ASCII",
            "response": self.callback_url,
            "rtype": "JSON",
        }
