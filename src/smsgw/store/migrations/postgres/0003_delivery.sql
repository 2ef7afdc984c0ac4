-- Delivery: a segment's state is NULL until its final receipt, receipts held until their
-- submit is recorded, replies' connector.

ALTER TABLE segments ALTER COLUMN state DROP NOT NULL;
ALTER TABLE segments ADD COLUMN error text;

-- One row per spelling of the receipt's id; ``forms`` (all spellings, one per line) ties
-- the rows of one receipt together.
CREATE TABLE held_receipts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector    text        NOT NULL,
    smsc_id      text        NOT NULL,
    forms        text        NOT NULL,
    state        text        NOT NULL,
    error        text,
    received_at  timestamptz NOT NULL
);
CREATE INDEX held_receipts_by_smsc_id ON held_receipts (connector, smsc_id);

ALTER TABLE replies ADD COLUMN connector text;
CREATE INDEX replies_unmatched ON replies (matched, id);

-- Submitted recipients still waiting for a receipt, for the receipt timeout.
CREATE INDEX recipients_unanswered ON recipients (submitted_at) WHERE state = 'ENROUTE';
CREATE INDEX callbacks_by_account ON callbacks (account_id, state);

-- The claim finds every due recipient through (state, next_attempt_at).
UPDATE recipients SET next_attempt_at = COALESCE(
        (SELECT dlvtime FROM requests WHERE requests.msgid = recipients.msgid), created_at)
    WHERE state IN ('QUEUED', 'WAITING') AND next_attempt_at IS NULL;
