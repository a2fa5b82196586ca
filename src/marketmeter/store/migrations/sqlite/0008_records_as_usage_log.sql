-- marketmeter schema, version 8 (SQLite): the records are their own usage log.

-- Records without allocations are no longer copied into usage_pending as they are stored
-- (the trigger of version 7 cost every record a second row and its later delete): a fold
-- reads them from metering_records by seq, above the last record it folded, kept here.
-- SQLite has one writer at a time, so seq only grows in the order of the commits. Every
-- record stored until now is in the log or the rollups already.
CREATE TABLE usage_folded (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT INTO usage_folded (id, last_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM metering_records;
DROP TRIGGER metering_records_usage;
