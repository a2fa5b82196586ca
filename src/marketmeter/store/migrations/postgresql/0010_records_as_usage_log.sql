-- marketmeter schema, version 10 (PostgreSQL; SQLite has no version 10): the records are
-- their own usage log, as on SQLite since version 8.

-- The trigger of version 7 copied every record without allocations into usage_pending,
-- and a fold deleted the copy again: two row writes a record. Each record now carries the
-- id of the transaction that stored it, and a fold reads the records of the transactions
-- that have all ended since the last fold: those below the oldest transaction still
-- running (the xmin of the fold's snapshot), from the transaction id it folded up to last
-- (`usage_folded`). Writers commit out of the order of `seq`, never of this: a record of a
-- transaction still running is above the horizon, and is folded by a later fold.
-- Records stored until now carry 0: the trigger logged them, in usage_pending or the
-- rollups already, and they lie below the first mark.
ALTER TABLE metering_records ADD COLUMN logged_by BIGINT NOT NULL DEFAULT 0;
ALTER TABLE metering_records ALTER COLUMN logged_by SET DEFAULT pg_current_xact_id()::text::bigint;
CREATE INDEX metering_records_logged_by ON metering_records (logged_by);

-- The transaction id below which every record without allocations is in the rollups.
-- Records with allocations are still logged into usage_pending, one row per tag set, and
-- a fold deletes the rows it adds.
CREATE TABLE usage_folded (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    below_xid BIGINT NOT NULL
);
INSERT INTO usage_folded (id, below_xid) VALUES (1, 1);

DROP TRIGGER metering_records_usage ON metering_records;
DROP FUNCTION metering_records_usage();
