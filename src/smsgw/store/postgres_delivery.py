"""PostgreSQL: the delivery side of the store (claims, submits, receipts, callbacks, replies).

Several nodes run these at once. Claims lock with ``FOR UPDATE SKIP LOCKED`` so claimers
never wait for or overlap each other. A receipt and the submit result that records its id
can race (the receipt may find no segment yet while the submit finds no held receipt yet),
so both take a transaction-scoped advisory lock per (connector, smsc_id) first, then lock
the recipients they change in id order: every transaction takes its locks in the same two
ordered phases, which cannot deadlock. Decisions come from ``delivering``.
"""

from __future__ import annotations

import hashlib
from itertools import accumulate
from typing import TYPE_CHECKING, Final

from smsgw.domain.model import State
from smsgw.errors import UnknownAccountError
from smsgw.store.delivering import (
    KnownSegment,
    RecipientFacts,
    TimedReceipt,
    expiry_plan,
    gateway_number_matches,
    mo_callback,
    plan_receipts,
    plan_submits,
    receipt_keys,
    reply_window_start,
)
from smsgw.store.records import (
    CALLBACK_STATES,
    CallbackJob,
    CallbackRow,
    DueMessage,
    ReceiptUpdate,
    ReplyKey,
    ReplyPart,
    ReplyRow,
    SegmentRow,
    StoredReply,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    import asyncpg

    from smsgw.store.delivering import FinalChange, NewCallback, SmscKey, TimedSubmit
    from smsgw.store.records import (
        CallbackOutcome,
        CallbackState,
        IncomingReply,
        ReceiptApplied,
    )

    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    Pool = asyncpg.Pool[asyncpg.Record]

EXPIRY_BATCH: Final = 500
_CLAIMABLE: Final = ("QUEUED", "WAITING", "ENROUTE")
_FORMS_SEPARATOR: Final = "\n"
_FACTS: Final = (
    "SELECT r.id, r.msgid, q.account_id, r.number, r.state, q.response"
    " FROM recipients AS r JOIN requests AS q ON q.msgid = r.msgid"
)


# dispatching ------------------------------------------------------------------------------


async def messages_due(pool: Pool, now: datetime) -> bool:
    """What claim_due would find, read through the same index."""
    found = await pool.fetchval(
        "SELECT 1 FROM recipients WHERE state = ANY($1::text[]) AND next_attempt_at <= $2 LIMIT 1",
        list(_CLAIMABLE),
        now,
    )
    return found is not None


async def claim_due(
    conn: Connection, now: datetime, limit: int, lease_until: datetime
) -> list[DueMessage]:
    rows: list[asyncpg.Record] = []
    # One range scan of (state, next_attempt_at) per state, each already in order; rows
    # locked here but beyond the limit are released at commit.
    for state in _CLAIMABLE:
        rows += await conn.fetch(
            "SELECT r.next_attempt_at AS due, r.id, r.msgid, q.account_id, r.number,"
            " r.attempts + 1 AS attempts, q.encoding, q.coding, q.flash, q.body, q.wapurl,"
            " q.segments, q.created_at FROM recipients AS r"
            " JOIN requests AS q ON q.msgid = r.msgid"
            " WHERE r.state = $1 AND r.next_attempt_at <= $2"
            " ORDER BY r.next_attempt_at, r.id LIMIT $3 FOR UPDATE OF r SKIP LOCKED",
            state,
            now,
            limit,
        )
    rows = sorted(rows, key=lambda row: (row["due"], row["id"]))[:limit]
    await conn.execute(
        "UPDATE recipients SET state = 'ENROUTE', next_attempt_at = $1, updated_at = $2,"
        " attempts = attempts + 1 WHERE id = ANY($3::bigint[])",
        lease_until,
        now,
        [row["id"] for row in rows],
    )
    return [
        DueMessage(
            *(row["id"], row["msgid"], row["account_id"], row["number"], row["attempts"]),
            *(row["encoding"], row["coding"], row["flash"], row["body"], row["wapurl"]),
            *(row["segments"], row["created_at"]),
        )
        for row in rows
    ]


async def record_submits(conn: Connection, items: Sequence[TimedSubmit]) -> None:
    if not items:
        return
    keys = [
        (item.result.connector, smsc_id) for item in items for smsc_id in item.result.smsc_ids or ()
    ]
    await _lock_keys(conn, keys)
    facts = await _locked_facts(conn, (item.result.recipient_id for item in items))
    plan = plan_submits(items, facts)
    await _write_recorded(conn, plan.recorded)
    await conn.executemany(
        "UPDATE recipients SET state = 'QUEUED', next_attempt_at = $1, updated_at = $2"
        " WHERE id = $3",
        [(i.result.retry_at, i.now, i.result.recipient_id) for i in plan.retries],
    )
    await _write_finals(conn, plan.finals, plan.callbacks)
    held = await _take_held(conn, plan.recorded_keys(), items[-1].now)
    if held:
        await _apply_receipts(conn, held, locked=True)


async def _write_recorded(conn: Connection, recorded: Sequence[TimedSubmit]) -> None:
    await conn.executemany(
        "UPDATE recipients SET connector = $1, submitted_at = $2, updated_at = $2,"
        " next_attempt_at = NULL WHERE id = $3",
        [(i.result.connector, i.now, i.result.recipient_id) for i in recorded],
    )
    rows = [
        (i.result.recipient_id, seqno, i.result.connector, smsc_id, i.now)
        for i in recorded
        for seqno, smsc_id in enumerate(i.result.smsc_ids or (), start=1)
    ]
    if rows:
        await conn.execute(
            "INSERT INTO segments (recipient_id, seqno, connector, smsc_id, submitted_at)"
            " SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::text[],"
            " $5::timestamptz[]) ON CONFLICT (recipient_id, seqno) DO UPDATE SET"
            " connector = excluded.connector, smsc_id = excluded.smsc_id, state = NULL,"
            " error = NULL, submitted_at = excluded.submitted_at, done_at = NULL",
            *_columns(rows, 5),
        )


async def expire_batch(conn: Connection, submitted_before: datetime, now: datetime) -> int:
    """Settle up to EXPIRY_BATCH unanswered recipients as UNKNOWN; how many were found."""
    stale = await conn.fetch(
        f"{_FACTS} WHERE r.state = 'ENROUTE' AND r.submitted_at < $1"
        " ORDER BY r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
        submitted_before,
        EXPIRY_BATCH,
    )
    finals, callbacks = expiry_plan([_facts_of(row) for row in stale], State.UNKNOWN, now)
    await _write_finals(conn, finals, callbacks)
    return len(stale)


# receipts -------------------------------------------------------------------------------


async def apply_receipt_calls(
    conn: Connection, calls: Sequence[tuple[Sequence[ReceiptUpdate], datetime]]
) -> list[list[ReceiptApplied]]:
    """Every call of a group commit in one transaction; one answer list per call."""
    items = [TimedReceipt(receipt, now) for receipts, now in calls for receipt in receipts]
    applied = await _apply_receipts(conn, items, locked=False)
    ends = list(accumulate(len(receipts) for receipts, _ in calls))
    return [applied[end - len(call[0]) : end] for end, call in zip(ends, calls, strict=True)]


async def _apply_receipts(
    conn: Connection, items: Sequence[TimedReceipt], *, locked: bool
) -> list[ReceiptApplied]:
    keys = receipt_keys(items)
    if not locked:
        await _lock_keys(conn, keys)
    touched = await conn.fetch(
        "SELECT DISTINCT s.recipient_id FROM unnest($1::text[], $2::text[]) AS k(c, i)"
        " JOIN segments AS s ON s.connector = k.c AND s.smsc_id = k.i",
        *_columns(keys, 2),
    )
    facts = await _locked_facts(conn, (row["recipient_id"] for row in touched))
    segments = [
        KnownSegment(
            *(row["id"], row["recipient_id"], row["seqno"], row["connector"], row["smsc_id"]),
            None if row["state"] is None else State(row["state"]),
        )
        for row in await conn.fetch(
            "SELECT id, recipient_id, seqno, connector, smsc_id, state FROM segments"
            " WHERE recipient_id = ANY($1::bigint[])",
            list(facts),
        )
    ]
    plan = plan_receipts(items, segments, facts)
    await conn.executemany(
        "UPDATE segments SET state = $1, error = $2, done_at = $3 WHERE id = $4 AND state IS NULL",
        [(c.state.value, c.error, c.now, c.segment_id) for c in plan.segments],
    )
    await _write_finals(conn, plan.finals, plan.callbacks)
    await _hold(conn, plan.held)
    return plan.applied


async def _hold(conn: Connection, held: Sequence[TimedReceipt]) -> None:
    rows = [
        (
            *(item.receipt.connector, form),
            _FORMS_SEPARATOR.join(item.receipt.smsc_id_forms),
            *(item.receipt.state.value, item.receipt.error, item.now),
        )
        for item in held
        for form in dict.fromkeys(item.receipt.smsc_id_forms)
    ]
    if rows:
        await conn.execute(
            "INSERT INTO held_receipts (connector, smsc_id, forms, state, error, received_at)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
            " $6::timestamptz[])",
            *_columns(rows, 6),
        )


async def _take_held(conn: Connection, keys: list[SmscKey], now: datetime) -> list[TimedReceipt]:
    """Remove and return the held receipts for any of ``keys``, oldest first."""
    if not keys:
        return []
    rows = await conn.fetch(
        "SELECT h.connector, h.forms, h.state, h.error FROM held_receipts AS h"
        " JOIN unnest($1::text[], $2::text[]) AS k(c, i) ON h.connector = k.c AND h.smsc_id = k.i"
        " GROUP BY h.connector, h.forms, h.state, h.error, h.received_at ORDER BY MIN(h.id)",
        *_columns(keys, 2),
    )
    # Every row of a taken receipt (one per form), each found through its own (connector,
    # smsc_id): matching on (connector, forms) would scan all the connector's held rows.
    taken = [
        (connector, form, forms)
        for connector, forms in dict.fromkeys((row["connector"], row["forms"]) for row in rows)
        for form in dict.fromkeys(forms.split(_FORMS_SEPARATOR))
    ]
    if taken:
        await conn.execute(
            "DELETE FROM held_receipts AS h USING unnest($1::text[], $2::text[], $3::text[])"
            " AS k(c, i, f) WHERE h.connector = k.c AND h.smsc_id = k.i AND h.forms = k.f",
            *_columns(taken, 3),
        )
    return [
        TimedReceipt(
            ReceiptUpdate(
                row["connector"],
                tuple(row["forms"].split(_FORMS_SEPARATOR)),
                State(row["state"]),
                row["error"],
            ),
            now,
        )
        for row in rows
    ]


async def recipient_segments(pool: Pool, recipient_id: int) -> list[SegmentRow]:
    rows = await pool.fetch(
        "SELECT seqno, connector, smsc_id, state, error FROM segments"
        " WHERE recipient_id = $1 ORDER BY seqno",
        recipient_id,
    )
    return [
        SegmentRow(
            *(row["seqno"], row["connector"], row["smsc_id"]),
            None if row["state"] is None else State(row["state"]),
            row["error"],
        )
        for row in rows
    ]


# shared ------------------------------------------------------------------------------------


def smsc_key_lock(key: SmscKey) -> int:
    """The advisory lock number of a (connector, smsc_id): stable across processes."""
    digest = hashlib.blake2b("\0".join(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _lock_keys(conn: Connection, keys: Iterable[SmscKey]) -> None:
    locks = sorted({smsc_key_lock(key) for key in keys})
    if locks:
        # OFFSET 0 keeps the sort below the lock calls, so locks are taken in order.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM"
            " (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k OFFSET 0) AS ordered",
            locks,
        )


async def _locked_facts(
    conn: Connection, recipient_ids: Iterable[int]
) -> dict[int, RecipientFacts]:
    rows = await conn.fetch(
        f"{_FACTS} WHERE r.id = ANY($1::bigint[]) ORDER BY r.id FOR UPDATE OF r",
        sorted(set(recipient_ids)),
    )
    return {row["id"]: _facts_of(row) for row in rows}


def _facts_of(row: asyncpg.Record) -> RecipientFacts:
    return RecipientFacts(
        *(row["id"], row["msgid"], row["account_id"], row["number"]),
        *(State(row["state"]), row["response"]),
    )


async def _write_finals(
    conn: Connection, finals: Sequence[FinalChange], callbacks: Sequence[NewCallback]
) -> None:
    await conn.executemany(
        "UPDATE recipients SET state = $1, done_at = $2, updated_at = $2,"
        " next_attempt_at = NULL WHERE id = $3",
        [(f.state.value, f.now, f.recipient_id) for f in finals],
    )
    await insert_callbacks(conn, callbacks)


async def insert_callbacks(conn: Connection, callbacks: Sequence[NewCallback]) -> None:
    rows = [(c.account_id, c.kind, c.url, c.msgid, c.number, c.payload, c.now) for c in callbacks]
    if rows:
        await conn.execute(
            "INSERT INTO callbacks (account_id, kind, url, msgid, number, payload,"
            " next_attempt_at, created_at) SELECT a, k, u, m, n, p, t, t FROM"
            " unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],"
            " $6::text[], $7::timestamptz[]) AS c(a, k, u, m, n, p, t)",
            *_columns(rows, 7),
        )


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    columns: list[list[object]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


# callbacks --------------------------------------------------------------------------------


# Fairness per account without ranking every due row: walk the accounts that have pending
# callbacks (one index seek each), take each one's first ``per_account`` due rows (another
# seek), and keep the earliest ``limit`` of those. Rows another node holds are skipped.
_CLAIM_CALLBACKS = (
    "WITH RECURSIVE pending_accounts(account_id) AS ("
    " (SELECT account_id FROM callbacks WHERE state = 'pending' ORDER BY account_id LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT c.account_id FROM callbacks AS c"
    "  WHERE c.state = 'pending' AND c.account_id > p.account_id ORDER BY c.account_id LIMIT 1)"
    " FROM pending_accounts AS p WHERE p.account_id IS NOT NULL),"
    " candidates AS (SELECT due.id, due.next_attempt_at, ROW_NUMBER() OVER ("
    "   PARTITION BY p.account_id ORDER BY due.next_attempt_at, due.id) AS turn"
    "  FROM pending_accounts AS p"
    "  CROSS JOIN LATERAL (SELECT id, next_attempt_at FROM callbacks"
    "   WHERE state = 'pending' AND account_id = p.account_id AND next_attempt_at <= $1"
    "   ORDER BY next_attempt_at, id LIMIT $3) AS due),"
    " picked AS (SELECT id, turn FROM candidates"
    "  ORDER BY turn, next_attempt_at, id LIMIT $2)"
    " SELECT c.id, c.account_id, c.kind, c.url, c.msgid, c.number, c.attempts,"
    " a.webhook_secret FROM picked JOIN callbacks AS c ON c.id = picked.id"
    " JOIN accounts AS a ON a.id = c.account_id"
    " WHERE c.state = 'pending' AND c.next_attempt_at <= $1"
    " ORDER BY picked.turn, c.next_attempt_at, c.id FOR UPDATE OF c SKIP LOCKED"
)


async def claim_callbacks(
    conn: Connection, now: datetime, limit: int, lease_until: datetime, per_account: int
) -> list[CallbackJob]:
    rows = await conn.fetch(_CLAIM_CALLBACKS, now, limit, per_account)
    await conn.execute(
        "UPDATE callbacks SET next_attempt_at = $1 WHERE id = ANY($2::bigint[])",
        lease_until,
        [row["id"] for row in rows],
    )
    return [
        CallbackJob(
            *(row["id"], row["account_id"], row["kind"], row["url"], row["msgid"]),
            *(row["number"], row["attempts"]),
            webhook_secret=row["webhook_secret"],
        )
        for row in rows
    ]


async def finish_callbacks(
    conn: Connection, calls: Sequence[tuple[Sequence[CallbackOutcome], datetime]]
) -> list[None]:
    done = [(o, now) for outcomes, now in calls for o in outcomes]
    await conn.executemany(
        "UPDATE callbacks SET state = 'sent', sent_at = $1 WHERE id = $2 AND state = 'pending'",
        [(at, o.id) for o, at in done if o.delivered],
    )
    await conn.executemany(
        "UPDATE callbacks SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2"
        " WHERE id = $3 AND state = 'pending'",
        [(o.error, o.retry_at, o.id) for o, _ in done if not o.delivered and o.retry_at],
    )
    await conn.executemany(
        "UPDATE callbacks SET attempts = attempts + 1, last_error = $1, state = 'failed'"
        " WHERE id = $2 AND state = 'pending'",
        [(o.error, o.id) for o, _ in done if not o.delivered and o.retry_at is None],
    )
    return [None] * len(calls)


async def retry_failed_callbacks(conn: Connection, username: str | None, now: datetime) -> int:
    account_id = None
    if username is not None:
        account_id = await conn.fetchval("SELECT id FROM accounts WHERE username = $1", username)
        if account_id is None:
            raise UnknownAccountError(f"no account {username!r}")
    status = await conn.execute(
        "UPDATE callbacks SET state = 'pending', attempts = 0, next_attempt_at = $1"
        " WHERE state = 'failed' AND ($2::bigint IS NULL OR account_id = $2)",
        now,
        account_id,
    )
    return int(status.split()[-1])


async def list_callbacks(
    pool: Pool, state: CallbackState | None, username: str | None, limit: int
) -> list[CallbackRow]:
    rows = await pool.fetch(
        "SELECT c.id, c.account_id, a.username, c.kind, c.url, c.msgid, c.number, c.state,"
        " c.attempts, c.next_attempt_at, c.last_error, c.created_at, c.sent_at"
        " FROM callbacks AS c JOIN accounts AS a ON a.id = c.account_id"
        " WHERE ($1::text IS NULL OR c.state = $1) AND ($2::text IS NULL OR a.username = $2)"
        " ORDER BY c.id DESC LIMIT $3",
        state,
        username,
        limit,
    )
    return [CallbackRow(**dict(row)) for row in rows]


async def callback_counts(pool: Pool) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(CALLBACK_STATES, 0)
    for row in await pool.fetch("SELECT state, COUNT(*) AS n FROM callbacks GROUP BY state"):
        counts[row["state"]] = row["n"]
    return counts


# replies ----------------------------------------------------------------------------------


async def store_reply(conn: Connection, reply: IncomingReply, now: datetime) -> StoredReply:
    match = await _reply_match(conn, reply) if gateway_number_matches(reply) else None
    msgid = None if match is None else match["msgid"]
    reply_id = await conn.fetchval(
        "INSERT INTO replies (msgid, connector, srcaddr, dstaddr, body, encoding,"
        " received_at, matched) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        *(msgid, reply.connector, reply.srcaddr, reply.dstaddr, reply.body),
        *(reply.encoding, reply.received_at, match is not None),
    )
    if match is not None:
        callback = mo_callback(reply, match["msgid"], match["account_id"], match["replyurl"], now)
        await insert_callbacks(conn, [callback])
    return StoredReply(reply_id, msgid)


_REPLY_PART_COLUMNS: Final = (
    "srcaddr, dstaddr, reference, total, seqnum, body, encoding, connector, received_at"
)
_OF_REPLY: Final = "srcaddr = $1 AND dstaddr = $2 AND reference = $3 AND total = $4"


REPLY_LOCK: Final = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def reply_lock_name(key: ReplyKey) -> str:
    """What names the transaction lock on one reply's parts (`REPLY_LOCK`)."""
    return "reply_parts\x1f" + "\x1f".join(map(str, _key_values(key)))


async def add_reply_part(conn: Connection, part: ReplyPart) -> list[ReplyPart]:
    key = _key_values(part.key)
    # Parts of one reply stored at once on two nodes wait for each other, so the later
    # one sees both and completes the reply (rather than the reassembly timeout).
    await conn.execute(REPLY_LOCK, reply_lock_name(part.key))
    await conn.execute(
        f"INSERT INTO reply_parts ({_REPLY_PART_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        *(*key, part.seqnum, part.text.encode("utf-8", "surrogatepass")),
        *(part.encoding, part.connector, part.received_at),
    )
    rows = await conn.fetch(
        f"SELECT {_REPLY_PART_COLUMNS} FROM reply_parts WHERE {_OF_REPLY} ORDER BY seqnum", *key
    )
    return [_reply_part(row) for row in rows]


async def complete_reply(
    conn: Connection, key: ReplyKey, reply: IncomingReply, now: datetime
) -> StoredReply | None:
    dropped = await conn.fetch(
        f"DELETE FROM reply_parts WHERE {_OF_REPLY} RETURNING seqnum", *_key_values(key)
    )
    if not dropped:
        return None
    return await store_reply(conn, reply, now)


async def stale_reply_parts(pool: Pool, before: datetime, limit: int) -> list[ReplyPart]:
    rows = await pool.fetch(
        f"SELECT {', '.join(f'p.{column}' for column in _REPLY_PART_COLUMNS.split(', '))}"
        " FROM reply_parts AS p JOIN ("
        "   SELECT srcaddr, dstaddr, reference, total, MIN(received_at) AS first"
        "   FROM reply_parts GROUP BY srcaddr, dstaddr, reference, total"
        "   HAVING MIN(received_at) < $1 ORDER BY first LIMIT $2"
        " ) AS s USING (srcaddr, dstaddr, reference, total)"
        " ORDER BY s.first, p.srcaddr, p.dstaddr, p.reference, p.total, p.seqnum",
        before,
        limit,
    )
    return [_reply_part(row) for row in rows]


def _key_values(key: ReplyKey) -> tuple[str, str, int, int]:
    return (key.srcaddr, key.dstaddr, key.reference, key.total)


def _reply_part(row: asyncpg.Record) -> ReplyPart:
    return ReplyPart(
        *(row["srcaddr"], row["dstaddr"], row["reference"], row["total"], row["seqnum"]),
        bytes(row["body"]).decode("utf-8", "surrogatepass"),
        *(row["encoding"], row["connector"], row["received_at"]),
    )


async def _reply_match(conn: Connection, reply: IncomingReply) -> asyncpg.Record | None:
    """msgid, account_id, replyurl of the most recent message the reply can answer."""
    return await conn.fetchrow(
        "SELECT r.msgid, q.account_id, q.replyurl FROM recipients AS r"
        " JOIN requests AS q ON q.msgid = r.msgid"
        " WHERE r.number = $1 AND r.created_at BETWEEN $2 AND $3 AND q.replyurl IS NOT NULL"
        " AND r.created_at + make_interval(days => q.replydays) >= $3"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
        reply.srcaddr,
        reply_window_start(reply.received_at),
        reply.received_at,
    )


async def list_replies(pool: Pool, unmatched_only: bool, limit: int) -> list[ReplyRow]:
    rows = await pool.fetch(
        "SELECT id, msgid, connector, srcaddr, dstaddr, body, encoding, received_at, matched"
        " FROM replies WHERE NOT (matched AND $1) ORDER BY id DESC LIMIT $2",
        unmatched_only,
        limit,
    )
    return [ReplyRow(**dict(row)) for row in rows]


# metrics ----------------------------------------------------------------------------------


async def state_counts(pool: Pool) -> dict[State, int]:
    counts = dict.fromkeys(State, 0)
    for row in await pool.fetch("SELECT state, COUNT(*) AS n FROM recipients GROUP BY state"):
        counts[State(row["state"])] = row["n"]
    return counts


async def callbacks_due(pool: Pool, now: datetime) -> bool:
    found = await pool.fetchval(
        "SELECT 1 FROM callbacks WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1", now
    )
    return found is not None


async def held_receipt_count(pool: Pool) -> int:
    count = await pool.fetchval(
        "SELECT COUNT(*) FROM (SELECT DISTINCT connector, forms, state, received_at"
        " FROM held_receipts) AS receipts"
    )
    return int(count)
