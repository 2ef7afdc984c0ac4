-- Delivery: a segment's state is NULL until its final receipt (SQLite cannot drop NOT NULL,
-- so the table is rebuilt), receipts held until their submit is recorded, replies' connector.

CREATE TABLE segments_rebuilt (
    id            INTEGER PRIMARY KEY,
    recipient_id  INTEGER NOT NULL REFERENCES recipients (id),
    seqno         INTEGER NOT NULL,
    connector     TEXT,
    smsc_id       TEXT,
    state         TEXT,
    error         TEXT,
    submitted_at  INTEGER,
    done_at       INTEGER,
    UNIQUE (recipient_id, seqno)
);
INSERT INTO segments_rebuilt (id, recipient_id, seqno, connector, smsc_id, state,
    submitted_at, done_at)
    SELECT id, recipient_id, seqno, connector, smsc_id, state, submitted_at, done_at
    FROM segments;
DROP TABLE segments;
ALTER TABLE segments_rebuilt RENAME TO segments;
CREATE INDEX segments_by_smsc_id ON segments (connector, smsc_id);

-- One row per spelling of the receipt's id; ``forms`` (all spellings, one per line) ties
-- the rows of one receipt together.
CREATE TABLE held_receipts (
    id           INTEGER PRIMARY KEY,
    connector    TEXT    NOT NULL,
    smsc_id      TEXT    NOT NULL,
    forms        TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    error        TEXT,
    received_at  INTEGER NOT NULL
);
CREATE INDEX held_receipts_by_smsc_id ON held_receipts (connector, smsc_id);

ALTER TABLE replies ADD COLUMN connector TEXT;
CREATE INDEX replies_unmatched ON replies (matched, id);

-- Submitted recipients still waiting for a receipt, for the receipt timeout.
CREATE INDEX recipients_unanswered ON recipients (submitted_at) WHERE state = 'ENROUTE';
CREATE INDEX callbacks_by_account ON callbacks (account_id, state);

-- The claim finds every due recipient through (state, next_attempt_at).
UPDATE recipients SET next_attempt_at = COALESCE(
        (SELECT dlvtime FROM requests WHERE requests.msgid = recipients.msgid), created_at)
    WHERE state IN ('QUEUED', 'WAITING') AND next_attempt_at IS NULL;
