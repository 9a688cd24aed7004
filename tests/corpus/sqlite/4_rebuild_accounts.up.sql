-- SQLite's documented way to change a column: build the new table, copy, drop, rename.
CREATE TABLE accounts_new (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    [display name] TEXT NOT NULL DEFAULT '',
    "it's quoted" TEXT,
    `backticked` INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
INSERT INTO accounts_new (id, email, [display name], "it's quoted", `backticked`, created_at)
    SELECT id, email, coalesce([display name], ''), "it's quoted", `backticked`, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;
CREATE INDEX accounts_created_idx ON accounts (created_at) WHERE email IS NOT NULL;
