"""The deliver_sm PDUs the simulator sends: delivery receipts and MO (handset) messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import gsm0338  # noqa: F401  (importing it registers the "gsm03.38" codec)

from smsgw.domain.numbers import canonical, smpp_address
from smsgw.domain.text import plan_text
from smsgw.smpp.constants import MessageState
from smsgw.smpp.pdu import DeliverSm, SubmitSm, Tlv

if TYPE_CHECKING:
    from datetime import datetime

ESM_CLASS_RECEIPT: Final = 0x04
ESM_CLASS_UDHI: Final = 0x40
DATA_CODING_GSM: Final = 0
DATA_CODING_LATIN1: Final = 3
DATA_CODING_UCS2: Final = 8
TON_UNKNOWN: Final = 0
NPI_ISDN: Final = 1
RECEIPT_TEXT_CHARS: Final = 20
_DATE: Final = "%y%m%d%H%M"

MESSAGE_STATES: Final[dict[str, MessageState]] = {
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
}
# The octets that GSM 03.38 decodes to the same character as ASCII (most printable ones).
_GSM_AS_ASCII: Final = bytes(
    octet for octet in range(128) if bytes((octet,)).decode("gsm03.38", "replace") == chr(octet)
)
# The err: field: 000 when the handset got the message, a generic network failure otherwise.
_ERRORS: Final = {"DELIVRD": "000", "ACCEPTD": "000"}


def is_receipt(pdu: DeliverSm) -> bool:
    return bool(pdu.esm_class & ESM_CLASS_RECEIPT)


def receipt_for(
    submit: SubmitSm, message_id: str, outcome: str, submitted: datetime, done: datetime
) -> DeliverSm:
    """The SMPP 3.4 receipt of ``submit``: text form plus receipted_message_id/message_state."""
    delivered = "001" if outcome == "DELIVRD" else "000"
    text = (
        f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{submitted:{_DATE}}"
        f" done date:{done:{_DATE}} stat:{outcome} err:{_ERRORS.get(outcome, '001')}"
        f" text:{preview(submit)}"
    )
    return DeliverSm(
        source_addr_ton=submit.dest_addr_ton,
        source_addr_npi=submit.dest_addr_npi,
        source_addr=submit.destination_addr,
        dest_addr_ton=submit.source_addr_ton,
        dest_addr_npi=submit.source_addr_npi,
        destination_addr=submit.source_addr,
        esm_class=ESM_CLASS_RECEIPT,
        data_coding=DATA_CODING_GSM,
        short_message=text.encode("ascii", "replace"),
        tlvs=(Tlv.receipted_message_id(message_id), Tlv.message_state(MESSAGE_STATES[outcome])),
    )


def preview(submit: SubmitSm) -> str:
    """The first characters of the submitted text, for the receipt's ``text:`` field."""
    body = submit.short_message or submit.message_payload or b""
    if submit.esm_class & ESM_CLASS_UDHI and body:
        body = body[1 + body[0] :]
    return _decode(body, submit.data_coding)[:RECEIPT_TEXT_CHARS]


def _decode(body: bytes, data_coding: int) -> str:
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0x10 else data_coding  # noqa: PLR2004
    if coding == DATA_CODING_GSM:
        if not body.translate(None, _GSM_AS_ASCII):
            return body.decode("ascii")  # the same text, without the pure-Python codec
        return body.decode("gsm03.38", "replace")
    if coding == DATA_CODING_UCS2:
        return body.decode("utf-16-be", "replace")
    return body.decode("latin-1")


def mo_deliver_sms(source: str, destination: str, text: str, reference: int) -> list[DeliverSm]:
    """An MO from handset ``source`` to ``destination``: one deliver_sm per segment.

    GSM 7-bit (unpacked) when the text allows it, else UCS-2; longer text is concatenated with
    an 8-bit-reference UDH (``reference`` modulo 256). BNumberError if ``source`` is no mobile.
    """
    digits, ton, npi = smpp_address(canonical(source), national=False)
    plan = plan_text("LASCII", text)
    gsm = plan.coding == "gsm7"
    bodies = [part.encode("gsm03.38") if gsm else part.encode("utf-16-be") for part in plan.parts]
    total = len(bodies)
    if total > 1:
        bodies = [
            bytes((5, 0, 3, reference % 256, total, seq)) + body
            for seq, body in enumerate(bodies, start=1)
        ]
    return [
        DeliverSm(
            source_addr_ton=ton,
            source_addr_npi=npi,
            source_addr=digits,
            dest_addr_ton=TON_UNKNOWN,
            dest_addr_npi=NPI_ISDN,
            destination_addr=destination,
            esm_class=ESM_CLASS_UDHI if total > 1 else 0,
            data_coding=DATA_CODING_GSM if gsm else DATA_CODING_UCS2,
            short_message=body,
        )
        for body in bodies
    ]
