"""The engine's lifecycle: connectors, dispatcher, callbacks, housekeeping; in a fixed order.

An engine runs all of it, or one ``part``: ``delivery`` (connectors, dispatcher, receipts,
replies, housekeeping) or ``callbacks`` (the callback worker), so that `smsgw serve` can
run the two in processes of their own (``engine.callbacks_process``). They share nothing
but the store: the callback worker finds new rows by claiming them.

Start: in-process simulators (connectors of kind ``simulator``), ESMEs, then the workers.
Stop (reverse, each step bounded): stop claiming and let in-flight submits be recorded,
unbind the ESMEs (receipts being stored still get their answer), stop the callback worker,
stop the simulators. Closing the store is the caller's last step.

Recovery needs no step of its own: recipients a dead process left ENROUTE without SMSC ids
are claimed again when their lease runs out, and so are callbacks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, get_args

from smsgw.config import ConnectorSettings, Settings
from smsgw.engine.callback_http import HttpGetter, HttptoolsGetter
from smsgw.engine.callbacks import Attempt, CallbackSender, CallbackWorker
from smsgw.engine.dispatcher import Dispatcher, Link
from smsgw.engine.inbound import Inbound
from smsgw.engine.metrics import Metrics
from smsgw.engine.unrecorded import Unrecorded
from smsgw.smpp.esme import Esme
from smsgw.smpp.simulator import Simulator
from smsgw.store.port import Store
from smsgw.store.records import CallbackJob, IncomingReply, ReceiptApplied, ReceiptUpdate
from smsgw.store.records import SubmitResult as Result

log = logging.getLogger("smsgw.engine")

Clock = Callable[[], datetime]
Part = Literal["all", "delivery", "callbacks"]
PARTS: tuple[Part, ...] = get_args(Part)
HOUSEKEEPING_S = 5.0
CALLBACKS_IDLE_S = 0.5  # woken by every receipt that settles a recipient in this process


class Changes:
    """Wakes whoever waits for the engine's state to move (tools and tests; no polling)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
        """Return once ``predicate()`` holds; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                self._event.clear()
                if await predicate():
                    return
                await self._event.wait()


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        metrics: Metrics | None = None,
        http: HttpGetter | None = None,
        dispatcher_idle_s: float = 0.2,
        part: Part = "all",
        alone: bool = False,
        woken: bool = False,
        signal_callbacks: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.part = part
        self.store = store
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._client = http or HttptoolsGetter(settings.webhooks.timeout_s)
        self._own_client = http is None
        self.simulators: dict[str, Simulator] = {}
        self.esmes: dict[str, Esme] = {}
        self.unrecorded = Unrecorded()
        self.inbound = Inbound(
            store,
            clock,
            on_receipt=self._count_receipt,
            on_reply=self._count_reply,
            unrecorded=self.unrecorded,
        )
        self.dispatcher: Dispatcher | None = None
        self.callbacks = CallbackWorker(
            store,
            CallbackSender(settings.webhooks, self._client),
            settings.webhooks,
            clock,
            # Apart from the delivery part only a wake-up datagram wakes it (smsgw.engine.
            # wakeup); without one it reads whether rows are due (pacing.PROBE_S). It claims
            # every poll_s anyway.
            idle_s=dispatcher_idle_s if part == "callbacks" else CALLBACKS_IDLE_S,
            probe=part == "callbacks" and not woken,
            on_outcome=self._count_callback,
        )
        self._dispatcher_idle_s = dispatcher_idle_s
        self._alone = alone  # apart from the API: no accept wakes the dispatcher...
        self._woken = woken  # ...except by a datagram (smsgw.engine.wakeup): no probes
        self._signal_callbacks = signal_callbacks  # the callback worker in another process
        self._tasks: list[asyncio.Task[None]] = []
        self.changes = Changes()

    @property
    def bound(self) -> bool:
        """At least one connector is bound (readiness)."""
        return any(esme.bound for esme in self.esmes.values())

    def wake(self) -> None:
        """Something was accepted: look for due work now rather than at the next tick."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def start(self) -> None:
        self._tasks = []
        if self.part != "callbacks":
            await self._start_delivery()
        if self.part != "delivery":
            self._tasks.append(asyncio.create_task(self.callbacks.run(), name="callbacks"))
        log.info("engine (%s) started with connectors %s", self.part, ", ".join(self.esmes))

    async def _start_delivery(self) -> None:
        links: dict[str, Link] = {}
        for connector in self.settings.connectors:
            settings = await self._connector_settings(connector)
            esme = Esme(settings, self.inbound.handler(connector))
            esme.on_submit_answered = partial(self.unrecorded.answered, connector.name)
            await esme.start()
            self.esmes[connector.name] = esme
            links[connector.name] = Link(connector, esme)
            self.metrics.watch_connector(connector.name, esme)
        self.dispatcher = Dispatcher(
            self.store,
            links,
            self.settings,
            self.clock,
            lease_s=self.settings.engine.claim_lease_s,
            idle_s=self._dispatcher_idle_s,
            probe=self._alone and not self._woken,
            on_result=self._count_result,
            unrecorded=self.unrecorded,
        )
        self._tasks += [
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await asyncio.gather(*(esme.stop() for esme in self.esmes.values()))
        await self.callbacks.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*(simulator.stop() for simulator in self.simulators.values()))
        if self._own_client:
            await self._client.close()
        log.info("engine (%s) stopped", self.part)

    async def housekeeping(self) -> None:
        """One round: receipt timeouts, stale reply parts, queue-depth gauges."""
        now = self.clock()
        timeout = timedelta(seconds=self.settings.engine.receipt_timeout_s)
        await self.store.expire_unanswered(now - timeout, now)
        await self.inbound.flush_expired()
        self.metrics.set_depths(await self.store.state_counts(), await self.store.callback_counts())

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self.housekeeping()
            except Exception:
                log.exception("housekeeping failed; trying again")
            await asyncio.sleep(HOUSEKEEPING_S)

    async def _connector_settings(self, connector: ConnectorSettings) -> ConnectorSettings:
        """The settings the ESME dials: for a simulator connector, its in-process SMSC."""
        if connector.kind != "simulator":
            return connector
        simulator = Simulator(self.settings.simulator)
        port = await simulator.start("127.0.0.1", 0)
        self.simulators[connector.name] = simulator
        sim = self.settings.simulator
        return dataclasses.replace(
            connector, host="127.0.0.1", port=port, system_id=sim.system_id, password=sim.password
        )

    def _count_result(self, result: Result) -> None:
        self.changes.notify()
        if result.final_state is not None:
            self._callbacks_due()  # its callback row is due now, not at the worker's next tick
        kind = (
            "submitted"
            if result.smsc_ids is not None
            else "retry"
            if result.retry_at is not None
            else (result.final_state.value.lower() if result.final_state else "unknown")
        )
        self.metrics.submit_results.labels(result.connector, kind).inc()

    def _callbacks_due(self) -> None:
        self.callbacks.wake()
        if self._signal_callbacks is not None:
            self._signal_callbacks()

    def _count_receipt(self, update: ReceiptUpdate, applied: ReceiptApplied) -> None:
        self.changes.notify()
        if applied.recipient_final is not None:
            self._callbacks_due()
        self.metrics.receipts.labels(update.state.value, str(applied.matched).lower()).inc()

    def _count_reply(self, _: IncomingReply, msgid: int | None) -> None:
        self.changes.notify()
        if msgid is not None:
            self._callbacks_due()
        self.metrics.replies.labels(str(msgid is not None).lower()).inc()

    def _count_callback(self, job: CallbackJob, attempt: Attempt) -> None:
        self.changes.notify()
        if attempt.error is None:
            outcome = "sent"
        elif attempt.retry and job.attempts + 1 <= len(self.settings.webhooks.retry_delays_s):
            outcome = "retried"
            self.callbacks.wake()  # a zero delay makes it due at once
        else:
            outcome = "failed"
        self.metrics.callbacks.labels(job.kind, outcome).inc()
