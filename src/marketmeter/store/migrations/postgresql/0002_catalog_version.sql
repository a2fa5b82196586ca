-- A counter bumped by every change to the catalog (accounts, keys, products,
-- subscriptions, signing keys): server processes cache the catalog and check it.
CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 0);
