"""A small scriptable SMSC for the ESME tests, on the same sans-IO Session (role "smsc").

A test sets what the next binds and submits are answered with, may hold submit responses and
release them, stall reading (the transport stops reading, so TCP pushes back on the ESME), drop
every connection, send deliver_sm and read the status of its response, and wait for any
condition on the counters with ``wait_until`` (no sleeps). Every byte received is also decoded
by a separate PduDecoder, which counts the command ids seen and any invalid PDU.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from smsgw.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandId,
    CommandStatus,
    ConnectionShouldClose,
    DeliverSm,
    EnquireLink,
    Event,
    InvalidPdu,
    Pdu,
    PduDecoder,
    PduReceived,
    ResponseReceived,
    Session,
    SessionState,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    response_to,
)

_BINDS = (BindTransceiver, BindTransmitter, BindReceiver)


def _transport(writer: asyncio.StreamWriter) -> asyncio.Transport:
    return cast("asyncio.Transport", writer.transport)


@dataclass(eq=False)
class FakeConnection:
    """One accepted connection, its session, and what the SMSC awaits from the ESME."""

    session: Session
    writer: asyncio.StreamWriter
    bind: type[Pdu] | None = None
    waiting: dict[int, asyncio.Future[Pdu]] = field(default_factory=dict)

    def write(self, data: bytes) -> None:
        if data and not self.writer.transport.is_closing():
            self.writer.write(data)

    @property
    def open(self) -> bool:
        return self.session.state is not SessionState.CLOSED and not self.writer.is_closing()

    def send(self, pdu: Pdu) -> None:
        if self.open:
            self.write(self.session.send(pdu, 0.0))

    @property
    def delivers(self) -> bool:
        return self.bind in {BindTransceiver, BindReceiver}


class FakeSmsc:
    """Scriptable SMSC over TCP on 127.0.0.1."""

    def __init__(self, *, window: int = 10_000) -> None:
        self.window = window
        self.bind_statuses: deque[int] = deque()  # answers to the next binds, then ESME_ROK
        self.submit_statuses: deque[int] = deque()  # answers to the next submits, then ESME_ROK
        self.hold_responses = False
        self.receipts = False  # answer every accepted submit with a receipt deliver_sm
        self.binds: list[Pdu] = []
        self.submitted: list[SubmitSm] = []
        self.held: deque[tuple[FakeConnection, SubmitSm]] = deque()
        self.max_outstanding = 0
        self.seen: Counter[CommandId] = Counter()  # requests and responses the ESME sent
        self.responses: Counter[CommandId] = Counter()  # our requests the ESME answered, by type
        self.invalid = 0
        self.connections: list[FakeConnection] = []
        self._outstanding = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self._stalled = False

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.drop()  # every read loop then ends by itself (cancelling them upsets asyncio 3.11)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    # --- scripting --------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within_s)

    def drop(self) -> None:
        """Abort every connection at once."""
        for connection in self.connections:
            connection.writer.transport.abort()

    def stall(self) -> None:
        """Stop reading every connection: the kernel buffers fill and TCP pushes back."""
        self._stalled = True
        for connection in self.connections:
            _transport(connection.writer).pause_reading()

    def resume(self) -> None:
        self._stalled = False
        for connection in self.connections:
            _transport(connection.writer).resume_reading()

    def release(self, count: int | None = None) -> None:
        """Answer ``count`` held submits (all when None), oldest first."""
        count = len(self.held) if count is None else count
        for _ in range(min(count, len(self.held))):
            connection, submit = self.held.popleft()
            self._answer_submit(connection, submit)

    async def deliver(self, pdu: DeliverSm, within_s: float = 5.0) -> int:
        """Send a deliver_sm on a receiving connection; the command_status of its response."""
        connection = next(c for c in self.connections if c.delivers and c.open)
        return (await asyncio.wait_for(self._request(connection, pdu), within_s)).command_status

    def send_deliver(self, pdu: DeliverSm) -> asyncio.Future[Pdu]:
        """Send a deliver_sm now; the future gets its response."""
        connection = next(c for c in self.connections if c.delivers and c.open)
        return asyncio.ensure_future(self._request(connection, pdu))

    def send_delivers(self, pdus: list[DeliverSm]) -> list[asyncio.Future[Pdu]]:
        """Send deliver_sms in one write (read together); the futures get their responses."""
        connection = next(c for c in self.connections if c.delivers and c.open)
        loop = asyncio.get_running_loop()
        futures, chunks = [], []
        for pdu in pdus:
            data = connection.session.send(pdu, 0.0)
            future: asyncio.Future[Pdu] = loop.create_future()
            connection.waiting[int.from_bytes(data[12:16], "big")] = future
            futures.append(future)
            chunks.append(data)
        connection.write(b"".join(chunks))
        return futures

    async def ping(self, connection: FakeConnection | None = None) -> None:
        """An enquire_link round trip: everything the ESME wrote before answering has arrived."""
        target = connection or next(c for c in self.connections if c.bind and c.open)
        await asyncio.wait_for(self._request(target, EnquireLink()), 5.0)

    def unbind(self) -> None:
        """Ask every bound ESME to unbind."""
        for connection in self.connections:
            if connection.bind is not None:
                connection.send(Unbind())

    async def _request(self, connection: FakeConnection, pdu: Pdu) -> Pdu:
        data = connection.session.send(pdu, 0.0)
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        connection.waiting[int.from_bytes(data[12:16], "big")] = future
        connection.write(data)
        return await future

    # --- serving ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = Session("smsc", window=self.window, enquire_link_s=3600, response_timeout_s=3600)
        connection = FakeConnection(session, writer)
        self.connections.append(connection)
        if self._stalled:
            _transport(writer).pause_reading()
        spy = PduDecoder()
        async with self._changed:
            self._changed.notify_all()
        try:
            await self._read(connection, reader, spy)
        finally:
            writer.transport.abort()
            for future in connection.waiting.values():
                future.cancel()
            self._tasks.discard(task)
            async with self._changed:
                self._changed.notify_all()

    async def _read(
        self, connection: FakeConnection, reader: asyncio.StreamReader, spy: PduDecoder
    ) -> None:
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                return
            if not data:
                return
            self._spy(spy, data)
            events = connection.session.receive_data(data, 0.0)
            connection.write(connection.session.data_to_send())
            closing = any(isinstance(event, ConnectionShouldClose) for event in events)
            for event in events:
                self._on_event(connection, event)
            async with self._changed:
                self._changed.notify_all()
            if closing:
                return

    def _spy(self, spy: PduDecoder, data: bytes) -> None:
        spy.feed(data)
        for item in spy:
            if isinstance(item, InvalidPdu):
                self.invalid += 1
            else:
                self.seen[item.command_id] += 1

    def _on_event(self, connection: FakeConnection, event: Event) -> None:
        match event:
            case PduReceived(pdu=pdu) if isinstance(pdu, _BINDS):
                self._on_bind(connection, pdu)
            case PduReceived(pdu=SubmitSm() as pdu):
                self._on_submit(connection, pdu)
            case PduReceived(pdu=pdu):
                connection.send(response_to(pdu, CommandStatus.ESME_RINVCMDID))
            case ResponseReceived(request=request, response=response):
                self.responses[request.command_id] += 1
                future = connection.waiting.pop(request.sequence_number, None)
                if future is not None and not future.done():
                    future.set_result(response)
            case _:
                pass

    def _on_bind(self, connection: FakeConnection, pdu: Pdu) -> None:
        self.binds.append(pdu)
        status = self.bind_statuses.popleft() if self.bind_statuses else CommandStatus.ESME_ROK
        connection.send(response_to(pdu, status))
        if status == CommandStatus.ESME_ROK:
            connection.bind = type(pdu)

    def _on_submit(self, connection: FakeConnection, pdu: SubmitSm) -> None:
        self.submitted.append(pdu)
        self._outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self._outstanding)
        if self.hold_responses:
            self.held.append((connection, pdu))
        else:
            self._answer_submit(connection, pdu)

    def _answer_submit(self, connection: FakeConnection, pdu: SubmitSm) -> None:
        self._outstanding -= 1
        status = self.submit_statuses.popleft() if self.submit_statuses else CommandStatus.ESME_ROK
        if status != CommandStatus.ESME_ROK:
            connection.send(response_to(pdu, status))
            return
        message_id = f"{len(self.submitted):X}"
        connection.send(SubmitSmResp(sequence_number=pdu.sequence_number, message_id=message_id))
        if self.receipts:
            self._send_receipt(pdu, message_id)

    def _send_receipt(self, pdu: SubmitSm, message_id: str) -> None:
        receiver = next((c for c in self.connections if c.delivers and c.open), None)
        if receiver is None or receiver.session.window_available <= 0:
            return
        text = (
            f"id:{message_id} sub:001 dlvrd:001 submit date:2401011200 "
            "done date:2401011200 stat:DELIVRD err:000 text:"
        )
        receipt = DeliverSm(
            source_addr=pdu.destination_addr,
            destination_addr=pdu.source_addr,
            esm_class=0x04,
            short_message=text.encode("ascii"),
            tlvs=(Tlv.receipted_message_id(message_id), Tlv.message_state(2)),
        )
        receiver.write(receiver.session.send(receipt, 0.0))
