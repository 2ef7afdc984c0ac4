-- Claiming callbacks walks the accounts that have pending rows, then each one's earliest due
-- rows, through this index, instead of ranking every due row (O(pending) per claim).
-- state leads so that the walk from one account to the next skips the rows already sent.

CREATE INDEX callbacks_claim ON callbacks (state, account_id, next_attempt_at);
