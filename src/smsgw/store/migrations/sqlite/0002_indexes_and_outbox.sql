-- Indexes of the hot queries, and the callbacks outbox.

CREATE INDEX recipients_due ON recipients (state, next_attempt_at);
CREATE INDEX recipients_by_msgid ON recipients (msgid, seq);
CREATE INDEX recipients_by_number ON recipients (number, created_at);
CREATE INDEX requests_by_account ON requests (account_id);
CREATE INDEX ledger_by_account ON ledger (account_id);
CREATE INDEX segments_by_smsc_id ON segments (connector, smsc_id);
CREATE INDEX replies_by_msgid ON replies (msgid);

-- A callback is a row here until the customer acknowledged it.
CREATE TABLE callbacks (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('dlr', 'mo')),
    url              TEXT    NOT NULL,
    msgid            INTEGER,
    number           TEXT,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX callbacks_due ON callbacks (state, next_attempt_at);
