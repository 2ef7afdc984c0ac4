"""ESME throughput over loopback: submit_sm/s, and submit+receipt/s (window 100, 20k messages).

Run: .venv/bin/python bench/smpp.py [count] [--peer simulator|fake] [--simulator-process]

The peer is our SMSC simulator (receipts at once, every one DELIVRD) or the scriptable fake
SMSC of the ESME tests. By default it runs in this process, sharing one event loop (and one
core) with the ESME; ``--simulator-process`` runs ``python -m smsgw simulator`` as a separate
process instead, so each side has a core, as in production. Phase 1 submits ``count`` messages
and times the submit_sm_resp; phase 2 times until every receipt (deliver_sm) has reached the
handler too. Each phase is bounded by ``DEADLINE_S``. It prints both rates, the submit_sm ->
submit_sm_resp latency (p50, p99), CPU per message and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from smsgw.config import ConnectorSettings, SimulatorSettings
from smsgw.smpp import CommandStatus, DataSm, DeliverSm, SubmitSm
from smsgw.smpp.esme import Esme, Submitted, one_at_a_time
from smsgw.smpp.simulator import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import percentile, tree_peak_rss_mb
from tests.smpp.fakesmsc import FakeSmsc

WINDOW = 100
DEFAULT_COUNT = 20_000
DEADLINE_S = 120.0
SYSTEM_ID, PASSWORD = "bench", "bench"
STARTUP_S = 30.0
_LISTENING = re.compile(rb"SMPP on [^ ]+:(\d+),")
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


async def start_simulator_process() -> tuple[int, Callable[[], Awaitable[None]], int]:
    """``python -m smsgw simulator`` on a free port; returns its port, how to stop it, its pid."""
    environment = {
        **os.environ,
        # An empty configuration file: only these variables and the defaults apply.
        "SMSGW_CONFIG": os.devnull,
        "SMSGW_SIMULATOR_SYSTEM_ID": SYSTEM_ID,
        "SMSGW_SIMULATOR_PASSWORD": PASSWORD,
        "SMSGW_SIMULATOR_RECEIPT_DELAY_S": "0",
        "SMSGW_SIMULATOR_SEED": "1",
    }
    command = ["-m", "smsgw", "simulator", "--port", "0", "--control-port", str(free_port())]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=environment,
        cwd=tempfile.gettempdir(),
        stdout=asyncio.subprocess.PIPE,
    )

    async def stop() -> None:
        if process.returncode is None:
            process.terminate()
        await process.wait()

    try:
        port = await asyncio.wait_for(_listening_port(process), STARTUP_S)
    except BaseException:
        await stop()
        raise
    return port, stop, process.pid


async def _listening_port(process: asyncio.subprocess.Process) -> int:
    stdout = process.stdout
    if stdout is None:
        raise SystemExit("the simulator's output is not piped")
    while line := await stdout.readline():
        if match := _LISTENING.search(line):
            return int(match.group(1))
    raise SystemExit("the simulator process ended before listening")


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc); 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def submit_all(esme: Esme, count: int, latencies: list[float]) -> int:
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
            sent = time.perf_counter()
            outcome = await esme.submit(pdu)
            latencies.append((time.perf_counter() - sent) * 1000)
            accepted += isinstance(outcome, Submitted)

    await asyncio.gather(*(worker() for _ in range(WINDOW * 2)))
    return accepted


async def bench(count: int, peer: str, *, separate_process: bool) -> None:
    if separate_process:
        port, stop_peer, peer_pid = await start_simulator_process()
    else:
        (port, stop_peer), peer_pid = await start_peer(peer), None
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
    esme = Esme(settings, one_at_a_time(receipts))
    await esme.start()
    try:
        if not await esme.wait_bound(5.0):
            raise SystemExit("the ESME did not bind")
        started, cpu_started = time.perf_counter(), time.process_time()
        peer_cpu_started = process_cpu_s(peer_pid)
        latencies: list[float] = []
        accepted = await asyncio.wait_for(submit_all(esme, count, latencies), DEADLINE_S)
        submitted_s = time.perf_counter() - started
        await asyncio.wait_for(receipts.done.wait(), DEADLINE_S)
        receipted_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        peer_cpu_s = process_cpu_s(peer_pid) - peer_cpu_started
        peer_rss = tree_peak_rss_mb(peer_pid)[0] if peer_pid is not None else 0.0
    finally:
        await esme.stop()
        await stop_peer()
    where = "separate process" if separate_process else "this process"
    print(f"peer={peer} ({where}) window={WINDOW} messages={count} accepted={accepted}")
    print(f"submit_sm/s:          {count / submitted_s:10.0f}")
    print(f"submit+receipt/s:     {count / receipted_s:10.0f}  ({receipts.count} receipts)")
    latencies.sort()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"submit_sm -> resp ms: {p50:10.2f} p50 {p99:8.2f} p99")
    # CPU time says more than rates on a busy machine; in-process it includes the simulator.
    print(f"CPU of this process:  {cpu_s / count * 1e6:10.1f} us per message")
    if peer_pid is not None:
        print(f"CPU of the simulator: {peer_cpu_s / count * 1e6:10.1f} us per message")
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS:             {own_rss:10.0f} MiB this process, {peer_rss:.0f} MiB simulator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--peer", choices=("simulator", "fake"), default="simulator")
    parser.add_argument(
        "--simulator-process",
        action="store_true",
        help="run the simulator as a separate process (python -m smsgw simulator)",
    )
    arguments = parser.parse_args()
    if arguments.simulator_process and arguments.peer != "simulator":
        parser.error("--simulator-process needs --peer simulator")
    asyncio.run(
        bench(arguments.count, arguments.peer, separate_process=arguments.simulator_process)
    )


if __name__ == "__main__":
    main()
