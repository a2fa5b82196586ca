-- marketmeter schema, version 6: usage rollups; records found by hour; the admin token;
-- prices.

-- The slot's unique key puts the hour second, after the product: a product's records of
-- some hours are one range of the index (reports, record queries by time), and the
-- records of the current hour — nearly every insert — land together. SQLite changes a
-- table's constraint by copying the table.
CREATE TABLE metering_records_6 (
    seq                     INTEGER PRIMARY KEY,
    record_id               TEXT NOT NULL UNIQUE,
    product_code            TEXT NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    resource                TEXT NOT NULL,  -- MeterUsage: caller's access key; batch: ''
    license_key             TEXT NOT NULL,  -- LicenseArn when sent by LicenseArn; else ''
    dimension               TEXT NOT NULL,
    hour                    INTEGER NOT NULL,
    operation               TEXT NOT NULL,
    timestamp               INTEGER NOT NULL,
    quantity_micros         INTEGER NOT NULL,
    quantity_text           TEXT NOT NULL,
    quantity_as_decimal     INTEGER NOT NULL,
    allocations             TEXT,           -- JSON, wire form, as sent
    customer_identifier     TEXT NOT NULL,
    license_arn             TEXT NOT NULL,
    received_at             INTEGER NOT NULL,
    UNIQUE (product_code, hour, customer_aws_account_id, resource, license_key, dimension)
);
INSERT INTO metering_records_6 SELECT * FROM metering_records;
DROP TABLE metering_records;
ALTER TABLE metering_records_6 RENAME TO metering_records;
-- Usage rollups, kept in step with metering_records by the transaction that stores each
-- record (store.sql.metering). A record adds its quantity to one row per distinct tag set
-- of its allocations ('' when it has none): "records" counts each record once (on the
-- row of its first allocation), "allocations" counts allocations (an untagged record: 1).
-- Quantities are whole units plus millionths, each summed on its own: exact, and no sum
-- overflows before billions of records. Times are epoch milliseconds (UTC). WITHOUT ROWID:
-- a row lives in its key's B-tree alone, one write per row instead of two.

-- Every customer's usage per product, hour, dimension and tag set. "shard" (0-15, from
-- the customer's account) spreads one hour's writers over several rows, so that
-- concurrent transactions do not queue on one row's lock.
CREATE TABLE usage_by_hour (
    product_code TEXT NOT NULL,
    hour         INTEGER NOT NULL,
    dimension    TEXT NOT NULL,
    tags         TEXT NOT NULL,
    shard        INTEGER NOT NULL,
    units        INTEGER NOT NULL,
    micros       INTEGER NOT NULL,
    records      INTEGER NOT NULL,
    allocations  INTEGER NOT NULL,
    PRIMARY KEY (product_code, hour, dimension, tags, shard)
) WITHOUT ROWID;

-- Each customer's usage per product, day (UTC), dimension and tag set. The key begins
-- with the month: a report of a month's days per customer reads them in the key's order,
-- already grouped (no sort).
CREATE TABLE usage_by_day (
    product_code            TEXT NOT NULL,
    month                   INTEGER NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    customer_identifier     TEXT NOT NULL,
    dimension               TEXT NOT NULL,
    tags                    TEXT NOT NULL,
    day                     INTEGER NOT NULL,
    units                   INTEGER NOT NULL,
    micros                  INTEGER NOT NULL,
    records                 INTEGER NOT NULL,
    allocations             INTEGER NOT NULL,
    PRIMARY KEY (product_code, month, customer_aws_account_id, customer_identifier, dimension,
                 tags, day)
) WITHOUT ROWID;

-- The admin API's bearer token, as its SHA-256 (hex): generated on a first start without
-- MARKETMETER_ADMIN_TOKEN, shown once, never stored itself.
CREATE TABLE admin_token (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Prices per dimension, for invoice previews: JSON {"dimension": {"price_per_unit": "0.1",
-- "currency": "USD"}}; NULL for none.
ALTER TABLE products ADD COLUMN prices TEXT;

-- Rows for the records already stored are added by store.sql.usage after version 7.
