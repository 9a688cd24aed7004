CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    [display name] TEXT,
    "it's quoted" TEXT,
    `backticked` INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL DEFAULT X'00'
) WITHOUT ROWID;
CREATE INDEX accounts_created_idx ON accounts (created_at) WHERE email IS NOT NULL;
