"""End-to-end messages per second: sendsms accept -> SMPP submit -> receipt -> callback.

Starts `python -m smsgw serve` as its own process (a fresh SQLite file, or with
``--backend postgres`` a fresh PostgreSQL database that the bench creates and drops) with the
in-process SMSC simulator (receipts at once), receives the delivery-report callbacks on loopback
in a thread of this process (raw ASGI on uvicorn, answering the magic acknowledgement), and
sends ``--messages`` sendsms requests over ``--concurrency`` keep-alive connections. It waits,
within ``--deadline-s`` for the whole run, until every accepted msgid's callbacks arrived, then
prints throughput, accept-to-callback latency, and the CPU and memory of the server and of the
bench itself. Exit status 1 when any callback is missing.

With ``--smpp-port`` the gateway's connector is SMPP to an SMSC already listening there (the
simulator that bench/compare_kannel.sh starts, system_id and password ``bench``).

With ``--engine separate`` the engine runs in its own process instead of the API's (the
default of `smsgw serve`, ``--engine in-process``).

    .venv/bin/python bench/e2e.py [--backend sqlite|postgres] [--messages 20000] [--smpp-port N]
        [--engine separate|in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote

import asyncpg
import uvicorn
import uvloop

from smsgw.api.app import Receive, Scope, Send
from smsgw.domain.delivery import acknowledgement

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    PASSWORD,
    SIMULATOR_PASSWORD,
    SIMULATOR_SYSTEM_ID,
    add_mode_option,
    api_and_metrics_ports,
    cpu_by_process,
    engine_mode_env,
    exit_on_sigterm,
    percentile,
    read_response,
    running_gateway,
    smsgw,
    tree_cpu_s,
    tree_peak_rss_mb,
)

POSTGRES = os.environ.get(
    "SMSGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))


@dataclass(frozen=True)
class Options:
    backend: str
    messages: int
    recipients: int
    concurrency: int
    workers: int
    window: int
    tps: float
    deadline_s: float
    smpp_port: int = 0  # 0: the in-process simulator; else an SMSC (simulator) on this port
    engine: str = ""  # smsgw's: "separate" or "in-process" (common.ENGINE_MODES)
    interval_s: float = 0.0  # each connection's pause after an answer: latency without load


def bench_cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the gateway under test


def write_config(directory: Path, options: Options) -> Path:
    path = directory / "smsgw.toml"
    connector = '[[connectors]]\nname = "sim"\nkind = "simulator"\n'
    if options.smpp_port:
        connector = (
            f'[[connectors]]\nname = "smsc"\nkind = "smpp"\nport = {options.smpp_port}\n'
            f'system_id = "{SIMULATOR_SYSTEM_ID}"\npassword = "{SIMULATOR_PASSWORD}"\n'
        )
    path.write_text(connector + f"tps = {options.tps}\nwindow = {options.window}\n")
    return path


def gateway_env(url: str, ports: tuple[int, int], config: Path, options: Options) -> dict[str, str]:
    """``ports``: the API's, and the one serving the engine's metrics."""
    port, metrics_port = ports
    return {
        **os.environ,
        "SMSGW_CONFIG": str(config),
        "SMSGW_DATABASE_URL": url,
        "SMSGW_HTTP_PORT": str(port),
        "SMSGW_HTTP_WORKERS": str(options.workers),
        "SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "SMSGW_SIMULATOR_RECEIPT_DELAY_S": "0",
        **engine_mode_env(options.engine, metrics_port),
    }


@contextlib.contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A database URL nobody used before; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'e2e.db'}"
        return
    name = f"smsgw_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_execute(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# ---------------------------------------------------------------- callback receiver


@dataclass
class Receiver:
    """Delivery-report endpoint on loopback, in its own thread and event loop."""

    arrivals: dict[tuple[int, str], float] = field(default_factory=dict)
    duplicates: int = 0
    refused: int = 0
    cpu_s: float = 0.0
    port: int = 0
    complete: threading.Event = field(default_factory=threading.Event)
    _expected: int | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    async def __call__(self, scope: Scope, _receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        arrived = time.monotonic()
        query = dict(parse_qsl(scope["query_string"].decode()))
        msgid, number = query.get("msgid", ""), query.get("dstaddr", "")
        if not msgid.isdigit() or query.get("statusstr") != "DELIVRD":
            self.refused += 1
            await _answer(send, 400, b"")
            return
        key = (int(msgid), number)
        if key in self.arrivals:
            self.duplicates += 1
        else:
            self.arrivals[key] = arrived
            self._check_complete()
        await _answer(send, 200, acknowledgement(msgid).encode())

    def expect(self, count: int) -> None:
        """Set ``complete`` once ``count`` distinct callbacks have arrived."""
        self._expected = count
        self._check_complete()

    def _check_complete(self) -> None:
        if self._expected is not None and len(self.arrivals) >= self._expected:
            self.complete.set()

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the callback receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def _run(self, sock: socket.socket) -> None:
        assert self._server is not None  # noqa: S101 - set by start() before the thread runs
        started = bench_cpu_s(resource.RUSAGE_THREAD)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._server.serve(sockets=[sock]))
        self.cpu_s = bench_cpu_s(resource.RUSAGE_THREAD) - started


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# ---------------------------------------------------------------- load generator


@dataclass
class Load:
    """sendsms requests over keep-alive connections; a bare HTTP/1.1 client keeps it light."""

    port: int
    callback_url: str
    recipients: int
    total: int
    accepted: dict[int, float] = field(default_factory=dict)
    rejected: int = 0
    errors: int = 0
    interval_s: float = 0.0
    _next: int = 0

    async def run(self, concurrency: int) -> None:
        await asyncio.gather(*(self._worker() for _ in range(concurrency)))

    async def _worker(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while self._next < self.total:
                index, self._next = self._next, self._next + 1
                try:
                    writer.write(self._request(index))
                    self._record(index, await read_response(reader))
                    if self.interval_s:
                        await asyncio.sleep(self.interval_s)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    self.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        finally:
            writer.close()

    def _request(self, index: int) -> bytes:
        first = index * self.recipients
        numbers = ",".join(f"09{(first + n) % 100_000_000:08d}" for n in range(self.recipients))
        target = (
            f"/sms_gw/sendsms.aspx?username=bench&password={PASSWORD}&dstaddr={numbers}"
            f"&encoding=ASCII&smbody=e2e+bench&response={quote(self.callback_url, safe='')}"
        )
        return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    def _record(self, _index: int, body: str) -> None:
        reply = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
        if reply.get("statuscode") == "0" and reply.get("msgid", "").isdigit():
            self.accepted[int(reply["msgid"])] = time.monotonic()
        else:
            self.rejected += 1


# ---------------------------------------------------------------- one run


@dataclass(frozen=True)
class Outcome:
    load: Load
    receiver: Receiver
    started: float
    load_done: float
    finished: float  # the last callback, or the deadline when some are missing
    server_cpu_s: float
    bench_cpu_s: float
    peak_rss_mb: tuple[float, float]
    cpu_by_process: dict[str, float]


async def drive(
    options: Options, port: int, receiver: Receiver, until: float, load_type: type[Load]
) -> Load:
    callback_url = f"http://127.0.0.1:{receiver.port}/cb"
    load = load_type(port, callback_url, options.recipients, options.messages)
    load.interval_s = options.interval_s
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(load.run(options.concurrency), until - time.monotonic())
    return load


def measure(
    options: Options,
    port: int,
    server_pids: tuple[int, ...],
    until: float,
    load_type: type[Load] = Load,
) -> Outcome:
    """Load the server (``server_pids``: the processes whose CPU and RSS count) to the end."""
    receiver = Receiver()
    receiver.start()
    try:
        cpu_server, cpu_bench = tree_cpu_s(*server_pids), bench_cpu_s()
        by_process = cpu_by_process(*server_pids)
        started = time.monotonic()
        load = uvloop.run(drive(options, port, receiver, until, load_type))
        load_done = time.monotonic()
        receiver.expect(len(load.accepted) * load.recipients)
        complete = receiver.complete.wait(timeout=max(0.0, until - time.monotonic()))
        last_callback = max(receiver.arrivals.values(), default=load_done)
        finished = max(last_callback, load_done) if complete else time.monotonic()
        cpu_server = tree_cpu_s(*server_pids) - cpu_server
        by_process = {
            role: spent - by_process.get(role, 0.0)
            for role, spent in cpu_by_process(*server_pids).items()
        }
        peak = tree_peak_rss_mb(*server_pids)
    finally:
        receiver.stop()
    cpu_bench = bench_cpu_s() - cpu_bench
    return Outcome(
        load, receiver, started, load_done, finished, cpu_server, cpu_bench, peak, by_process
    )


def run(options: Options) -> Outcome:
    until = time.monotonic() + options.deadline_s
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port, metrics_port = api_and_metrics_ports(options.engine)
        config = write_config(directory, options)
        with fresh_database(options.backend, directory) as url:
            env = gateway_env(url, (port, metrics_port), config, options)
            smsgw(env, "db", "upgrade")
            points = str(options.messages * options.recipients * 2)
            smsgw(env, "account", "create", "bench", "--password", PASSWORD, "--points", points)
            log = directory / "server.log"
            try:
                with running_gateway(env, port, log, bound_metrics_port=metrics_port) as server_pid:
                    return measure(options, port, (server_pid,), until)
            finally:
                tail = log.read_text(errors="replace").splitlines()[-20:]
                if tail:
                    print("server log (last lines):", *tail, sep="\n  ", file=sys.stderr)


# ---------------------------------------------------------------- report


def latencies_ms(outcome: Outcome) -> list[float]:
    accepted = outcome.load.accepted
    return sorted(
        (arrived - accepted[msgid]) * 1000
        for (msgid, _), arrived in outcome.receiver.arrivals.items()
        if msgid in accepted
    )


def report(options: Options, outcome: Outcome) -> int:
    """Print the figures; the number of callbacks still missing."""
    load, receiver = outcome.load, outcome.receiver
    expected = len(load.accepted) * options.recipients
    received = sum(1 for msgid, _ in receiver.arrivals if msgid in load.accepted)
    wall = outcome.finished - outcome.started
    latency = latencies_ms(outcome)
    lines = {
        "backend": f"{options.backend}, {options.workers} API process(es), "
        f"{f'engine {options.engine}, ' if options.engine else ''}"
        f"connector window {options.window}, tps {options.tps:g}",
        "messages": f"{options.messages} requests x {options.recipients} recipient(s), "
        f"{options.concurrency} in flight",
        "accepted": f"{len(load.accepted)} (rejected {load.rejected}, errors {load.errors})",
        "callbacks received": f"{received} of {expected} expected",
        "duplicates": f"{receiver.duplicates} (unexpected callbacks {receiver.refused})",
        "wall time": f"{wall:.2f} s",
        "end-to-end": f"{received / wall:.0f} callbacks acknowledged/s",
        "accept rate": f"{len(load.accepted) / (outcome.load_done - outcome.started):.0f} "
        f"requests/s (over {outcome.load_done - outcome.started:.2f} s)",
        "latency ms": "  ".join(
            f"{label}={percentile(latency, pct):.0f}" for label, pct in PERCENTILES
        ),
        "server CPU": f"{outcome.server_cpu_s:.2f} s, "
        f"{outcome.server_cpu_s * 1000 / max(received, 1):.3f} ms/message",
        "CPU by process": ", ".join(
            f"{role} {spent:.2f} s ({spent * 1000 / max(received, 1):.3f} ms/msg)"
            for role, spent in sorted(outcome.cpu_by_process.items())
        ),
        "server peak RSS": f"{outcome.peak_rss_mb[0]:.0f} MiB main process, "
        f"{outcome.peak_rss_mb[1]:.0f} MiB over all its processes",
        "bench CPU": f"{outcome.bench_cpu_s:.2f} s: callback receiver thread "
        f"{receiver.cpu_s:.2f} s, load generator {outcome.bench_cpu_s - receiver.cpu_s:.2f} s",
    }
    for name, value in lines.items():
        print(f"{name + ':':20} {value}")
    return expected - received


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=20_000, help="sendsms requests")
    parser.add_argument("--recipients", type=int, default=1, help="recipients per request")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    parser.add_argument("--window", type=int, default=500, help="connector window (100..1000)")
    parser.add_argument("--tps", type=float, default=10_000, help="connector submits/s")
    parser.add_argument("--deadline-s", type=float, default=300, help="for the whole run")
    parser.add_argument("--smpp-port", type=int, default=0, help="external SMSC (0: in-process)")
    parser.add_argument(
        "--interval-s",
        type=float,
        default=0.0,
        help="each connection's pause between requests (with --concurrency 1: one message's"
        " latency through an otherwise idle gateway)",
    )
    add_mode_option(parser)
    args = parser.parse_args()
    return Options(
        args.backend,
        args.messages,
        args.recipients,
        args.concurrency,
        args.workers,
        args.window,
        args.tps,
        args.deadline_s,
        args.smpp_port,
        args.engine,
        args.interval_s,
    )


def main() -> None:
    exit_on_sigterm()
    options = parse_options()
    outcome = run(options)
    missing = report(options, outcome)
    if missing or len(outcome.load.accepted) < options.messages:
        print(
            f"FAILED: {options.messages - len(outcome.load.accepted)} request(s) not accepted, "
            f"{missing} callback(s) missing at the deadline",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
