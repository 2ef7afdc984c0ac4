"""The callbacks outbox worker: phase-two delivery reports and reply forwarding.

A callback is a store row until the customer acknowledged it (PROTOCOL.md section 6). The
worker claims due rows under a lease, sends each as one GET over pooled keep-alive
connections, and records the outcome in batches: delivered, retried after the configured
delays, or failed (kept, re-sendable with ``smsgw callbacks retry --failed``).

Isolation: at most ``per_host`` requests run against one host at a time. A job whose host is
saturated waits in that host's backlog (still claimed) and starts when one of the host's
requests ends, so one customer's slow or dead endpoint holds neither the worker nor other
customers' callbacks, and a busy but healthy endpoint is not made to wait for leases. A claim
that filled up with such waiting jobs is followed at once by the next claim, not by the idle
wait: however many callbacks a dead endpoint has pending, the rows due behind them are reached
within a few claims.

Targets are checked again at send time: a name resolving to a loopback, private, link-local
or metadata address is refused (unless allowed) and not retried. A crash between sending and
recording means the callback is sent again when its lease runs out: at-least-once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from urllib.parse import urlsplit

from smsgw.config import WebhookSettings
from smsgw.domain.delivery import is_ack, next_attempt
from smsgw.domain.urls import is_forbidden_address
from smsgw.engine.callback_http import (
    CONNECTIONS_PER_HOST,
    CallbackTransportError,
    HttpAnswer,
    HttpGetter,
    url_parts,
)
from smsgw.engine.pacing import idle, settle, store_probe
from smsgw.store.port import Store
from smsgw.store.records import CallbackJob, CallbackOutcome

log = logging.getLogger("smsgw.callbacks")

Clock = Callable[[], datetime]
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
SIGNATURE_HEADER = "X-Smsgw-Signature"
LATENCY_HOSTS = 4096  # hosts whose answer times the worker remembers


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one send went: ``error`` None means acknowledged; ``retry`` False gives up now."""

    error: str | None
    retry: bool = True


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    return [str(info[4][0]) for info in infos]


def signature(secret: str, url: str, unix_time: int) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "t.<url>">`` (PROTOCOL.md section 6)."""
    mac = hmac.new(secret.encode(), f"{unix_time}.{url}".encode(), hashlib.sha256).hexdigest()
    return f"t={unix_time},v1={mac}"


class CallbackSender:
    """Sends one callback and judges the answer; never raises for a customer's fault."""

    def __init__(
        self,
        settings: WebhookSettings,
        client: HttpGetter,
        *,
        resolver: Resolver = resolve_host,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._client = client
        self._resolve = resolver
        self._wall_clock = wall_clock

    async def send(self, job: CallbackJob) -> Attempt:
        refusal = await self._refusal(job.url)
        if refusal is not None:
            return Attempt(refusal, retry=False)
        headers: dict[str, str] = {}
        if job.webhook_secret:
            headers[SIGNATURE_HEADER] = signature(
                job.webhook_secret, job.url, int(self._wall_clock())
            )
        try:
            answer = await self._client.get(job.url, headers)
        except CallbackTransportError as error:
            return Attempt(str(error))
        return Attempt(_judge(job, answer))

    async def _refusal(self, url: str) -> str | None:
        if self._settings.allow_private_networks:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = [host] if _is_literal(host) else await self._resolve(host, parts.port or 80)
        except OSError as error:
            return f"cannot resolve {host}: {error}"[:200]
        for address in addresses:
            if is_forbidden_address(ipaddress.ip_address(address.split("%", 1)[0])):
                return f"refused: {host} resolves to a private or local address"
        return None


def host_of(url: str) -> str:
    """The URL's host and port, lower-cased (the base parsed once per customer)."""
    return url_parts(url)[1].lower()


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _judge(job: CallbackJob, answer: HttpAnswer) -> str | None:
    if job.kind == "mo":
        return None if answer.is_success else f"HTTP {answer.status}"
    if answer.status != HTTPStatus.OK:
        return f"HTTP {answer.status}"
    if job.msgid is None or not is_ack(answer.text, job.msgid):
        return "no acknowledgement in the answer"
    return None


class CallbackWorker:
    """Claims due callbacks and sends them concurrently, bounded globally and per host."""

    def __init__(
        self,
        store: Store,
        sender: CallbackSender,
        settings: WebhookSettings,
        clock: Clock,
        *,
        concurrency: int = 256,
        per_host: int = CONNECTIONS_PER_HOST,
        idle_s: float = 0.5,
        probe: bool = False,
        on_outcome: Callable[[CallbackJob, Attempt], None] | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._settings = settings
        self._clock = clock
        self._concurrency = concurrency
        self._per_host = per_host
        self._idle_s = idle_s
        # Alone in its process nothing wakes it: it reads whether rows are due (pacing.idle).
        self._probe = store_probe(store.callbacks_due, clock) if probe else None
        self._on_outcome = on_outcome
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_host_busy: dict[str, int] = {}
        self._backlog: dict[str, deque[CallbackJob]] = {}
        self._claimed: set[int] = set()  # in flight or in a backlog: a new claim only renews
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_claim_full = False
        self._latency_s: dict[str, float] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            started = await self.send_due()
            if started == 0 and not self._last_claim_full:
                await self._idle()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming; let sends in flight finish for ``grace_s``, then cancel them."""
        self._stopping = True
        self._wake.set()
        await settle(set(self._in_flight), grace_s)

    async def send_due(self) -> int:
        """Claim what is due and start sending it; the number of sends started."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            self._last_claim_full = False  # wait for a send to end, not for the next claim
            return 0
        lease_s = self._settings.timeout_s * 2 + 5
        jobs = await self._store.claim_callbacks(
            self._clock(), free, lease_s, per_account=self._share(free, lease_s)
        )
        self._last_claim_full = len(jobs) == free
        if self._stopping:
            return 0  # stop() began while we claimed: the rows return after their lease
        started = 0
        for job in jobs:
            if job.id in self._claimed:
                continue
            self._claimed.add(job.id)
            host = host_of(job.url)
            if self._per_host_busy.get(host, 0) >= self._per_host:
                self._backlog.setdefault(host, deque()).append(job)
                continue
            self._start(job, host)
            started += 1
        return started

    async def drain(self) -> None:
        """Wait until every send started so far has been recorded (for tests and shutdown)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight))

    def _share(self, free: int, lease_s: float) -> int:
        """How many rows one account may take in this claim.

        Accounts take turns within a claim, so the share only bounds what a host's backlog
        may hold: no more than the slowest busy host can send within half a lease at its
        recent answer time (so that claimed rows are sent before their lease runs out), and
        never less than two hosts' worth. A dead or slow endpoint keeps claims small; fast
        ones get whole claims.
        """
        share = free
        for host in self._per_host_busy.keys() | self._backlog.keys():
            latency_s = max(self._latency_s.get(host, self._settings.timeout_s), 1e-4)
            sendable = int(self._per_host * lease_s / 2 / latency_s)
            share = min(share, sendable - len(self._backlog.get(host, ())))
        return max(self._per_host * 2, share)

    def _start(self, job: CallbackJob, host: str) -> None:
        self._per_host_busy[host] = self._per_host_busy.get(host, 0) + 1
        task = asyncio.get_running_loop().create_task(self._deliver(job, host))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _deliver(self, job: CallbackJob, host: str) -> None:
        started = time.monotonic()
        try:
            attempt = await self._sender.send(job)
        finally:
            self._observe(host, time.monotonic() - started)
            self._release(host)
        try:
            await self._record(job, attempt)
        finally:
            self._claimed.discard(job.id)

    async def _record(self, job: CallbackJob, attempt: Attempt) -> None:
        now = self._clock()
        if attempt.error is None:
            outcome = CallbackOutcome(job.id, delivered=True)
        else:
            retry_at = (
                next_attempt(job.attempts + 1, self._settings.retry_delays_s, now)
                if attempt.retry
                else None
            )
            outcome = CallbackOutcome(
                job.id, delivered=False, error=attempt.error, retry_at=retry_at
            )
        await self._store.finish_callbacks([outcome], now)
        if self._on_outcome is not None:
            self._on_outcome(job, attempt)

    def _observe(self, host: str, elapsed_s: float) -> None:
        """A moving average of the host's answer time (for `_share`)."""
        previous = self._latency_s.get(host)
        self._latency_s[host] = (
            elapsed_s if previous is None else previous + (elapsed_s - previous) / 8
        )
        if len(self._latency_s) > LATENCY_HOSTS:  # bounded: forget the oldest host seen
            del self._latency_s[next(iter(self._latency_s))]

    def _release(self, host: str) -> None:
        left = self._per_host_busy.get(host, 1) - 1
        if left:
            self._per_host_busy[host] = left
        else:
            self._per_host_busy.pop(host, None)
        backlog = self._backlog.get(host)
        if backlog and not self._stopping:
            job = backlog.popleft()
            if not backlog:
                del self._backlog[host]
            self._start(job, host)
        if len(self._backlog.get(host, ())) < self._per_host:
            # The host's queue runs low: claim again now rather than after the idle wait,
            # or a host with more due callbacks than one claim's share would trickle.
            self._wake.set()

    async def _idle(self) -> None:
        await idle(self._wake, self._idle_s, self._probe)
