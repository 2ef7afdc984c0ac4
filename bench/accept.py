"""Durable sendsms accepts per second, over loopback, against a real `smsgw serve`.

Starts the gateway as its own process (SQLite file, then a fresh PostgreSQL database), loads it
with wrk (Debian package `wrk`; installed with apt-get when missing) for a bounded time, and
prints requests/s, p50 and p99 latency, how many accepted msgids the store really holds, the
server's CPU ms per accepted message (recipient) and its peak RSS (VmHWM summed over its
processes).

    .venv/bin/python bench/accept.py [--backend sqlite|postgres|both] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PASSWORD, free_port, smsgw, tree_cpu_s, tree_peak_rss_mb

POSTGRES = os.environ.get(
    "SMSGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if body:find("statuscode=0", 1, true) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("RESULT ok=%d bad=%d p50=%.2f p99=%.2f\n", o, b,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wait_ready(port: int, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not start")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


async def create_pg_database() -> tuple[str, str]:
    name = f"smsgw_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(POSTGRES)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name, POSTGRES.rsplit("/", 1)[0] + f"/{name}"


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def count_requests(url: str) -> int:
    if url.startswith("sqlite"):
        import sqlite3  # noqa: PLC0415 - only this branch needs it

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return int(db.execute("SELECT count(*) FROM requests").fetchone()[0])
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM requests"))
    finally:
        await conn.close()


def run_one(
    url: str, seconds: int, connections: int, recipients: int, workers: int, *, engine: bool
) -> dict[str, str]:
    port = free_port()
    env = {
        **os.environ,
        "SMSGW_DATABASE_URL": url,
        "SMSGW_HTTP_PORT": str(port),
        "SMSGW_HTTP_WORKERS": str(workers),
    }
    env.pop("SMSGW_CONFIG", None)
    smsgw(env, "db", "upgrade")
    smsgw(env, "account", "create", "bench", "--password", PASSWORD, "--points", "1000000000")
    command = [sys.executable, "-m", "smsgw", "serve", "--log-level", "warning"]
    server = subprocess.Popen(command if engine else [*command, "--no-engine"], env=env)
    try:
        wait_ready(port)
        numbers = ",".join(f"09{n:08d}" for n in range(10_000_000, 10_000_000 + recipients))
        target = (
            f"http://127.0.0.1:{port}/sms_gw/sendsms.aspx?username=bench&password={PASSWORD}"
            f"&dstaddr={numbers}&encoding=ASCII&smbody=bench"
        )
        cpu_started = tree_cpu_s(server.pid)
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(LUA)
            script.flush()
            out = subprocess.run(
                [
                    ensure_wrk(),
                    "-t1",
                    f"-c{connections}",
                    f"-d{seconds}s",
                    "-s",
                    script.name,
                    "--timeout",
                    "5s",
                    target,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        cpu_s = tree_cpu_s(server.pid) - cpu_started
        peak_rss = tree_peak_rss_mb(server.pid)[1]
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = dict(re.findall(r"(\w+)=([\d.]+)", out.split("RESULT", 1)[1]))
    result["stored"] = str(asyncio.run(count_requests(url)))
    result["rps"] = f"{int(result['ok']) / seconds:.0f}"
    result["cpu_ms"] = f"{cpu_s * 1000 / max(int(result['ok']) * recipients, 1):.3f}"
    result["rss"] = f"{peak_rss:.0f}"
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--recipients", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="API processes (2 cores here)")
    parser.add_argument(
        "--engine",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the delivery engine too (it delivers what is accepted, on the same cores)",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(
        f"durable sendsms accepts, {args.recipients} recipient(s)/request, "
        f"{args.connections} connections, {args.seconds} s, {args.workers} API process(es), "
        + ("the engine delivering beside them" if args.engine else "no engine (API only)")
    )
    header: tuple[str, ...] = ("backend", "accepted/s", "p50 ms", "p99 ms", "ok", "bad", "stored")
    header += ("CPU ms/msg", "RSS MiB")
    print(f"{header[0]:10} " + " ".join(f"{h:>10}" for h in header[1:]))
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url, dbname = f"sqlite:///{Path(tmp) / 'bench.db'}", None
            else:
                dbname, url = asyncio.run(create_pg_database())
            try:
                r = run_one(
                    url,
                    args.seconds,
                    args.connections,
                    args.recipients,
                    args.workers,
                    engine=args.engine,
                )
            finally:
                if dbname:
                    asyncio.run(drop_pg_database(dbname))
        cells = (
            r["rps"],
            r["p50"],
            r["p99"],
            r["ok"],
            r["bad"],
            r["stored"],
            r["cpu_ms"],
            r["rss"],
        )
        print(f"{backend:10} " + " ".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()
