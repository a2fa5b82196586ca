-- marketmeter schema, version 9 (SQLite): the usage rollups move to a file of their own.

-- The rollups and the fold's marks now live in `<database>.rollups` (store.sqlite_rollups):
-- a fold locks that file only, never the records' write lock. They are derived from the
-- records, and the new file is filled from them on the first open after this migration.
DROP TABLE usage_by_hour;
DROP TABLE usage_by_day;
DROP TABLE usage_folded;

-- Records with allocations are still logged here, by the transaction that stores them.
-- A fold reads these rows from the other file and marks the last it folded there; a later
-- writer deletes the rows up to that mark. AUTOINCREMENT: a `seq` is never given twice,
-- even once every row below it is deleted, so a new row never falls under the mark.
-- (Every record, with allocations or not, is summed again from the records when the new
-- file is filled: these rows are not needed for that.)
DROP TABLE usage_pending;
CREATE TABLE usage_pending (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
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

-- Which state of the records the rollups file must match: renewed whenever the records
-- start again (a reset). A rollups file of another generation (or none) is filled again
-- from the records before anything reads it.
CREATE TABLE usage_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation TEXT NOT NULL
);
INSERT INTO usage_generation (id, generation) VALUES (1, lower(hex(randomblob(16))));
