"""What SMSCs send us: delivery receipts and handset replies (MO), stored before acked.

The ESME calls ``handle`` with the deliver_sm / data_sm of one read and answers each with
the status returned for it, only after it returned: a receipt is acknowledged once the store
committed it (an unknown id is held, never refused; the receipts of one call are applied in
one store call), a reply once it is stored and, when it matches a message with ``replyurl``,
its forwarding callback queued in the same transaction.

Concatenated replies are reassembled in the store: each part is acknowledged once it is kept
there (`Store.add_reply_part`), and the part that makes the reply whole stores it and drops
its parts in one transaction (`Store.complete_reply`), so a crash or restart loses no part
and stores no reply twice, and parts that reach different engine nodes (PostgreSQL) still
meet. Replies still incomplete after the reassembly timeout are stored as far as they came.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import groupby

from smsgw.config import ConnectorSettings
from smsgw.domain.numbers import from_smpp_address
from smsgw.engine.unrecorded import Unrecorded
from smsgw.errors import BNumberError, StoreError
from smsgw.smpp.air import MoMessage, decode_mo, join_fragments
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.errors import PduDecodeError
from smsgw.smpp.esme import DeliverHandler
from smsgw.smpp.pdu import DataSm, DeliverSm
from smsgw.smpp.receipts import is_receipt, message_id_forms, parse_receipt
from smsgw.store.port import Store
from smsgw.store.records import (
    IncomingReply,
    ReceiptApplied,
    ReceiptUpdate,
    ReplyKey,
    ReplyPart,
    StoredReply,
)

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
        on_receipt: Callable[[ReceiptUpdate, ReceiptApplied], None] | None = None,
        on_reply: Callable[[IncomingReply, int | None], None] | None = None,
        unrecorded: Unrecorded | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._reassembly_timeout = timedelta(seconds=reassembly_timeout_s)
        self._connectors: dict[str, ConnectorSettings] = {}
        self._on_receipt = on_receipt
        self._on_reply = on_reply
        self._unrecorded = unrecorded
        self.undecodable = 0

    def handler(self, connector: ConnectorSettings) -> DeliverHandler:
        """The deliver_sm handler of one connector."""
        self._connectors[connector.name] = connector

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

    async def flush_expired(self, limit: int = 100) -> int:
        """Store (up to ``limit``) replies whose missing parts never came; the number stored."""
        parts = await self._store.stale_reply_parts(self._clock() - self._reassembly_timeout, limit)
        stored = 0
        for key, group in groupby(parts, key=lambda part: part.key):
            stored += await self._complete(key, list(group))
        return stored

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
        if fragment.reference is None:
            message = join_fragments(source, pdu.destination_addr, [fragment])
            reply = self._reply_of(connector.name, message)
            self._stored(reply, await self._store.store_reply(reply, reply.received_at))
            return
        part = ReplyPart(
            srcaddr=source,
            dstaddr=pdu.destination_addr,
            reference=fragment.reference,
            total=fragment.total,
            seqnum=fragment.seqnum,
            text=fragment.text,
            encoding=fragment.encoding,
            connector=connector.name,
            received_at=self._clock(),
        )
        parts = await self._store.add_reply_part(part)
        if len(parts) == part.total:
            await self._complete(part.key, parts)

    async def _complete(self, key: ReplyKey, parts: list[ReplyPart]) -> int:
        """Store the reply of ``parts`` (all of ``key``'s) unless it was stored already."""
        message = join_fragments(key.srcaddr, key.dstaddr, parts)
        reply = self._reply_of(parts[-1].connector, message)
        stored = await self._store.complete_reply(key, reply, reply.received_at)
        if stored is None:
            return 0
        self._stored(reply, stored)
        return 1

    def _reply_of(self, connector_name: str, message: MoMessage) -> IncomingReply:
        connector = self._connectors.get(connector_name)
        return IncomingReply(
            connector=connector_name,
            srcaddr=message.source,
            dstaddr=message.destination,
            # UCS-2 and 8-bit texts may hold U+0000, which PostgreSQL text cannot store: the
            # commit would fail and the SMSC resend the reply for ever. It shows as U+FFFD.
            body=message.text.replace("\x00", "\ufffd"),
            encoding=message.encoding,
            received_at=self._clock(),
            gateway_number=(connector.source_addr or None) if connector else None,
        )

    def _stored(self, reply: IncomingReply, stored: StoredReply) -> None:
        if self._on_reply is not None:
            self._on_reply(reply, stored.msgid)
