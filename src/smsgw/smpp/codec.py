"""Bytes <-> PDUs: ``encode``, ``decode`` and the streaming ``PduDecoder``.

Framing rules (SMPP 3.4 section 3.2):

- a command_length below 16 or above ``MAX_COMMAND_LENGTH`` cannot be framed: the decoder yields
  one fatal ``InvalidPdu`` (ESME_RINVCMDLEN) and ignores everything after it. Below 16 it decides
  as soon as the 4 length octets arrive (sequence_number 0); above, once the 16 header octets are
  in, so the answer echoes the sequence number whatever the chunking.
- an unknown command_id is skipped by its length: ``InvalidPdu`` (ESME_RINVCMDID), stream intact.
- a malformed body is skipped the same way with the status to answer: a mandatory part that runs
  past the body (C-string without NUL, sm_length too big) is ESME_RINVMSGLEN; a C-string longer
  than its maximum gets its field's status (ESME_RINVSRCADR, ...); a truncated TLV is
  ESME_RINVOPTPARSTREAM and a known TLV of the wrong size ESME_RINVPARLEN; bytes after a
  header-only PDU are ESME_RINVCMDLEN.
- a response with an empty body decodes with default fields, whatever its status: SMPP 3.4 omits
  the body of error responses, and many ESMEs send deliver_sm_resp without one.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace
from itertools import repeat
from operator import attrgetter, call, itemgetter
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from smsgw.smpp.constants import (
    HEADER_SIZE,
    MAX_COMMAND_LENGTH,
    MAX_SHORT_MESSAGE,
    MIN_COMMAND_LENGTH,
    CommandStatus,
    is_response_id,
)
from smsgw.smpp.errors import LocalProtocolError, PduDecodeError
from smsgw.smpp.pdu import FIXED_TLV_SIZES, PDU_CLASSES, Field, Pdu, Tlv

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Setter = Callable[[Pdu, object], None]

Buffer = bytes | bytearray

_HEADER: Final = struct.Struct(">IIII")
_LENGTH: Final = struct.Struct(">I")
_HEADER_TAIL: Final = struct.Struct(">III")
_TLV_HEAD: Final = struct.Struct(">HH")
_COMPACT_AT: Final = 65536


@dataclass(frozen=True, slots=True)
class InvalidPdu:
    """A frame the decoder could not turn into a PDU, and the status to answer it with.

    ``fatal`` means the stream cannot be framed any more (bad command_length): answer with
    generic_nack and close the connection.
    """

    command_id: int
    sequence_number: int
    status: CommandStatus
    reason: str
    fatal: bool = False


# --- compiled layouts ---------------------------------------------------------------------
#
# Each layout is compiled once, for two paths per direction. The fast ones do a whole body in a
# few C calls: encoding fills a bytes %-template, decoding runs one regular-expression match.
# When a value does not fit or a body does not match, the field-by-field path (a tuple of
# operations read by one plain loop; a run of one-octet integers is one precompiled struct)
# does the work again and raises the precise error. Tests check both paths agree.

_CSTRING: Final = 0
_INTEGERS: Final = 1
_SHORT_MESSAGE: Final = 2


class _Op(NamedTuple):
    kind: int
    width: int  # C-string: maximum octets with the NUL; integers: how many in the run
    packer: struct.Struct  # used by integer runs only
    status: CommandStatus
    name: str


def _compile(layout: tuple[Field, ...]) -> tuple[_Op, ...]:
    ops: list[_Op] = []
    run: list[str] = []
    for spec in (*layout, None):
        if spec is not None and spec.kind == "u8":
            run.append(spec.name)
            continue
        if run:
            packer = struct.Struct(">" + "B" * len(run))
            ops.append(_Op(_INTEGERS, len(run), packer, CommandStatus.ESME_RINVPARLEN, run[0]))
            run = []
        if spec is not None:
            kind = _CSTRING if spec.kind == "cstr" else _SHORT_MESSAGE
            ops.append(_Op(kind, spec.size, _LENGTH, spec.status, spec.name))
    return tuple(ops)


def _reader(names: tuple[str, ...]) -> Callable[[Pdu], tuple[object, ...]]:
    if len(names) > 1:
        return attrgetter(*names)
    return lambda pdu: tuple(getattr(pdu, name) for name in names)


# The body of each layout as one bytes %-format, filled in a single C call: a C-string is
# b"%s\0" (its latin-1 bytes), a one-octet integer b"%c", short_message b"%c%s" (sm_length
# then the octets). %c refuses integers outside 0..255, like the struct-based slow path.
_TEMPLATE_PARTS: Final = {"cstr": b"%s\0", "u8": b"%c", "short_message": b"%c%s"}


@dataclass(frozen=True, slots=True)
class _Matcher:
    """Decodes a well-formed body with one regular-expression match instead of a loop.

    The pattern accepts exactly the bodies the field-by-field decoder accepts, so a body it
    refuses goes to that decoder for the precise status. Values come out grouped (C-strings,
    then integers, then short_message), so ``setters`` follow that order.
    """

    pattern: re.Pattern[bytes]
    strings: Callable[[tuple[bytes, ...]], tuple[bytes, ...]]
    integers: Callable[[tuple[bytes, ...]], tuple[bytes, ...]]
    short_message: bool  # the last integer is then sm_length, not a field
    setters: tuple[Setter, ...]


def _picker(indexes: list[int]) -> Callable[[tuple[bytes, ...]], tuple[bytes, ...]]:
    """itemgetter that always returns a tuple, whatever the number of indexes."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        (index,) = indexes
        return lambda groups: (groups[index],)
    return lambda _groups: ()


def _matcher(pdu_class: type[Pdu]) -> _Matcher:
    layout = pdu_class.LAYOUT
    parts: list[bytes] = []
    strings: list[Field] = []
    integers: list[Field] = []
    for spec in layout:
        if spec.kind == "cstr":
            strings.append(spec)
            parts.append(rb"([^\0]{0,%d})\0" % (spec.size - 1))
        else:  # a u8, or the sm_length octet of short_message (always the last field)
            integers.append(spec)
            parts.append(rb"(.)")
    short_message = bool(layout) and layout[-1].kind == "short_message"
    fields = (*strings, *integers[: len(integers) - short_message])
    names = (*_HEADER_FIELDS, *(spec.name for spec in fields))
    names += ("short_message",) if short_message else ()
    return _Matcher(
        re.compile(b"".join(parts), re.DOTALL),
        _picker([index for index, spec in enumerate(layout) if spec.kind == "cstr"]),
        _picker([index for index, spec in enumerate(layout) if spec.kind != "cstr"]),
        short_message,
        tuple(getattr(pdu_class, name).__set__ for name in names),
    )


_HEADER_FIELDS: Final = ("sequence_number", "command_status", "tlvs")


@dataclass(frozen=True, slots=True)
class _Codec:
    pdu_class: type[Pdu]
    ops: tuple[_Op, ...]
    read_fields: Callable[[Pdu], tuple[object, ...]]
    # Slot setters for (sequence_number, command_status, tlvs, *layout): decoding fills a bare
    # instance through them, three times faster than the frozen dataclass __init__. Sound
    # because those are all the fields of every PDU class (a test checks it).
    setters: tuple[Setter, ...]
    read_all: Callable[[Pdu], tuple[object, ...]]
    template: bytes
    # (index in read_fields' tuple, maximum octets with the NUL) of each C-string.
    cstrings: tuple[tuple[int, int], ...]
    short_message_at: int | None
    matcher: _Matcher


def _codec(pdu_class: type[Pdu]) -> _Codec:
    layout = pdu_class.LAYOUT
    names = tuple(spec.name for spec in layout)
    all_names = ("sequence_number", "command_status", "tlvs", *names)
    setters = tuple(getattr(pdu_class, name).__set__ for name in all_names)
    kinds = [spec.kind for spec in layout]
    return _Codec(
        pdu_class,
        _compile(layout),
        _reader(names),
        setters,
        attrgetter(*all_names),
        b"".join(_TEMPLATE_PARTS[kind] for kind in kinds),
        tuple((index, spec.size) for index, spec in enumerate(layout) if spec.kind == "cstr"),
        kinds.index("short_message") if "short_message" in kinds else None,
        _matcher(pdu_class),
    )


_CODECS: Final[dict[int, _Codec]] = {
    command_id: _codec(cls) for command_id, cls in PDU_CLASSES.items()
}


# --- encoding -----------------------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """The wire bytes of ``pdu``; raises LocalProtocolError when a field does not fit."""
    body = b""
    if pdu.BODY_ON_ERROR or pdu.command_status == 0:  # 0: ESME_ROK
        codec = _CODECS[pdu.command_id]
        body = _body(codec, pdu) if codec.ops else body
        if pdu.tlvs:
            out: list[bytes] = [body]
            _encode_tlvs(pdu, out)
            body = b"".join(out)
    length = len(body) + HEADER_SIZE
    try:
        header = _HEADER.pack(length, pdu.command_id, pdu.command_status, pdu.sequence_number)
    except struct.error:
        raise LocalProtocolError(
            "command_status and sequence_number must fit 32 bits", CommandStatus.ESME_RINVCMDLEN
        ) from None
    if length > MAX_COMMAND_LENGTH:
        raise LocalProtocolError(
            f"PDU longer than {MAX_COMMAND_LENGTH}", CommandStatus.ESME_RINVCMDLEN
        )
    return header + body


def _body(codec: _Codec, pdu: Pdu) -> bytes:
    """The mandatory fields: through the layout's template when every value fits, else field
    by field, which raises the precise LocalProtocolError."""
    try:
        body = _template_body(codec, pdu)
    except (ValueError, TypeError, OverflowError, AttributeError):
        body = None
    if body is None:
        out: list[bytes] = []
        _encode_fields(codec, pdu, out)
        body = b"".join(out)
    return body


def _template_body(codec: _Codec, pdu: Pdu) -> bytes | None:
    values = list(codec.read_fields(pdu))
    for index, width in codec.cstrings:
        raw = values[index].encode("latin-1")  # type: ignore[attr-defined]
        if len(raw) >= width or 0 in raw:
            return None
        values[index] = raw
    at = codec.short_message_at
    if at is not None:
        message: bytes = values[at]  # type: ignore[assignment]
        if len(message) > MAX_SHORT_MESSAGE:
            return None
        values.insert(at, len(message))
    return codec.template % tuple(values)


def _encode_fields(codec: _Codec, pdu: Pdu, out: list[bytes]) -> None:
    values = codec.read_fields(pdu)
    index = 0
    for op in codec.ops:
        if op.kind == _INTEGERS:
            out.append(_pack_integers(op, values[index : index + op.width]))
            index += op.width
            continue
        value = values[index]
        index += 1
        if op.kind == _CSTRING:
            out.append(_cstring_bytes(op, value))  # type: ignore[arg-type]
        else:
            out.append(_short_message_bytes(value))  # type: ignore[arg-type]


def _pack_integers(op: _Op, values: tuple[object, ...]) -> bytes:
    try:
        return op.packer.pack(*values)
    except struct.error:
        raise LocalProtocolError(f"{op.name}..: octets must be 0..255", op.status) from None


def _cstring_bytes(op: _Op, text: str) -> bytes:
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{op.name} is not latin-1", op.status) from None
    if len(raw) >= op.width or b"\0" in raw:
        raise LocalProtocolError(f"{op.name} longer than {op.width - 1}", op.status)
    return raw + b"\0"


def _short_message_bytes(message: bytes) -> bytes:
    if len(message) > MAX_SHORT_MESSAGE:
        raise LocalProtocolError(
            f"short_message longer than {MAX_SHORT_MESSAGE}; use message_payload",
            CommandStatus.ESME_RINVMSGLEN,
        )
    return bytes((len(message),)) + message


def _encode_tlvs(pdu: Pdu, out: list[bytes]) -> None:
    if not pdu.ACCEPTS_TLVS:
        raise LocalProtocolError(
            f"{pdu.command_id.name.lower()} takes no TLV", CommandStatus.ESME_ROPTPARNOTALLWD
        )
    for tlv in pdu.tlvs:
        try:
            out.append(_TLV_HEAD.pack(tlv.tag, len(tlv.value)))
        except struct.error:
            raise LocalProtocolError(
                f"TLV 0x{tlv.tag:04X}: tag or length beyond 16 bits", CommandStatus.ESME_RINVPARLEN
            ) from None
        out.append(tlv.value)


# --- decoding -----------------------------------------------------------------------------


def decode_body(header: tuple[int, int, int], buf: Buffer, start: int, end: int) -> Pdu:
    """The PDU whose body is ``buf[start:end]``, given (command_id, status, sequence_number).

    Raises PduDecodeError for an unknown command_id or a malformed body; reads ``buf`` in place.
    """
    command_id, command_status, sequence_number = header
    codec = _CODECS.get(command_id)
    if codec is None:
        raise PduDecodeError(CommandStatus.ESME_RINVCMDID, f"unknown command_id 0x{command_id:08X}")
    if start == end and is_response_id(command_id):
        return codec.pdu_class(sequence_number=sequence_number, command_status=command_status)
    values: list[object] = [sequence_number, command_status, ()]
    pos = _match_fields(codec.matcher, buf, start, end, values)
    setters = codec.matcher.setters
    if pos < 0:  # malformed, most likely: the field-by-field decoder raises the right status
        values = [sequence_number, command_status, ()]
        pos = _decode_fields(codec.ops, buf, start, end, values)
        setters = codec.setters
    if pos < end:
        if not codec.pdu_class.ACCEPTS_TLVS:
            raise PduDecodeError(CommandStatus.ESME_RINVCMDLEN, "bytes after a header-only PDU")
        values[2] = _decode_tlvs(buf, pos, end)
    return _build(codec.pdu_class, setters, values)


def _match_fields(matcher: _Matcher, buf: Buffer, pos: int, end: int, values: list[object]) -> int:
    """Appends the field values in the matcher's order; -1 when the body does not match."""
    match = matcher.pattern.match(buf, pos, end)
    if match is None:
        return -1
    groups = match.groups()
    values.extend(map(str, matcher.strings(groups), repeat("latin-1")))
    values.extend(b"".join(matcher.integers(groups)))  # iterating bytes gives the integers
    after = match.end()
    if matcher.short_message:
        message_start = after
        after += cast("int", values.pop())  # sm_length
        if after > end:
            return -1
        values.append(bytes(buf[message_start:after]))
    return after


def _build(
    pdu_class: type[Pdu], setters: tuple[Setter, ...], values: list[object] | tuple[object, ...]
) -> Pdu:
    pdu = object.__new__(pdu_class)
    # A loop driven by map in C: a third faster than calling each setter from Python.
    for _ in map(call, setters, repeat(pdu), values):
        pass
    return pdu


def renumbered(pdu: Pdu, sequence_number: int) -> Pdu:
    """A copy of ``pdu`` with ``sequence_number``: ``dataclasses.replace`` at a third the cost."""
    codec = _CODECS[pdu.command_id]
    if type(pdu) is not codec.pdu_class:
        return replace(pdu, sequence_number=sequence_number)
    values = codec.read_all(pdu)
    return _build(codec.pdu_class, codec.setters, (sequence_number, *values[1:]))


def _decode_fields(
    ops: tuple[_Op, ...], buf: Buffer, pos: int, end: int, values: list[object]
) -> int:
    for kind, width, packer, status, name in ops:
        if kind == _INTEGERS:
            after = pos + width
            if after > end:
                raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, f"body ends inside {name}")
            values.extend(packer.unpack_from(buf, pos))
        elif kind == _CSTRING:
            limit = pos + width
            # A conditional, not min(): one builtin call less per field on the hot path.
            after = buf.find(0, pos, limit if limit < end else end) + 1  # noqa: FURB136
            if not after:
                raise _bad_cstring(name, width, status, truncated=limit > end)
            values.append(buf[pos : after - 1].decode("latin-1"))
        else:
            after = _short_message_end(buf, pos, end)
            values.append(bytes(buf[pos + 1 : after]))
        pos = after
    return pos


def _bad_cstring(
    name: str, width: int, status: CommandStatus, *, truncated: bool
) -> PduDecodeError:
    if truncated:
        return PduDecodeError(CommandStatus.ESME_RINVMSGLEN, f"{name} not terminated")
    return PduDecodeError(status, f"{name} longer than {width - 1}")


def _short_message_end(buf: Buffer, pos: int, end: int) -> int:
    if pos >= end:
        raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "body ends before sm_length")
    after = pos + 1 + buf[pos]
    if after > end:
        raise PduDecodeError(CommandStatus.ESME_RINVMSGLEN, "sm_length beyond the body")
    return after


_SET_TLV_TAG: Final[Callable[[Tlv, int], None]] = vars(Tlv)["tag"].__set__
_SET_TLV_VALUE: Final[Callable[[Tlv, bytes], None]] = vars(Tlv)["value"].__set__


def _tlv(tag: int, value: bytes) -> Tlv:
    """A Tlv without the frozen dataclass __init__ (a third of its cost), like ``_build``."""
    tlv = object.__new__(Tlv)
    _SET_TLV_TAG(tlv, tag)
    _SET_TLV_VALUE(tlv, value)
    return tlv


def _decode_tlvs(buf: Buffer, pos: int, end: int) -> tuple[Tlv, ...]:
    tlvs: list[Tlv] = []
    while pos < end:
        if pos + 4 > end:
            raise PduDecodeError(CommandStatus.ESME_RINVOPTPARSTREAM, "truncated TLV header")
        tag, size = _TLV_HEAD.unpack_from(buf, pos)
        pos += 4
        if pos + size > end:
            raise PduDecodeError(CommandStatus.ESME_RINVOPTPARSTREAM, f"TLV 0x{tag:04X} truncated")
        expected = FIXED_TLV_SIZES.get(tag)
        if expected is not None and expected != size:
            raise PduDecodeError(CommandStatus.ESME_RINVPARLEN, f"TLV 0x{tag:04X} of {size} octets")
        tlvs.append(_tlv(tag, bytes(buf[pos : pos + size])))
        pos += size
    return tuple(tlvs)


def decode(data: Buffer) -> Pdu:
    """The one PDU that ``data`` holds exactly; raises PduDecodeError otherwise."""
    if len(data) < HEADER_SIZE:
        raise PduDecodeError(CommandStatus.ESME_RINVCMDLEN, "shorter than a header")
    (length,) = _LENGTH.unpack_from(data, 0)
    if length != len(data):
        raise PduDecodeError(CommandStatus.ESME_RINVCMDLEN, "command_length is not the data size")
    return decode_body(_HEADER_TAIL.unpack_from(data, 4), data, HEADER_SIZE, length)


class PduDecoder:
    """Frames PDUs out of a byte stream: ``feed`` bytes, then iterate PDUs and InvalidPdu.

    Iteration stops when no complete frame is buffered; feed more and iterate again. The buffer
    is consumed by offset and compacted only when drained or large, so a chunk holding many PDUs
    is not copied once per PDU.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self._broken = False

    @property
    def broken(self) -> bool:
        """True after a fatal framing error: the stream is ignored from then on."""
        return self._broken

    def feed(self, data: bytes) -> None:
        if not self._broken:
            self._buffer += data

    def __iter__(self) -> Iterator[Pdu | InvalidPdu]:
        while (event := self.next_event()) is not None:
            yield event

    def next_event(self) -> Pdu | InvalidPdu | None:
        """The next framed PDU or InvalidPdu, or None when more bytes are needed."""
        buffer, offset = self._buffer, self._offset
        available = len(buffer) - offset
        if self._broken or available < _LENGTH.size:
            self._compact()
            return None
        (length,) = _LENGTH.unpack_from(buffer, offset)
        if length < MIN_COMMAND_LENGTH:
            return self._break((0, 0, 0), f"command_length {length} below 16")
        if available < max(length, HEADER_SIZE):
            return self._wait_or_break(length, available)
        self._offset = offset + length
        header = _HEADER_TAIL.unpack_from(buffer, offset + 4)
        try:
            return decode_body(header, buffer, offset + HEADER_SIZE, offset + length)
        except PduDecodeError as error:
            return InvalidPdu(header[0], header[2], CommandStatus(error.status), error.reason)

    def _wait_or_break(self, length: int, available: int) -> InvalidPdu | None:
        # An oversized length is refused once the header is in, so the nack echoes its sequence.
        if length > MAX_COMMAND_LENGTH and available >= HEADER_SIZE:
            header = _HEADER_TAIL.unpack_from(self._buffer, self._offset + 4)
            return self._break(header, f"command_length {length} above {MAX_COMMAND_LENGTH}")
        self._compact()
        return None

    def _break(self, header: tuple[int, int, int], reason: str) -> InvalidPdu:
        self._broken = True
        self._buffer = bytearray()
        self._offset = 0
        status = CommandStatus.ESME_RINVCMDLEN
        return InvalidPdu(header[0], header[2], status, reason, fatal=True)

    def _compact(self) -> None:
        if self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        elif self._offset >= _COMPACT_AT:
            del self._buffer[: self._offset]
            self._offset = 0
