"""Memory: RSS of the gateway with many queued messages (issue 6: < 500 MB with 1M).

Accepts ``--messages`` recipients (``--per-request`` per sendsms) through `smsgw serve
--no-engine` on SQLite and prints its RSS; then serves the same database with the engine in
its process, its one SMPP connector bound to `python -m smsgw simulator` (its own process) at
``--tps`` (default 50/s): the dispatcher is live, claiming and submitting, and the receipts come
back, yet nearly every message stays queued, as in a real backlog. Once the connector is bound
it lets the gateway run ``--settle-s`` seconds, then prints its RSS now and its peak, and how
many it submitted meanwhile (smsgw_submit_results_total).

    .venv/bin/python bench/memory.py [--messages 1000000] [--tps 50] [--settle-s 15]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    SIMULATOR_PASSWORD,
    SIMULATOR_SYSTEM_ID,
    accept_bulk,
    engine_mode_env,
    exit_on_sigterm,
    free_port,
    gateway_env,
    log_tail_on_failure,
    prepare_database,
    running_gateway,
    running_simulator,
    scrape,
    tree_cpu_s,
    tree_peak_rss_mb,
    tree_rss_mb,
)

SUBMITS = "smsgw_submit_results_total"
RECEIPT_DELAY_S = 1.0  # receipts come back for what was submitted, as from a real SMSC


def accept_phase(args: argparse.Namespace, env: dict[str, str], port: int, log: Path) -> None:
    with running_gateway(env, port, log, "--no-engine", ready_path="/healthz") as pid:
        cpu_started, started = tree_cpu_s(pid), time.monotonic()
        accepted = asyncio.run(accept_bulk(port, args.messages, args.per_request, 32))
        seconds, cpu_s = time.monotonic() - started, tree_cpu_s(pid) - cpu_started
        print(
            f"accepted (no engine): {accepted} recipients in {seconds:.1f} s "
            f"({accepted / seconds:.0f}/s), CPU {cpu_s * 1000 / max(accepted, 1):.3f} ms/msg"
        )
        peak = tree_peak_rss_mb(pid)[1]
        print(f"API RSS:             {tree_rss_mb(pid):.0f} MiB now, {peak:.0f} MiB peak")


def queued_phase(args: argparse.Namespace, env: dict[str, str], port: int, log: Path) -> None:
    """The gateway with its engine live: RSS after ``settle_s`` of claiming at ``tps``."""
    with running_gateway(env, port, log, bound_metrics_port=port) as pid:
        before = scrape(port, SUBMITS)
        time.sleep(args.settle_s)
        submitted = scrape(port, SUBMITS)
        rss, peak = tree_rss_mb(pid), tree_peak_rss_mb(pid)[1]
        print(
            f"gateway RSS:         {rss:.0f} MiB now, {peak:.0f} MiB peak, with engine and "
            f"{args.messages} queued recipients, after {args.settle_s:g} s (target < 500 MB)"
        )
        print(
            f"engine submitted:    {submitted - before:.0f} in the {args.settle_s:g} s "
            f"(connector tps {args.tps:g}), {submitted:.0f} since it started; "
            f"{args.messages - submitted:.0f} still queued"
        )


def connector_config(path: Path, simulator_port: int, tps: float) -> None:
    """One SMPP connector to the simulator, slow enough that the queue stays big."""
    path.write_text(
        f'[[connectors]]\nname = "smsc"\nkind = "smpp"\nport = {simulator_port}\n'
        f'system_id = "{SIMULATOR_SYSTEM_ID}"\npassword = "{SIMULATOR_PASSWORD}"\n'
        f"tps = {tps}\n"
    )


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory, port = Path(tmp), free_port()
        sim_log, log = directory / "simulator.log", directory / "server.log"
        with running_simulator(sim_log, RECEIPT_DELAY_S) as (simulator_port, _):
            config = directory / "smsgw.toml"
            connector_config(config, simulator_port, args.tps)
            url = f"sqlite:///{directory / 'memory.db'}"
            env = gateway_env(url, port, config, **engine_mode_env("in-process", port))
            prepare_database(env, points=args.messages * 4)
            with log_tail_on_failure(log):
                accept_phase(args, env, port, log)
                queued_phase(args, env, port, log)


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="queued recipients")
    parser.add_argument("--per-request", type=int, default=50, help="recipients per sendsms")
    parser.add_argument("--settle-s", type=float, default=15, help="engine running this long")
    parser.add_argument("--tps", type=float, default=50, help="the connector's submits/s")
    args = parser.parse_args()
    print(
        f"memory: {args.messages} queued recipients, {args.per_request} per request, SQLite, "
        f"engine live at {args.tps:g} submits/s"
    )
    run(args)


if __name__ == "__main__":
    main()
