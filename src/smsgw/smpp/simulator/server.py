"""The simulator's asyncio adapter: one listening socket, one ``_Link`` per ESME connection.

Invariants: a receipt or MO is never lost while the simulator runs. It waits in the outbox of a
bound receiver (RX or TRX of the right system_id) until the session window has room, and when
that connection goes away, everything unacknowledged goes back to the simulator's queue for
that system_id, to be sent to the next receiver that binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import random
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from smsgw.domain.times import TAIPEI
from smsgw.smpp.constants import CommandId, CommandStatus
from smsgw.smpp.events import (
    ConnectionShouldClose,
    Event,
    PduReceived,
    ResponseOverdue,
    ResponseReceived,
)
from smsgw.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    response_to,
)
from smsgw.smpp.session import Session, SessionState
from smsgw.smpp.simulator.behaviours import (
    Decision,
    GarbageBytes,
    LinkBehaviour,
    decide,
    link_behaviours,
    submit_behaviours,
)
from smsgw.smpp.simulator.messages import is_receipt, mo_deliver_sms, receipt_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from smsgw.config import SimulatorSettings

SMSC_SYSTEM_ID: Final = "smsgw-sim"
WINDOW: Final = 512  # deliver_sm awaiting their response, per connection
ENQUIRE_LINK_S: Final = 3600.0  # the ESME keeps the link alive; we only answer
RESPONSE_TIMEOUT_S: Final = 30.0
STALL_POLL_S: Final = 0.01
QUEUE_LIMIT: Final = 100_000  # undeliverable deliver_sm kept per system_id
READ_SIZE: Final = 65536

_BIND_RESPONSES: Final[
    dict[int, type[BindTransmitterResp | BindReceiverResp | BindTransceiverResp]]
] = {
    CommandId.BIND_TRANSMITTER: BindTransmitterResp,
    CommandId.BIND_RECEIVER: BindReceiverResp,
    CommandId.BIND_TRANSCEIVER: BindTransceiverResp,
}
AnyBind = BindTransmitter | BindReceiver | BindTransceiver
_RECEIVING: Final = frozenset({SessionState.BOUND_RX, SessionState.BOUND_TRX})


@dataclass(slots=True)
class Counters:
    """What the simulator did since it started (``GET /stats``)."""

    connections: int = 0
    binds: int = 0
    bind_failures: int = 0
    submits: int = 0
    submits_refused: int = 0
    throttled: int = 0
    receipts_sent: int = 0
    mo_sent: int = 0
    deliveries_refused: int = 0
    drops: int = 0
    stalls: int = 0
    garbage: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Simulator:
    """An SMPP 3.4 SMSC for tests and demos, its behaviours set by SimulatorSettings."""

    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = rng if rng is not None else random.Random(settings.seed)  # noqa: S311
        self.submitted: list[SubmitSm] = []
        self.counters = Counters()
        self._pipeline = submit_behaviours(settings, self.rng)
        self._link_behaviours: list[LinkBehaviour] = []
        self.garbage = (
            GarbageBytes(settings.garbage_every_s, self.rng) if settings.garbage_every_s else None
        )
        self._ids = itertools.count(self.rng.randrange(1 << 32))
        self._mo_references = itertools.count(1)
        self._links: set[_Link] = set()
        self._waiting: defaultdict[str, deque[DeliverSm]] = defaultdict(
            lambda: deque(maxlen=QUEUE_LIMIT)
        )
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._timer_keys = itertools.count()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._watchers: list[asyncio.Future[None]] = []

    @property
    def receipts_sent(self) -> int:
        return self.counters.receipts_sent

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listens on ``host``:``port`` (0: any free port) and returns the bound port."""
        self._link_behaviours = link_behaviours(self.settings, self.clock())
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stops accepting, closes every connection, cancels pending receipts."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for link in list(self._links):
            link.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_until(self, condition: Callable[[Counters], bool]) -> None:
        """Returns once ``condition(counters)`` holds (for tests and tools; no polling)."""
        while not condition(self.counters):
            watcher = asyncio.get_running_loop().create_future()
            self._watchers.append(watcher)
            await watcher

    def changed(self) -> None:
        """Counters changed: wake whoever waits in ``wait_until``."""
        for watcher in self._watchers:
            if not watcher.done():
                watcher.set_result(None)
        self._watchers.clear()

    # --- MO ---------------------------------------------------------------------------------

    async def inject_mo(self, source: str, destination: str, text: str) -> int:
        """Sends an MO to one bound receiver; returns how many got it (0 or 1)."""
        receiver = next(iter(self._receivers(None)), None)
        if receiver is None:
            return 0
        for pdu in mo_deliver_sms(source, destination, text, next(self._mo_references)):
            receiver.deliver(pdu)
        self.counters.mo_sent += 1
        self.changed()
        return 1

    # --- used by links ----------------------------------------------------------------------

    def check_bind(self, bind: AnyBind) -> CommandStatus:
        if bind.system_id != self.settings.system_id:
            return CommandStatus.ESME_RINVSYSID
        if not hmac.compare_digest(bind.password.encode(), self.settings.password.encode()):
            return CommandStatus.ESME_RINVPASWD
        return CommandStatus.ESME_ROK

    def decide(self, submit: SubmitSm) -> Decision:
        return decide(self._pipeline, submit, self.clock())

    def next_message_id(self) -> str:
        return f"{next(self._ids):X}"

    def read_pause(self) -> float:
        now = self.clock()
        return max((behaviour.read_pause(now) for behaviour in self._link_behaviours), default=0.0)

    def drop_after_s(self) -> float | None:
        delays = [behaviour.drop_after_s() for behaviour in self._link_behaviours]
        return min((delay for delay in delays if delay is not None), default=None)

    def plan_receipts(
        self, link: _Link, submit: SubmitSm, decision: Decision, message_id: str
    ) -> None:
        """Sends now (early receipts) or schedules the receipt(s) of an accepted submit."""
        submitted = datetime.now(TAIPEI)
        done = submitted + timedelta(seconds=decision.receipt_delay_s)
        receipt = receipt_for(submit, message_id, decision.outcome, submitted, done)
        system_id = link.system_id
        if decision.early:
            self._route(system_id, [receipt] * decision.copies)
            return
        key = next(self._timer_keys)
        # The event loop's timers fire in the order they fall due (asyncio's heap and libuv's
        # alike), also all at once after a pause: jittered receipts leave out of submit order.
        self._timers[key] = asyncio.get_running_loop().call_later(
            decision.receipt_delay_s, self._fire, key, system_id, receipt, decision.copies
        )

    def _fire(self, key: int, system_id: str, receipt: DeliverSm, copies: int) -> None:
        self._timers.pop(key, None)
        self._route(system_id, [receipt] * copies)

    def _route(self, system_id: str, pdus: list[DeliverSm]) -> None:
        receiver = next(iter(self._receivers(system_id)), None)
        if receiver is None:
            self._waiting[system_id].extend(pdus)
            return
        for pdu in pdus:
            receiver.deliver(pdu)

    def _receivers(self, system_id: str | None) -> list[_Link]:
        return [
            link
            for link in self._links
            if link.receiving and (system_id is None or link.system_id == system_id)
        ]

    def bound(self, link: _Link) -> None:
        """A link bound: a receiver gets what waited for its system_id."""
        if link.receiving:
            waiting = self._waiting.pop(link.system_id, deque())
            for pdu in waiting:
                link.deliver(pdu)

    def closed(self, link: _Link, undelivered: list[DeliverSm]) -> None:
        self._links.discard(link)
        if undelivered:
            self._route(link.system_id, undelivered)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        link = _Link(self, reader, writer)
        self._links.add(link)
        self.counters.connections += 1
        self.changed()
        await link.run()


class _Link:
    """One ESME connection: feeds the session, answers binds and submits, sends deliver_sm."""

    def __init__(
        self, simulator: Simulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._simulator = simulator
        self._reader = reader
        self._writer = writer
        self._session = Session(
            "smsc",
            window=WINDOW,
            enquire_link_s=ENQUIRE_LINK_S,
            response_timeout_s=RESPONSE_TIMEOUT_S,
        )
        self._outbox: deque[DeliverSm] = deque()
        # Bytes written this event-loop turn, handed to the transport in one write.
        self._outgoing = bytearray()
        self._drop_timer: asyncio.TimerHandle | None = None
        self._garbage_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.system_id = ""

    @property
    def receiving(self) -> bool:
        return not self._closed and self._session.state in _RECEIVING

    async def run(self) -> None:
        drop_after_s = self._simulator.drop_after_s()
        if drop_after_s is not None:
            self._drop_timer = asyncio.get_running_loop().call_later(drop_after_s, self._drop)
        self._plan_garbage()
        try:
            with contextlib.suppress(ConnectionError):
                await self._read_until_closed()
        finally:
            self.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def _read_until_closed(self) -> None:
        while not self._closed:
            data = await self._reader.read(READ_SIZE)
            if not data:
                return
            await self._wait_out_stall()
            now = self._simulator.clock()
            self._handle(self._session.receive_data(data, now) + self._session.poll(now))
            self._flush_automatic_answers()
            self._write_outgoing()
            await self._writer.drain()

    async def _wait_out_stall(self) -> None:
        pause = self._simulator.read_pause()
        if pause <= 0:
            return
        self._simulator.counters.stalls += 1
        self._simulator.changed()
        # Polled, not slept in one go: the clock may be a test's, moved by hand.
        while pause > 0 and not self._closed:
            await asyncio.sleep(min(pause, STALL_POLL_S))
            pause = self._simulator.read_pause()

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            match event:
                case PduReceived(pdu=pdu):
                    self._flush_automatic_answers()
                    self._on_request(pdu)
                case ResponseReceived(request=DeliverSm(), response=response):
                    self._on_delivered(response)
                case ResponseOverdue(request=DeliverSm() as request):
                    self._outbox.append(request)
                case ConnectionShouldClose():
                    self._flush_automatic_answers()
                    self.close()
                case _:
                    pass
        self._pump()

    def _on_request(self, pdu: Pdu) -> None:
        match pdu:
            case SubmitSm():
                self._on_submit(pdu)
            case DataSm():
                message_id = self._simulator.next_message_id()
                self._send(DataSmResp(sequence_number=pdu.sequence_number, message_id=message_id))
            case BindTransmitter() | BindReceiver() | BindTransceiver():
                self._on_bind(pdu)
            case _:
                self._send(response_to(pdu, CommandStatus.ESME_RINVCMDID))

    def _on_bind(self, bind: AnyBind) -> None:
        status = self._simulator.check_bind(bind)
        response = _BIND_RESPONSES[bind.command_id](
            sequence_number=bind.sequence_number, command_status=status, system_id=SMSC_SYSTEM_ID
        )
        self._send(response)
        counters = self._simulator.counters
        if status == CommandStatus.ESME_ROK:
            self.system_id = bind.system_id
            counters.binds += 1
            self._simulator.bound(self)
        else:
            counters.bind_failures += 1
        self._simulator.changed()

    def _on_submit(self, submit: SubmitSm) -> None:
        simulator = self._simulator
        decision = simulator.decide(submit)
        counters = simulator.counters
        counters.submits += 1
        if not decision.accepted:
            counters.submits_refused += 1
            counters.throttled += decision.status == CommandStatus.ESME_RTHROTTLED
            self._send(
                SubmitSmResp(sequence_number=submit.sequence_number, command_status=decision.status)
            )
            simulator.changed()
            return
        message_id = simulator.next_message_id()
        simulator.submitted.append(submit)
        if submit.registered_delivery & 1:
            simulator.plan_receipts(self, submit, decision, message_id)
            self._pump()  # an early receipt goes out before the response
        self._send(SubmitSmResp(sequence_number=submit.sequence_number, message_id=message_id))
        simulator.changed()

    def _on_delivered(self, response: Pdu) -> None:
        if response.command_status != CommandStatus.ESME_ROK:
            self._simulator.counters.deliveries_refused += 1
            self._simulator.changed()

    def deliver(self, pdu: DeliverSm) -> None:
        """Queues a deliver_sm; it goes out as soon as the window has room."""
        self._outbox.append(pdu)
        self._pump()

    def _pump(self) -> None:
        counters = self._simulator.counters
        sent = 0
        while self._outbox and self._session.window_available > 0 and self.receiving:
            pdu = self._outbox.popleft()
            self._write(self._session.send(pdu, self._simulator.clock()))
            if is_receipt(pdu):
                counters.receipts_sent += 1
            sent += 1
        if sent:
            self._simulator.changed()

    def _send(self, pdu: Pdu) -> None:
        if not self._closed:
            self._write(self._session.send(pdu, self._simulator.clock()))

    def _flush_automatic_answers(self) -> None:
        self._write(self._session.data_to_send())

    def _write(self, data: bytes) -> None:
        if data and not self._writer.is_closing():
            if not self._outgoing:
                asyncio.get_running_loop().call_soon(self._write_outgoing)
            self._outgoing += data

    def _write_outgoing(self) -> None:
        if self._outgoing and not self._writer.is_closing():
            self._writer.write(bytes(self._outgoing))
        self._outgoing.clear()

    def _plan_garbage(self) -> None:
        garbage = self._simulator.garbage
        if garbage is not None and not self._closed:
            loop = asyncio.get_running_loop()
            self._garbage_timer = loop.call_later(garbage.every_s, self._inject_garbage, garbage)

    def _inject_garbage(self, garbage: GarbageBytes) -> None:
        self._simulator.counters.garbage += 1
        self._simulator.changed()
        self._write(garbage.garbage())
        self._plan_garbage()

    def _drop(self) -> None:
        self._simulator.counters.drops += 1
        self._simulator.changed()
        self.close()

    def close(self) -> None:
        """Closes the connection; what it did not deliver goes back to the simulator."""
        if self._closed:
            return
        self._closed = True
        if self._drop_timer is not None:
            self._drop_timer.cancel()
        if self._garbage_timer is not None:
            self._garbage_timer.cancel()
        undelivered = [
            request
            for request in self._session.outstanding_requests
            if isinstance(request, DeliverSm)
        ]
        undelivered.extend(self._outbox)
        self._outbox.clear()
        self._session.close()
        self._write_outgoing()
        self._writer.close()
        self._simulator.closed(self, undelivered)
