-- The parts of a concatenated handset reply (MO) that came before its last one. A part is
-- acknowledged to the SMSC only once it is here, so a crash loses none of them; the joined
-- reply replaces them in one transaction. body: the part's text as UTF-8, lone surrogates
-- kept (a handset may split a UTF-16 pair across parts; the halves meet when joined).

CREATE TABLE reply_parts (
    srcaddr      TEXT    NOT NULL,
    dstaddr      TEXT    NOT NULL,
    reference    INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    seqnum       INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    encoding     TEXT    NOT NULL,
    connector    TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (srcaddr, dstaddr, reference, total, seqnum)
);
