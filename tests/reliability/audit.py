"""What the crash test reads and checks after the fact: the store (through plain SQL, the same
for SQLite and PostgreSQL), the simulator's submits, and the attribution of every duplicate
to a kill at which it was in flight."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import asyncpg

from smsgw.domain.model import State

Key = tuple[int, str]  # (msgid, number)
TOKEN: Final = re.compile(rb"crash\d{6}")
ESM_UDHI: Final = 0x40
_IE_CONCAT_8: Final = 0x00
_IE_CONCAT_16: Final = 0x08

RECIPIENTS: Final = (
    "SELECT r.msgid, r.number, r.state, r.segments,"
    " (SELECT COUNT(*) FROM segments s WHERE s.recipient_id = r.id AND s.smsc_id IS NOT NULL)"
    " FROM recipients r"
)
REQUESTS: Final = "SELECT msgid, body, points FROM requests"
LEDGER: Final = "SELECT kind, delta, msgid FROM ledger"
BALANCES: Final = "SELECT balance FROM accounts"
CALLBACKS: Final = "SELECT msgid, number, state FROM callbacks WHERE kind = 'dlr'"


class StoreReader(Protocol):
    async def fetch(self, sql: str) -> list[Sequence[Any]]: ...


class SqliteReader:
    """Reads the gateway's SQLite file (a separate connection; the WAL makes it consistent)."""

    def __init__(self, path: str) -> None:
        self._path = path

    async def fetch(self, sql: str) -> list[Sequence[Any]]:
        return await asyncio.to_thread(self._fetch, sql)

    def _fetch(self, sql: str) -> list[Sequence[Any]]:
        with contextlib.closing(sqlite3.connect(self._path, timeout=30)) as connection:
            return list(connection.execute(sql).fetchall())


class PostgresReader:
    def __init__(self, url: str) -> None:
        self._url = url

    async def fetch(self, sql: str) -> list[Sequence[Any]]:
        connection = await asyncpg.connect(self._url)
        try:
            return [tuple(row.values()) for row in await connection.fetch(sql)]
        finally:
            await connection.close()


@dataclass(frozen=True, slots=True)
class RecipientRow:
    key: Key
    state: State
    segments: int
    recorded_segments: int

    @property
    def unrecorded_segments(self) -> int:
        """Segments possibly at the SMSC without a recorded SMSC id (submitted, not recorded)."""
        return self.segments - self.recorded_segments if self.state == State.ENROUTE else 0


async def recipients(reader: StoreReader) -> dict[Key, RecipientRow]:
    rows = await reader.fetch(RECIPIENTS)
    return {
        (int(msgid), number): RecipientRow((int(msgid), number), State(state), segs, recorded)
        for msgid, number, state, segs, recorded in rows
    }


async def in_flight_submits(reader: StoreReader) -> dict[Key, int]:
    """Per recipient, the segments that may be at the SMSC unrecorded (read after a kill)."""
    rows = await recipients(reader)
    return {key: row.unrecorded_segments for key, row in rows.items() if row.unrecorded_segments}


async def pending_callbacks(reader: StoreReader) -> set[Key]:
    rows = await reader.fetch(CALLBACKS)
    return {(int(msgid), number) for msgid, number, state in rows if state == "pending"}


async def callback_states(reader: StoreReader) -> Counter[str]:
    return Counter(str(state) for _, _, state in await reader.fetch(CALLBACKS))


@dataclass(frozen=True, slots=True)
class Submit:
    """One submit_sm the simulator accepted, reduced to what identifies its segment."""

    number: str
    token: str
    part: int
    body: bytes

    @property
    def segment(self) -> tuple[str, bytes, int]:
        return (self.number, self.body, self.part)


def parse_submit(entry: dict[str, Any]) -> Submit:
    """A ``GET /submitted`` entry; the UDH (whose reference may change on a resend) is dropped."""
    message = bytes.fromhex(entry["short_message"])
    part = 1
    if entry["esm_class"] & ESM_UDHI:
        header = message[1 : 1 + message[0]]
        part = _part_of(header)
        message = message[1 + message[0] :]
    destination = str(entry["destination"])
    number = "0" + destination[3:] if destination.startswith("886") else destination
    found = TOKEN.search(message)
    return Submit(number, found.group().decode() if found else "", part, message)


def _part_of(header: bytes) -> int:
    index = 0
    while index + 2 <= len(header):
        ie, length = header[index], header[index + 1]
        data = header[index + 2 : index + 2 + length]
        if ie == _IE_CONCAT_8:
            return data[2]
        if ie == _IE_CONCAT_16:
            return data[3]
        index += 2 + length
    return 1


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A repeated act (a submit, a callback after its acknowledgement) for ``key`` in ``run``."""

    key: Key
    run: int


def submit_repeats(
    submits: Sequence[Submit], run_starts: Sequence[int], msgid_of_token: dict[str, int]
) -> list[Occurrence]:
    """Every submit of a segment beyond its first, with the run it happened in.

    ``run_starts[k]`` is the index of the first submit of run k+1 (the count seen at kill k).
    """
    seen: set[tuple[str, bytes, int]] = set()
    repeats: list[Occurrence] = []
    for index, submit in enumerate(submits):
        if submit.segment in seen:
            run = sum(1 for start in run_starts if index >= start)
            key = (msgid_of_token.get(submit.token, 0), submit.number)
            repeats.append(Occurrence(key, run))
        seen.add(submit.segment)
    return repeats


@dataclass(frozen=True, slots=True)
class Attribution:
    per_kill: list[int]
    unexplained: list[Occurrence]


def attribute(repeats: Iterable[Occurrence], in_flight: Sequence[set[Key]]) -> Attribution:
    """Charge each repeat to the latest kill before its run at which its key was in flight.

    A repeat in run r may come from kill r-1 or an earlier one (a lease outlasting a run);
    a repeat no such kill explains is unexplained: at-least-once cannot excuse it.
    """
    per_kill = [0] * len(in_flight)
    unexplained: list[Occurrence] = []
    for repeat in repeats:
        kill = next(
            (
                k
                for k in range(min(repeat.run, len(in_flight)) - 1, -1, -1)
                if repeat.key in in_flight[k]
            ),
            None,
        )
        if kill is None:
            unexplained.append(repeat)
        else:
            per_kill[kill] += 1
    return Attribution(per_kill, unexplained)


def msgids_by_token(rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    """token -> msgid from the REQUESTS rows."""
    found: dict[str, int] = {}
    for msgid, body, _ in rows:
        match = TOKEN.search(str(body).encode())
        if match:
            found[match.group().decode()] = int(msgid)
    return found
