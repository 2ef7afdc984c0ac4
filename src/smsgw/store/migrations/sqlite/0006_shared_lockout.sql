-- Authentication failures of existing accounts are counted here by every process on the
-- database, and the lock they set is a column of the account, which every process reads
-- (PROTOCOL.md section 7: the username is locked, not one process's view of it).

-- recent_failures: the failures counted in the window, so that a success knows whether
-- there are any to clear.
ALTER TABLE accounts ADD COLUMN recent_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN locked_until INTEGER;

CREATE TABLE auth_failures (
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    at          INTEGER NOT NULL
);
CREATE INDEX auth_failures_by_account ON auth_failures (account_id, at);
