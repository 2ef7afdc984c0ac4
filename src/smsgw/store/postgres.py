"""The PostgreSQL backend: asyncpg, a pool, group commit; for several nodes on one database.

Concurrency across nodes rests on row locks: an accept batch locks its accounts (``FOR
UPDATE``, in id order so two batches never deadlock) before deciding which items the
balances cover; a cancel moves recipients with ``UPDATE ... WHERE state = 'WAITING'``, so a
dispatcher that took a recipient first wins. Migrations run under an advisory lock.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlsplit

import asyncpg

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
from smsgw.errors import AccountExistsError, StoreError, UnknownAccountError
from smsgw.store import postgres_delivery as delivery
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
from smsgw.store.batching import OUTCOMES_LINGER_S, OUTCOMES_MIN_BATCH, GroupCommit
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
from smsgw.store.schema import Migration, check_current, migrations

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    Pool = asyncpg.Pool[asyncpg.Record]

log = logging.getLogger("smsgw.store.postgres")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
_ReceiptCall = tuple[tuple[ReceiptUpdate, ...], datetime]
_OutcomeCall = tuple[tuple[CallbackOutcome, ...], datetime]

# Any constant works; it only has to be the same in every smsgw process.
MIGRATION_LOCK_KEY: Final = 0x736D_7367_7700_0001
_ACCOUNT_COLUMNS: Final = (
    "id, username, password_hash, api_key_hash, balance, disabled, allowed_ips, created_at,"
    " locked_until, recent_failures"
)


def safe_location(url: str) -> str:
    """host:port/database of a PostgreSQL URL, for messages: never the user or password."""
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    return f"{parts.hostname or 'localhost'}:{port}{parts.path}"


@contextmanager
def _translated() -> Iterator[None]:
    """asyncpg and socket errors become StoreError (their messages carry no password)."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        raise StoreError(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc
    except (asyncpg.InterfaceError, OSError) as exc:
        raise StoreError(f"PostgreSQL connection: {type(exc).__name__}") from exc


class PostgresStore:
    def __init__(
        self,
        url: str,
        *,
        min_connections: int = 1,
        max_connections: int = 10,
        msgid_block: int = 1000,
        max_batch: int = 512,
    ) -> None:
        self._url = url
        self._pool_size = (min_connections, max_connections)
        self._msgids = MsgidBlocks(msgid_block)
        self._max_batch = max_batch
        self._pool: Pool | None = None
        self._batcher: GroupCommit[AcceptItem, Answer] | None = None
        self._submits: GroupCommit[TimedSubmit, None] | None = None
        self._receipts: GroupCommit[_ReceiptCall, list[ReceiptApplied]] | None = None
        self._finished: GroupCommit[_OutcomeCall, None] | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({safe_location(self._url)!r})"

    # lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        await self._connect()
        try:
            check_current(await self.schema_version(), "postgres")
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
        pool = await self._connect()
        with _translated():
            async with pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
                try:
                    return await _upgrade(conn, to)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)

    async def schema_version(self) -> int:
        pool = await self._connect()
        with _translated():
            async with pool.acquire() as conn:
                return await _schema_version(conn)

    # accounts -------------------------------------------------------------------------
    async def create_account(
        self, username: str, password_hash: str, points: int, now: datetime
    ) -> Account:
        try:
            async with self._transaction() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO accounts (username, password_hash, balance, created_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, $4)"
                    f" RETURNING {_ACCOUNT_COLUMNS}",
                    username,
                    password_hash,
                    points,
                    now,
                )
                account = _account_from_row(row)
                await _ledger_row(conn, account.id, points, kind="topup", msgid=None, at=now)
        except StoreError as exc:
            if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                raise AccountExistsError(f"account {username!r} exists already") from exc
            raise
        return account

    async def record_auth_failure(self, account_id: int, now: datetime, policy: LockPolicy) -> None:
        async with self._transaction() as conn:
            found = await conn.fetchrow(
                "SELECT locked_until FROM accounts WHERE id = $1 FOR UPDATE", account_id
            )
            if found is None or (found[0] is not None and now < found[0]):
                return
            await conn.execute(
                "DELETE FROM auth_failures WHERE account_id = $1 AND at <= $2",
                account_id,
                now - timedelta(seconds=policy.window_s),
            )
            await conn.execute(
                "INSERT INTO auth_failures (account_id, at) VALUES ($1, $2)", account_id, now
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM auth_failures WHERE account_id = $1", account_id
            )
            if count >= policy.failures:
                await conn.execute(
                    "UPDATE accounts SET locked_until = $2, recent_failures = 0 WHERE id = $1",
                    account_id,
                    now + timedelta(seconds=policy.lock_s),
                )
                await conn.execute("DELETE FROM auth_failures WHERE account_id = $1", account_id)
            else:
                await conn.execute(
                    "UPDATE accounts SET recent_failures = $2 WHERE id = $1", account_id, count
                )

    async def clear_auth_failures(self, account_id: int) -> None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM auth_failures WHERE account_id = $1", account_id)
            await conn.execute(
                "UPDATE accounts SET recent_failures = 0, locked_until = NULL WHERE id = $1",
                account_id,
            )

    async def get_account(self, username: str) -> Account | None:
        pool = self._open_pool()
        with _translated():
            row = await pool.fetchrow(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE username = $1", username
            )
        return None if row is None else _account_from_row(row)

    async def list_accounts(self) -> list[Account]:
        pool = self._open_pool()
        with _translated():
            rows = await pool.fetch(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY username")
        return [_account_from_row(row) for row in rows]

    async def set_password_hash(self, username: str, password_hash: str) -> Account:
        return await self._set(username, "password_hash = $1", password_hash)

    async def set_api_key_hash(self, username: str, api_key_hash: str | None) -> Account:
        return await self._set(username, "api_key_hash = $1", api_key_hash)

    async def set_allowed_ips(self, username: str, allowed_ips: Sequence[str]) -> Account:
        return await self._set(username, "allowed_ips = $1", ",".join(allowed_ips))

    async def set_disabled(self, username: str, disabled: bool) -> Account:
        return await self._set(username, "disabled = $1", disabled)

    async def topup(self, username: str, points: int, now: datetime) -> Account:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE accounts SET balance = balance + $1, updated_at = $2 WHERE username = $3"
                f" RETURNING {_ACCOUNT_COLUMNS}",
                points,
                now,
                username,
            )
            if row is None:
                raise UnknownAccountError(f"no account {username!r}")
            account = _account_from_row(row)
            await _ledger_row(conn, account.id, points, kind="topup", msgid=None, at=now)
        return account

    async def ledger_sum(self, account_id: int) -> int:
        pool = self._open_pool()
        with _translated():
            total = await pool.fetchval(
                "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE account_id = $1", account_id
            )
        return int(total)

    # the hot path ---------------------------------------------------------------------
    async def accept(
        self, account_id: int, plan: SendPlan, now: datetime, *, seen: Access | None = None
    ) -> Accepted | None:
        check_plan(plan)
        if self._batcher is None:
            raise StoreError("store is not open")
        return settle(await self._batcher.submit(AcceptItem(account_id, plan, now, seen)))

    async def _commit_accepts(self, items: Sequence[AcceptItem]) -> list[Answer]:
        await self._reserve_msgids(len(items))
        rows = _AcceptRows()
        async with self._transaction() as conn:
            found = await conn.fetch(
                "SELECT id, balance, password_hash, api_key_hash, disabled, allowed_ips,"
                " locked_until"
                " FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                sorted({item.account_id for item in items}),
            )
            access = {row["id"]: _access(row) for row in found} if seen_any(items) else None
            granted = grant({row["id"]: row["balance"] for row in found}, items, access)
            debit = [(points, account) for account, points in debits(items, granted).items()]
            if debit:
                await conn.executemany(
                    "UPDATE accounts SET balance = balance - $1 WHERE id = $2", debit
                )
            answers = [
                rows.add(self._msgids.take(), item) if ok else refusal(item, access)
                for item, ok in zip(items, granted, strict=True)
            ]
            await rows.write(conn)
        return answers

    async def _reserve_msgids(self, needed: int) -> None:
        count = self._msgids.shortfall(needed)
        if count:
            pool = self._open_pool()
            with _translated():
                first = await pool.fetchval(
                    "UPDATE msgid_counter SET next_value = next_value + $1 WHERE id = 1"
                    " RETURNING next_value - $1",
                    count,
                )
            self._msgids.add(int(first), count)

    # queries and cancel ---------------------------------------------------------------
    async def recipients(self, account_id: int, msgids: Sequence[int]) -> list[RecipientStatus]:
        wanted = list(dict.fromkeys(msgids))
        pool = self._open_pool()
        with _translated():
            rows = await pool.fetch(
                "SELECT r.msgid, r.number, r.state FROM recipients AS r"
                " JOIN requests AS q ON q.msgid = r.msgid"
                " WHERE q.account_id = $1 AND r.msgid = ANY($2::bigint[])"
                " ORDER BY array_position($2::bigint[], r.msgid), r.seq",
                account_id,
                wanted,
            )
        return [RecipientStatus(row["msgid"], row["number"], State(row["state"])) for row in rows]

    async def cancel(self, account_id: int, msgid: int, now: datetime) -> Cancelled | None:
        async with self._transaction() as conn:
            surcharge = await conn.fetchval(
                "SELECT reply_surcharge FROM requests WHERE msgid = $1 AND account_id = $2",
                msgid,
                account_id,
            )
            if surcharge is None:
                return None
            cancelled = await conn.fetch(
                "UPDATE recipients SET state = 'CANCEL', updated_at = $1, done_at = $1"
                " WHERE msgid = $2 AND state = 'WAITING' RETURNING points",
                now,
                msgid,
            )
            refund = sum(row["points"] for row in cancelled)
            if cancelled and await _all_cancelled(conn, msgid):
                refund += surcharge
            if refund:
                await _move_points(conn, account_id, refund, msgid=msgid, at=now)
        return Cancelled(msgid=msgid, recipients=len(cancelled), points=refund)

    async def set_webhook_secret(self, username: str, secret: str | None) -> Account:
        return await self._set(username, "webhook_secret = $1", secret)

    # dispatching ----------------------------------------------------------------------
    async def messages_due(self, now: datetime) -> bool:
        with _translated():
            return await delivery.messages_due(self._open_pool(), now)

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[DueMessage]:
        async with self._transaction() as conn:
            return await delivery.claim_due(conn, now, limit, now + timedelta(seconds=lease_s))

    async def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None:
        batcher = _running(self._submits)
        await asyncio.gather(*(batcher.submit(TimedSubmit(result, now)) for result in results))

    async def _commit_submits(self, items: Sequence[TimedSubmit]) -> list[None]:
        async with self._transaction() as conn:
            await delivery.record_submits(conn, items)
        return [None] * len(items)

    async def expire_unanswered(self, submitted_before: datetime, now: datetime) -> int:
        expired = 0
        while True:
            async with self._transaction() as conn:
                found = await delivery.expire_batch(conn, submitted_before, now)
            expired += found
            if found < delivery.EXPIRY_BATCH:
                return expired

    # receipts -------------------------------------------------------------------------
    async def apply_receipts(
        self, receipts: Sequence[ReceiptUpdate], now: datetime
    ) -> list[ReceiptApplied]:
        if not receipts:
            return []
        return await _running(self._receipts).submit((tuple(receipts), now))

    async def _commit_receipts(self, calls: Sequence[_ReceiptCall]) -> list[list[ReceiptApplied]]:
        async with self._transaction() as conn:
            return await delivery.apply_receipt_calls(conn, calls)

    async def recipient_segments(self, recipient_id: int) -> list[SegmentRow]:
        with _translated():
            return await delivery.recipient_segments(self._open_pool(), recipient_id)

    # callbacks ------------------------------------------------------------------------
    async def claim_callbacks(
        self, now: datetime, limit: int, lease_s: float, per_account: int | None = None
    ) -> list[CallbackJob]:
        lease_until = now + timedelta(seconds=lease_s)
        cap = limit if per_account is None else per_account
        async with self._transaction() as conn:
            return await delivery.claim_callbacks(conn, now, limit, lease_until, cap)

    async def callbacks_due(self, now: datetime) -> bool:
        with _translated():
            return await delivery.callbacks_due(self._open_pool(), now)

    async def finish_callbacks(self, outcomes: Sequence[CallbackOutcome], now: datetime) -> None:
        if outcomes:
            await _running(self._finished).submit((tuple(outcomes), now))

    async def _commit_outcomes(self, calls: Sequence[_OutcomeCall]) -> list[None]:
        async with self._transaction() as conn:
            return await delivery.finish_callbacks(conn, calls)

    async def retry_failed_callbacks(self, username: str | None, now: datetime) -> int:
        async with self._transaction() as conn:
            return await delivery.retry_failed_callbacks(conn, username, now)

    async def list_callbacks(
        self, state: CallbackState | None, username: str | None, limit: int
    ) -> list[CallbackRow]:
        with _translated():
            return await delivery.list_callbacks(self._open_pool(), state, username, limit)

    # replies --------------------------------------------------------------------------
    async def store_reply(self, reply: IncomingReply, now: datetime) -> StoredReply:
        async with self._transaction() as conn:
            return await delivery.store_reply(conn, reply, now)

    async def list_replies(self, unmatched_only: bool, limit: int) -> list[ReplyRow]:
        with _translated():
            return await delivery.list_replies(self._open_pool(), unmatched_only, limit)

    async def add_reply_part(self, part: ReplyPart) -> list[ReplyPart]:
        async with self._transaction() as conn:
            return await delivery.add_reply_part(conn, part)

    async def complete_reply(
        self, key: ReplyKey, reply: IncomingReply, now: datetime
    ) -> StoredReply | None:
        async with self._transaction() as conn:
            return await delivery.complete_reply(conn, key, reply, now)

    async def stale_reply_parts(self, before: datetime, limit: int) -> list[ReplyPart]:
        with _translated():
            return await delivery.stale_reply_parts(self._open_pool(), before, limit)

    # metrics --------------------------------------------------------------------------
    async def state_counts(self) -> dict[State, int]:
        with _translated():
            return await delivery.state_counts(self._open_pool())

    async def callback_counts(self) -> dict[str, int]:
        with _translated():
            return await delivery.callback_counts(self._open_pool())

    async def held_receipt_count(self) -> int:
        with _translated():
            return await delivery.held_receipt_count(self._open_pool())

    # wake-ups between nodes ---------------------------------------------------------------
    async def notify(self, channel: str) -> None:
        """``NOTIFY channel``: every node listening on it (`listen`) hears it."""
        pool = self._open_pool()
        with _translated():
            await pool.execute("SELECT pg_notify($1, '')", channel)

    def listen(self, channel: str, on_notify: Callable[[], None]) -> Listening:
        """``LISTEN channel`` on a connection of its own, kept open (re-opened after
        ``LISTEN_RETRY_S`` when lost) until the returned handle is closed."""
        return Listening(self._url, channel, on_notify)

    # plumbing -------------------------------------------------------------------------
    async def _connect(self) -> Pool:
        if self._pool is not None:
            return self._pool
        minimum, maximum = self._pool_size
        try:
            pool = await asyncpg.create_pool(self._url, min_size=minimum, max_size=maximum)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
            location = safe_location(self._url)
            raise StoreError(
                f"cannot connect to PostgreSQL at {location}: {type(exc).__name__}"
            ) from None
        self._pool = pool
        self._batcher = GroupCommit(self._commit_accepts, max_batch=self._max_batch)
        self._submits = GroupCommit(self._commit_submits, max_batch=self._max_batch)
        self._receipts = GroupCommit(self._commit_receipts, max_batch=self._max_batch)
        self._finished = GroupCommit(
            self._commit_outcomes,
            max_batch=self._max_batch,
            min_batch=OUTCOMES_MIN_BATCH,
            linger_s=OUTCOMES_LINGER_S,
        )
        return pool

    async def _disconnect(self) -> None:
        pool, self._pool, self._batcher = self._pool, None, None
        self._submits = self._receipts = self._finished = None
        if pool is not None:
            await pool.close()

    def _open_pool(self) -> Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    def _transaction(self) -> AbstractAsyncContextManager[Connection]:
        return _transaction(self._open_pool())

    async def _set(self, username: str, assignment: str, value: object) -> Account:
        pool = self._open_pool()
        with _translated():
            row = await pool.fetchrow(
                f"UPDATE accounts SET {assignment}, updated_at = $2 WHERE username = $3"
                f" RETURNING {_ACCOUNT_COLUMNS}",
                value,
                datetime.now(UTC),
                username,
            )
        if row is None:
            raise UnknownAccountError(f"no account {username!r}")
        return _account_from_row(row)


def _running(batcher: GroupCommit[ItemT, ResultT] | None) -> GroupCommit[ItemT, ResultT]:
    if batcher is None:
        raise StoreError("store is not open")
    return batcher


@asynccontextmanager
async def _transaction(pool: Pool) -> AsyncIterator[Connection]:
    """A pooled connection in a transaction, foreign errors translated."""
    with _translated():
        async with pool.acquire() as conn, conn.transaction():
            yield conn


LISTEN_RETRY_S = 1.0


class Listening:
    """One connection LISTENing on a channel; a lost one is opened again. Notifications
    sent while it is down are lost: a listener must not depend on them (the engine claims
    every ``engine.poll_s`` anyway)."""

    def __init__(self, url: str, channel: str, on_notify: Callable[[], None]) -> None:
        self._url = url
        self._channel = channel
        self._on_notify = on_notify
        self.connected = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="listen")

    async def _keep(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("cannot LISTEN (%s); trying again", type(exc).__name__)
            await asyncio.sleep(LISTEN_RETRY_S)

    async def _listen_once(self) -> None:
        """Until the connection is lost."""
        lost = asyncio.Event()
        conn = await asyncpg.connect(self._url)
        try:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(self._channel, self._heard)
            self.connected.set()
            await lost.wait()
        finally:
            self.connected.clear()
            if not conn.is_closed():
                conn.terminate()

    def _heard(self, *_: object) -> None:
        self._on_notify()

    async def close(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task


def _account_from_row(row: asyncpg.Record | None) -> Account:
    if row is None:
        raise StoreError("account row missing")
    password_hash, api_key_hash, disabled, allowed_ips, locked_until = _access(row)
    return Account(
        id=row["id"],
        username=row["username"],
        password_hash=password_hash,
        api_key_hash=api_key_hash,
        balance=row["balance"],
        disabled=disabled,
        allowed_ips=allowed_ips,
        created_at=row["created_at"],
        locked_until=locked_until,
        recent_failures=row["recent_failures"],
    )


def _access(row: asyncpg.Record) -> Access:
    """`Account.access` from a row of the accounts table."""
    allowed_ips = tuple(ip for ip in row["allowed_ips"].split(",") if ip)
    return (
        row["password_hash"],
        row["api_key_hash"],
        bool(row["disabled"]),
        allowed_ips,
        row["locked_until"],
    )


async def _schema_version(conn: Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


async def _upgrade(conn: Connection, to: int | None) -> list[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
    )
    return [m.version for m in migrations("postgres", to) if await _apply(conn, m)]


async def _apply(conn: Connection, migration: Migration) -> bool:
    async with conn.transaction():
        if await _schema_version(conn) >= migration.version:
            return False
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            datetime.now(UTC),
        )
    return True


async def _move_points(
    conn: Connection, account_id: int, refund: int, *, msgid: int, at: datetime
) -> None:
    await conn.execute(
        "UPDATE accounts SET balance = balance + $1 WHERE id = $2", refund, account_id
    )
    await _ledger_row(conn, account_id, refund, kind="refund", msgid=msgid, at=at)


async def _ledger_row(
    conn: Connection, account_id: int, delta: int, *, kind: str, msgid: int | None, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO ledger (account_id, delta, kind, msgid, at) VALUES ($1, $2, $3, $4, $5)",
        account_id,
        delta,
        kind,
        msgid,
        at,
    )


async def _all_cancelled(conn: Connection, msgid: int) -> bool:
    other = await conn.fetchval(
        "SELECT 1 FROM recipients WHERE msgid = $1 AND state <> 'CANCEL' LIMIT 1", msgid
    )
    return other is None


class _AcceptRows:
    """The rows of a batch's accepted requests, written with one executemany per table."""

    def __init__(self) -> None:
        self.requests: list[tuple[object, ...]] = []
        self.recipients: list[tuple[object, ...]] = []
        self.ledger: list[tuple[object, ...]] = []

    def add(self, msgid: int, item: AcceptItem) -> Accepted:
        plan, at = item.plan, item.now
        self.requests.append(
            (
                *(msgid, item.account_id, plan.encoding, plan.body, plan.coding, plan.flash),
                *(plan.segments, plan.wapurl, plan.response, plan.replyurl, plan.replydays),
                *(plan.dlvtime, plan.points, plan.reply_surcharge, at),
            )
        )
        state = initial_state(plan, at)
        due = plan.dlvtime if state is State.WAITING else at
        self.recipients += [
            (msgid, seq, r.number, state.value, r.points, plan.segments, at, at, due)
            for seq, r in enumerate(plan.recipients)
        ]
        self.ledger.append((item.account_id, -plan.points, "debit", msgid, at))
        return Accepted(msgid=msgid, points=plan.points)

    async def write(self, conn: Connection) -> None:
        # One statement per table whatever the batch size: rows go in as column arrays.
        if not self.requests:
            return
        await conn.execute(
            "INSERT INTO requests (msgid, account_id, encoding, body, coding, flash, segments,"
            " wapurl, response, replyurl, replydays, dlvtime, points, reply_surcharge,"
            " created_at) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[],"
            " $4::text[], $5::text[], $6::boolean[], $7::integer[], $8::text[], $9::text[],"
            " $10::text[], $11::integer[], $12::timestamptz[], $13::bigint[], $14::bigint[],"
            " $15::timestamptz[])",
            *_columns(self.requests, 15),
        )
        await conn.execute(
            "INSERT INTO recipients (msgid, seq, number, state, points, segments, created_at,"
            " updated_at, next_attempt_at) SELECT * FROM unnest($1::bigint[], $2::integer[],"
            " $3::text[], $4::text[], $5::bigint[], $6::integer[], $7::timestamptz[],"
            " $8::timestamptz[], $9::timestamptz[])",
            *_columns(self.recipients, 9),
        )
        await conn.execute(
            "INSERT INTO ledger (account_id, delta, kind, msgid, at) SELECT * FROM"
            " unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::timestamptz[])",
            *_columns(self.ledger, 5),
        )


def _columns(rows: list[tuple[object, ...]], width: int) -> list[list[object]]:
    columns: list[list[object]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns
