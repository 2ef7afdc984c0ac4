"""SMPP 3.4 PDUs as frozen dataclasses, with the wire layout of their mandatory fields.

Every PDU carries the header fields ``sequence_number`` and ``command_status``; ``command_id``
is a class constant and ``command_length`` is computed by the codec. C-octet strings are ``str``
(latin-1, so every byte maps to one character and decoding never fails), ``short_message`` is
``bytes`` and its ``sm_length`` is its length. Optional parameters are kept raw in ``tlvs``, in
wire order, so unknown ones re-encode byte for byte; typed properties read the known ones.

``LAYOUT`` lists the mandatory fields in wire order: ``size`` of a C-octet string is its maximum
length including the terminating NUL, and ``status`` is what to answer when the peer sends it
too long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, NamedTuple

from smsgw.smpp.constants import (
    INTERFACE_VERSION_34,
    CommandId,
    CommandStatus,
    TlvTag,
)

Status = CommandStatus


class Field(NamedTuple):
    """One mandatory field in a PDU body."""

    name: str
    kind: Literal["cstr", "u8", "short_message"]
    size: int = 1
    status: CommandStatus = CommandStatus.ESME_RINVMSGLEN


def _cstr(name: str, size: int, status: CommandStatus = Status.ESME_RINVMSGLEN) -> Field:
    return Field(name, "cstr", size, status)


def _u8(name: str) -> Field:
    return Field(name, "u8")


class NetworkErrorCode(NamedTuple):
    """The network_error_code TLV: network type (1 GSM, 2 ANSI-136, 3 IS-95) and its code."""

    network_type: int
    error_code: int


# Octet sizes of the integer TLVs that have typed accessors. The decoder refuses another length
# for these tags (ESME_RINVPARLEN), so the accessors never fail; other tags are kept unchecked.
FIXED_TLV_SIZES: dict[int, int] = {
    TlvTag.MESSAGE_STATE: 1,
    TlvTag.NETWORK_ERROR_CODE: 3,
    TlvTag.SAR_MSG_REF_NUM: 2,
    TlvTag.SAR_TOTAL_SEGMENTS: 1,
    TlvTag.SAR_SEGMENT_SEQNUM: 1,
    TlvTag.USER_MESSAGE_REFERENCE: 2,
    TlvTag.SOURCE_PORT: 2,
    TlvTag.DESTINATION_PORT: 2,
    TlvTag.SC_INTERFACE_VERSION: 1,
}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter, kept as raw bytes so it re-encodes exactly as received."""

    tag: int
    value: bytes

    @classmethod
    def uint(cls, tag: int, number: int, size: int) -> Tlv:
        """An unsigned big-endian integer TLV of ``size`` octets."""
        return cls(tag, number.to_bytes(size, "big"))

    @classmethod
    def cstring(cls, tag: int, text: str) -> Tlv:
        """A C-octet string TLV (the NUL terminator is added)."""
        return cls(tag, text.encode("latin-1") + b"\0")

    @classmethod
    def receipted_message_id(cls, message_id: str) -> Tlv:
        return cls.cstring(TlvTag.RECEIPTED_MESSAGE_ID, message_id)

    @classmethod
    def message_state(cls, state: int) -> Tlv:
        return cls.uint(TlvTag.MESSAGE_STATE, state, 1)

    @classmethod
    def network_error_code(cls, network_type: int, error_code: int) -> Tlv:
        value = network_type.to_bytes(1, "big") + error_code.to_bytes(2, "big")
        return cls(TlvTag.NETWORK_ERROR_CODE, value)

    @classmethod
    def sar_msg_ref_num(cls, reference: int) -> Tlv:
        return cls.uint(TlvTag.SAR_MSG_REF_NUM, reference, 2)

    @classmethod
    def sar_total_segments(cls, total: int) -> Tlv:
        return cls.uint(TlvTag.SAR_TOTAL_SEGMENTS, total, 1)

    @classmethod
    def sar_segment_seqnum(cls, seqnum: int) -> Tlv:
        return cls.uint(TlvTag.SAR_SEGMENT_SEQNUM, seqnum, 1)

    @classmethod
    def message_payload(cls, payload: bytes) -> Tlv:
        return cls(TlvTag.MESSAGE_PAYLOAD, payload)

    @classmethod
    def user_message_reference(cls, reference: int) -> Tlv:
        return cls.uint(TlvTag.USER_MESSAGE_REFERENCE, reference, 2)

    @classmethod
    def source_port(cls, port: int) -> Tlv:
        return cls.uint(TlvTag.SOURCE_PORT, port, 2)

    @classmethod
    def destination_port(cls, port: int) -> Tlv:
        return cls.uint(TlvTag.DESTINATION_PORT, port, 2)

    @classmethod
    def sc_interface_version(cls, version: int = INTERFACE_VERSION_34) -> Tlv:
        return cls.uint(TlvTag.SC_INTERFACE_VERSION, version, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Base of all PDUs: the header fields and the optional parameters with typed readers."""

    command_id: ClassVar[CommandId]
    LAYOUT: ClassVar[tuple[Field, ...]] = ()
    # Whether optional parameters may follow the mandatory fields (False: header-only PDUs).
    ACCEPTS_TLVS: ClassVar[bool] = False
    # SMPP 3.4 omits the body of some responses when command_status is not ESME_ROK.
    BODY_ON_ERROR: ClassVar[bool] = True

    sequence_number: int = 0
    command_status: int = CommandStatus.ESME_ROK
    tlvs: tuple[Tlv, ...] = ()

    @property
    def is_response(self) -> bool:
        return self.command_id.is_response

    def tlv(self, tag: int) -> bytes | None:
        """The raw value of the first TLV with ``tag``, or None."""
        for item in self.tlvs:
            if item.tag == tag:
                return item.value
        return None

    def _uint_tlv(self, tag: int) -> int | None:
        value = self.tlv(tag)
        return None if value is None else int.from_bytes(value, "big")

    @property
    def receipted_message_id(self) -> str | None:
        value = self.tlv(TlvTag.RECEIPTED_MESSAGE_ID)
        # Some SMSCs omit the NUL the spec requires; accept both.
        return None if value is None else value.split(b"\0", 1)[0].decode("latin-1")

    @property
    def message_state(self) -> int | None:
        return self._uint_tlv(TlvTag.MESSAGE_STATE)

    @property
    def network_error_code(self) -> NetworkErrorCode | None:
        value = self.tlv(TlvTag.NETWORK_ERROR_CODE)
        if value is None:
            return None
        return NetworkErrorCode(value[0], int.from_bytes(value[1:3], "big"))

    @property
    def sar_msg_ref_num(self) -> int | None:
        return self._uint_tlv(TlvTag.SAR_MSG_REF_NUM)

    @property
    def sar_total_segments(self) -> int | None:
        return self._uint_tlv(TlvTag.SAR_TOTAL_SEGMENTS)

    @property
    def sar_segment_seqnum(self) -> int | None:
        return self._uint_tlv(TlvTag.SAR_SEGMENT_SEQNUM)

    @property
    def message_payload(self) -> bytes | None:
        return self.tlv(TlvTag.MESSAGE_PAYLOAD)

    @property
    def user_message_reference(self) -> int | None:
        return self._uint_tlv(TlvTag.USER_MESSAGE_REFERENCE)

    @property
    def source_port(self) -> int | None:
        return self._uint_tlv(TlvTag.SOURCE_PORT)

    @property
    def destination_port(self) -> int | None:
        return self._uint_tlv(TlvTag.DESTINATION_PORT)

    @property
    def sc_interface_version(self) -> int | None:
        return self._uint_tlv(TlvTag.SC_INTERFACE_VERSION)


# --- session management -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bind(Pdu):
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _cstr("system_id", 16, Status.ESME_RINVSYSID),
        _cstr("password", 9, Status.ESME_RINVPASWD),
        _cstr("system_type", 13, Status.ESME_RINVSYSTYP),
        _u8("interface_version"),
        _u8("addr_ton"),
        _u8("addr_npi"),
        _cstr("address_range", 41),
    )
    ACCEPTS_TLVS: ClassVar[bool] = True

    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindResp(Pdu):
    LAYOUT: ClassVar[tuple[Field, ...]] = (_cstr("system_id", 16, Status.ESME_RINVSYSID),)
    ACCEPTS_TLVS: ClassVar[bool] = True
    BODY_ON_ERROR: ClassVar[bool] = False

    system_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbind(Pdu):
    command_id: ClassVar[CommandId] = CommandId.OUTBIND
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _cstr("system_id", 16, Status.ESME_RINVSYSID),
        _cstr("password", 9, Status.ESME_RINVPASWD),
    )
    ACCEPTS_TLVS: ClassVar[bool] = True

    system_id: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[CommandId] = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id: ClassVar[CommandId] = CommandId.GENERIC_NACK


# --- message submission and delivery ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessagePdu(Pdu):
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _cstr("service_type", 6, Status.ESME_RINVSERTYP),
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 21, Status.ESME_RINVSRCADR),
        _u8("dest_addr_ton"),
        _u8("dest_addr_npi"),
        _cstr("destination_addr", 21, Status.ESME_RINVDSTADR),
        _u8("esm_class"),
        _u8("protocol_id"),
        _u8("priority_flag"),
        _cstr("schedule_delivery_time", 17, Status.ESME_RINVSCHED),
        _cstr("validity_period", 17, Status.ESME_RINVEXPIRY),
        _u8("registered_delivery"),
        _u8("replace_if_present_flag"),
        _u8("data_coding"),
        _u8("sm_default_msg_id"),
        Field("short_message", "short_message"),
    )
    ACCEPTS_TLVS: ClassVar[bool] = True

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessagePdu):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessagePdu):
    """A deliver_sm: an MO message, or a delivery receipt when esm_class has bit 2 set."""

    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageIdResp(Pdu):
    LAYOUT: ClassVar[tuple[Field, ...]] = (_cstr("message_id", 65, Status.ESME_RINVMSGID),)
    ACCEPTS_TLVS: ClassVar[bool] = True

    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM_RESP
    BODY_ON_ERROR: ClassVar[bool] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.DATA_SM
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _cstr("service_type", 6, Status.ESME_RINVSERTYP),
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 65, Status.ESME_RINVSRCADR),
        _u8("dest_addr_ton"),
        _u8("dest_addr_npi"),
        _cstr("destination_addr", 65, Status.ESME_RINVDSTADR),
        _u8("esm_class"),
        _u8("registered_delivery"),
        _u8("data_coding"),
    )
    ACCEPTS_TLVS: ClassVar[bool] = True

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    """A data_sm_resp keeps its body on error: its TLVs (delivery_failure_reason) explain it."""

    command_id: ClassVar[CommandId] = CommandId.DATA_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.QUERY_SM
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _cstr("message_id", 65, Status.ESME_RINVMSGID),
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 21, Status.ESME_RINVSRCADR),
    )
    ACCEPTS_TLVS: ClassVar[bool] = True

    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.QUERY_SM_RESP
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _cstr("message_id", 65, Status.ESME_RINVMSGID),
        _cstr("final_date", 17),
        _u8("message_state"),
        _u8("error_code"),
    )
    ACCEPTS_TLVS: ClassVar[bool] = True
    BODY_ON_ERROR: ClassVar[bool] = False

    message_id: str = ""
    final_date: str = ""
    # Shadows the TLV reader of the same name: query_sm_resp carries it as a mandatory field.
    message_state: int = 0
    error_code: int = 0


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        GenericNack,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
    )
}

# The response class of each request; outbind has no response.
RESPONSE_CLASSES: dict[int, type[Pdu]] = {
    CommandId.BIND_TRANSMITTER: BindTransmitterResp,
    CommandId.BIND_RECEIVER: BindReceiverResp,
    CommandId.BIND_TRANSCEIVER: BindTransceiverResp,
    CommandId.UNBIND: UnbindResp,
    CommandId.ENQUIRE_LINK: EnquireLinkResp,
    CommandId.SUBMIT_SM: SubmitSmResp,
    CommandId.DELIVER_SM: DeliverSmResp,
    CommandId.DATA_SM: DataSmResp,
    CommandId.QUERY_SM: QuerySmResp,
}


def response_to(request: Pdu, status: int = CommandStatus.ESME_ROK) -> Pdu:
    """An empty response to ``request`` with ``status`` (generic_nack for outbind)."""
    response_class = RESPONSE_CLASSES.get(request.command_id, GenericNack)
    return response_class(sequence_number=request.sequence_number, command_status=status)
