"""Wake-up datagrams between processes sharing a SQLite file (smsgw/engine/wakeup.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smsgw.engine import wakeup

DEADLINE_S = 10.0
# Abstract Unix sockets exist on Linux only; elsewhere the engine probes for due work instead
# (tests/engine/test_engine_timers.py), so a skip here hides no missing feature.
pytestmark = pytest.mark.skipif(
    not wakeup.address(Path("x.db"), "messages"),
    reason="no abstract Unix sockets here (Linux only); the engine probes instead",
)


def name_for(tmp_path: Path, work: wakeup.Work = "messages") -> bytes:
    name = wakeup.address(tmp_path / "gw.db", work)
    assert name is not None
    return name


@contextlib.asynccontextmanager
async def listening(tmp_path: Path) -> AsyncIterator[tuple[wakeup.Sender, asyncio.Event]]:
    """A listener on the file's name, the event it sets, and a sender to it."""
    listener = wakeup.Listener.bind(name_for(tmp_path))
    assert listener is not None
    woken = asyncio.Event()
    listener.start(woken.set)
    sender = wakeup.Sender(name_for(tmp_path))
    try:
        yield sender, woken
    finally:
        sender.close()
        listener.close()


async def test_a_datagram_wakes_the_listener(tmp_path: Path) -> None:
    """Notifies within one turn of the loop wake the listener (one datagram for them)."""
    async with listening(tmp_path) as (sender, woken):
        for _ in range(3):
            sender.notify()
        await asyncio.wait_for(woken.wait(), DEADLINE_S)
        assert sender.sent == 1


async def test_a_name_is_held_by_one_listener(tmp_path: Path) -> None:
    """A second engine on the same file and work cannot listen (it probes instead); the name
    is free again once the first one closes."""
    first = wakeup.Listener.bind(name_for(tmp_path))
    assert first is not None
    assert wakeup.Listener.bind(name_for(tmp_path)) is None
    first.close()
    again = wakeup.Listener.bind(name_for(tmp_path))
    assert again is not None
    again.close()


async def test_nobody_listening_is_no_error(tmp_path: Path) -> None:
    """An accept with no engine listening: the datagram is dropped, nothing raises."""
    sender = wakeup.Sender(name_for(tmp_path))
    sender.notify()
    after = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(after.set_result, None)  # runs after the send
    await after
    assert sender.sent == 1
    sender.close()


async def test_a_signal_asked_for_after_one_went_out_is_sent_too(tmp_path: Path) -> None:
    """Signals are never dropped: each notify after the last send leads to another send,
    each waking the listener."""
    async with listening(tmp_path) as (sender, woken):
        for count in (1, 2, 3):
            woken.clear()
            sender.notify()
            await asyncio.wait_for(woken.wait(), DEADLINE_S)
            assert sender.sent == count


async def test_notify_sends_through_the_store(tmp_path: Path) -> None:
    """PostgreSQL's sender hands the channel of its work to the store's notify."""
    channels: list[str] = []
    heard = asyncio.Event()

    async def notify(channel: str) -> None:
        channels.append(channel)
        heard.set()

    sender = wakeup.NotifySender(notify, "callbacks")
    sender.notify()
    sender.notify()
    await asyncio.wait_for(heard.wait(), DEADLINE_S)
    sender.close()
    assert channels == [wakeup.CHANNELS["callbacks"]]


def test_names_follow_the_file_and_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One name per (file, work); the same file reached by another path has the same name;
    no name without a SQLite file."""
    assert name_for(tmp_path, "messages") != name_for(tmp_path, "callbacks")
    assert name_for(tmp_path) != name_for(tmp_path / "other")
    monkeypatch.chdir(tmp_path)
    assert wakeup.address(Path("gw.db"), "messages") == name_for(tmp_path)
    assert wakeup.address(None, "messages") is None
