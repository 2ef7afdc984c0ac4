"""Text on the air: MT text to submit_sm PDUs, MO deliver_sm/data_sm back to text.

MT (``encode_mt``): a :class:`~smsgw.domain.text.TextPlan` is already split into parts that
each fit one SMS; this module only chooses the bytes. GSM 03.38 goes as unpacked septets (one
octet per septet, ESC 0x1B before an extension character) with data_coding 0, UCS-2 as
UTF-16BE with data_coding 8; flash (class 0) sets 0x10. A long message goes either as one
submit_sm per part with a concatenation UDH (``05 00 03 ref total seq``, esm_class 0x40) or
SAR TLVs, or as a single submit_sm with the whole text in message_payload: which one the SMSC
accepts is a per-connector setting. A PUSH is a WAP Push SI (``smsgw.smpp.wap``) sent as 8-bit
data (data_coding 4) to WDP port 2948 through a port-addressing UDH.

MO (``decode_mo`` then ``join_fragments``): each deliver_sm or data_sm becomes one
:class:`MoFragment`; the engine keeps the fragments of a concatenated message in the store
until they are all there (or a timeout passed, see `smsgw.engine.inbound`) and joins them. A
UCS-2 fragment's text may end or begin with half a surrogate pair (a handset may split a pair
across parts); the halves are kept as lone surrogates and merged when the parts are joined.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

import gsm0338  # noqa: F401  (importing it registers the "gsm03.38" codec)

from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.errors import PduDecodeError
from smsgw.smpp.pdu import DataSm, DeliverSm, SubmitSm, Tlv
from smsgw.smpp.wap import si_push

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from smsgw.domain.text import TextPlan

LongForm = Literal["udh", "sar", "payload"]
MoEncoding = Literal["ASCII", "UCS2"]

DC_GSM: Final = 0x00
DC_IA5: Final = 0x01
DC_LATIN1: Final = 0x03
DC_OCTET: Final = 0x04
DC_UCS2: Final = 0x08
DC_FLASH: Final = 0x10
ESM_UDHI: Final = 0x40

IE_CONCAT_8BIT: Final = 0x00
IE_PORTS_16BIT: Final = 0x05
IE_CONCAT_16BIT: Final = 0x08
WAP_PUSH_PORT: Final = 2948
WAP_CONNECTIONLESS_PORT: Final = 9200
MAX_SEGMENT_OCTETS: Final = 140
MAX_PARTS: Final = 255
GSM_ESCAPE: Final = 0x1B
_LAST_SEPTET: Final = 0x7F

# IE 05 (16-bit application ports), length 4: destination 2948 (0B84), source 9200 (23F0).
_PORTS_IE: Final = bytes([IE_PORTS_16BIT, 4]) + (
    WAP_PUSH_PORT.to_bytes(2, "big") + WAP_CONNECTIONLESS_PORT.to_bytes(2, "big")
)


@dataclass(frozen=True, slots=True)
class Address:
    """An SMPP address: digits with their type of number and numbering plan."""

    addr: str
    ton: int
    npi: int


@dataclass(frozen=True, slots=True)
class MoFragment:
    """One received MO part; ``reference`` is None when it is a whole message."""

    text: str
    encoding: MoEncoding
    reference: int | None
    total: int
    seqnum: int


@dataclass(frozen=True, slots=True)
class MoMessage:
    """A whole MO message (or all that arrived of it before the reassembly timeout)."""

    source: str
    destination: str
    text: str
    encoding: MoEncoding


# --- GSM 03.38 septets --------------------------------------------------------------------


def _gsm_tables() -> tuple[dict[int, str], dict[int, str]]:
    basic = {
        septet: bytes([septet]).decode("gsm03.38")
        for septet in range(_LAST_SEPTET + 1)
        if septet != GSM_ESCAPE
    }
    extension = {}
    for septet in range(_LAST_SEPTET + 1):
        try:
            extension[septet] = bytes([GSM_ESCAPE, septet]).decode("gsm03.38")
        except UnicodeDecodeError:
            continue
    return basic, extension


_GSM_BASIC, _GSM_EXTENSION = _gsm_tables()


# The codec's own encoder builds its output octet by octet; a translation table is ~20x faster.
_GSM_ENCODE: Final = {ord(char): chr(septet) for septet, char in _GSM_BASIC.items()} | {
    ord(char): chr(GSM_ESCAPE) + chr(septet) for septet, char in _GSM_EXTENSION.items()
}
_GSM_ENCODABLE: Final = frozenset(_GSM_BASIC.values()) | frozenset(_GSM_EXTENSION.values())


def encode_gsm_septets(text: str) -> bytes:
    """``text`` as unpacked GSM 03.38 septets; UnicodeEncodeError for a character outside it."""
    if not _GSM_ENCODABLE.issuperset(text):
        return text.encode("gsm03.38")  # raises, naming the character
    return text.translate(_GSM_ENCODE).encode("latin-1")


def decode_gsm_septets(septets: bytes) -> str:
    """Unpacked GSM 03.38 septets as text.

    An escape before a septet the extension table lacks shows that septet's basic character,
    as 3GPP 23.038 asks of a handset; a trailing lone escape is dropped (a sender must not
    split an extension character across parts).
    """
    chars: list[str] = []
    escaped = False
    for septet in septets:
        if escaped:
            chars.append(_GSM_EXTENSION.get(septet) or _GSM_BASIC.get(septet, " "))
            escaped = False
        elif septet == GSM_ESCAPE:
            escaped = True
        else:
            chars.append(_GSM_BASIC[septet])
    return "".join(chars)


# --- MT -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Envelope:
    source: Address
    destination: Address
    registered_delivery: int

    def submit(
        self,
        data_coding: int,
        short_message: bytes = b"",
        *,
        esm_class: int = 0,
        tlvs: tuple[Tlv, ...] = (),
    ) -> SubmitSm:
        return SubmitSm(
            source_addr=self.source.addr,
            source_addr_ton=self.source.ton,
            source_addr_npi=self.source.npi,
            destination_addr=self.destination.addr,
            dest_addr_ton=self.destination.ton,
            dest_addr_npi=self.destination.npi,
            esm_class=esm_class,
            registered_delivery=self.registered_delivery,
            data_coding=data_coding,
            short_message=short_message,
            tlvs=tlvs,
        )


def encode_mt(
    plan: TextPlan,
    *,
    source: Address,
    destination: Address,
    reference: int,
    long_form: LongForm = "udh",
    registered_delivery: int = 1,
) -> list[SubmitSm]:
    """The submit_sm PDUs (sequence_number 0) that carry ``plan``, one per segment.

    ``reference`` identifies the concatenated message; the UDH carries its low 8 bits, the
    SAR TLV its low 16 bits.
    """
    envelope = _Envelope(source, destination, registered_delivery)
    if plan.coding == "push":
        return _encode_push(plan, envelope, reference)
    data_coding = (DC_GSM if plan.coding == "gsm7" else DC_UCS2) | (DC_FLASH if plan.flash else 0)
    parts = [encode_part(part, plan.coding) for part in plan.parts]
    if len(parts) == 1:
        return [envelope.submit(data_coding, parts[0])]
    if long_form == "payload":
        payload = Tlv.message_payload(b"".join(parts))
        return [envelope.submit(data_coding, tlvs=(payload,))]
    if long_form == "sar":
        return [
            envelope.submit(data_coding, part, tlvs=_sar_tlvs(reference, len(parts), seqnum))
            for seqnum, part in enumerate(parts, start=1)
        ]
    return [
        envelope.submit(data_coding, udh + part, esm_class=ESM_UDHI)
        for udh, part in zip(_concat_udhs(reference, len(parts)), parts, strict=True)
    ]


def encode_part(text: str, coding: str) -> bytes:
    """The short_message octets of one part: unpacked GSM septets, else UTF-16BE."""
    if coding == "gsm7":
        return encode_gsm_septets(text)
    return text.encode("utf-16-be", "surrogatepass")


def _sar_tlvs(reference: int, total: int, seqnum: int) -> tuple[Tlv, ...]:
    return (
        Tlv.sar_msg_ref_num(reference & 0xFFFF),
        Tlv.sar_total_segments(total),
        Tlv.sar_segment_seqnum(seqnum),
    )


def _concat_ie(reference: int, total: int, seqnum: int) -> bytes:
    return bytes([IE_CONCAT_8BIT, 3, reference & 0xFF, total, seqnum])


def _concat_udhs(reference: int, total: int, extra_ies: bytes = b"") -> list[bytes]:
    """The UDH of each of ``total`` segments: ``extra_ies`` then the 8-bit concatenation IE."""
    if total > MAX_PARTS:
        raise ValueError(f"a concatenated message has at most {MAX_PARTS} parts")
    udhs = []
    for seqnum in range(1, total + 1):
        ies = extra_ies + _concat_ie(reference, total, seqnum)
        udhs.append(bytes([len(ies)]) + ies)
    return udhs


def _encode_push(plan: TextPlan, envelope: _Envelope, reference: int) -> list[SubmitSm]:
    if plan.wapurl is None:
        raise ValueError("a PUSH plan needs its wapurl")
    payload = si_push(plan.body, plan.wapurl, transaction_id=reference)
    single_udh = bytes([len(_PORTS_IE)]) + _PORTS_IE
    if len(single_udh) + len(payload) <= MAX_SEGMENT_OCTETS:
        return [envelope.submit(DC_OCTET, single_udh + payload, esm_class=ESM_UDHI)]
    room = MAX_SEGMENT_OCTETS - (1 + len(_PORTS_IE) + len(_concat_ie(0, 0, 0)))
    chunks = [payload[start : start + room] for start in range(0, len(payload), room)]
    udhs = _concat_udhs(reference, len(chunks), extra_ies=_PORTS_IE)
    return [
        envelope.submit(DC_OCTET, udh + chunk, esm_class=ESM_UDHI)
        for udh, chunk in zip(udhs, chunks, strict=True)
    ]


# --- MO -----------------------------------------------------------------------------------

Alphabet = Literal["gsm", "ucs2", "latin1", "ascii", "cyrillic", "hebrew"]

_DIRECT_ALPHABETS: Final[dict[int, Alphabet]] = {
    DC_GSM: "gsm",
    DC_IA5: "ascii",
    DC_LATIN1: "latin1",
    0x06: "cyrillic",  # ISO-8859-5
    0x07: "hebrew",  # ISO-8859-8
    DC_UCS2: "ucs2",
}
# Alphabet bits (3-2) of the GSM 03.38 general data coding groups 00xx and 01xx.
_GENERAL_ALPHABETS: Final[dict[int, Alphabet]] = {0: "gsm", 1: "latin1", 2: "ucs2"}
_PYTHON_CODECS: Final[dict[Alphabet, str]] = {
    "latin1": "latin-1",
    # IA5 is 7-bit; a stray high octet is read as Latin-1 rather than refusing the message.
    "ascii": "latin-1",
    "cyrillic": "iso8859-5",
    "hebrew": "iso8859-8",
}
_GENERAL_GROUPS_END: Final = 0x80
_COMPRESSED: Final = 0x20
_MESSAGE_WAITING_GSM: Final = range(0xC0, 0xE0)
_MESSAGE_WAITING_UCS2: Final = range(0xE0, 0xF0)
_DATA_CODING_CLASS_GROUP: Final = 0xF0
_CLASS_GROUP_8BIT: Final = 0x04


def alphabet_of(data_coding: int) -> Alphabet:
    """How to read the octets of a message with ``data_coding`` (SMPP 3.4 5.2.19, 3GPP 23.038).

    Binary (2, 4), compressed, reserved and unknown codings are read as 8-bit Latin-1: every
    octet stays visible and decoding cannot fail, so a reply is never lost for its coding.
    """
    if data_coding in _DIRECT_ALPHABETS:
        return _DIRECT_ALPHABETS[data_coding]
    if DC_FLASH <= data_coding < _GENERAL_GROUPS_END:
        return _general_group_alphabet(data_coding)
    return _high_group_alphabet(data_coding)


def _general_group_alphabet(data_coding: int) -> Alphabet:
    if data_coding & _COMPRESSED:
        return "latin1"
    return _GENERAL_ALPHABETS.get((data_coding >> 2) & 0x03, "latin1")


def _high_group_alphabet(data_coding: int) -> Alphabet:
    if data_coding in _MESSAGE_WAITING_GSM:
        return "gsm"
    if data_coding in _MESSAGE_WAITING_UCS2:
        return "ucs2"
    if data_coding >= _DATA_CODING_CLASS_GROUP:
        return "latin1" if data_coding & _CLASS_GROUP_8BIT else "gsm"
    return "latin1"


@dataclass(frozen=True, slots=True)
class _Concatenation:
    reference: int
    total: int
    seqnum: int

    @property
    def valid(self) -> bool:
        return 1 <= self.seqnum <= self.total


def decode_mo(pdu: DeliverSm | DataSm) -> MoFragment:
    """The text and concatenation facts of one MO; PduDecodeError when it cannot be read."""
    content = pdu.message_payload
    if content is None:
        content = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    concatenation: _Concatenation | None
    if pdu.esm_class & ESM_UDHI:
        concatenation, content = _split_udh(content)
    else:
        concatenation = _sar_concatenation(pdu)
    alphabet = alphabet_of(pdu.data_coding)
    text = decode_text(content, alphabet)
    encoding: MoEncoding = "UCS2" if alphabet == "ucs2" else "ASCII"
    if concatenation is None or not concatenation.valid or concatenation.total == 1:
        return MoFragment(text, encoding, reference=None, total=1, seqnum=1)
    return MoFragment(
        text,
        encoding,
        reference=concatenation.reference,
        total=concatenation.total,
        seqnum=concatenation.seqnum,
    )


def decode_text(octets: bytes, alphabet: Alphabet) -> str:
    """``octets`` as text; a UCS-2 result may hold lone surrogates (see the module doc)."""
    if alphabet == "ucs2":
        if len(octets) % 2:
            raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "UCS-2 text of odd length")
        return octets.decode("utf-16-be", "surrogatepass")
    if alphabet == "gsm":
        # data_coding 0 is the "SMSC default alphabet": an octet above 0x7F cannot be a septet,
        # so that SMSC's default is an 8-bit one; Latin-1 is the common case.
        if any(octet > _LAST_SEPTET for octet in octets):
            return octets.decode("latin-1")
        return decode_gsm_septets(octets)
    return codecs.decode(octets, _PYTHON_CODECS[alphabet], "replace")


def _split_udh(content: bytes) -> tuple[_Concatenation | None, bytes]:
    """The concatenation IE of the UDH at the start of ``content``, and the text after it."""
    if not content:
        raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "UDH indicated but message empty")
    end = 1 + content[0]
    if end > len(content):
        raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "UDH longer than the message")
    concatenation = None
    for ie, data in _information_elements(content[1:end]):
        found = _concatenation_ie(ie, data)
        concatenation = found or concatenation
    return concatenation, content[end:]


def _information_elements(udh: bytes) -> Iterable[tuple[int, bytes]]:
    position = 0
    while position < len(udh):
        if position + 2 > len(udh):
            raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "UDH element truncated")
        ie, length = udh[position], udh[position + 1]
        data = udh[position + 2 : position + 2 + length]
        if len(data) != length:
            raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "UDH element truncated")
        yield ie, data
        position += 2 + length


def _concatenation_ie(ie: int, data: bytes) -> _Concatenation | None:
    if ie == IE_CONCAT_8BIT and len(data) == 3:  # noqa: PLR2004  (ref, total, seq)
        return _Concatenation(data[0], data[1], data[2])
    if ie == IE_CONCAT_16BIT and len(data) == 4:  # noqa: PLR2004  (ref(2), total, seq)
        return _Concatenation(int.from_bytes(data[:2], "big"), data[2], data[3])
    return None


def _sar_concatenation(pdu: DeliverSm | DataSm) -> _Concatenation | None:
    reference, total, seqnum = pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum
    if reference is None or total is None or seqnum is None:
        return None
    return _Concatenation(reference, total, seqnum)


# --- joining ------------------------------------------------------------------------------


class TextPart(Protocol):
    """What joining reads of a part: a `MoFragment`, or a part the store kept."""

    @property
    def text(self) -> str: ...

    @property
    def encoding(self) -> str: ...


def join_fragments(source: str, destination: str, fragments: Sequence[TextPart]) -> MoMessage:
    """The message of ``fragments`` (in seqnum order), as far as they go."""
    text = "".join(fragment.text for fragment in fragments)
    # Pairs split across parts become whole again; a half whose other part never came
    # becomes U+FFFD (a lone surrogate cannot be stored or sent on as UTF-8).
    text = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    ucs2 = any(fragment.encoding == "UCS2" for fragment in fragments)
    return MoMessage(source, destination, text, "UCS2" if ucs2 else "ASCII")
