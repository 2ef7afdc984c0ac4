"""Delivery receipts: recognising them, reading them tolerantly, and matching their ids.

The de-facto text form (SMPP 3.4 appendix B) is
``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E
text:...``, but SMSCs reorder fields, drop some, change case, add seconds to the dates and
spell states out (``DELIVERED``). Parsing rules, so that a receipt is never lost to its form:

- a key is a known word followed by ``:``; its value runs to the next key;
- the first occurrence of a key wins, and a later occurrence of a key already seen belongs to
  the value before it (so ``text:`` may contain ``id:`` or colons);
- the ``receipted_message_id`` TLV wins over the text id, the ``message_state`` TLV over the
  text ``stat:``; an unrecognised state is UNKNOWN.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from smsgw.domain.model import State
from smsgw.smpp.constants import CommandStatus, TlvTag
from smsgw.smpp.errors import PduDecodeError
from smsgw.smpp.pdu import DataSm, DeliverSm

ESM_TYPE_MASK: Final = 0x3C
ESM_DELIVERY_RECEIPT: Final = 0x04
MAX_ID_FOR_ALTERNATES: Final = 64

MESSAGE_STATES: Final = {
    1: State.ENROUTE,
    2: State.DELIVRD,
    3: State.EXPIRED,
    4: State.DELETED,
    5: State.UNDELIV,
    6: State.ACCEPTD,
    7: State.UNKNOWN,
    8: State.REJECTD,
}
TEXT_STATES: Final = {
    **{state.value: state for state in State},
    "DELIVERED": State.DELIVRD,
    "DELIVRED": State.DELIVRD,
    "UNDELIVERABLE": State.UNDELIV,
    "UNDELIVERED": State.UNDELIV,
    "UNDELIVRD": State.UNDELIV,
    "FAILED": State.UNDELIV,
    "ACCEPTED": State.ACCEPTD,
    "REJECTED": State.REJECTD,
    "EXPIRD": State.EXPIRED,
    "DELETD": State.DELETED,
}

_KEY = re.compile(
    r"\b(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)(\s*:)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a delivery receipt says; dates are kept as the SMSC wrote them."""

    message_id: str
    state: State
    error: str | None
    submitted: str | None
    done: str | None


def is_receipt(pdu: DeliverSm | DataSm) -> bool:
    """Whether ``pdu`` is a delivery receipt rather than an MO message."""
    if pdu.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT:
        return True
    return pdu.tlv(TlvTag.RECEIPTED_MESSAGE_ID) is not None


def parse_receipt(pdu: DeliverSm | DataSm) -> Receipt:
    """The receipt ``pdu`` carries; PduDecodeError when it names no message id at all."""
    fields = receipt_fields(_receipt_text(pdu))
    message_id = pdu.receipted_message_id or fields.get("id")
    if not message_id:
        raise PduDecodeError(CommandStatus.ESME_RINVMSGID, "receipt without a message id")
    return Receipt(
        message_id=message_id,
        state=_state(pdu.message_state, fields.get("stat")),
        error=fields.get("err"),
        submitted=fields.get("submit date"),
        done=fields.get("done date"),
    )


def receipt_fields(text: str) -> dict[str, str]:
    """The text receipt's fields by normalised key (``submit date``), first value of each.

    Every value but ``text`` is its first word; empty values are left out.
    """
    # [before, key, colon, value, key, colon, value, ...], split in C: a third of the time
    # of a Python loop over the matches (one receipt per message).
    parts = _KEY.split(text)
    values: dict[str, str] = {}
    last = ""
    for index in range(1, len(parts), 3):
        raw, colon, value = parts[index], parts[index + 1], parts[index + 2]
        key = _normal_key(raw)
        if key in values:  # a key seen before belongs to the value before it
            values[last] += raw + colon + value
        else:
            values[key] = value
            last = key
    fields: dict[str, str] = {}
    for key, raw_value in values.items():
        value = raw_value.strip()
        if key != "text":
            value = value.split(maxsplit=1)[0] if value else ""
        if value:
            fields[key] = value
    return fields


def message_id_forms(message_id: str) -> tuple[str, ...]:
    """``message_id`` first, then the other readings an SMSC may use for the same message.

    SMSCs answer submit_sm_resp in hex and write receipts in decimal, or the reverse: a
    decimal id also reads as its hex form (lower then upper case), a hex id with letters as
    its decimal form and its other case; alternates have no leading zeros.
    """
    forms = [message_id]
    if len(message_id) <= MAX_ID_FOR_ALTERNATES:
        forms += _alternates(message_id)
    return tuple(dict.fromkeys(forms))


def _alternates(message_id: str) -> list[str]:
    if message_id.isdecimal() and message_id.isascii():
        number = int(message_id)
        return [f"{number:x}", str(number), f"{number:X}"]
    if _is_hex(message_id):
        stripped = message_id.lstrip("0") or "0"
        return [str(int(message_id, 16)), stripped, stripped.lower(), stripped.upper()]
    return []


def _is_hex(text: str) -> bool:
    return bool(text) and all(char in "0123456789abcdefABCDEF" for char in text)


@functools.lru_cache(maxsize=256)  # the spellings one SMSC uses, a handful
def _normal_key(raw: str) -> str:
    key = raw.lower().replace("_", "").replace(" ", "")
    return key.replace("date", " date") if key.endswith("date") else key


def _receipt_text(pdu: DeliverSm | DataSm) -> str:
    raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    if not raw:
        raw = pdu.message_payload or b""
    # Latin-1 maps every octet to one character, so reading never fails. Some SMSCs end the
    # text with a NUL as if it were a C string; it separates like a blank.
    return raw.decode("latin-1").replace("\0", " ")


def _state(message_state: int | None, stat: str | None) -> State:
    if message_state in MESSAGE_STATES:
        return MESSAGE_STATES[message_state]
    if stat is not None:
        return TEXT_STATES.get(stat.upper(), State.UNKNOWN)
    return State.UNKNOWN
