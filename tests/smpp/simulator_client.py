"""A minimal ESME for the simulator's tests: one connection on Session("esme"), acks deliver_sm."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Literal

from smsgw.smpp import (
    BindFailed,
    BindReceiver,
    BindSucceeded,
    BindTransceiver,
    BindTransmitter,
    ConnectionShouldClose,
    DeliverSm,
    DeliverSmResp,
    PduReceived,
    ResponseReceived,
    Session,
    SubmitSm,
    Unbind,
)

if TYPE_CHECKING:
    from smsgw.smpp import Event, Pdu

PASSWORD = "secret"  # the simulator's default
BindKind = Literal["transmitter", "receiver", "transceiver"]
_BINDS = {"transmitter": BindTransmitter, "receiver": BindReceiver, "transceiver": BindTransceiver}


class Client:
    """Sends requests and awaits their responses; records what arrived, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._session = Session("esme", window=5000, enquire_link_s=3600, response_timeout_s=60)
        self._waiting: dict[int, asyncio.Future[Pdu]] = {}
        self.delivered: asyncio.Queue[DeliverSm] = asyncio.Queue()
        # ("response", message_id) and ("deliver", receipted_message_id or "") in arrival order
        self.arrivals: list[tuple[str, str]] = []
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def bind(
        self, kind: BindKind = "transceiver", system_id: str = "smsgw", password: str = PASSWORD
    ) -> int:
        """The command_status of the bind response."""
        response = await self.request(_BINDS[kind](system_id=system_id, password=password))
        return response.command_status

    def send(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Sends a request; the future resolves to its response."""
        data = self._session.send(pdu, time.monotonic())
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[int.from_bytes(data[12:16], "big")] = future
        self._writer.write(data)
        return future

    async def request(self, pdu: Pdu) -> Pdu:
        return await asyncio.wait_for(self.send(pdu), timeout=5)

    async def submit(self, destination: str = "886912345678", **fields: int | bytes) -> Pdu:
        values: dict[str, int | bytes] = {"registered_delivery": 1, "short_message": b"hello"}
        values.update(fields)
        pdu = SubmitSm(source_addr="smsgw", destination_addr=destination, **values)  # type: ignore[arg-type]
        return await self.request(pdu)

    async def next_delivered(self) -> DeliverSm:
        return await asyncio.wait_for(self.delivered.get(), timeout=5)

    async def unbind(self) -> None:
        """Unbinds and waits until the connection is closed."""
        self.send(Unbind())
        await asyncio.wait_for(self.closed.wait(), timeout=5)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(65536):
                events = self._session.receive_data(data, time.monotonic())
                self._writer.write(self._session.data_to_send())
                for event in events:
                    self._on_event(event)
        except ConnectionError:
            pass
        finally:
            self.closed.set()

    def _on_event(self, event: Event) -> None:
        match event:
            case BindSucceeded(response=response) | BindFailed(response=response):
                self._resolve(response)
            case ResponseReceived(response=response):
                self.arrivals.append(("response", getattr(response, "message_id", "")))
                self._resolve(response)
            case PduReceived(pdu=DeliverSm() as pdu):
                self.arrivals.append(("deliver", pdu.receipted_message_id or ""))
                ack = DeliverSmResp(sequence_number=pdu.sequence_number)
                self._writer.write(self._session.send(ack, time.monotonic()))
                self.delivered.put_nowait(pdu)
            case ConnectionShouldClose():
                self._writer.close()
            case _:
                pass

    def _resolve(self, response: Pdu) -> None:
        future = self._waiting.pop(response.sequence_number, None)
        if future is not None and not future.done():
            future.set_result(response)
