-- marketmeter schema, version 7: the usage rollups' log; late records marked.

-- A record accepted under clock travel though its operation's window, on the real clock,
-- had closed (AWS would have refused it): a warning of `usage check`.
ALTER TABLE metering_records ADD COLUMN accepted_late INTEGER NOT NULL DEFAULT 0;

-- The transaction that stores records appends their sums here (store.sql.usage): one row
-- per record and tag set, at the end of one table — no scattered index entries on the
-- write path. Folds move the oldest rows into usage_by_hour and usage_by_day in bulk,
-- grouped and sorted by their keys (one folder at a time: usage_by_hour's "shard" is 0
-- from now on); a report reads the rollups and these rows together. "month" is the
-- hour's month (epoch ms of its first instant); "micros" the record's (or allocation's)
-- quantity in millionths, split into units and millionths when folded.
CREATE TABLE usage_pending (
    seq                     INTEGER PRIMARY KEY,
    product_code            TEXT NOT NULL,
    hour                    INTEGER NOT NULL,
    month                   INTEGER NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    customer_identifier     TEXT NOT NULL,
    dimension               TEXT NOT NULL,
    tags                    TEXT NOT NULL,
    micros                  INTEGER NOT NULL,
    records                 INTEGER NOT NULL,
    allocations             INTEGER NOT NULL
);

-- A record without allocations (nearly all) is logged by the database itself, as it is
-- stored: no work in Python, no statement more. Records with allocations are logged by
-- store.sql.usage, one row per tag set.
CREATE TRIGGER metering_records_usage AFTER INSERT ON metering_records
WHEN NEW.allocations IS NULL
BEGIN
    INSERT INTO usage_pending (product_code, hour, month, customer_aws_account_id,
                               customer_identifier, dimension, tags, micros, records,
                               allocations)
    VALUES (NEW.product_code, NEW.hour,
            CAST(strftime('%s', NEW.hour / 1000, 'unixepoch', 'start of month') AS INTEGER)
                * 1000,
            NEW.customer_aws_account_id, NEW.customer_identifier, NEW.dimension, '',
            NEW.quantity_micros, 1, 1);
END;
