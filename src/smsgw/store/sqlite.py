"""The SQLite backend: one file, WAL, a dedicated writer thread with group commit.

Every write runs on one writer thread and connection, so the event loop never waits on
SQLite and writes of this process never contend with each other; reads use a second
connection inline on the event loop (WAL readers do not wait for the writer, and indexed
reads are cheaper than a thread hop). ``BEGIN IMMEDIATE``
takes the file's write lock at the start of each transaction, so what a transaction reads
stays true until it commits, also against other processes sharing the file.

``inline_writes``: the writes run on the event loop's own thread instead, for processes
that run only the API or only the engine (`smsgw engine`, the API workers of `serve` with
the engine apart). There the writer thread and a busy loop share the GIL: the thread holds
the file's write lock while it waits for its turn to run Python, and the other processes
wait for that lock. Measured with bench/e2e.py (engine separate, 30k messages): the
engine's receipt transactions held the lock 15-18 ms for 7 ms of work on a thread, 2.9-4.6
ms for 2.1-3.4 ms inline. Two API workers under bench/accept.py (64 connections, the lock
~95% busy): 8,363-11,249 accepts/s at 0.134-0.149 ms CPU each on a thread, 11,574-11,895/s
at 0.126-0.129 ms inline (3 runs each). Inline, the loop also waits for the lock while
another process holds it, and batches form only while the batcher lingers or requests
arrive together (nothing queues during a commit that does not yield), so the engine's
batchers linger (`ENGINE_LINGER_S`). A process running both the API and the engine keeps
its writer thread, as before.

Times are stored as UTC epoch microseconds. ``synchronous=FULL`` (the default) makes an
acknowledged accept survive a power loss.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from smsgw.domain.lockout import LockPolicy
from smsgw.domain.model import (
    Accepted,
    Access,
    Account,
    Cancelled,
    RecipientStatus,
    SendPlan,
    State,
)
from smsgw.errors import AccountExistsError, ConfigError, StoreError, UnknownAccountError
from smsgw.store import sqlite_delivery as delivery
from smsgw.store.accepting import (
    AcceptItem,
    Answer,
    check_plan,
    debits,
    grant,
    initial_state,
    refusal,
    seen_any,
    settle,
)
from smsgw.store.batching import (
    ENGINE_LINGER_S,
    ENGINE_MAX_BATCH,
    ENGINE_MIN_BATCH,
    OUTCOMES_LINGER_S,
    OUTCOMES_MIN_BATCH,
    RECEIPTS_MAX_BATCH,
    GroupCommit,
)
from smsgw.store.delivering import TimedSubmit
from smsgw.store.msgids import MsgidBlocks
from smsgw.store.records import (
    CallbackJob,
    CallbackOutcome,
    CallbackRow,
    CallbackState,
    DueMessage,
    IncomingReply,
    ReceiptApplied,
    ReceiptUpdate,
    ReplyKey,
    ReplyPart,
    ReplyRow,
    SegmentRow,
    StoredReply,
    SubmitResult,
)
from smsgw.store.schema import Migration, check_current, migrations, sqlite_statements
from smsgw.store.sqlite_tx import (
    RowsStatement,
    WriterConnection,
    each_row,
    from_micros,
    to_json,
    to_micros,
)
from smsgw.store.sqlite_tx import transaction as _transaction

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
_ReceiptCall = tuple[tuple[ReceiptUpdate, ...], datetime]
_OutcomeCall = tuple[tuple[CallbackOutcome, ...], datetime]

SYNCHRONOUS_LEVELS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_ACCOUNT_COLUMNS: Final = (
    "id, username, password_hash, api_key_hash, balance, disabled, allowed_ips, created_at,"
    " locked_until, recent_failures"
)


class SqliteStore:
    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        msgid_block: int = 1000,
        max_batch: int = 512,
        inline_writes: bool = False,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_LEVELS:
            raise ConfigError("database.url", f"synchronous must be one of {SYNCHRONOUS_LEVELS}")
        self.path = Path(path)
        # busy_timeout first: switching a new file to WAL takes a lock that another process
        # opening the same file at that moment would otherwise fail on ("database is locked").
        self._pragmas = (
            f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA synchronous={synchronous.upper()}",
        )
        self._msgids = MsgidBlocks(msgid_block)
        self._max_batch = max_batch
        self._inline_writes = inline_writes
        self._writer: _Worker | None = None
        self._reader: sqlite3.Connection | None = None
        self._batcher: GroupCommit[AcceptItem, Answer] | None = None
        self._submits: GroupCommit[TimedSubmit, None] | None = None
        self._receipts: GroupCommit[_ReceiptCall, list[ReceiptApplied]] | None = None
        self._finished: GroupCommit[_OutcomeCall, None] | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @property
    def inline_writes(self) -> bool:
        return self._inline_writes

    # lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        await self._connect()
        try:
            check_current(await self.schema_version(), "sqlite")
        except StoreError:
            await self._disconnect()
            raise

    async def close(self) -> None:
        for batcher in (self._batcher, self._submits, self._receipts, self._finished):
            if batcher is not None:
                await batcher.close()
        self._batcher = self._submits = self._receipts = self._finished = None
        await self._disconnect()

    async def upgrade(self, *, to: int | None = None) -> list[int]:
        """Apply pending migrations (up to version ``to``); return the versions applied."""
        await self._connect()
        now = to_micros(datetime.now(UTC))
        return await self._write(lambda conn: _upgrade(conn, now, to))

    async def schema_version(self) -> int:
        await self._connect()
        return await self._read(_schema_version)

    # accounts -------------------------------------------------------------------------
    async def create_account(
        self, username: str, password_hash: str, points: int, now: datetime
    ) -> Account:
        at = to_micros(now)
        return await self._write(
            lambda conn: _create_account(conn, username, password_hash, points, at)
        )

    async def get_account(self, username: str) -> Account | None:
        return await self._read(lambda conn: _account(conn, username))

    async def record_auth_failure(self, account_id: int, now: datetime, policy: LockPolicy) -> None:
        at = to_micros(now)
        await self._write(lambda conn: _record_auth_failure(conn, account_id, at, policy))

    async def clear_auth_failures(self, account_id: int) -> None:
        await self._write(lambda conn: _clear_auth_failures(conn, account_id))

    async def list_accounts(self) -> list[Account]:
        return await self._read(_list_accounts)

    async def set_password_hash(self, username: str, password_hash: str) -> Account:
        return await self._set(username, "password_hash = ?", password_hash)

    async def set_api_key_hash(self, username: str, api_key_hash: str | None) -> Account:
        return await self._set(username, "api_key_hash = ?", api_key_hash)

    async def set_allowed_ips(self, username: str, allowed_ips: Sequence[str]) -> Account:
        return await self._set(username, "allowed_ips = ?", ",".join(allowed_ips))

    async def set_disabled(self, username: str, disabled: bool) -> Account:
        return await self._set(username, "disabled = ?", int(disabled))

    async def topup(self, username: str, points: int, now: datetime) -> Account:
        at = to_micros(now)
        return await self._write(lambda conn: _topup(conn, username, points, at))

    async def ledger_sum(self, account_id: int) -> int:
        return await self._read(lambda conn: _ledger_sum(conn, account_id))

    # the hot path ---------------------------------------------------------------------
    async def accept(
        self, account_id: int, plan: SendPlan, now: datetime, *, seen: Access | None = None
    ) -> Accepted | None:
        check_plan(plan)
        if self._batcher is None:
            raise StoreError("store is not open")
        return settle(await self._batcher.submit(AcceptItem(account_id, plan, now, seen)))

    async def _commit_accepts(self, items: Sequence[AcceptItem]) -> list[Answer]:
        return await self._write(lambda conn: _accept_batch(conn, self._msgids, items), urgent=True)

    # queries and cancel ---------------------------------------------------------------
    async def recipients(self, account_id: int, msgids: Sequence[int]) -> list[RecipientStatus]:
        wanted = list(dict.fromkeys(msgids))
        return await self._read(lambda conn: _recipients(conn, account_id, wanted))

    async def cancel(self, account_id: int, msgid: int, now: datetime) -> Cancelled | None:
        at = to_micros(now)
        return await self._write(lambda conn: _cancel(conn, account_id, msgid, at))

    async def set_webhook_secret(self, username: str, secret: str | None) -> Account:
        return await self._set(username, "webhook_secret = ?", secret)

    # dispatching ----------------------------------------------------------------------
    async def messages_due(self, now: datetime) -> bool:
        at = to_micros(now)
        return await self._read(lambda conn: delivery.messages_due(conn, at))

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[DueMessage]:
        at, lease = to_micros(now), round(lease_s * 1_000_000)
        return await self._write(lambda conn: delivery.claim_due(conn, at, limit, lease))

    async def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None:
        await _running(self._submits).submit_all([TimedSubmit(result, now) for result in results])

    async def _commit_submits(self, items: Sequence[TimedSubmit]) -> list[None]:
        await self._write(lambda conn: delivery.record_submits(conn, items))
        return [None] * len(items)

    async def expire_unanswered(self, submitted_before: datetime, now: datetime) -> int:
        before = to_micros(submitted_before)
        return await self._write(lambda conn: delivery.expire_unanswered(conn, before, now))

    # receipts -------------------------------------------------------------------------
    async def apply_receipts(
        self, receipts: Sequence[ReceiptUpdate], now: datetime
    ) -> list[ReceiptApplied]:
        if not receipts:
            return []
        return await _running(self._receipts).submit((tuple(receipts), now))

    async def _commit_receipts(self, calls: Sequence[_ReceiptCall]) -> list[list[ReceiptApplied]]:
        return await self._write(lambda conn: delivery.apply_receipt_calls(conn, calls))

    async def recipient_segments(self, recipient_id: int) -> list[SegmentRow]:
        return await self._read(lambda conn: delivery.recipient_segments(conn, recipient_id))

    # callbacks ------------------------------------------------------------------------
    async def claim_callbacks(
        self, now: datetime, limit: int, lease_s: float, per_account: int | None = None
    ) -> list[CallbackJob]:
        at, lease = to_micros(now), round(lease_s * 1_000_000)
        cap = limit if per_account is None else per_account
        return await self._write(lambda conn: delivery.claim_callbacks(conn, at, limit, lease, cap))

    async def callbacks_due(self, now: datetime) -> bool:
        at = to_micros(now)
        return await self._read(lambda conn: delivery.callbacks_due(conn, at))

    async def finish_callbacks(self, outcomes: Sequence[CallbackOutcome], now: datetime) -> None:
        if outcomes:
            await _running(self._finished).submit((tuple(outcomes), now))

    async def _commit_outcomes(self, calls: Sequence[_OutcomeCall]) -> list[None]:
        return await self._write(lambda conn: delivery.finish_callbacks(conn, calls))

    async def retry_failed_callbacks(self, username: str | None, now: datetime) -> int:
        at = to_micros(now)
        return await self._write(lambda conn: delivery.retry_failed_callbacks(conn, username, at))

    async def list_callbacks(
        self, state: CallbackState | None, username: str | None, limit: int
    ) -> list[CallbackRow]:
        return await self._read(lambda conn: delivery.list_callbacks(conn, state, username, limit))

    # replies --------------------------------------------------------------------------
    async def store_reply(self, reply: IncomingReply, now: datetime) -> StoredReply:
        return await self._write(lambda conn: delivery.store_reply(conn, reply, now))

    async def list_replies(self, unmatched_only: bool, limit: int) -> list[ReplyRow]:
        return await self._read(lambda conn: delivery.list_replies(conn, unmatched_only, limit))

    async def add_reply_part(self, part: ReplyPart) -> list[ReplyPart]:
        return await self._write(lambda conn: delivery.add_reply_part(conn, part))

    async def complete_reply(
        self, key: ReplyKey, reply: IncomingReply, now: datetime
    ) -> StoredReply | None:
        return await self._write(lambda conn: delivery.complete_reply(conn, key, reply, now))

    async def stale_reply_parts(self, before: datetime, limit: int) -> list[ReplyPart]:
        return await self._read(lambda conn: delivery.stale_reply_parts(conn, before, limit))

    # metrics --------------------------------------------------------------------------
    async def state_counts(self) -> dict[State, int]:
        return await self._read(delivery.state_counts)

    async def callback_counts(self) -> dict[str, int]:
        return await self._read(delivery.callback_counts)

    async def held_receipt_count(self) -> int:
        return await self._read(delivery.held_receipt_count)

    # plumbing -------------------------------------------------------------------------
    async def _connect(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _Worker("smsgw-sqlite-writer", inline=self._inline_writes)
        try:
            await writer.start(lambda: self._connection(query_only=False))
            reader = self._connection(query_only=True)
        except sqlite3.Error as exc:
            await writer.stop()
            raise StoreError(f"cannot open SQLite database {str(self.path)!r}: {exc}") from exc
        self._writer, self._reader = writer, reader
        self._batcher = GroupCommit(self._commit_accepts, max_batch=self._max_batch)
        engine_batch = min(self._max_batch, ENGINE_MAX_BATCH)
        least, linger = (ENGINE_MIN_BATCH, ENGINE_LINGER_S) if self._inline_writes else (1, 0.0)
        self._submits = GroupCommit(
            self._commit_submits, max_batch=engine_batch, min_batch=least, linger_s=linger
        )
        self._receipts = GroupCommit(
            self._commit_receipts,
            max_batch=min(self._max_batch, RECEIPTS_MAX_BATCH),
            min_batch=least,
            linger_s=linger,
        )
        self._finished = GroupCommit(
            self._commit_outcomes,
            max_batch=engine_batch,
            min_batch=OUTCOMES_MIN_BATCH,
            linger_s=OUTCOMES_LINGER_S,
        )

    async def _disconnect(self) -> None:
        reader, writer = self._reader, self._writer
        self._reader = self._writer = self._batcher = None
        self._submits = self._receipts = self._finished = None
        if reader is not None:
            reader.close()
        if writer is not None:
            await writer.stop()

    def _connection(self, *, query_only: bool) -> sqlite3.Connection:
        factory = sqlite3.Connection if query_only else WriterConnection
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=factory
        )
        try:
            for pragma in self._pragmas:
                _with_lock_retries(conn, pragma)
            if isinstance(conn, WriterConnection):
                conn.hold_write_lock(self.path)
            else:
                conn.execute("PRAGMA query_only=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    async def _write(self, work: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        if self._writer is None:
            raise StoreError("store is not open")
        return await self._writer.run(work, urgent=urgent)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        # Reads run inline on the event loop: a WAL reader never waits for the writer, and
        # an indexed point read costs microseconds, far less than a hop to a thread.
        if self._reader is None:
            raise StoreError("store is not open")
        try:
            return work(self._reader)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    async def _set(self, username: str, assignment: str, value: object) -> Account:
        at = to_micros(datetime.now(UTC))
        return await self._write(lambda conn: _set_column(conn, username, assignment, value, at))


def _running(batcher: GroupCommit[ItemT, ResultT] | None) -> GroupCommit[ItemT, ResultT]:
    if batcher is None:
        raise StoreError("store is not open")
    return batcher


class _Worker:
    """One thread owning one connection; urgent work first, otherwise in submission order.

    Accepts are urgent: an API caller must not wait behind engine batches queued before it
    (issue 6), only behind the one job the thread is running.
    """

    def __init__(self, name: str, *, inline: bool = False) -> None:
        self._inline = inline  # run jobs on the caller's (the loop's) thread; see the module
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None
        self._urgent: deque[Callable[[], None]] = deque()
        self._ordinary: deque[Callable[[], None]] = deque()

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, connect)

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def run(self, work: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError("store is not open")
        try:
            return work(conn) if self._inline else await self._on_thread(work, conn, urgent)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    async def _on_thread(
        self, work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection, urgent: bool
    ) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        queue = self._urgent if urgent else self._ordinary
        queue.append(lambda: _settle(loop, future, work, conn))
        # One run of _next per job queued, so every job runs; which one is _next's choice.
        self._executor.submit(self._next)
        return await future

    def _next(self) -> None:
        (self._urgent or self._ordinary).popleft()()


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[T],
    work: Callable[[sqlite3.Connection], T],
    conn: sqlite3.Connection,
) -> None:
    """Run ``work`` on the worker thread and hand its outcome to ``future`` on the loop."""
    try:
        result = work(conn)
    except BaseException as exc:  # noqa: BLE001 - the caller gets whatever the work raised
        _resolve(loop, future, partial(future.set_exception, exc))
    else:
        _resolve(loop, future, partial(future.set_result, result))


def _resolve(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], settle: Callable[[], None]
) -> None:
    def on_loop() -> None:
        if not future.done():  # the caller may have been cancelled meanwhile
            settle()

    if not loop.is_closed():
        loop.call_soon_threadsafe(on_loop)


# Everything below runs on a worker thread. ----------------------------------------------


def _schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if exists is None:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(version)


def _with_lock_retries(conn: sqlite3.Connection, statement: str) -> None:
    """Run a setup statement, retrying while another process holds the lock it needs.

    Switching a new file to WAL needs a lock that SQLite does not wait for through
    busy_timeout, so two processes opening one new file at once can see "database is
    locked"; this runs once per connection, at start.
    """
    for delay in _LOCK_RETRY_DELAYS_S:
        try:
            conn.execute(statement)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or delay is None:
                raise
            time.sleep(delay)
        else:
            return


_LOCK_RETRY_DELAYS_S: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, None)


def _upgrade(conn: sqlite3.Connection, now: int, to: int | None) -> list[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    return [m.version for m in migrations("sqlite", to) if _apply(conn, m, now)]


def _apply(conn: sqlite3.Connection, migration: Migration, now: int) -> bool:
    """Apply one migration in its own transaction unless another process already did."""
    with _transaction(conn):
        if _schema_version(conn) >= migration.version:
            return False
        for statement in sqlite_statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, now),
        )
    return True


def _account_from_row(row: tuple[object, ...]) -> Account:
    id_, username, password_hash, api_key_hash, balance, disabled, allowed_ips, created = row[:8]
    until, recent_failures = row[8:]
    assert isinstance(created, int)  # noqa: S101 - the schema says NOT NULL integer
    password_hash, api_key_hash, disabled, allowed_ips, locked_until = _access_from_row(
        (password_hash, api_key_hash, disabled, allowed_ips, until)
    )
    return Account(
        id=int(str(id_)),
        username=str(username),
        password_hash=password_hash,
        api_key_hash=api_key_hash,
        balance=int(str(balance)),
        disabled=disabled,
        allowed_ips=allowed_ips,
        created_at=from_micros(created),
        locked_until=locked_until,
        recent_failures=int(str(recent_failures)),
    )


_ACCESS_COLUMNS: Final = "password_hash, api_key_hash, disabled, allowed_ips, locked_until"


def _access_from_row(row: tuple[object, ...]) -> Access:
    """`Account.access` from the ``_ACCESS_COLUMNS`` of a row."""
    password_hash, api_key_hash, disabled, allowed_ips, locked_until = row
    assert isinstance(allowed_ips, str)  # noqa: S101 - the schema says NOT NULL text
    return (
        str(password_hash),
        None if api_key_hash is None else str(api_key_hash),
        bool(disabled),
        tuple(ip for ip in allowed_ips.split(",") if ip),
        None if locked_until is None else from_micros(int(str(locked_until))),
    )


def _record_auth_failure(
    conn: sqlite3.Connection, account_id: int, at: int, policy: LockPolicy
) -> None:
    with _transaction(conn):
        row = conn.execute("SELECT locked_until FROM accounts WHERE id = ?", (account_id,))
        found = row.fetchone()
        if found is None or (found[0] is not None and at < found[0]):
            return
        horizon = at - round(policy.window_s * 1_000_000)
        conn.execute(
            "DELETE FROM auth_failures WHERE account_id = ? AND at <= ?", (account_id, horizon)
        )
        conn.execute("INSERT INTO auth_failures (account_id, at) VALUES (?, ?)", (account_id, at))
        (count,) = conn.execute(
            "SELECT count(*) FROM auth_failures WHERE account_id = ?", (account_id,)
        ).fetchone()
        if count >= policy.failures:
            until = at + round(policy.lock_s * 1_000_000)
            conn.execute(
                "UPDATE accounts SET locked_until = ?, recent_failures = 0 WHERE id = ?",
                (until, account_id),
            )
            conn.execute("DELETE FROM auth_failures WHERE account_id = ?", (account_id,))
        else:
            conn.execute(
                "UPDATE accounts SET recent_failures = ? WHERE id = ?", (count, account_id)
            )


def _clear_auth_failures(conn: sqlite3.Connection, account_id: int) -> None:
    with _transaction(conn):
        conn.execute("DELETE FROM auth_failures WHERE account_id = ?", (account_id,))
        conn.execute(
            "UPDATE accounts SET recent_failures = 0, locked_until = NULL WHERE id = ?",
            (account_id,),
        )


def _account(conn: sqlite3.Connection, username: str) -> Account | None:
    row = conn.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE username = ?", (username,)
    ).fetchone()
    return None if row is None else _account_from_row(row)


def _existing_account(conn: sqlite3.Connection, username: str) -> Account:
    account = _account(conn, username)
    if account is None:
        raise UnknownAccountError(f"no account {username!r}")
    return account


def _list_accounts(conn: sqlite3.Connection) -> list[Account]:
    rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY username").fetchall()
    return [_account_from_row(row) for row in rows]


def _create_account(
    conn: sqlite3.Connection, username: str, password_hash: str, points: int, at: int
) -> Account:
    try:
        with _transaction(conn):
            (account_id,) = conn.execute(
                "INSERT INTO accounts (username, password_hash, balance, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (username, password_hash, points, at, at),
            ).fetchone()
            _ledger_row(conn, account_id, points, kind="topup", msgid=None, at=at)
    except sqlite3.IntegrityError as exc:
        raise AccountExistsError(f"account {username!r} exists already") from exc
    return _existing_account(conn, username)


def _set_column(
    conn: sqlite3.Connection, username: str, assignment: str, value: object, at: int
) -> Account:
    with _transaction(conn):
        changed = conn.execute(
            f"UPDATE accounts SET {assignment}, updated_at = ? WHERE username = ?",
            (value, at, username),
        ).rowcount
    if not changed:
        raise UnknownAccountError(f"no account {username!r}")
    return _existing_account(conn, username)


def _topup(conn: sqlite3.Connection, username: str, points: int, at: int) -> Account:
    with _transaction(conn):
        account = _existing_account(conn, username)
        _move_points(conn, account.id, points, kind="topup", msgid=None, at=at)
    return _existing_account(conn, username)


def _ledger_sum(conn: sqlite3.Connection, account_id: int) -> int:
    (total,) = conn.execute(
        "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE account_id = ?", (account_id,)
    ).fetchone()
    return int(total)


def _move_points(
    conn: sqlite3.Connection, account_id: int, delta: int, *, kind: str, msgid: int | None, at: int
) -> None:
    conn.execute(
        "UPDATE accounts SET balance = balance + ?, updated_at = ? WHERE id = ?",
        (delta, at, account_id),
    )
    _ledger_row(conn, account_id, delta, kind=kind, msgid=msgid, at=at)


def _ledger_row(
    conn: sqlite3.Connection, account_id: int, delta: int, *, kind: str, msgid: int | None, at: int
) -> None:
    conn.execute(
        "INSERT INTO ledger (account_id, delta, kind, msgid, at) VALUES (?, ?, ?, ?, ?)",
        (account_id, delta, kind, msgid, at),
    )


def _reserve_msgids(conn: sqlite3.Connection, blocks: MsgidBlocks, needed: int) -> None:
    count = blocks.shortfall(needed)
    if count:
        with _transaction(conn):
            (first,) = conn.execute(
                "UPDATE msgid_counter SET next_value = next_value + ? WHERE id = 1"
                " RETURNING next_value - ?",
                (count, count),
            ).fetchone()
        blocks.add(first, count)


def _accept_batch(
    conn: sqlite3.Connection, blocks: MsgidBlocks, items: Sequence[AcceptItem]
) -> list[Answer]:
    """Debit and insert the batch in one transaction. The rows are built and encoded
    before it, as if every item were granted: other processes wait for the write lock
    while it is held. Items the balances do not cover are rare; their msgids go back."""
    _reserve_msgids(conn, blocks, len(items))
    msgids = blocks.take_many(len(items))
    rows = _AcceptRows(zip(msgids, items, strict=True))
    accounts = to_json(sorted({item.account_id for item in items}))
    with _transaction(conn):
        found = conn.execute(
            f"SELECT id, balance, {_ACCESS_COLUMNS} FROM accounts"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (accounts,),
        ).fetchall()
        balances = {row[0]: row[1] for row in found}
        access = {row[0]: _access_from_row(row[2:]) for row in found} if seen_any(items) else None
        granted = grant(balances, items, access)
        if not all(granted):
            covered = (item for item, ok in zip(items, granted, strict=True) if ok)
            rows = _AcceptRows(zip(msgids, covered, strict=False))
        each_row(
            conn,
            "UPDATE accounts SET balance = balance - {0} FROM {rows} WHERE accounts.id = {1}",
            [(points, account_id) for account_id, points in debits(items, granted).items()],
        )
        rows.write(conn)
    blocks.put_back(msgids[len(rows.accepted) :])
    answers = iter(rows.accepted)
    return [
        next(answers) if ok else refusal(item, access)
        for item, ok in zip(items, granted, strict=True)
    ]


class _AcceptRows:
    """The rows of a batch's accepted requests, encoded for one statement per table."""

    def __init__(self, accepted: Iterable[tuple[int, AcceptItem]]) -> None:
        requests: list[tuple[object, ...]] = []
        recipients: list[tuple[object, ...]] = []
        ledger: list[tuple[object, ...]] = []
        self.accepted: list[Accepted] = []
        for msgid, item in accepted:
            plan, at = item.plan, to_micros(item.now)
            dlvtime = None if plan.dlvtime is None else to_micros(plan.dlvtime)
            requests.append(
                (
                    *(msgid, item.account_id, plan.encoding, plan.body, plan.coding),
                    *(int(plan.flash), plan.segments, plan.wapurl, plan.response, plan.replyurl),
                    *(plan.replydays, dlvtime, plan.points, plan.reply_surcharge, at),
                )
            )
            state = initial_state(plan, item.now)
            due = dlvtime if state is State.WAITING else at
            recipients += [
                (msgid, seq, r.number, state.value, r.points, plan.segments, at, at, due)
                for seq, r in enumerate(plan.recipients)
            ]
            ledger.append((item.account_id, -plan.points, "debit", msgid, at))
            self.accepted.append(Accepted(msgid=msgid, points=plan.points))
        self._statements = (
            RowsStatement(
                "INSERT INTO requests (msgid, account_id, encoding, body, coding, flash, segments,"
                " wapurl, response, replyurl, replydays, dlvtime, points, reply_surcharge,"
                f" created_at) SELECT {_columns(15)} FROM {{rows}}",
                requests,
            ),
            RowsStatement(
                "INSERT INTO recipients (msgid, seq, number, state, points, segments, created_at,"
                f" updated_at, next_attempt_at) SELECT {_columns(9)} FROM {{rows}}",
                recipients,
            ),
            RowsStatement(
                "INSERT INTO ledger (account_id, delta, kind, msgid, at)"
                f" SELECT {_columns(5)} FROM {{rows}}",
                ledger,
            ),
        )

    def write(self, conn: sqlite3.Connection) -> None:
        for statement in self._statements:
            statement.run(conn)


def _columns(count: int) -> str:
    """``{0}, {1}, ...``: a row's first ``count`` fields, for `each_row`."""
    return ", ".join(f"{{{n}}}" for n in range(count))


def _recipients(
    conn: sqlite3.Connection, account_id: int, msgids: list[int]
) -> list[RecipientStatus]:
    rows = conn.execute(
        "SELECT r.msgid, r.number, r.state FROM recipients AS r"
        " JOIN requests AS q ON q.msgid = r.msgid"
        " WHERE q.account_id = ? AND r.msgid IN (SELECT value FROM json_each(?))"
        " ORDER BY r.msgid, r.seq",
        (account_id, to_json(msgids)),
    ).fetchall()
    return _in_asked_order(msgids, [RecipientStatus(m, n, State(s)) for m, n, s in rows])


def _in_asked_order(msgids: list[int], found: list[RecipientStatus]) -> list[RecipientStatus]:
    rank = {msgid: index for index, msgid in enumerate(msgids)}
    return sorted(found, key=lambda status: rank[status.msgid])  # stable: keeps seq order


def _cancel(conn: sqlite3.Connection, account_id: int, msgid: int, at: int) -> Cancelled | None:
    with _transaction(conn):
        request = conn.execute(
            "SELECT reply_surcharge FROM requests WHERE msgid = ? AND account_id = ?",
            (msgid, account_id),
        ).fetchone()
        if request is None:
            return None
        cancelled = conn.execute(
            "UPDATE recipients SET state = 'CANCEL', updated_at = ?, done_at = ?"
            " WHERE msgid = ? AND state = 'WAITING' RETURNING points",
            (at, at, msgid),
        ).fetchall()
        refund = sum(points for (points,) in cancelled)
        if cancelled and _all_cancelled(conn, msgid):
            refund += request[0]
        if refund:
            _move_points(conn, account_id, refund, kind="refund", msgid=msgid, at=at)
    return Cancelled(msgid=msgid, recipients=len(cancelled), points=refund)


def _all_cancelled(conn: sqlite3.Connection, msgid: int) -> bool:
    other = conn.execute(
        "SELECT 1 FROM recipients WHERE msgid = ? AND state <> 'CANCEL' LIMIT 1", (msgid,)
    ).fetchone()
    return other is None
