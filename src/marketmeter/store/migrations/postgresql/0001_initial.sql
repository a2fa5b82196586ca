-- marketmeter schema, version 1 (PostgreSQL). Times are epoch milliseconds (UTC).

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name       TEXT
);

CREATE TABLE access_keys (
    access_key_id     TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    account_id        TEXT NOT NULL REFERENCES accounts (account_id),
    session_token     TEXT,
    expires_at        BIGINT,
    region            TEXT,
    platform          TEXT,
    actions           TEXT            -- JSON list, NULL = every action
);

CREATE TABLE products (
    product_code          TEXT PRIMARY KEY,
    seller_account_id     TEXT NOT NULL REFERENCES accounts (account_id),
    type                  TEXT NOT NULL,
    dimensions            TEXT NOT NULL,  -- JSON list
    fulfillment_url       TEXT,
    concurrent_agreements SMALLINT NOT NULL DEFAULT 0
);

CREATE TABLE subscriptions (
    license_arn             TEXT PRIMARY KEY,
    agreement_id            TEXT NOT NULL UNIQUE,
    product_code            TEXT NOT NULL REFERENCES products (product_code),
    customer_aws_account_id TEXT NOT NULL,
    customer_identifier     TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    ends_at                 BIGINT
);
CREATE INDEX subscriptions_by_account ON subscriptions (product_code, customer_aws_account_id);
CREATE INDEX subscriptions_by_identifier ON subscriptions (product_code, customer_identifier);
CREATE INDEX subscriptions_by_buyer ON subscriptions (customer_aws_account_id);

CREATE TABLE registration_tokens (
    token                   TEXT PRIMARY KEY,
    product_code            TEXT NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    license_arn             TEXT NOT NULL,
    issued_at               BIGINT NOT NULL,
    expires_at              BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    product_code TEXT NOT NULL,
    version      INTEGER NOT NULL,
    private_pem  TEXT NOT NULL,
    public_pem   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (product_code, version)
);

-- One row per acknowledged record. The UNIQUE key is the dedupe identity (the slot):
-- a second record for a slot can never be stored, whatever the process or the race.
CREATE TABLE metering_records (
    seq                     BIGSERIAL PRIMARY KEY,
    record_id               TEXT NOT NULL UNIQUE,
    product_code            TEXT NOT NULL,
    customer_aws_account_id TEXT NOT NULL,
    resource                TEXT NOT NULL,  -- MeterUsage: caller's access key; batch: ''
    license_key             TEXT NOT NULL,  -- LicenseArn when sent by LicenseArn; else ''
    dimension               TEXT NOT NULL,
    hour                    BIGINT NOT NULL,
    operation               TEXT NOT NULL,
    timestamp               BIGINT NOT NULL,
    quantity_micros         BIGINT NOT NULL,
    quantity_text           TEXT NOT NULL,
    quantity_as_decimal     SMALLINT NOT NULL,
    allocations             TEXT,           -- JSON, wire form, as sent
    customer_identifier     TEXT NOT NULL,
    license_arn             TEXT NOT NULL,
    received_at             BIGINT NOT NULL,
    UNIQUE (product_code, customer_aws_account_id, resource, license_key, dimension, hour)
);
CREATE INDEX metering_records_by_product ON metering_records (product_code, seq);

CREATE TABLE client_tokens (
    account_id   TEXT NOT NULL,
    client_token TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_token)
);
