"""Receipt storm: many submitted messages whose receipts all arrive at once, out of order.

Starts `python -m smsgw simulator` as its own process with each receipt held ``--hold-s``
seconds plus a seeded draw of up to ``--jitter-s`` more (``receipt_jitter_s``), and `smsgw
serve` (SQLite; ``--engine in-process``, the default, or ``separate``, see bench/burst.py) with
an SMPP connector to it (window 1000, no throughput cap). Accepts ``--messages`` recipients and
waits until all are submitted; then pauses the simulator (SIGSTOP) until every receipt is due
(hold + jitter after the last submit) and resumes it (SIGCONT), so all receipts reach the
gateway in one storm. The simulator sends due receipts in the order they fell due, so the storm
comes shuffled: a receipt overtakes those of the submits up to ``--jitter-s`` before it, as the
issue's "receipts arriving out of order". Prints receipts applied per second (from
smsgw_receipts_total), the server's CPU ms per receipt and its peak RSS.

    .venv/bin/python bench/storm.py [--messages 20000] [--hold-s 30] [--jitter-s 10]
        [--engine MODE]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    SIMULATOR_PASSWORD,
    SIMULATOR_SYSTEM_ID,
    accept_bulk,
    add_mode_option,
    api_and_metrics_ports,
    engine_mode_env,
    exit_on_sigterm,
    gateway_env,
    log_tail_on_failure,
    prepare_database,
    running_gateway,
    running_simulator,
    scrape_async,
    tree_cpu_s,
    tree_peak_rss_mb,
)

SUBMITS = "smsgw_submit_results_total"
RECEIPTS = "smsgw_receipts_total"


@dataclass(frozen=True)
class Phase:
    """A counter reaching a target: when it started moving, when it got there."""

    started: float
    finished: float
    reached: float

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)


async def wait_for_counter(metrics_port: int, name: str, target: float, until: float) -> Phase:
    started, value = time.monotonic(), 0.0
    while time.monotonic() < until:
        value = await scrape_async(metrics_port, name)
        if value >= target:
            break
        await asyncio.sleep(0.1)
    return Phase(started, time.monotonic(), value)


async def storm(
    args: argparse.Namespace, ports: tuple[int, int], simulator: subprocess.Popen[bytes]
) -> Phase:
    """``ports``: the API's, and the one serving the engine's metrics."""
    port, metrics_port = ports
    until = time.monotonic() + args.deadline_s
    started = time.monotonic()
    accepted = await accept_bulk(port, args.messages, args.per_request, 16)
    submitted = await wait_for_counter(metrics_port, SUBMITS, accepted, until)
    simulator.send_signal(signal.SIGSTOP)
    early = await scrape_async(metrics_port, RECEIPTS)
    print(
        f"accepted+submitted:  {accepted} accepted, {submitted.reached:.0f} submitted in "
        f"{submitted.finished - started:.2f} s; {early:.0f} receipts came before the storm"
    )
    if early:
        print("WARNING:             raise --hold-s above the submit time for a clean storm")
    # Every receipt is due once the last submit is hold_s + jitter_s old.
    due = submitted.finished + args.hold_s + args.jitter_s + 0.5
    await asyncio.sleep(max(0.0, due - time.monotonic()))
    simulator.send_signal(signal.SIGCONT)
    return await wait_for_counter(metrics_port, RECEIPTS, accepted, until)


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        sim_log = directory / "simulator.log"
        with running_simulator(sim_log, args.hold_s, args.jitter_s) as (sim_port, simulator):
            port, metrics_port = api_and_metrics_ports(args.engine)
            config = directory / "smsgw.toml"
            config.write_text(
                f'[[connectors]]\nname = "smsc"\nkind = "smpp"\nport = {sim_port}\n'
                f'system_id = "{SIMULATOR_SYSTEM_ID}"\npassword = "{SIMULATOR_PASSWORD}"\n'
                "window = 1000\ntps = 1000000\nenquire_link_s = 3600\n"
            )
            env = gateway_env(
                f"sqlite:///{directory / 'storm.db'}",
                port,
                config,
                **engine_mode_env(args.engine, metrics_port),
            )
            prepare_database(env, points=args.messages * 4)
            log = directory / "server.log"
            with (
                log_tail_on_failure(log),
                running_gateway(env, port, log, bound_metrics_port=metrics_port) as server_pid,
            ):
                cpu_started = tree_cpu_s(server_pid)
                phase = asyncio.run(storm(args, (port, metrics_port), simulator))
                cpu_s = tree_cpu_s(server_pid) - cpu_started
                report(args, phase, cpu_s, tree_peak_rss_mb(server_pid)[1])


def report(args: argparse.Namespace, phase: Phase, cpu_s: float, rss_mb: float) -> None:
    print(f"receipts applied:    {phase.reached:.0f} of {args.messages} in {phase.seconds:.2f} s")
    print(f"receipt storm:       {phase.reached / phase.seconds:.0f} receipts/s")
    per_message = cpu_s * 1000 / max(args.messages, 1)
    print(f"server CPU:          {cpu_s:.2f} s (accept+submit+receipt), {per_message:.3f} ms/msg")
    print(f"server peak RSS:     {rss_mb:.0f} MiB over all its processes")


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="recipients (issue: 100k)")
    parser.add_argument("--per-request", type=int, default=50, help="recipients per sendsms")
    parser.add_argument("--hold-s", type=float, default=30, help="receipts held this long")
    parser.add_argument(
        "--jitter-s", type=float, default=10, help="plus up to this long each: out of order"
    )
    parser.add_argument("--deadline-s", type=float, default=240, help="for the whole run")
    add_mode_option(parser)
    args = parser.parse_args()
    print(
        f"receipt storm: {args.messages} recipients, receipts held {args.hold_s:g} s + up to "
        f"{args.jitter_s:g} s ({'out of' if args.jitter_s > 0 else 'in'} submit order), SQLite, "
        f"engine {args.engine}"
    )
    run(args)


if __name__ == "__main__":
    main()
