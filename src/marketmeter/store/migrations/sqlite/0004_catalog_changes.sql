-- What each catalog version changed (a JSON list), so that a process's cache drops only
-- what changed. The last 10,000 versions are kept.
CREATE TABLE catalog_changes (
    version INTEGER PRIMARY KEY,
    changes TEXT NOT NULL
);
