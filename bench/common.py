"""What the benches share: starting `smsgw serve`, /proc figures, percentiles, a bare HTTP client.

Linux only (reads /proc). Every process started here is stopped when its block ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

PASSWORD = "bench-password-1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TAIPEI = ZoneInfo("Asia/Taipei")
_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? ([0-9.e+-]+)$", re.MULTILINE)


# ---------------------------------------------------------------- processes and their figures


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat from field 3 (state) on: the name may hold spaces."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rpartition(")")[2].split()


def process_tree(*roots: int) -> list[int]:
    """The roots and every live descendant (API workers, the engine process)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
    tree = list(roots)
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def tree_cpu_s(*roots: int) -> float:
    """User + system CPU of the trees, including their children that already exited."""
    ticks = 0
    for pid in process_tree(*roots):
        with contextlib.suppress(OSError):
            fields = _stat_fields(pid)
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def cpu_by_process(*roots: int) -> dict[str, float]:
    """User + system CPU seconds of each live process of the trees, by what it runs
    (``serve``, ``engine delivery``, ``engine callbacks``, ...)."""
    seconds: dict[str, float] = {}
    for pid in process_tree(*roots):
        with contextlib.suppress(OSError):
            ticks = sum(int(value) for value in _stat_fields(pid)[11:13])
            label = _role(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))
            seconds[label] = seconds.get(label, 0.0) + ticks / CLOCK_TICKS
    return seconds


def _role(argv: list[bytes]) -> str:
    words = [arg.decode(errors="replace") for arg in argv if arg]
    if "smsgw" not in words:
        return Path(words[0]).name if words else "?"
    after = words[words.index("smsgw") + 1 :]
    command = next((word for word in after if not word.startswith("-")), "?")
    part = after[after.index("--part") + 1] if "--part" in after[:-1] else ""
    return f"{command} {part}".strip()


def _status_mb(pid: int, key: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return None


def tree_peak_rss_mb(*roots: int) -> tuple[float, float]:
    """(first root's VmHWM, sum of VmHWM over the trees) in MiB."""
    peaks = [_status_mb(pid, "VmHWM:") for pid in process_tree(*roots)]
    found = [peak for peak in peaks if peak is not None]
    return (peaks[0] or 0.0) if peaks else 0.0, sum(found)


def tree_rss_mb(*roots: int) -> float:
    """Resident memory now (VmRSS) summed over the trees, in MiB."""
    return sum(_status_mb(pid, "VmRSS:") or 0.0 for pid in process_tree(*roots))


def percentile(sorted_values: list[float], pct: int) -> float:
    """Nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


# ---------------------------------------------------------------- the gateway under test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_and_metrics_ports(mode: str) -> tuple[int, int]:
    """The API's port and the one the engine's metrics are read from: its own port when the
    engine runs apart (both picked while bound, so never the same), else the API's."""
    with socket.socket() as api, socket.socket() as metrics:
        api.bind(("127.0.0.1", 0))
        metrics.bind(("127.0.0.1", 0))
        port = int(api.getsockname()[1])
        return port, int(metrics.getsockname()[1]) if mode == "separate" else port


def smsgw(env: Mapping[str, str], *args: str) -> None:
    """Run one `smsgw` command (db upgrade, account create) to completion."""
    subprocess.run(
        [sys.executable, "-m", "smsgw", *args], env=dict(env), check=True, capture_output=True
    )


def prepare_database(env: Mapping[str, str], points: int) -> None:
    """Create the schema and the `bench` account with ``points``."""
    smsgw(env, "db", "upgrade")
    smsgw(env, "account", "create", "bench", "--password", PASSWORD, "--points", str(points))


def gateway_env(url: str, port: int, config: Path, **extra: str) -> dict[str, str]:
    """The environment of `smsgw serve`: a config file, a database, a port, and ``extra``."""
    env = {
        **os.environ,
        "SMSGW_CONFIG": str(config),
        "SMSGW_DATABASE_URL": url,
        "SMSGW_HTTP_PORT": str(port),
        "SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
    }
    env.update(extra)
    return env


ENGINE_MODES = ("separate", "in-process")


def engine_mode_env(mode: str, metrics_port: int) -> dict[str, str]:
    """Variables putting the engine in its own process (metrics on ``metrics_port``) or not."""
    if mode == "in-process":
        return {"SMSGW_ENGINE_SEPARATE_PROCESS": "false"}
    return {"SMSGW_ENGINE_SEPARATE_PROCESS": "true", "SMSGW_ENGINE_METRICS_PORT": str(metrics_port)}


def add_mode_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINE_MODES,
        default="in-process",
        help="the engine in the API's process (smsgw serve's default) or its own",
    )


def wait_ready(
    port: int, server: subprocess.Popen[bytes], path: str = "/readyz", deadline_s: float = 30.0
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and server.poll() is None:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError("the gateway did not become ready")


def wait_bound(
    metrics_port: int, server: subprocess.Popen[bytes], deadline_s: float = 30.0
) -> None:
    """Until the engine's metrics (the API's, or its own process's) show a bound connector."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError):
            if scrape(metrics_port, "smsgw_connector_bound") >= 1:
                return
        time.sleep(0.1)
    raise RuntimeError("the engine did not bind its connector")


def scrape(port: int, name: str) -> float:
    """Sum of every sample of the metric ``name`` at http://127.0.0.1:PORT/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return _sum_of(response.read().decode(), name, "")


def _sum_of(text: str, name: str, label: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``label`` (e.g. ``a="b"``)."""
    return sum(
        float(value)
        for metric, labels, value in _SAMPLE.findall(text)
        if metric == name and label in labels
    )


@contextlib.contextmanager
def running_gateway(
    env: Mapping[str, str],
    port: int,
    log: Path,
    *options: str,
    ready_path: str = "/readyz",
    bound_metrics_port: int | None = None,
) -> Iterator[int]:
    """`smsgw serve` until the block ends; yields the server's pid. Always stops it.

    With ``bound_metrics_port``, also waits until those metrics show a bound connector (the
    API's /readyz cannot see an engine in another process).
    """
    with log.open("wb") as sink:
        command = [sys.executable, "-m", "smsgw", "serve", "--log-level", "warning", *options]
        server = subprocess.Popen(command, env=dict(env), stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_ready(port, server, ready_path)
            if bound_metrics_port is not None:
                wait_bound(bound_metrics_port, server)
            yield server.pid
        finally:
            stop_process(server)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (with SIGCONT, in case a bench paused it), then SIGKILL after a minute."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def log_tail_on_failure(log: Path) -> Iterator[None]:
    """The server log's last lines on stderr when the block fails, then the failure."""
    try:
        yield
    except BaseException:
        print_log_tail(log)
        raise


def print_log_tail(log: Path, lines: int = 20) -> None:
    with contextlib.suppress(OSError):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            print("server log (last lines):", *tail, sep="\n  ", file=sys.stderr)


def dlvtime(moment: float) -> str:
    """A Unix time as smsgo's ``dlvtime`` (Taipei wall clock, whole seconds)."""
    return datetime.fromtimestamp(moment, UTC).astimezone(TAIPEI).strftime("%Y/%m/%d %H:%M:%S")


def numbers(first: int, count: int) -> str:
    """``count`` distinct mobile numbers from index ``first``, comma-separated."""
    return ",".join(f"09{(first + n) % 100_000_000:08d}" for n in range(count))


def sendsms_target(dstaddr: str, **extra: str) -> str:
    target = (
        f"/sms_gw/sendsms.aspx?username=bench&password={PASSWORD}&dstaddr={dstaddr}"
        "&encoding=ASCII&smbody=bench"
    )
    return target + "".join(f"&{key}={value}" for key, value in extra.items())


# ---------------------------------------------------------------- a bare HTTP/1.1 client


class Connection:
    """One keep-alive HTTP/1.1 connection; GETs answered with Content-Length (light on CPU)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> str:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self._writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return await read_response(self._reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def read_response(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return (await reader.readexactly(length)).decode()


def reply_fields(body: str) -> dict[str, str]:
    """smsgo's ``key=value`` reply lines as a dict."""
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (from `timeout` or make) into SystemExit, so `finally` stops the servers."""

    def _exit(_signum: int, _frame: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, _exit)


async def accept_bulk(
    port: int, total: int, per_request: int, concurrency: int, **extra: str
) -> int:
    """Accept ``total`` recipients, ``per_request`` per sendsms; the number accepted."""
    requests = iter(range(0, total, per_request))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        connection = Connection(port)
        try:
            for first in requests:
                count = min(per_request, total - first)
                body = await connection.get(sendsms_target(numbers(first, count), **extra))
                accepted += count if reply_fields(body).get("statuscode") == "0" else 0
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted


async def scrape_async(port: int, name: str, label: str = "") -> float:
    """Sum of the samples of the metric ``name`` (only those with ``label``, if given), over
    a new connection (the engine's own exposition answers HTTP/1.0 and closes it)."""
    connection = Connection(port)
    try:
        text = await connection.get("/metrics")
    finally:
        connection.close()
    return _sum_of(text, name, label)


SIMULATOR_SYSTEM_ID, SIMULATOR_PASSWORD = "bench", "bench"
_LISTENING = re.compile(r"SMPP on [^ ]+:(\d+),")


@contextlib.contextmanager
def running_simulator(
    log: Path, receipt_delay_s: float, receipt_jitter_s: float = 0.0, deadline_s: float = 30.0
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`smsgw simulator` on a free port until the block ends; yields its SMPP port and process.

    Each receipt waits ``receipt_delay_s`` plus a seeded draw of up to ``receipt_jitter_s``.
    """
    env = {
        **os.environ,
        "SMSGW_CONFIG": os.devnull,  # only these variables and the defaults apply
        "SMSGW_SIMULATOR_SYSTEM_ID": SIMULATOR_SYSTEM_ID,
        "SMSGW_SIMULATOR_PASSWORD": SIMULATOR_PASSWORD,
        "SMSGW_SIMULATOR_RECEIPT_DELAY_S": str(receipt_delay_s),
        "SMSGW_SIMULATOR_RECEIPT_JITTER_S": str(receipt_jitter_s),
        "SMSGW_SIMULATOR_SEED": "1",
    }
    command = [sys.executable, "-m", "smsgw", "simulator", "--port", "0"]
    command += ["--control-port", str(free_port())]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield _listening_port(log, process, deadline_s), process
        finally:
            stop_process(process)


def _listening_port(log: Path, process: subprocess.Popen[bytes], deadline_s: float) -> int:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        if match := _LISTENING.search(log.read_text(errors="replace")):
            return int(match.group(1))
        time.sleep(0.1)
    raise RuntimeError("the simulator did not start listening")
