"""What SMSCs send us: delivery receipts and handset replies (MO), stored before acked.

The ESME calls ``handle`` with the deliver_sm / data_sm of one read and answers each with
the status returned for it, only after it returned: a receipt is acknowledged once the store
committed it (an unknown id is held, never refused; the receipts of one call are applied in
one store call), a reply once it is stored and, when it matches a message with ``replyurl``,
its forwarding callback queued in the same transaction.

Concatenated replies are reassembled in memory: the parts of an incomplete reply are
acknowledged as they arrive, so a crash before the last part loses the earlier ones (the
handset's text is then incomplete, never duplicated). Parts still incomplete after the
reassembly timeout are stored as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from smsgw.config import ConnectorSettings
from smsgw.domain.numbers import from_smpp_address
from smsgw.engine.unrecorded import Unrecorded
from smsgw.errors import BNumberError, StoreError
from smsgw.smpp.air import MoMessage, Reassembler, decode_mo
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.errors import PduDecodeError
from smsgw.smpp.esme import DeliverHandler
from smsgw.smpp.pdu import DataSm, DeliverSm
from smsgw.smpp.receipts import is_receipt, message_id_forms, parse_receipt
from smsgw.store.port import Store
from smsgw.store.records import IncomingReply, ReceiptApplied, ReceiptUpdate

log = logging.getLogger("smsgw.inbound")

Clock = Callable[[], datetime]


def _update(connector: ConnectorSettings, pdu: DeliverSm | DataSm) -> ReceiptUpdate:
    receipt = parse_receipt(pdu)
    return ReceiptUpdate(
        connector.name, message_id_forms(receipt.message_id), receipt.state, receipt.error
    )


class Inbound:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        reassembly_timeout_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_receipt: Callable[[ReceiptUpdate, ReceiptApplied], None] | None = None,
        on_reply: Callable[[IncomingReply, int | None], None] | None = None,
        unrecorded: Unrecorded | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._reassembler = Reassembler(reassembly_timeout_s)
        self._on_receipt = on_receipt
        self._on_reply = on_reply
        self._unrecorded = unrecorded
        self.undecodable = 0

    def handler(self, connector: ConnectorSettings) -> DeliverHandler:
        """The deliver_sm handler of one connector."""

        async def handle(pdus: Sequence[DeliverSm | DataSm]) -> list[CommandStatus]:
            return await self.handle(connector, pdus)

        return handle

    async def handle(
        self, connector: ConnectorSettings, pdus: Sequence[DeliverSm | DataSm]
    ) -> list[CommandStatus]:
        statuses = [CommandStatus.ESME_ROK] * len(pdus)
        receipts: list[tuple[int, ReceiptUpdate]] = []
        for index, pdu in enumerate(pdus):
            try:
                if is_receipt(pdu):
                    receipts.append((index, _update(connector, pdu)))
                else:
                    await self._reply(connector, pdu)
            except PduDecodeError as error:
                # Refusing would make the SMSC redeliver the same bytes forever: count, ack.
                self.undecodable += 1
                log.warning("undecodable %s from %s: %s", type(pdu).__name__, connector.name, error)
            except StoreError:
                log.exception("could not store what %s sent; asking it to retry", connector.name)
                statuses[index] = CommandStatus.ESME_RX_T_APPN
        if receipts:
            try:
                await self._receipts(connector, [update for _, update in receipts])
            except StoreError:
                log.exception("could not store what %s sent; asking it to retry", connector.name)
                for index, _ in receipts:
                    statuses[index] = CommandStatus.ESME_RX_T_APPN
        return statuses

    async def flush_expired(self) -> int:
        """Store replies whose missing parts never came; the number stored."""
        expired = self._reassembler.expire(self._monotonic())
        for message in expired:
            await self._store_reply(None, message)
        return len(expired)

    async def _receipts(self, connector: ConnectorSettings, updates: list[ReceiptUpdate]) -> None:
        if self._unrecorded is not None:  # a submit may be answered but not yet recorded
            await self._unrecorded.settled(connector.name, (u.smsc_id_forms for u in updates))
        applied = await self._store.apply_receipts(updates, self._clock())
        if self._on_receipt is not None:
            for update, outcome in zip(updates, applied, strict=True):
                self._on_receipt(update, outcome)

    async def _reply(self, connector: ConnectorSettings, pdu: DeliverSm | DataSm) -> None:
        fragment = decode_mo(pdu)
        try:
            source = from_smpp_address(pdu.source_addr, pdu.source_addr_ton)
        except BNumberError:
            source = pdu.source_addr
        message = self._reassembler.add(source, pdu.destination_addr, fragment, self._monotonic())
        if message is not None:
            await self._store_reply(connector, message)

    async def _store_reply(self, connector: ConnectorSettings | None, message: MoMessage) -> None:
        reply = IncomingReply(
            connector=connector.name if connector else "",
            srcaddr=message.source,
            dstaddr=message.destination,
            # UCS-2 and 8-bit texts may hold U+0000, which PostgreSQL text cannot store: the
            # commit would fail and the SMSC resend the reply for ever. It shows as U+FFFD.
            body=message.text.replace("\x00", "\ufffd"),
            encoding=message.encoding,
            received_at=self._clock(),
            gateway_number=(connector.source_addr or None) if connector else None,
        )
        stored = await self._store.store_reply(reply, reply.received_at)
        if self._on_reply is not None:
            self._on_reply(reply, stored.msgid)
