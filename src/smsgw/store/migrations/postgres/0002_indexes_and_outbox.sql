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
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint      NOT NULL REFERENCES accounts (id),
    kind             text        NOT NULL CHECK (kind IN ('dlr', 'mo')),
    url              text        NOT NULL,
    msgid            bigint,
    number           text,
    payload          text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX callbacks_due ON callbacks (state, next_attempt_at);
