-- marketmeter schema, version 7: the usage rollups' log; late records marked.

-- A record accepted under clock travel though its operation's window, on the real clock,
-- had closed (AWS would have refused it): a warning of `usage check`.
ALTER TABLE metering_records ADD COLUMN accepted_late BOOLEAN NOT NULL DEFAULT false;

-- The transaction that stores records appends their sums here (store.sql.usage): one row
-- per record and tag set, at the end of one table — no scattered index entries on the
-- write path. Folds move the oldest rows into usage_by_hour and usage_by_day in bulk,
-- grouped and sorted by their keys (one folder at a time: usage_by_hour's "shard" is 0
-- from now on); a report reads the rollups and these rows together. "month" is the
-- hour's month (epoch ms of its first instant); "micros" the record's (or allocation's)
-- quantity in millionths, split into units and millionths when folded.
CREATE TABLE usage_pending (
    seq                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_code            TEXT NOT NULL,
    hour                    BIGINT NOT NULL,
    month                   BIGINT NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    customer_identifier     TEXT NOT NULL,
    dimension               TEXT NOT NULL,
    tags                    TEXT NOT NULL,
    micros                  BIGINT NOT NULL,
    records                 BIGINT NOT NULL,
    allocations             BIGINT NOT NULL
);

-- A record without allocations (nearly all) is logged by the database itself, as it is
-- stored: no work in Python, no statement more — one INSERT per statement that stores
-- records, from its transition table. Records with allocations are logged by
-- store.sql.usage, one row per tag set.
CREATE FUNCTION metering_records_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_pending (product_code, hour, month, customer_aws_account_id,
                               customer_identifier, dimension, tags, micros, records,
                               allocations)
    SELECT product_code, hour,
           (extract(epoch FROM date_trunc('month', to_timestamp(hour / 1000)
                                                   AT TIME ZONE 'UTC')) * 1000)::bigint,
           customer_aws_account_id, customer_identifier, dimension, '', quantity_micros, 1, 1
    FROM stored WHERE allocations IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER metering_records_usage AFTER INSERT ON metering_records
REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION metering_records_usage();
