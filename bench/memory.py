"""Memory: RSS of the gateway with many queued messages (issue 6: < 500 MB with 1M).

Accepts ``--messages`` recipients (``--per-request`` per sendsms) through `smsgw serve
--no-engine` on SQLite and prints its RSS; then serves the same database with the engine, its
one SMPP connector pointing at a port nobody listens on (so every message stays queued), and
prints the RSS of that gateway after ``--settle-s`` seconds and its peak.

    .venv/bin/python bench/memory.py [--messages 1000000]
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
    accept_bulk,
    exit_on_sigterm,
    free_port,
    gateway_env,
    prepare_database,
    print_log_tail,
    running_gateway,
    tree_cpu_s,
    tree_peak_rss_mb,
    tree_rss_mb,
)


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
    with running_gateway(env, port, log, ready_path="/healthz") as pid:
        time.sleep(args.settle_s)
        rss, peak = tree_rss_mb(pid), tree_peak_rss_mb(pid)[1]
        print(
            f"gateway RSS:         {rss:.0f} MiB now, {peak:.0f} MiB peak, with engine and "
            f"{args.messages} queued recipients, after {args.settle_s:g} s (target < 500 MB)"
        )


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="queued recipients")
    parser.add_argument("--per-request", type=int, default=50, help="recipients per sendsms")
    parser.add_argument("--settle-s", type=float, default=15, help="engine running this long")
    args = parser.parse_args()
    print(f"memory: {args.messages} queued recipients, {args.per_request} per request, SQLite")
    with tempfile.TemporaryDirectory() as tmp:
        directory, port = Path(tmp), free_port()
        config = directory / "smsgw.toml"
        # Nobody listens on this port: the connector never binds, the messages stay queued.
        config.write_text(
            f'[[connectors]]\nname = "nowhere"\nkind = "smpp"\nport = {free_port()}\n'
        )
        env = gateway_env(f"sqlite:///{directory / 'memory.db'}", port, config)
        prepare_database(env, points=args.messages * 4)
        log = directory / "server.log"
        try:
            accept_phase(args, env, port, log)
            queued_phase(args, env, port, log)
        except BaseException:
            print_log_tail(log)
            raise


if __name__ == "__main__":
    main()
