-- The marketplace around the API: pricing models, the buyer's lifecycle, entitlements,
-- notification targets, the outbox of deliveries, and test controls.

ALTER TABLE products ADD COLUMN pricing TEXT NOT NULL DEFAULT 'usage';

ALTER TABLE subscriptions ADD COLUMN unsubscribed_at BIGINT;  -- the buyer's unsubscribe
ALTER TABLE subscriptions ADD COLUMN free_trial SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN offer_id TEXT;

CREATE TABLE entitlements (
    license_arn TEXT NOT NULL REFERENCES subscriptions (license_arn),
    dimension   TEXT NOT NULL,
    value_type  TEXT NOT NULL,  -- integer | decimal | boolean | string
    value       TEXT NOT NULL,
    expires_at  BIGINT,
    PRIMARY KEY (license_arn, dimension)
);

-- SNS subscriptions of HTTP(S) endpoints to a product's topic, and EventBridge targets.
CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    product_code      TEXT NOT NULL REFERENCES products (product_code),
    topic             TEXT NOT NULL,  -- subscription | entitlement
    url               TEXT NOT NULL,
    signature_version TEXT NOT NULL,
    token             TEXT NOT NULL,  -- what the SubscribeURL must carry
    confirmed_at      BIGINT,
    created_at        BIGINT NOT NULL,
    UNIQUE (product_code, topic, url)
);
CREATE TABLE event_targets (
    id           TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    product_code TEXT,            -- NULL: every product
    headers      TEXT NOT NULL,   -- JSON object
    created_at   BIGINT NOT NULL,
    UNIQUE (url, product_code)
);

-- The outbox: written in the transaction that made the change; sent by any server.
CREATE TABLE deliveries (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,   -- SNS MessageId / EventBridge event id
    kind            TEXT NOT NULL,          -- sns | eventbridge
    target_id       TEXT NOT NULL,
    product_code    TEXT NOT NULL,
    name            TEXT NOT NULL,          -- the action or detail-type
    body            TEXT NOT NULL,          -- JSON
    created_at      BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    status          TEXT NOT NULL,          -- pending | delivered | failed | cancelled
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    BIGINT,
    cancel_key      TEXT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_cancel_key ON deliveries (cancel_key);
CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    status      INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- The key that signs SNS messages, made once.
CREATE TABLE sns_keys (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    cert_pem    TEXT NOT NULL
);

-- Test controls (obeyed only by `serve --test-controls`): one row.
CREATE TABLE test_controls (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    clock_offset_ms   BIGINT NOT NULL DEFAULT 0,
    faults            TEXT,              -- JSON, NULL: none
    internal_errors   INTEGER NOT NULL DEFAULT 0,
    served_at         BIGINT            -- heartbeat of a server obeying them
);
INSERT INTO test_controls (id) VALUES (1);
