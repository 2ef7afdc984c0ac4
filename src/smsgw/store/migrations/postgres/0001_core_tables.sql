-- Core tables. Times are timestamptz (UTC).

CREATE TABLE accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text        NOT NULL UNIQUE,
    password_hash   text        NOT NULL,
    api_key_hash    text,
    balance         bigint      NOT NULL DEFAULT 0,
    disabled        boolean     NOT NULL DEFAULT false,
    allowed_ips     text        NOT NULL DEFAULT '',
    webhook_secret  text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- One row per change of a balance: balance == SUM(delta) for each account.
CREATE TABLE ledger (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint      NOT NULL REFERENCES accounts (id),
    delta       bigint      NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('topup', 'debit', 'refund')),
    msgid       bigint,
    at          timestamptz NOT NULL
);

-- Single row; every node reserves blocks of msgids from it in a short transaction.
CREATE TABLE msgid_counter (
    id          integer PRIMARY KEY CHECK (id = 1),
    next_value  bigint  NOT NULL CHECK (next_value > 0)
);
INSERT INTO msgid_counter (id, next_value) VALUES (1, 1000000000);

CREATE TABLE requests (
    msgid            bigint PRIMARY KEY CHECK (msgid > 0 AND msgid <= 9999999999999999),
    account_id       bigint      NOT NULL REFERENCES accounts (id),
    encoding         text        NOT NULL,
    body             text        NOT NULL,
    coding           text        NOT NULL CHECK (coding IN ('gsm7', 'ucs2', 'push')),
    flash            boolean     NOT NULL,
    segments         integer     NOT NULL,
    wapurl           text,
    response         text,
    replyurl         text,
    replydays        integer     NOT NULL,
    dlvtime          timestamptz,
    points           bigint      NOT NULL,
    reply_surcharge  bigint      NOT NULL,
    created_at       timestamptz NOT NULL
);

CREATE TABLE recipients (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msgid            bigint      NOT NULL REFERENCES requests (msgid),
    seq              integer     NOT NULL,
    number           text        NOT NULL,
    state            text        NOT NULL,
    points           bigint      NOT NULL,
    segments         integer     NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    submitted_at     timestamptz,
    done_at          timestamptz,
    connector        text,
    next_attempt_at  timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    UNIQUE (msgid, number)
);

CREATE TABLE segments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient_id  bigint      NOT NULL REFERENCES recipients (id),
    seqno         integer     NOT NULL,
    connector     text,
    smsc_id       text,
    state         text        NOT NULL,
    submitted_at  timestamptz,
    done_at       timestamptz,
    UNIQUE (recipient_id, seqno)
);

CREATE TABLE replies (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msgid        bigint REFERENCES requests (msgid),
    srcaddr      text        NOT NULL,
    dstaddr      text        NOT NULL,
    body         text        NOT NULL,
    encoding     text        NOT NULL,
    received_at  timestamptz NOT NULL,
    matched      boolean     NOT NULL DEFAULT false
);
