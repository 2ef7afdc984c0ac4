"""Scheduled burst: many messages due at the same second, dispatched at a connector tps of 2,000,
while a stream of ordinary sendsms requests measures the API's latency (issue 6: p99 < 50 ms).

Starts `smsgw serve` (SQLite; ``--engine in-process``, serve's default, reads the submits from
the API's /metrics, ``--engine separate`` runs the engine in its own process and reads them from
the engine's metrics port) with one simulator connector at ``--tps`` (the stream has its own);
accepts ``--messages`` recipients (``--per-request`` per sendsms) all with the same
``dlvtime`` ``--lead-s`` seconds ahead; from one second before that time sends ordinary
one-recipient sendsms at ``--stream-rps`` until the burst is dispatched; prints the dispatch
rate achieved (the burst connector's smsgw_submit_results_total), the stream's p50/p99, the
server's CPU ms per dispatched message and its peak RSS.

    .venv/bin/python bench/burst.py [--messages 20000] [--tps 2000] [--stream-rps 100]
        [--engine separate|in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Connection,
    accept_bulk,
    add_mode_option,
    api_and_metrics_ports,
    dlvtime,
    engine_mode_env,
    exit_on_sigterm,
    gateway_env,
    log_tail_on_failure,
    numbers,
    percentile,
    prepare_database,
    reply_fields,
    running_gateway,
    scrape_async,
    sendsms_target,
    tree_cpu_s,
    tree_peak_rss_mb,
)

SUBMITS = "smsgw_submit_results_total"
STREAM_FIRST_NUMBER = 90_000_000  # far from the burst's numbers
# The stream goes out through a connector of its own, so that counting the burst's submits
# does not depend on when the stream's own messages are dispatched (an engine in its own
# process picks them up only every engine.poll_s).
STREAM_PREFIX = "0990"
BURST = 'connector="sim"'


@dataclass
class Stream:
    """Ordinary sendsms at a steady rate over a few connections; their answer times in ms."""

    port: int
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    async def run(self, stop: asyncio.Event, connections: int = 8) -> None:
        await asyncio.gather(
            *(self._worker(index, connections, stop) for index in range(connections))
        )

    async def _worker(self, index: int, connections: int, stop: asyncio.Event) -> None:
        connection = Connection(self.port)
        interval = connections / self.rate
        sent = index
        next_at = time.monotonic() + index / self.rate
        try:
            while not stop.is_set():
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                started = time.monotonic()
                body = await connection.get(sendsms_target(numbers(STREAM_FIRST_NUMBER + sent, 1)))
                self._record(body, started)
                sent += connections
        finally:
            connection.close()

    def _record(self, body: str, started: float) -> None:
        if reply_fields(body).get("statuscode") == "0":
            self.latencies_ms.append((time.monotonic() - started) * 1000)
        else:
            self.failures += 1


@dataclass
class Dispatch:
    """smsgw_submit_results_total sampled over time."""

    baseline: float
    target: float
    first_at: float | None = None
    done_at: float | None = None
    last: float = 0.0

    def sample(self, value: float, now: float) -> None:
        self.last = value
        if self.first_at is None and value > self.baseline:
            self.first_at = now
        if self.done_at is None and value >= self.target:
            self.done_at = now

    def rate(self, now: float) -> float:
        if self.first_at is None:
            return 0.0
        end = self.done_at if self.done_at is not None else now
        return (min(self.last, self.target) - self.baseline) / max(end - self.first_at, 1e-9)


async def watch_dispatch(metrics_port: int, dispatch: Dispatch, until: float) -> None:
    """Sample until the burst is dispatched (its connector's submits only)."""
    while dispatch.done_at is None and time.monotonic() < until:
        submits = await scrape_async(metrics_port, SUBMITS, BURST)
        dispatch.sample(submits, time.monotonic())
        await asyncio.sleep(0.2)


async def burst(args: argparse.Namespace, port: int, metrics_port: int, server_pid: int) -> None:
    due = time.time() + args.lead_s
    accept_started = time.monotonic()
    accepted = await accept_bulk(
        port, args.messages, args.per_request, 16, dlvtime=quote_dlvtime(due)
    )
    accept_s = time.monotonic() - accept_started
    print(
        f"accepted:            {accepted} recipients in {accept_s:.2f} s, "
        f"due {args.lead_s:g} s after start"
    )
    if time.time() > due:
        print("WARNING:             accepting took longer than --lead-s; raise it")
    await asyncio.sleep(max(0.0, due - 1 - time.time()))
    baseline = await scrape_async(metrics_port, SUBMITS, BURST)
    cpu_started = tree_cpu_s(server_pid)
    stream, stop = Stream(port, args.stream_rps), asyncio.Event()
    streaming = asyncio.create_task(stream.run(stop))
    dispatch = Dispatch(baseline, baseline + accepted)
    try:
        await watch_dispatch(metrics_port, dispatch, time.monotonic() + args.deadline_s)
    finally:
        stop.set()
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            await streaming
    report(args, dispatch, stream, tree_cpu_s(server_pid) - cpu_started, server_pid)


def quote_dlvtime(moment: float) -> str:
    return dlvtime(moment).replace(" ", "%20")


def report(
    args: argparse.Namespace, dispatch: Dispatch, stream: Stream, cpu_s: float, pid: int
) -> None:
    dispatched = min(dispatch.last, dispatch.target) - dispatch.baseline
    latency = sorted(stream.latencies_ms)
    print(f"connector:           simulator, tps {args.tps:g}, window {args.window}")
    print(f"dispatched:          {dispatched:.0f} of {dispatch.target - dispatch.baseline:.0f}")
    print(
        f"dispatch rate:       {dispatch.rate(time.monotonic()):.0f} submits/s "
        f"(target {args.tps:g})"
    )
    print(
        f"sendsms during burst: {len(latency)} at {args.stream_rps:g}/s, "
        f"failures {stream.failures}, "
        f"p50={percentile(latency, 50):.1f} ms p99={percentile(latency, 99):.1f} ms "
        f"max={percentile(latency, 100):.1f} ms (target p99 < 50 ms)"
    )
    print(f"server CPU:          {cpu_s:.2f} s, {cpu_s * 1000 / max(dispatched, 1):.3f} ms/message")
    print(f"server peak RSS:     {tree_peak_rss_mb(pid)[1]:.0f} MiB over all its processes")


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port, metrics_port = api_and_metrics_ports(args.engine)
        config = directory / "smsgw.toml"
        config.write_text(
            '[[connectors]]\nname = "sim"\nkind = "simulator"\n'
            f"tps = {args.tps}\nwindow = {args.window}\n"
            '[[connectors]]\nname = "stream"\nkind = "simulator"\n'
            '[[routes]]\nprefix = ""\nconnector = "sim"\n'
            f'[[routes]]\nprefix = "{STREAM_PREFIX}"\nconnector = "stream"\n'
        )
        env = gateway_env(
            f"sqlite:///{directory / 'burst.db'}",
            port,
            config,
            SMSGW_SIMULATOR_RECEIPT_DELAY_S="0",
            **engine_mode_env(args.engine, metrics_port),
        )
        prepare_database(env, points=args.messages * 4 + 1_000_000)
        log = directory / "server.log"
        with (
            log_tail_on_failure(log),
            running_gateway(env, port, log, bound_metrics_port=metrics_port) as server_pid,
        ):
            asyncio.run(burst(args, port, metrics_port, server_pid))


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="recipients due (issue: 200k)")
    parser.add_argument("--per-request", type=int, default=50, help="recipients per sendsms")
    parser.add_argument("--tps", type=float, default=2000, help="connector submits/s")
    parser.add_argument("--window", type=int, default=1000, help="connector window")
    parser.add_argument("--stream-rps", type=float, default=100, help="ordinary sendsms/s")
    parser.add_argument("--lead-s", type=float, default=15, help="dlvtime this far ahead")
    parser.add_argument("--deadline-s", type=float, default=240, help="for the dispatch")
    add_mode_option(parser)
    args = parser.parse_args()
    print(
        f"scheduled burst: {args.messages} recipients due at the same second, "
        f"{args.per_request} per request, SQLite, engine {args.engine}"
    )
    run(args)


if __name__ == "__main__":
    main()
