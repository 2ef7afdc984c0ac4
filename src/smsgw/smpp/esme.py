"""The carrier connector (ESME): a thin asyncio adapter around the sans-IO ``Session``.

Like uvicorn's h11_impl, the adapter only moves bytes: what the socket gives goes to
``Session.receive_data``, what the session says to send is written, and events become completed
futures, handler calls or a reconnection. Every protocol rule lives in the session.

Links
    bind="transceiver" keeps one connection for submits and deliveries; "transmitter+receiver"
    keeps two, TX for submit_sm and RX for deliver_sm / data_sm. Each link is supervised:
    connect, bind, serve until the connection is lost, wait a backoff (``reconnect_backoff``
    then doubling, capped at ``reconnect_max_s``; a bind refused for its credentials waits the
    cap), and again. ``bound`` is true while every link is bound.

Sending
    - window: a submit first takes one of ``settings.window`` slots and waits for a free one;
      the session would refuse to exceed the window anyway.
    - rate: a token bucket of ``settings.tps`` per second with a burst of max(1, tps / 10) is
      consulted before every submit_sm written, resends included.
    - throttling: ESME_RTHROTTLED or ESME_RMSGQFUL pauses all sending on that connection for
      ``throttle_backoff_s`` (doubled for each new pause, up to 32 times that, reset by an
      accepted submit), then the same PDU is resent with a fresh sequence number, at most
      ``THROTTLE_RESENDS`` times; after that it is refused as temporary.
    - at-least-once: a submit refused with "response timeout" or "connection lost" may have
      reached the SMSC. The engine resubmits temporary refusals, so such a message can reach the
      handset twice; it is never silently lost. A response timeout also closes the connection,
      since a peer that stops answering cannot be trusted with the next PDU.
    - batching and backpressure: PDUs are appended whole to one outgoing buffer per connection
      (they never interleave), written by a single ``write`` call once per event-loop turn, so
      a burst of submits or responses costs one system call. A sender waits (``drain()``) only
      when the buffered bytes exceed ``WRITE_BUFFER_HIGH``, so with at most ``window`` submits
      written and unanswered memory stays bounded however slow the peer reads. Faults close
      with ``abort()``: a stalled peer cannot hold the close up.

Receiving
    The deliver_sm / data_sm read in one turn of the loop are passed to the handler together
    (one task, one call); each response, with the status the handler returned for its PDU, is
    written only after the handler returns (the messages are stored). A handler that raises
    gets ESME_RX_T_APPN for all of them, a temporary error: the SMSC will deliver again. If the
    connection closed meanwhile the response is dropped and the SMSC redelivers. At most
    ``MAX_CONCURRENT_DELIVERIES`` PDUs are being handled at once; beyond that reading stops
    (TCP backpressure on the SMSC). `one_at_a_time` turns a handler of one PDU into one of
    many.

Refusals that do not come from the SMSC ("not bound", "response timeout", "connection lost",
"stopping") carry ESME_RSYSERR, a temporary status. Logging goes to "smsgw.smpp.esme": one line
per state change, none per message, never the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from smsgw.smpp.constants import CommandStatus, is_temporary, status_name
from smsgw.smpp.errors import LocalProtocolError
from smsgw.smpp.events import (
    BindFailed,
    BindSucceeded,
    ConnectionShouldClose,
    EnquireLinkDue,
    Event,
    PduReceived,
    ResponseOverdue,
    ResponseReceived,
)
from smsgw.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    EnquireLink,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    response_to,
)
from smsgw.smpp.session import Session, SessionState
from smsgw.smpp.throttle import Backoff, TokenBucket

if TYPE_CHECKING:
    from smsgw.config import ConnectorSettings

log = logging.getLogger("smsgw.smpp.esme")

Delivered = DeliverSm | DataSm
DeliverHandler = Callable[[Sequence[Delivered]], Awaitable[Sequence[CommandStatus]]]
Clock = Callable[[], float]

THROTTLE_STATUSES: Final = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
CREDENTIAL_STATUSES: Final = frozenset(
    {CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID, CommandStatus.ESME_RBINDFAIL}
)
THROTTLE_RESENDS: Final = 3
THROTTLE_CAP_FACTOR: Final = 32
WRITE_BUFFER_HIGH: Final = 64 * 1024
READ_CHUNK: Final = 64 * 1024
# Receipts being stored at once: two full receipt commits' worth (store RECEIPTS_MAX_BATCH),
# so one batch accumulates while the other commits.
MAX_CONCURRENT_DELIVERIES: Final = 512
CLOSE_TIMEOUT_S: Final = 1.0
# The timer loop sleeps at least this long, so a deadline already due cannot make it spin.
_TIMER_MIN_SLEEP_S: Final = 0.001
LOCAL_STATUS: Final = CommandStatus.ESME_RSYSERR
_BOUND_STATES: Final = frozenset(
    {SessionState.BOUND_TX, SessionState.BOUND_RX, SessionState.BOUND_TRX}
)


@dataclass(frozen=True, slots=True)
class Submitted:
    """The SMSC accepted the submit_sm and named it ``message_id``."""

    message_id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The submit_sm was not accepted; ``temporary``: the same PDU may succeed later."""

    status: int
    temporary: bool
    reason: str


def _local_refusal(reason: str) -> Refused:
    return Refused(LOCAL_STATUS, temporary=True, reason=reason)


Answer = Pdu | Refused
RequestHandler = Callable[["_Connection", Pdu], Awaitable[None]]


class _Connection:
    """One TCP connection and its Session, from connect to close; never reused."""

    def __init__(
        self,
        name: str,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        session: Session,
        clock: Clock,
        throttle_backoff: Backoff,
    ) -> None:
        self.name = name
        self._reader, self._writer = streams
        self.session = session
        self._clock = clock
        self._throttle_backoff = throttle_backoff
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._loop = asyncio.get_running_loop()
        # PDUs written this event-loop turn, not yet handed to the transport.
        self._outgoing = bytearray()
        self._paused_until = 0.0
        self.bind_status: int | None = None
        self.close_reason: str | None = None
        self.bound = asyncio.Event()
        self.finished = asyncio.Event()
        self.on_bound: Callable[[], None] = lambda: None
        self.on_submit_answered: Callable[[str], None] = _ignore

    # --- sending ----------------------------------------------------------------------------

    @property
    def can_submit(self) -> bool:
        return self.close_reason is None and self.session.state in _BOUND_STATES

    @property
    def pending(self) -> list[asyncio.Future[Answer]]:
        return list(self._pending.values())

    async def request(self, pdu: Pdu) -> asyncio.Future[Answer]:
        """Send a windowed request; the future gets its response or a local refusal."""
        data = self.session.send(pdu, self._clock())
        future: asyncio.Future[Answer] = self._loop.create_future()
        self._pending[int.from_bytes(data[12:16], "big")] = future
        if self._buffer(data):
            await self._drain()
        return future

    async def send(self, pdu: Pdu) -> None:
        """Send a response, or a request whose response nobody awaits (bind, unbind, ...)."""
        if self.close_reason is not None or self.session.state is SessionState.CLOSED:
            return
        if self._buffer(self.session.send(pdu, self._clock())):
            await self._drain()

    def _buffer(self, data: bytes) -> bool:
        """Queue ``data`` for this turn's write; True when the sender should wait (drain)."""
        transport = self._writer.transport
        if not data or transport.is_closing():
            return False
        outgoing = self._outgoing
        if not outgoing:
            self._loop.call_soon(self._write_outgoing)
        outgoing += data  # whole PDUs only: the stream never holds half of one
        return len(outgoing) + transport.get_write_buffer_size() > WRITE_BUFFER_HIGH

    async def _drain(self) -> None:
        self._write_outgoing()
        try:
            await self._writer.drain()
        except ConnectionError as error:
            self.abort(f"write failed ({type(error).__name__})")

    def _write_outgoing(self) -> None:
        """Hand everything buffered since the last call to the transport in one write."""
        if not self._outgoing:
            return
        if not self._writer.transport.is_closing():
            self._writer.write(bytes(self._outgoing))
        self._outgoing.clear()

    async def flush(self) -> None:
        """Write what the session queued by itself (enquire_link_resp, nacks, unbind_resp)."""
        if self._buffer(self.session.data_to_send()):
            await self._drain()

    # --- throttling -------------------------------------------------------------------------

    def pause(self) -> None:
        """The SMSC said slow down: hold all sending on this connection for a while.

        A throttled answer to a PDU sent before the current pause does not extend it.
        """
        now = self._clock()
        if now >= self._paused_until:
            self._paused_until = now + self._throttle_backoff.next_delay()

    def accepted(self) -> None:
        self._throttle_backoff.reset()

    @property
    def paused(self) -> bool:
        return self._paused_until > self._clock()

    async def wait_unpaused(self) -> None:
        # A pause is only extended once it is over, so one sleep covers it.
        delay = self._paused_until - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)

    # --- receiving --------------------------------------------------------------------------

    async def serve(self, on_request: RequestHandler) -> str:
        """Read and handle until the connection ends; returns why it ended."""
        while self.close_reason is None:
            try:
                data = await self._reader.read(READ_CHUNK)
            except ConnectionError as error:
                self.abort(f"read failed ({type(error).__name__})")
                break
            if not data:
                self.close_reason = self.close_reason or "the SMSC closed the connection"
                break
            events = self.session.receive_data(data, self._clock())
            await self.flush()
            for event in events:
                if type(event) is ResponseReceived:  # the common case, without a coroutine
                    self._resolve(event.request.sequence_number, event.response)
                else:
                    await self.handle(event, on_request)
        return self.close_reason or "closed"

    async def run_timers(self, on_request: RequestHandler) -> None:
        """Poll the session at its deadlines: keepalives and overdue responses.

        Never sleeping longer than a response timeout or keepalive interval keeps a request
        sent (or a bind completed) during the sleep from being noticed late: the deadline it
        adds is at least that far away.
        """
        longest_sleep = min(self.session.response_timeout_s, self.session.enquire_link_s)
        while self.close_reason is None:
            deadline = self.session.next_deadline()
            delay = longest_sleep if deadline is None else deadline - self._clock()
            await asyncio.sleep(max(_TIMER_MIN_SLEEP_S, min(delay, longest_sleep)))
            for event in self.session.poll(self._clock()):
                await self.handle(event, on_request)

    async def handle(self, event: Event, on_request: RequestHandler) -> None:
        match event:
            case ResponseReceived(request=request, response=response):
                self._resolve(request.sequence_number, response)
            case PduReceived(pdu=pdu):
                await on_request(self, pdu)
            case EnquireLinkDue():
                await self.send(EnquireLink())
            case ResponseOverdue(request=request):
                self._resolve(request.sequence_number, _local_refusal("response timeout"))
                self.abort(f"no {request.command_id.name.lower()}_resp in time")
            case BindSucceeded():
                self.bound.set()
                self.on_bound()
            case BindFailed(response=response):
                self.bind_status = response.command_status
                self.abort(f"bind refused ({status_name(response.command_status)})")
            case ConnectionShouldClose(reason=reason):
                await self.flush()
                self.close_reason = self.close_reason or reason
            case _:
                pass  # unmatched (late) responses and peer protocol errors change nothing

    def _resolve(self, sequence_number: int, answer: Answer) -> None:
        future = self._pending.pop(sequence_number, None)
        if future is not None and not future.done():
            if type(answer) is SubmitSmResp and answer.command_status == CommandStatus.ESME_ROK:
                # Now, before a receipt read right behind it is handled (Esme.on_submit_answered).
                self.on_submit_answered(answer.message_id)
            future.set_result(answer)

    # --- closing ----------------------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Close at once, discarding unsent bytes: the peer is gone or cannot be trusted."""
        self.close_reason = self.close_reason or reason
        self._writer.transport.abort()

    async def shut(self, reason: str) -> None:
        """Fail what is still pending, then close (flushing what can be, within a bound)."""
        self.close_reason = self.close_reason or reason
        self.session.close()
        self.bound.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_result(_local_refusal("connection lost"))
        self._pending.clear()
        self._write_outgoing()
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT_S)
        except (TimeoutError, OSError):
            self._writer.transport.abort()
        except asyncio.CancelledError:
            self._writer.transport.abort()
            raise
        finally:
            self.finished.set()


@dataclass(frozen=True, slots=True)
class _LinkSpec:
    name: str
    bind: type[BindTransceiver | BindTransmitter | BindReceiver]


class _Link:
    """Keeps one bound connection alive: connect, bind, serve, back off, again."""

    def __init__(
        self,
        spec: _LinkSpec,
        settings: ConnectorSettings,
        *,
        clock: Clock,
        timeouts: tuple[float, float],
        backoff: Backoff,
        on_request: RequestHandler,
        on_submit_answered: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self._settings = settings
        self._clock = clock
        self._response_timeout_s, self._connect_timeout_s = timeouts
        self._backoff = backoff
        self._on_request = on_request
        self._on_submit_answered = on_submit_answered
        self.connection: _Connection | None = None
        self.changed = asyncio.Event()  # set (and replaced) whenever a connection binds
        self.stopping = False

    @property
    def bound(self) -> bool:
        connection = self.connection
        return connection is not None and connection.bound.is_set() and connection.can_submit

    async def run(self) -> None:
        """Keep the link up until ``stopping`` is set (or the task is cancelled)."""
        while not self.stopping:
            credentials_refused = False
            try:
                reason, credentials_refused = await self._connect_and_serve()
            except OSError as error:
                reason = f"cannot connect ({error.strerror or type(error).__name__})"
            if self.stopping:
                break
            delay = self._backoff.longest if credentials_refused else self._backoff.next_delay()
            log.warning("%s: %s; reconnecting in %.2fs", self.spec.name, reason, delay)
            await asyncio.sleep(delay)
        log.info("%s: stopped", self.spec.name)

    async def _connect_and_serve(self) -> tuple[str, bool]:
        settings = self._settings
        streams = await asyncio.wait_for(
            asyncio.open_connection(settings.host, settings.port), self._connect_timeout_s
        )
        streams[1].transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        connection = self._new_connection(streams)
        connection.on_bound = self._announce_bind
        connection.on_submit_answered = self._on_submit_answered
        self.connection = connection
        timers = asyncio.create_task(connection.run_timers(self._on_request))
        try:
            await connection.send(self._bind_pdu())
            reason = await connection.serve(self._on_request)
            credentials_refused = connection.bind_status in CREDENTIAL_STATUSES
            if credentials_refused:
                log.error(
                    "%s: bind refused for system_id %r (%s)",
                    self.spec.name,
                    settings.system_id,
                    status_name(connection.bind_status or 0),
                )
            return reason, credentials_refused
        finally:
            self.connection = None
            timers.cancel()
            await connection.shut("closed")
            with contextlib.suppress(asyncio.CancelledError):
                await timers

    def _new_connection(
        self, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    ) -> _Connection:
        settings = self._settings
        session = Session(
            "esme",
            window=settings.window,
            enquire_link_s=settings.enquire_link_s,
            response_timeout_s=self._response_timeout_s,
        )
        base = settings.throttle_backoff_s
        throttle_backoff = Backoff((base,), cap=base * THROTTLE_CAP_FACTOR)
        return _Connection(self.spec.name, streams, session, self._clock, throttle_backoff)

    def _bind_pdu(self) -> BindTransceiver | BindTransmitter | BindReceiver:
        settings = self._settings
        return self.spec.bind(
            system_id=settings.system_id,
            password=settings.password,
            system_type=settings.system_type,
        )

    def _announce_bind(self) -> None:
        self._backoff.reset()
        log.info(
            "%s: bound to %s:%d as %r",
            self.spec.name,
            self._settings.host,
            self._settings.port,
            self._settings.system_id,
        )
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    async def wait_bound(self, within_s: float) -> _Connection | None:
        """The bound connection, waiting at most ``within_s`` seconds for one; None if none."""
        deadline = self._clock() + within_s
        while True:
            connection = self.connection
            if connection is not None and self.bound:
                return connection
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


class Esme:
    """The connector to one SMSC: ``start``, ``submit`` as often as wanted, ``stop``."""

    def __init__(
        self,
        settings: ConnectorSettings,
        handler: DeliverHandler,
        *,
        clock: Clock = time.monotonic,
        response_timeout_s: float | None = None,
        bind_wait_s: float = 5.0,
        reconnect_backoff: tuple[float, ...] = (0.5, 1, 2, 5, 10),
    ) -> None:
        self._settings = settings
        self._handler = handler
        self._clock = clock
        self._response_timeout_s = (
            settings.response_timeout_s if response_timeout_s is None else response_timeout_s
        )
        self._bind_wait_s = bind_wait_s
        self._window = asyncio.Semaphore(settings.window)
        self._bucket = TokenBucket(settings.tps, now=clock())
        self._delivery_slots = asyncio.Semaphore(MAX_CONCURRENT_DELIVERIES)
        self._received: list[tuple[_Connection, Delivered]] = []  # this turn's, not yet handed
        self._deliveries: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Called with the message_id of every accepted submit_sm the moment its response is
        # read, before a receipt read right behind it reaches the handler (the engine lets such
        # a receipt wait until the submit is recorded: smsgw/engine/unrecorded.py).
        self.on_submit_answered: Callable[[str], None] = _ignore
        timeouts = (self._response_timeout_s, self._response_timeout_s)
        self._links = [
            _Link(
                spec,
                settings,
                clock=clock,
                timeouts=timeouts,
                backoff=Backoff(reconnect_backoff, cap=settings.reconnect_max_s),
                on_request=self._on_request,
                on_submit_answered=self._submit_answered,
            )
            for spec in _link_specs(settings)
        ]

    # --- state ------------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return all(link.bound for link in self._links)

    @property
    def window(self) -> int:
        return self._settings.window

    @property
    def window_in_use(self) -> int:
        """submit_sm written and not answered yet, on the submitting connection."""
        connection = self._links[0].connection
        if connection is None:
            return 0
        return connection.session.window - connection.session.window_available

    async def wait_bound(self, within_s: float) -> bool:
        """True once every link is bound; False if that takes longer than ``within_s``."""
        deadline = self._clock() + within_s
        for link in self._links:
            if await link.wait_bound(max(0.0, deadline - self._clock())) is None:
                return False
        return True

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting; returns at once (``bound`` says when the SMSC accepted us)."""
        if self._tasks:
            return
        self._stopping = False
        log.info("%s: starting (%s)", self._settings.name, self._settings.bind)
        self._tasks = [asyncio.create_task(link.run()) for link in self._links]

    async def stop(self) -> None:
        """Refuse new submits, let outstanding ones finish, unbind, close (each step bounded)."""
        self._stopping = True
        timeout = self._response_timeout_s
        await _wait_all(
            [f for link in self._links if link.connection for f in link.connection.pending],
            timeout,
        )
        # Deliveries being stored still get their response before the unbind.
        await _wait_all(list(self._deliveries), timeout)
        for link in self._links:
            link.stopping = True
        await asyncio.gather(*(self._unbind(link, timeout) for link in self._links))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for delivery in list(self._deliveries):
            delivery.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def _unbind(self, link: _Link, within_s: float) -> None:
        connection = link.connection
        if connection is None or not link.bound:
            return
        await connection.send(Unbind())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connection.finished.wait(), within_s)

    # --- submitting -------------------------------------------------------------------------

    async def submit(self, pdu: SubmitSm) -> Submitted | Refused:
        """Send one submit_sm; waits for a window slot, the rate, and a bind (bounded)."""
        if self._stopping:
            return _local_refusal("stopping")
        async with self._window:
            for _ in range(THROTTLE_RESENDS):
                outcome = await self._submit_once(pdu)
                if not (isinstance(outcome, Refused) and outcome.status in THROTTLE_STATUSES):
                    return outcome
            return await self._submit_once(pdu)

    async def _submit_once(self, pdu: SubmitSm) -> Submitted | Refused:
        connection = await self._ready_connection()
        if isinstance(connection, Refused):
            return connection
        try:
            future = await connection.request(pdu)
        except LocalProtocolError as error:
            return Refused(error.status, is_temporary(error.status), error.reason)
        return _outcome(connection, await future)

    async def _ready_connection(self) -> _Connection | Refused:
        link = self._links[0]
        # The bound, unpaused case awaits nothing: no coroutine is created per submit.
        connection = link.connection if link.bound else await link.wait_bound(self._bind_wait_s)
        if connection is None:
            return _local_refusal("not bound")
        delay = self._bucket.reserve(self._clock())
        if delay > 0:
            await asyncio.sleep(delay)
        if connection.paused:
            await connection.wait_unpaused()
        if self._stopping:
            return _local_refusal("stopping")
        if not connection.can_submit:
            return _local_refusal("connection lost")
        return connection

    # --- receiving --------------------------------------------------------------------------

    def _submit_answered(self, message_id: str) -> None:
        self.on_submit_answered(message_id)

    async def _on_request(self, connection: _Connection, pdu: Pdu) -> None:
        if not isinstance(pdu, DeliverSm | DataSm):
            await connection.send(response_to(pdu, CommandStatus.ESME_RINVCMDID))
            return
        await self._delivery_slots.acquire()  # when all are taken, reading waits: backpressure
        if not self._received:  # the first of this turn: hand them over once reading yields
            asyncio.get_running_loop().call_soon(self._start_delivery)
        self._received.append((connection, pdu))

    def _start_delivery(self) -> None:
        received, self._received = self._received, []
        task = asyncio.create_task(self._deliver(received))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, received: list[tuple[_Connection, Delivered]]) -> None:
        pdus = [pdu for _, pdu in received]
        try:
            statuses = list(await self._handler(pdus))
            if len(statuses) != len(pdus):
                msg = f"{len(statuses)} statuses for {len(pdus)} PDUs"
                raise RuntimeError(msg)  # noqa: TRY301 - answered below like any failure
        except Exception:
            log.exception(
                "%s: the deliver handler failed; answering ESME_RX_T_APPN", self._settings.name
            )
            statuses = [CommandStatus.ESME_RX_T_APPN] * len(pdus)
        finally:
            for _ in pdus:
                self._delivery_slots.release()
        for (connection, pdu), status in zip(received, statuses, strict=True):
            await connection.send(response_to(pdu, status))


def one_at_a_time(handle: Callable[[Delivered], Awaitable[CommandStatus]]) -> DeliverHandler:
    """A deliver handler that runs ``handle`` for each PDU, concurrently; one that raises
    answers its own PDU ESME_RX_T_APPN, not the others."""

    async def handle_one(pdu: Delivered) -> CommandStatus:
        try:
            return await handle(pdu)
        except Exception:
            log.exception("the deliver handler failed; answering ESME_RX_T_APPN")
            return CommandStatus.ESME_RX_T_APPN

    async def handle_all(pdus: Sequence[Delivered]) -> list[CommandStatus]:
        if len(pdus) == 1:
            return [await handle_one(pdus[0])]
        return list(await asyncio.gather(*(handle_one(pdu) for pdu in pdus)))

    return handle_all


def _link_specs(settings: ConnectorSettings) -> list[_LinkSpec]:
    if settings.bind == "transmitter+receiver":
        return [
            _LinkSpec(f"{settings.name}/tx", BindTransmitter),
            _LinkSpec(f"{settings.name}/rx", BindReceiver),
        ]
    return [_LinkSpec(settings.name, BindTransceiver)]


def _ignore(_message_id: str) -> None:
    pass


def _outcome(connection: _Connection, answer: Answer) -> Submitted | Refused:
    if isinstance(answer, Refused):
        return answer
    status = answer.command_status
    if status == CommandStatus.ESME_ROK and isinstance(answer, SubmitSmResp):
        connection.accepted()
        return Submitted(answer.message_id)
    if status in THROTTLE_STATUSES:
        connection.pause()
        return Refused(status, temporary=True, reason=f"throttled ({status_name(status)})")
    # A generic_nack with status 0 says nothing useful; treat it as an SMSC fault.
    status = status or LOCAL_STATUS
    return Refused(status, is_temporary(status), f"refused by the SMSC ({status_name(status)})")


async def _wait_all(futures: Sequence[asyncio.Future[Any]], within_s: float) -> None:
    if futures:
        await asyncio.wait(futures, timeout=within_s)
