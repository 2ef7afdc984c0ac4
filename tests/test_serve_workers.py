"""`smsgw serve` with two API worker processes: each listens on a socket of its own
(``SO_REUSEPORT``), so connections opened together reach both (Linux; real processes)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from smsgw.errors import ConfigError
from smsgw.server import claim_port, reuse_port_socket
from tests.reliability.processes import free_ports
from tests.test_serve_separate_engine import PASSWORD, Gateway, children, started

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

CONNECTIONS = 24


def descendants(pid: int) -> list[int]:
    found, index = [pid], 0
    while index < len(found):
        found.extend(children(found[index]))
        index += 1
    return found[1:]


def established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rpartition(":")[2], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


class TwoWorkers(Gateway):
    """`smsgw serve` with ``http.workers = 2`` (the engine apart, as that implies)."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path / "gw.db"}"\n'
            f"[http]\nport = {self.port}\nworkers = 2\n"
            f"[engine]\nmetrics_port = {self.metrics_port}\n"
            f"callbacks_metrics_port = {self.callbacks_metrics_port}\n"
        )

    async def _ready(self) -> bool:
        """/readyz answers: one worker serves (the other may still be starting)."""
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                ready = await client.get(f"http://127.0.0.1:{self.port}/readyz")
            return ready.status_code == httpx.codes.OK
        return False

    def workers(self) -> list[int]:
        """The processes of the tree that hold a listening socket on the API's port, other
        than serve itself (which binds them)."""
        listening = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == self.port and fields[3] == "0A":
                listening.add(fields[9])
        return [pid for pid in descendants(self.pid) if socket_inodes(pid) & listening]

    async def stop(self) -> None:
        """SIGTERM: uvicorn's workers do not end with a killed supervisor."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


class TwoApiWorkers(TwoWorkers):
    """`smsgw serve --no-engine` with ``http.workers = 2``: an API node, its engine elsewhere."""

    serve_options = ("--no-engine",)


@pytest.fixture
async def two_workers(tmp_path: Path) -> AsyncIterator[TwoWorkers]:
    async with started(TwoWorkers(tmp_path)) as gateway:
        yield gateway


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


async def test_an_api_node_runs_its_workers_and_no_engine(tmp_path: Path) -> None:
    """``serve --no-engine`` honours ``http.workers``: it once ran a single process."""
    async with started(TwoApiWorkers(tmp_path)) as api:
        async with httpx.AsyncClient() as client:
            params = {"username": "alice", "password": PASSWORD, "dstaddr": "0912345678"}
            params |= {"smbody": "hi", "encoding": "ASCII"}
            sent = await client.get(f"{api.url}/sendsms.asp", params=params)
        assert sent.text.startswith("msgid=")
        workers = api.workers()
        assert len(workers) == 2
        # Besides the workers, nothing runs under serve (uvicorn's workers are spawned,
        # so multiprocessing's resource tracker may be there too): no engine.
        commands = [command_line(pid) for pid in descendants(api.pid)]
        assert not [command for command in commands if "engine" in command]


async def test_connections_opened_together_reach_both_workers(two_workers: TwoWorkers) -> None:
    """Opened as soon as the first worker answers: the second may still be starting, and
    its share of the connections waits for it rather than going to the first."""
    request = (
        f"GET /sms_gw/query_point.asp?username=alice&password={PASSWORD} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\n\r\n"
    ).encode()
    streams = [
        await asyncio.open_connection("127.0.0.1", two_workers.port) for _ in range(CONNECTIONS)
    ]
    try:
        for _, writer in streams:
            writer.write(request)
        for reader, _ in streams:
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
        # Each answered connection is still open: count whose sockets hold them.
        established = established_inodes(two_workers.port)
        workers = two_workers.workers()
        assert len(workers) == 2
        held = {pid: len(socket_inodes(pid) & established) for pid in workers}
        assert sum(held.values()) == CONNECTIONS
        assert all(count > 0 for count in held.values()), held  # 2**-23 to fail by chance
    finally:
        for _, writer in streams:
            writer.close()


def test_reuse_port_sockets_share_one_port() -> None:
    first = reuse_port_socket("127.0.0.1", 0, 16)
    with first:
        port = first.getsockname()[1]
        with reuse_port_socket("127.0.0.1", port, 16) as second:
            assert second.getsockname() == first.getsockname()
            # Listening already when handed to a worker: the kernel counts it from then on.
            assert first.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            assert second.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def test_claiming_a_port_something_listens_on_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=r"http\.port: cannot listen on 127\.0\.0\.1:"):
            claim_port("127.0.0.1", port)
    gateway = reuse_port_socket("127.0.0.1", 0, 16)  # a gateway already serving there
    with gateway, pytest.raises(ConfigError):
        claim_port("127.0.0.1", gateway.getsockname()[1])


def test_claiming_a_free_port_leaves_it_free() -> None:
    (port,) = free_ports(1)
    claim_port("127.0.0.1", port)
    with socket.socket() as after:
        after.bind(("127.0.0.1", port))
