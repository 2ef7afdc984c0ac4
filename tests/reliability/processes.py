"""The processes of the reliability suite: ``python -m smsgw`` commands (the gateway, the
simulator, the CLI) with their output in log files, started, SIGKILLed and stopped by the
harness, plus ``wait_for``, the one polling helper (for state held by another process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

POLL_S: Final = 0.05
STOP_GRACE_S: Final = 15.0


async def wait_for(predicate: Callable[[], Awaitable[bool]], deadline_s: float, what: str) -> None:
    """Poll ``predicate`` (another process's state) every 50 ms until it holds.

    Raises TimeoutError naming ``what`` when ``deadline_s`` seconds pass first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not await predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not reached within {deadline_s:g} s")
        await asyncio.sleep(POLL_S)


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on loopback that nothing listens on right now. Each
    stays bound until all are picked: one pick at a time may return the same port twice."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def clean_environment() -> dict[str, str]:
    """This process's environment without SMSGW_* settings, which would override the file."""
    return {name: value for name, value in os.environ.items() if not name.startswith("SMSGW_")}


class SmsgwProcess:
    """One ``python -m smsgw ARGS`` child; its output is appended to ``log_path``."""

    def __init__(self, args: Sequence[str], log_path: Path, env: Mapping[str, str]) -> None:
        self._args = list(args)
        self._log_path = log_path
        self._env = dict(env)
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "smsgw",
                *self._args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env,
            )

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of this one process."""
        process = self._require()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within STOP_GRACE_S."""
        if not self.running:
            return
        process = self._require()
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await process.wait()
        except TimeoutError:
            await self.kill()

    def log_tail(self, lines: int = 30) -> str:
        text = self._log_path.read_text(errors="replace") if self._log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _require(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("process not started")
        return self._process


async def run_cli(args: Sequence[str], env: Mapping[str, str]) -> str:
    """Run one ``python -m smsgw`` command to its end; its output, or RuntimeError if it failed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgw",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"an smsgw command failed ({process.returncode}): {text}")
    return text
