-- marketmeter schema, version 6: usage rollups; records found by hour; the admin token;
-- prices.

-- The slot's unique key puts the hour second, after the product: a product's records of
-- some hours are one range of the index (reports, record queries by time), and the
-- records of the current hour — nearly every insert — land together.
ALTER TABLE metering_records
    DROP CONSTRAINT metering_records_product_code_customer_aws_account_id_resou_key;
ALTER TABLE metering_records ADD CONSTRAINT metering_records_slot
    UNIQUE (product_code, hour, customer_aws_account_id, resource, license_key, dimension);
-- Usage rollups, kept in step with metering_records by the transaction that stores each
-- record (store.sql.metering). A record adds its quantity to one row per distinct tag set
-- of its allocations ('' when it has none): "records" counts each record once (on the
-- row of its first allocation), "allocations" counts allocations (an untagged record: 1).
-- Quantities are whole units plus millionths, each summed on its own: exact, and no sum
-- overflows before billions of records. Times are epoch milliseconds (UTC).

-- Every customer's usage per product, hour, dimension and tag set. "shard" (0-15, from
-- the customer's account) spreads one hour's writers over several rows, so that
-- concurrent transactions do not queue on one row's lock.
CREATE TABLE usage_by_hour (
    product_code TEXT NOT NULL,
    hour         BIGINT NOT NULL,
    dimension    TEXT NOT NULL,
    tags         TEXT NOT NULL,
    shard        SMALLINT NOT NULL,
    units        BIGINT NOT NULL,
    micros       BIGINT NOT NULL,
    records      BIGINT NOT NULL,
    allocations  BIGINT NOT NULL,
    PRIMARY KEY (product_code, hour, dimension, tags, shard)
);

-- Each customer's usage per product, day (UTC), dimension and tag set. The key begins
-- with the month: a report of a month's days per customer reads them in the key's order,
-- already grouped (no sort).
CREATE TABLE usage_by_day (
    product_code            TEXT NOT NULL,
    month                   BIGINT NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    customer_identifier     TEXT NOT NULL,
    dimension               TEXT NOT NULL,
    tags                    TEXT NOT NULL,
    day                     BIGINT NOT NULL,
    units                   BIGINT NOT NULL,
    micros                  BIGINT NOT NULL,
    records                 BIGINT NOT NULL,
    allocations             BIGINT NOT NULL,
    PRIMARY KEY (product_code, month, customer_aws_account_id, customer_identifier, dimension,
                 tags, day)
);

-- The admin API's bearer token, as its SHA-256 (hex): generated on a first start without
-- MARKETMETER_ADMIN_TOKEN, shown once, never stored itself.
CREATE TABLE admin_token (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Prices per dimension, for invoice previews: JSON {"dimension": {"price_per_unit": "0.1",
-- "currency": "USD"}}; NULL for none.
ALTER TABLE products ADD COLUMN prices TEXT;

-- Rows for the records already stored are added by store.sql.usage after version 7.
