"""ESME throughput over loopback: submit_sm/s, and submit+receipt/s (window 100, 20k messages).

Run: .venv/bin/python bench/smpp.py [count] [--peer simulator|fake]

The peer is our SMSC simulator (receipts at once, every one DELIVRD) or the scriptable fake
SMSC of the ESME tests. Phase 1 submits ``count`` messages and times the submit_sm_resp;
phase 2 times until every receipt (deliver_sm) has reached the handler too. Each phase is
bounded by ``DEADLINE_S``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from smsgw.config import ConnectorSettings, SimulatorSettings
from smsgw.smpp import CommandStatus, DataSm, DeliverSm, SubmitSm
from smsgw.smpp.esme import Esme, Submitted
from smsgw.smpp.simulator import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.smpp.fakesmsc import FakeSmsc

WINDOW = 100
DEFAULT_COUNT = 20_000
DEADLINE_S = 120.0
SYSTEM_ID, PASSWORD = "bench", "bench"
RECEIPT_ESM_CLASS = 0x04  # esm_class bits 2-5: SMSC delivery receipt


class Receipts:
    """The deliver handler: counts receipts and wakes the bench when all arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = asyncio.Event()

    async def __call__(self, pdu: DeliverSm | DataSm) -> CommandStatus:
        if pdu.esm_class & 0x3C == RECEIPT_ESM_CLASS:
            self.count += 1
            if self.count >= self.expected:
                self.done.set()
        return CommandStatus.ESME_ROK


async def start_peer(kind: str) -> tuple[int, Callable[[], Awaitable[None]]]:
    if kind == "fake":
        fake = FakeSmsc(window=1_000_000)
        fake.receipts = True
        return await fake.start(), fake.stop
    settings = SimulatorSettings(
        system_id=SYSTEM_ID, password=PASSWORD, receipt_delay_s=0.0, seed=1
    )
    simulator = Simulator(settings)
    return await simulator.start(), simulator.stop


async def submit_all(esme: Esme, count: int) -> int:
    pdu = SubmitSm(
        source_addr="smsgw",
        destination_addr="886912345678",
        registered_delivery=1,
        short_message=b"benchmark message",
    )
    queue = iter(range(count))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        for _ in queue:
            outcome = await esme.submit(pdu)
            accepted += isinstance(outcome, Submitted)

    await asyncio.gather(*(worker() for _ in range(WINDOW * 2)))
    return accepted


async def bench(count: int, peer: str) -> None:
    port, stop_peer = await start_peer(peer)
    settings = ConnectorSettings(
        name="bench",
        kind="smpp",
        port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        tps=1e9,
        window=WINDOW,
    )
    receipts = Receipts(count)
    esme = Esme(settings, receipts)
    await esme.start()
    try:
        if not await esme.wait_bound(5.0):
            raise SystemExit("the ESME did not bind")
        started = time.perf_counter()
        accepted = await asyncio.wait_for(submit_all(esme, count), DEADLINE_S)
        submitted_s = time.perf_counter() - started
        await asyncio.wait_for(receipts.done.wait(), DEADLINE_S)
        receipted_s = time.perf_counter() - started
    finally:
        await esme.stop()
        await stop_peer()
    print(f"peer={peer} window={WINDOW} messages={count} accepted={accepted}")
    print(f"submit_sm/s:          {count / submitted_s:10.0f}")
    print(f"submit+receipt/s:     {count / receipted_s:10.0f}  ({receipts.count} receipts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--peer", choices=("simulator", "fake"), default="simulator")
    arguments = parser.parse_args()
    asyncio.run(bench(arguments.count, arguments.peer))


if __name__ == "__main__":
    main()
