"""SMPP codec throughput: submit_sm encode and decode per second (bounded, single core).

Run: .venv/bin/python bench/smpp_codec.py [count]
"""

from __future__ import annotations

import sys
import time

from smsgw.smpp.codec import PduDecoder, encode
from smsgw.smpp.constants import MessageState
from smsgw.smpp.events import PduReceived
from smsgw.smpp.pdu import (
    BindTransceiver,
    DeliverSm,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    response_to,
)
from smsgw.smpp.session import Session

DEFAULT_COUNT = 200_000
CHUNK = 64 * 1024


def _submit(sequence_number: int) -> SubmitSm:
    return SubmitSm(
        sequence_number=sequence_number,
        source_addr_ton=5,
        source_addr="smsgw",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=f"8869{sequence_number % 100_000_000:08d}",
        registered_delivery=1,
        data_coding=8,
        short_message="驗證碼 123456 請於 5 分鐘內輸入".encode("utf-16-be"),
        tlvs=(Tlv.user_message_reference(sequence_number & 0xFFFF),),
    )


def _receipt(sequence_number: int) -> DeliverSm:
    message_id = f"{sequence_number:016x}"
    text = f"id:{message_id} sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
    return DeliverSm(
        sequence_number=sequence_number,
        source_addr="886912345678",
        esm_class=0x04,
        short_message=(text + "stat:DELIVRD err:000 text:").encode("ascii"),
        tlvs=(Tlv.receipted_message_id(message_id), Tlv.message_state(MessageState.DELIVERED)),
    )


def _measure(label: str, pdus: list[Pdu]) -> None:
    started = time.perf_counter()
    wire = b"".join([encode(pdu) for pdu in pdus])
    encoded = time.perf_counter()
    decoder = PduDecoder()
    decoded = 0
    for offset in range(0, len(wire), CHUNK):
        decoder.feed(wire[offset : offset + CHUNK])
        decoded += sum(1 for _ in decoder)
    finished = time.perf_counter()
    if decoded != len(pdus):
        raise SystemExit(f"{label}: decoded {decoded} of {len(pdus)}")
    count = len(pdus)
    print(
        f"{label:<11} {count} PDUs, {len(wire) / count:.0f} B each: "
        f"encode {count / (encoded - started):>9,.0f}/s  "
        f"decode {count / (finished - encoded):>9,.0f}/s  "
        f"encode+decode {count / (finished - started):>9,.0f}/s"
    )


def _bound_pair() -> tuple[Session, Session]:
    esme = Session("esme", window=1000, enquire_link_s=30.0, response_timeout_s=10.0)
    smsc = Session("smsc", window=1000, enquire_link_s=30.0, response_timeout_s=10.0)
    (bind,) = smsc.receive_data(esme.send(BindTransceiver(system_id="bench"), 0.0), 0.0)
    if not isinstance(bind, PduReceived):
        raise SystemExit(f"bind not received: {bind}")
    esme.receive_data(smsc.send(response_to(bind.pdu), 0.0), 0.0)
    return esme, smsc


def _measure_sessions(count: int) -> None:
    """submit_sm through both sessions and submit_sm_resp back, 500 in flight at a time."""
    esme, smsc = _bound_pair()
    template = _submit(1)
    started = time.perf_counter()
    for _ in range(count // 500):
        wire = b"".join([esme.send(template, 1.0) for _ in range(500)])
        answers = [
            smsc.send(SubmitSmResp(sequence_number=event.pdu.sequence_number, message_id="m"), 1.0)
            for event in smsc.receive_data(wire, 1.0)
            if isinstance(event, PduReceived)
        ]
        esme.receive_data(b"".join(answers), 1.0)
    elapsed = time.perf_counter() - started
    print(
        f"sessions    {count // 500 * 500} submit_sm + resp through ESME and SMSC sessions: "
        f"{count / elapsed:>9,.0f}/s"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_COUNT
    _measure("submit_sm", [_submit(n) for n in range(1, count + 1)])
    _measure("deliver_sm", [_receipt(n) for n in range(1, count + 1)])
    _measure_sessions(count)


if __name__ == "__main__":
    main()
