"""The performance paths (template encoding, batched ESME writes) behave like the plain ones."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.smpp.fakesmsc import FakeSmsc
from tests.smpp.test_smpp_codec import ALL_PDU_CLASSES, any_pdu
from tests.smpp.test_smpp_esme import message, running, settings_for

from smsgw.smpp.codec import (
    _CODECS,
    _build,
    _decode_fields,
    _encode_fields,
    _match_fields,
    decode,
    encode,
)
from smsgw.smpp.constants import CommandStatus
from smsgw.smpp.errors import LocalProtocolError, PduDecodeError
from smsgw.smpp.esme import Submitted
from smsgw.smpp.pdu import DeliverSm, Pdu, SubmitSm


def _field_by_field_body(pdu: Pdu) -> bytes:
    out: list[bytes] = []
    _encode_fields(_CODECS[pdu.command_id], pdu, out)
    return b"".join(out)


@settings(deadline=None, max_examples=300)
@given(pdu=any_pdu)
def test_template_encoding_matches_field_by_field_encoding(pdu: Pdu) -> None:
    """The one-call template body is byte for byte the body the field-by-field encoder builds."""
    wire = encode(pdu)
    has_body = pdu.BODY_ON_ERROR or pdu.command_status == CommandStatus.ESME_ROK
    if has_body and pdu.LAYOUT:
        assert wire[16:].startswith(_field_by_field_body(pdu))
    assert decode(wire) == pdu


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[type[Pdu], bytes]:
    """A PDU type and a body for it: random octets, or a real body cut short or extended."""
    pdu = draw(any_pdu)
    body = encode(pdu)[16:]
    cut = draw(st.integers(0, len(body)))
    real = body[:cut] + draw(st.binary(max_size=4))
    pdu_class = draw(st.sampled_from([type(pdu), *ALL_PDU_CLASSES]))
    return pdu_class, draw(st.sampled_from([real, draw(st.binary(max_size=80))]))


@settings(deadline=None, max_examples=500)
@given(case=_bodies())
def test_the_one_match_decoder_agrees_with_the_field_by_field_decoder(
    case: tuple[type[Pdu], bytes],
) -> None:
    """A body the pattern takes decodes to the loop's fields; one it refuses, the loop refuses."""
    pdu_class, body = case
    codec = _CODECS[pdu_class.command_id]
    matched: list[object] = [1, 0, ()]
    end = _match_fields(codec.matcher, body, 0, len(body), matched)
    looped: list[object] = [1, 0, ()]
    if end < 0:
        with pytest.raises(PduDecodeError):
            _decode_fields(codec.ops, body, 0, len(body), looped)
        return
    assert _decode_fields(codec.ops, body, 0, len(body), looped) == end
    assert _build(pdu_class, codec.matcher.setters, matched) == _build(
        pdu_class, codec.setters, looped
    )


@pytest.mark.parametrize(
    ("pdu", "status"),
    [
        (SubmitSm(source_addr="x" * 21), CommandStatus.ESME_RINVSRCADR),
        (SubmitSm(destination_addr="a\0b"), CommandStatus.ESME_RINVDSTADR),
        (SubmitSm(service_type="\u4e2d"), CommandStatus.ESME_RINVSERTYP),
        (DeliverSm(esm_class=-1), CommandStatus.ESME_RINVPARLEN),
        (DeliverSm(short_message=b"x" * 255), CommandStatus.ESME_RINVMSGLEN),
    ],
)
def test_a_field_the_template_refuses_gets_the_precise_status(
    pdu: Pdu, status: CommandStatus
) -> None:
    """A value the template path cannot take falls back to the field-by-field status."""
    with pytest.raises(LocalProtocolError) as raised:
        encode(pdu)
    assert raised.value.status == status


async def test_a_burst_of_submits_is_written_in_few_writes(smsc: FakeSmsc) -> None:
    """Submits made in the same event-loop turn share one socket write, and all are accepted."""
    burst = 50
    async with running(settings_for(smsc, window=burst)) as esme:
        connection = esme._links[0].connection
        assert connection is not None
        writer = connection._writer
        written: list[bytes] = []
        write = writer.write

        def recording_write(data: bytes | bytearray | memoryview) -> None:
            written.append(bytes(data))
            write(data)

        writer.write = recording_write  # type: ignore[method-assign]
        outcomes = await asyncio.gather(*(esme.submit(message(f"m{n}")) for n in range(burst)))
    assert all(isinstance(outcome, Submitted) for outcome in outcomes)
    assert sorted(pdu.short_message for pdu in smsc.submitted) == sorted(
        f"m{n}".encode() for n in range(burst)
    )
    submit_writes = [data for data in written if len(data) > 16]
    assert 1 <= len(submit_writes) < burst
