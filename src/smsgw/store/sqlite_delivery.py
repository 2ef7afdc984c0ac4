"""SQLite: the delivery side of the store (claims, submits, receipts, callbacks, replies).

Every function runs on the writer thread (or, for reads, the reader connection) and takes
what a batch touches with a few set-based statements, its rows passed as one JSON array
(`each_row`). Decisions come from ``delivering``, shared with every backend.
"""

from __future__ import annotations

from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

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
from smsgw.store.sqlite_tx import (
    each_row,
    from_micros,
    optional_datetime,
    to_json,
    to_micros,
    transaction,
)

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from smsgw.store.delivering import FinalChange, NewCallback, SmscKey, TimedSubmit
    from smsgw.store.records import (
        CallbackOutcome,
        CallbackState,
        IncomingReply,
        ReceiptApplied,
    )

EXPIRY_BATCH: Final = 500
_DAY_US: Final = 86_400_000_000
_CLAIMABLE: Final = ("QUEUED", "WAITING", "ENROUTE")
_FORMS_SEPARATOR: Final = "\n"


def _ids(ids: Iterable[int]) -> str:
    return to_json(sorted(set(ids)))


# dispatching ------------------------------------------------------------------------------


def messages_due(conn: sqlite3.Connection, now: int) -> bool:
    """What claim_due would find, read through the same (state, next_attempt_at) index."""
    row = conn.execute(
        "SELECT 1 FROM recipients WHERE state IN (?, ?, ?) AND next_attempt_at <= ? LIMIT 1",
        (*_CLAIMABLE, now),
    ).fetchone()
    return row is not None


def claim_due(conn: sqlite3.Connection, now: int, limit: int, lease_us: int) -> list[DueMessage]:
    with transaction(conn):
        rows: list[tuple[int, ...]] = []
        # One range scan of (state, next_attempt_at) per state, each already in order.
        for state in _CLAIMABLE:
            rows += conn.execute(
                "SELECT r.next_attempt_at, r.id, r.msgid, q.account_id, r.number,"
                " r.attempts + 1, q.encoding, q.coding, q.flash, q.body, q.wapurl,"
                " q.segments, q.created_at FROM recipients AS r"
                " JOIN requests AS q ON q.msgid = r.msgid"
                " WHERE r.state = ? AND r.next_attempt_at <= ?"
                " ORDER BY r.next_attempt_at, r.id LIMIT ?",
                (state, now, limit),
            ).fetchall()
        rows = sorted(rows)[:limit]
        conn.execute(
            "UPDATE recipients SET state = 'ENROUTE', next_attempt_at = ?, updated_at = ?,"
            " attempts = attempts + 1 WHERE id IN (SELECT value FROM json_each(?))",
            (now + lease_us, now, _ids(row[1] for row in rows)),
        )
    return [_due_message(row[1:]) for row in rows]


def _due_message(row: tuple[object, ...]) -> DueMessage:
    rid, msgid, account_id, number, attempts, encoding, coding, flash, body, wapurl, *rest = row
    segments, created_at = rest
    return DueMessage(
        recipient_id=int(str(rid)),
        msgid=int(str(msgid)),
        account_id=int(str(account_id)),
        number=str(number),
        attempts=int(str(attempts)),
        encoding=str(encoding),
        coding=coding,  # type: ignore[arg-type]  # the schema's CHECK keeps it a Coding
        flash=bool(flash),
        body=str(body),
        wapurl=None if wapurl is None else str(wapurl),
        segments=int(str(segments)),
        created_at=from_micros(int(str(created_at))),
    )


def record_submits(conn: sqlite3.Connection, items: Sequence[TimedSubmit]) -> None:
    if not items:
        return
    with transaction(conn):
        facts = _facts(conn, (item.result.recipient_id for item in items))
        plan = plan_submits(items, facts)
        _write_recorded(conn, plan.recorded)
        each_row(
            conn,
            "UPDATE recipients SET state = 'QUEUED', next_attempt_at = {0},"
            " updated_at = {1}"
            " FROM {rows} WHERE recipients.id = {2}",
            [
                (to_micros(i.result.retry_at), to_micros(i.now), i.result.recipient_id)
                for i in plan.retries
                if i.result.retry_at is not None
            ],
        )
        _write_finals(conn, plan.finals, plan.callbacks)
        held = _take_held(conn, plan.recorded_keys(), items[-1].now)
        if held:
            _apply_receipts(conn, held)


def _write_recorded(conn: sqlite3.Connection, recorded: Sequence[TimedSubmit]) -> None:
    each_row(
        conn,
        "UPDATE recipients SET connector = {0}, submitted_at = {1},"
        " updated_at = {1}, next_attempt_at = NULL"
        " FROM {rows} WHERE recipients.id = {2}",
        [(i.result.connector, to_micros(i.now), i.result.recipient_id) for i in recorded],
    )
    each_row(
        conn,
        "INSERT INTO segments (recipient_id, seqno, connector, smsc_id, submitted_at)"
        " SELECT {0}, {1}, {2}, {3}, {4}"
        " FROM {rows} WHERE true"  # WHERE: SQLite's parser needs it before ON
        " ON CONFLICT (recipient_id, seqno) DO UPDATE SET"
        " connector = excluded.connector, smsc_id = excluded.smsc_id, state = NULL,"
        " error = NULL, submitted_at = excluded.submitted_at, done_at = NULL",
        [
            (i.result.recipient_id, seqno, i.result.connector, smsc_id, to_micros(i.now))
            for i in recorded
            for seqno, smsc_id in enumerate(i.result.smsc_ids or (), start=1)
        ],
    )


def expire_unanswered(conn: sqlite3.Connection, submitted_before: int, now: datetime) -> int:
    expired = 0
    while True:
        with transaction(conn):
            stale = conn.execute(
                "SELECT id FROM recipients INDEXED BY recipients_unanswered"
                " WHERE state = 'ENROUTE' AND submitted_at < ? LIMIT ?",
                (submitted_before, EXPIRY_BATCH),
            ).fetchall()
            facts = _facts(conn, (rid for (rid,) in stale))
            finals, callbacks = expiry_plan(facts.values(), State.UNKNOWN, now)
            _write_finals(conn, finals, callbacks)
        expired += len(finals)
        if len(stale) < EXPIRY_BATCH:
            return expired


# receipts -------------------------------------------------------------------------------


def apply_receipt_calls(
    conn: sqlite3.Connection, calls: Sequence[tuple[Sequence[ReceiptUpdate], datetime]]
) -> list[list[ReceiptApplied]]:
    """Every call of a group commit in one transaction; one answer list per call."""
    items = [TimedReceipt(receipt, now) for receipts, now in calls for receipt in receipts]
    with transaction(conn):
        applied = _apply_receipts(conn, items)
    ends = list(accumulate(len(receipts) for receipts, _ in calls))
    return [applied[end - len(call[0]) : end] for end, call in zip(ends, calls, strict=True)]


def _apply_receipts(
    conn: sqlite3.Connection, items: Sequence[TimedReceipt]
) -> list[ReceiptApplied]:
    touched = [
        rid
        for (rid,) in conn.execute(
            "SELECT DISTINCT s.recipient_id FROM json_each(?) AS k JOIN segments AS s"
            " ON s.connector = json_extract(k.value, '$[0]')"
            " AND s.smsc_id = json_extract(k.value, '$[1]')",
            (to_json(receipt_keys(items)),),
        )
    ]
    segments = [
        KnownSegment(sid, rid, seqno, connector, smsc_id, None if state is None else State(state))
        for sid, rid, seqno, connector, smsc_id, state in conn.execute(
            "SELECT id, recipient_id, seqno, connector, smsc_id, state FROM segments"
            " WHERE recipient_id IN (SELECT value FROM json_each(?))",
            (_ids(touched),),
        )
    ]
    plan = plan_receipts(items, segments, _facts(conn, touched))
    each_row(
        conn,
        "UPDATE segments SET state = {0}, error = {1},"
        " done_at = {2} FROM {rows}"
        " WHERE segments.id = {3} AND state IS NULL",
        [(c.state.value, c.error, to_micros(c.now), c.segment_id) for c in plan.segments],
    )
    _write_finals(conn, plan.finals, plan.callbacks)
    _hold(conn, plan.held)
    return plan.applied


def _hold(conn: sqlite3.Connection, held: Sequence[TimedReceipt]) -> None:
    each_row(
        conn,
        "INSERT INTO held_receipts (connector, smsc_id, forms, state, error, received_at)"
        " SELECT {0}, {1}, {2}, {3}, {4},"
        " {5} FROM {rows}",
        [
            (
                *(item.receipt.connector, form),
                _FORMS_SEPARATOR.join(item.receipt.smsc_id_forms),
                *(item.receipt.state.value, item.receipt.error, to_micros(item.now)),
            )
            for item in held
            for form in dict.fromkeys(item.receipt.smsc_id_forms)
        ],
    )


def _take_held(conn: sqlite3.Connection, keys: list[SmscKey], now: datetime) -> list[TimedReceipt]:
    """Remove and return the held receipts for any of ``keys``, oldest first."""
    if not keys:
        return []
    rows = conn.execute(
        "SELECT DISTINCT h.connector, h.forms, h.state, h.error, h.received_at, MIN(h.id)"
        " FROM json_each(?) AS k JOIN held_receipts AS h"
        " ON h.connector = json_extract(k.value, '$[0]')"
        " AND h.smsc_id = json_extract(k.value, '$[1]')"
        " GROUP BY h.connector, h.forms, h.state, h.error, h.received_at ORDER BY MIN(h.id)",
        (to_json(keys),),
    ).fetchall()
    # Every row of a taken receipt (one per form), each found through its own (connector,
    # smsc_id): matching on (connector, forms) would scan all the connector's held rows.
    each_row(
        conn,
        "DELETE FROM held_receipts WHERE id IN (SELECT h.id FROM {rows}"
        " JOIN held_receipts AS h ON h.connector = {0} AND h.smsc_id = {1} AND h.forms = {2})",
        [
            (connector, form, forms)
            for connector, forms in dict.fromkeys((c, f) for c, f, *_ in rows)
            for form in dict.fromkeys(forms.split(_FORMS_SEPARATOR))
        ],
    )
    return [
        TimedReceipt(
            ReceiptUpdate(connector, tuple(forms.split(_FORMS_SEPARATOR)), State(state), error),
            now,
        )
        for connector, forms, state, error, *_ in rows
    ]


def recipient_segments(conn: sqlite3.Connection, recipient_id: int) -> list[SegmentRow]:
    rows = conn.execute(
        "SELECT seqno, connector, smsc_id, state, error FROM segments"
        " WHERE recipient_id = ? ORDER BY seqno",
        (recipient_id,),
    ).fetchall()
    return [
        SegmentRow(seqno, connector, smsc_id, None if state is None else State(state), error)
        for seqno, connector, smsc_id, state, error in rows
    ]


# shared writes ----------------------------------------------------------------------------


def _facts(conn: sqlite3.Connection, recipient_ids: Iterable[int]) -> dict[int, RecipientFacts]:
    rows = conn.execute(
        "SELECT r.id, r.msgid, q.account_id, r.number, r.state, q.response"
        " FROM recipients AS r JOIN requests AS q ON q.msgid = r.msgid"
        " WHERE r.id IN (SELECT value FROM json_each(?))",
        (_ids(recipient_ids),),
    ).fetchall()
    return {
        rid: RecipientFacts(rid, msgid, account_id, number, State(state), response)
        for rid, msgid, account_id, number, state, response in rows
    }


def _write_finals(
    conn: sqlite3.Connection, finals: Sequence[FinalChange], callbacks: Sequence[NewCallback]
) -> None:
    each_row(
        conn,
        "UPDATE recipients SET state = {0}, done_at = {1},"
        " updated_at = {1}, next_attempt_at = NULL"
        " FROM {rows} WHERE recipients.id = {2}",
        [(f.state.value, to_micros(f.now), f.recipient_id) for f in finals],
    )
    _insert_callbacks(conn, callbacks)


def _insert_callbacks(conn: sqlite3.Connection, callbacks: Sequence[NewCallback]) -> None:
    each_row(
        conn,
        "INSERT INTO callbacks (account_id, kind, url, msgid, number, payload,"
        " next_attempt_at, created_at) SELECT {0}, {1}, {2},"
        " {3}, {4}, {5}, {6}, {6}"
        " FROM {rows}",
        [
            (c.account_id, c.kind, c.url, c.msgid, c.number, c.payload, to_micros(c.now))
            for c in callbacks
        ],
    )


# callbacks --------------------------------------------------------------------------------


# Fairness per account without ranking every due row: walk the accounts that have pending
# callbacks (one index seek each), take each one's first ``per_account`` due rows (another
# seek), and keep the earliest ``limit`` of those.
_CLAIM_CALLBACKS = (
    "WITH RECURSIVE pending_accounts(account_id) AS ("
    " SELECT MIN(account_id) FROM callbacks WHERE state = 'pending'"
    " UNION ALL"
    " SELECT (SELECT MIN(account_id) FROM callbacks"
    "  WHERE state = 'pending' AND account_id > p.account_id)"
    " FROM pending_accounts AS p WHERE p.account_id IS NOT NULL)"
    " SELECT c.id, c.account_id, c.kind, c.url, c.msgid, c.number, c.attempts, a.webhook_secret,"
    " ROW_NUMBER() OVER (PARTITION BY c.account_id ORDER BY c.next_attempt_at, c.id) AS turn"
    " FROM pending_accounts AS p"
    " JOIN callbacks AS c ON c.id IN ("
    "  SELECT id FROM callbacks WHERE state = 'pending' AND account_id = p.account_id"
    "  AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2)"
    " JOIN accounts AS a ON a.id = c.account_id"
    " ORDER BY turn, c.next_attempt_at, c.id LIMIT ?3"
)


def claim_callbacks(
    conn: sqlite3.Connection, now: int, limit: int, lease_us: int, per_account: int
) -> list[CallbackJob]:
    with transaction(conn):
        rows = conn.execute(_CLAIM_CALLBACKS, (now, per_account, limit)).fetchall()
        conn.execute(
            "UPDATE callbacks SET next_attempt_at = ? WHERE id IN (SELECT value FROM json_each(?))",
            (now + lease_us, _ids(row[0] for row in rows)),
        )
    return [
        CallbackJob(cid, account_id, kind, url, msgid, number, attempts, webhook_secret=secret)
        for cid, account_id, kind, url, msgid, number, attempts, secret, _turn in rows
    ]


def callbacks_due(conn: sqlite3.Connection, now: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM callbacks WHERE state = 'pending' AND next_attempt_at <= ? LIMIT 1", (now,)
    ).fetchone()
    return row is not None


def finish_callbacks(
    conn: sqlite3.Connection, calls: Sequence[tuple[Sequence[CallbackOutcome], datetime]]
) -> list[None]:
    done = [(o, to_micros(now)) for outcomes, now in calls for o in outcomes]
    # ``+state``: look each row up by id; the state index would scan every pending row.
    with transaction(conn):
        each_row(
            conn,
            "UPDATE callbacks SET state = 'sent', sent_at = {0}"
            " FROM {rows} WHERE callbacks.id = {1} AND +state = 'pending'",
            [(at, o.id) for o, at in done if o.delivered],
        )
        each_row(
            conn,
            "UPDATE callbacks SET attempts = attempts + 1, last_error = {0},"
            " next_attempt_at = {1}"
            " FROM {rows} WHERE callbacks.id = {2} AND +state = 'pending'",
            [
                (o.error, to_micros(o.retry_at), o.id)
                for o, _ in done
                if not o.delivered and o.retry_at is not None
            ],
        )
        each_row(
            conn,
            "UPDATE callbacks SET attempts = attempts + 1, last_error = {0},"
            " state = 'failed' FROM {rows} WHERE callbacks.id = {1}"
            " AND +state = 'pending'",
            [(o.error, o.id) for o, _ in done if not o.delivered and o.retry_at is None],
        )
    return [None] * len(calls)


def retry_failed_callbacks(conn: sqlite3.Connection, username: str | None, now: int) -> int:
    with transaction(conn):
        account_id = None if username is None else _account_id(conn, username)
        return conn.execute(
            "UPDATE callbacks SET state = 'pending', attempts = 0, next_attempt_at = :now"
            " WHERE state = 'failed' AND (:account IS NULL OR account_id = :account)",
            {"now": now, "account": account_id},
        ).rowcount


def _account_id(conn: sqlite3.Connection, username: str) -> int:
    row = conn.execute("SELECT id FROM accounts WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise UnknownAccountError(f"no account {username!r}")
    return int(row[0])


def list_callbacks(
    conn: sqlite3.Connection, state: CallbackState | None, username: str | None, limit: int
) -> list[CallbackRow]:
    rows = conn.execute(
        "SELECT c.id, c.account_id, a.username, c.kind, c.url, c.msgid, c.number, c.state,"
        " c.attempts, c.next_attempt_at, c.last_error, c.created_at, c.sent_at"
        " FROM callbacks AS c JOIN accounts AS a ON a.id = c.account_id"
        " WHERE (:state IS NULL OR c.state = :state) AND (:user IS NULL OR a.username = :user)"
        " ORDER BY c.id DESC LIMIT :limit",
        {"state": state, "user": username, "limit": limit},
    ).fetchall()
    return [_callback_row(row) for row in rows]


def _callback_row(row: tuple[Any, ...]) -> CallbackRow:
    cid, account_id, username, kind, url, msgid, number, state, attempts, *times = row
    next_attempt_at, last_error, created_at, sent_at = times
    return CallbackRow(
        *(cid, account_id, username, kind, url, msgid, number, state, attempts),
        next_attempt_at=from_micros(next_attempt_at),
        last_error=last_error,
        created_at=from_micros(created_at),
        sent_at=optional_datetime(sent_at),
    )


def callback_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(CALLBACK_STATES, 0)
    counts.update(conn.execute("SELECT state, COUNT(*) FROM callbacks GROUP BY state"))
    return counts


# replies ----------------------------------------------------------------------------------


def store_reply(conn: sqlite3.Connection, reply: IncomingReply, now: datetime) -> StoredReply:
    with transaction(conn):
        return _insert_reply(conn, reply, now)


def _insert_reply(conn: sqlite3.Connection, reply: IncomingReply, now: datetime) -> StoredReply:
    match = _reply_match(conn, reply) if gateway_number_matches(reply) else None
    msgid = None if match is None else match[0]
    (reply_id,) = conn.execute(
        "INSERT INTO replies (msgid, connector, srcaddr, dstaddr, body, encoding,"
        " received_at, matched) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            *(msgid, reply.connector, reply.srcaddr, reply.dstaddr, reply.body),
            *(reply.encoding, to_micros(reply.received_at), int(match is not None)),
        ),
    ).fetchone()
    if match is not None:
        _insert_callbacks(conn, [mo_callback(reply, *match, now)])
    return StoredReply(reply_id, msgid)


_REPLY_PART_COLUMNS: Final = (
    "srcaddr, dstaddr, reference, total, seqnum, body, encoding, connector, received_at"
)
_OF_REPLY: Final = "srcaddr = ? AND dstaddr = ? AND reference = ? AND total = ?"


def add_reply_part(conn: sqlite3.Connection, part: ReplyPart) -> list[ReplyPart]:
    key = _key_values(part.key)
    with transaction(conn):
        conn.execute(
            f"INSERT INTO reply_parts ({_REPLY_PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (
                *(*key, part.seqnum, part.text.encode("utf-8", "surrogatepass")),
                *(part.encoding, part.connector, to_micros(part.received_at)),
            ),
        )
        rows = conn.execute(
            f"SELECT {_REPLY_PART_COLUMNS} FROM reply_parts WHERE {_OF_REPLY} ORDER BY seqnum",
            key,
        ).fetchall()
    return [_reply_part(row) for row in rows]


def complete_reply(
    conn: sqlite3.Connection, key: ReplyKey, reply: IncomingReply, now: datetime
) -> StoredReply | None:
    with transaction(conn):
        dropped = conn.execute(f"DELETE FROM reply_parts WHERE {_OF_REPLY}", _key_values(key))
        if not dropped.rowcount:
            return None
        return _insert_reply(conn, reply, now)


def stale_reply_parts(conn: sqlite3.Connection, before: datetime, limit: int) -> list[ReplyPart]:
    rows = conn.execute(
        f"SELECT {', '.join(f'p.{column}' for column in _REPLY_PART_COLUMNS.split(', '))}"
        " FROM reply_parts AS p JOIN ("
        "   SELECT srcaddr, dstaddr, reference, total, MIN(received_at) AS first"
        "   FROM reply_parts GROUP BY srcaddr, dstaddr, reference, total"
        "   HAVING MIN(received_at) < ? ORDER BY first LIMIT ?"
        " ) AS s USING (srcaddr, dstaddr, reference, total)"
        " ORDER BY s.first, p.srcaddr, p.dstaddr, p.reference, p.total, p.seqnum",
        (to_micros(before), limit),
    ).fetchall()
    return [_reply_part(row) for row in rows]


def _key_values(key: ReplyKey) -> tuple[str, str, int, int]:
    return (key.srcaddr, key.dstaddr, key.reference, key.total)


def _reply_part(row: Sequence[Any]) -> ReplyPart:
    srcaddr, dstaddr, reference, total, seqnum, body, encoding, connector, received_at = row
    return ReplyPart(
        *(srcaddr, dstaddr, reference, total, seqnum),
        bytes(body).decode("utf-8", "surrogatepass"),
        *(encoding, connector, from_micros(received_at)),
    )


def _reply_match(conn: sqlite3.Connection, reply: IncomingReply) -> tuple[int, int, str] | None:
    """(msgid, account_id, replyurl) of the most recent message the reply can answer."""
    received = to_micros(reply.received_at)
    window_start = to_micros(reply_window_start(reply.received_at))
    row = conn.execute(
        "SELECT r.msgid, q.account_id, q.replyurl FROM recipients AS r"
        " JOIN requests AS q ON q.msgid = r.msgid"
        " WHERE r.number = ? AND r.created_at BETWEEN ? AND ? AND q.replyurl IS NOT NULL"
        " AND r.created_at + q.replydays * ? >= ?"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
        (reply.srcaddr, window_start, received, _DAY_US, received),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def list_replies(conn: sqlite3.Connection, unmatched_only: bool, limit: int) -> list[ReplyRow]:
    rows = conn.execute(
        "SELECT id, msgid, connector, srcaddr, dstaddr, body, encoding, received_at, matched"
        " FROM replies WHERE matched = 0 OR NOT ? ORDER BY id DESC LIMIT ?",
        (int(unmatched_only), limit),
    ).fetchall()
    return [
        ReplyRow(
            *(rid, msgid, connector, srcaddr, dstaddr, body, encoding),
            received_at=from_micros(received_at),
            matched=bool(matched),
        )
        for rid, msgid, connector, srcaddr, dstaddr, body, encoding, received_at, matched in rows
    ]


# metrics ----------------------------------------------------------------------------------


def state_counts(conn: sqlite3.Connection) -> dict[State, int]:
    counts = dict.fromkeys(State, 0)
    for state, count in conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"):
        counts[State(state)] = count
    return counts


def held_receipt_count(conn: sqlite3.Connection) -> int:
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT connector, forms, state, received_at"
        " FROM held_receipts)"
    ).fetchone()
    return int(count)
