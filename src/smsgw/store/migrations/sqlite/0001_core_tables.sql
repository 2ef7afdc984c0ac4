-- Core tables. Times are UTC epoch microseconds (INTEGER): compact, sortable, exact.

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    password_hash   TEXT    NOT NULL,
    api_key_hash    TEXT,
    balance         INTEGER NOT NULL DEFAULT 0,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    allowed_ips     TEXT    NOT NULL DEFAULT '',
    webhook_secret  TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- One row per change of a balance: balance == SUM(delta) for each account.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    delta       INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('topup', 'debit', 'refund')),
    msgid       INTEGER,
    at          INTEGER NOT NULL
);

-- Single row; every process reserves blocks of msgids from it in a short transaction.
CREATE TABLE msgid_counter (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    next_value  INTEGER NOT NULL CHECK (next_value > 0)
);
INSERT INTO msgid_counter (id, next_value) VALUES (1, 1000000000);

CREATE TABLE requests (
    msgid            INTEGER PRIMARY KEY CHECK (msgid > 0 AND msgid <= 9999999999999999),
    account_id       INTEGER NOT NULL REFERENCES accounts (id),
    encoding         TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    coding           TEXT    NOT NULL CHECK (coding IN ('gsm7', 'ucs2', 'push')),
    flash            INTEGER NOT NULL CHECK (flash IN (0, 1)),
    segments         INTEGER NOT NULL,
    wapurl           TEXT,
    response         TEXT,
    replyurl         TEXT,
    replydays        INTEGER NOT NULL,
    dlvtime          INTEGER,
    points           INTEGER NOT NULL,
    reply_surcharge  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE recipients (
    id               INTEGER PRIMARY KEY,
    msgid            INTEGER NOT NULL REFERENCES requests (msgid),
    seq              INTEGER NOT NULL,
    number           TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    points           INTEGER NOT NULL,
    segments         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    submitted_at     INTEGER,
    done_at          INTEGER,
    connector        TEXT,
    next_attempt_at  INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (msgid, number)
);

CREATE TABLE segments (
    id            INTEGER PRIMARY KEY,
    recipient_id  INTEGER NOT NULL REFERENCES recipients (id),
    seqno         INTEGER NOT NULL,
    connector     TEXT,
    smsc_id       TEXT,
    state         TEXT    NOT NULL,
    submitted_at  INTEGER,
    done_at       INTEGER,
    UNIQUE (recipient_id, seqno)
);

CREATE TABLE replies (
    id           INTEGER PRIMARY KEY,
    msgid        INTEGER REFERENCES requests (msgid),
    srcaddr      TEXT    NOT NULL,
    dstaddr      TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    encoding     TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    matched      INTEGER NOT NULL DEFAULT 0 CHECK (matched IN (0, 1))
);
