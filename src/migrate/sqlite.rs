//! SQLite specifics: connecting, the lock file, DDL of shipgate's tables.
//!
//! The lock is an exclusive `flock` on `<database file>.shipgate-lock`, so a second process on
//! the same file sees it, and the operating system releases it when the holder dies. The file
//! holds the holder's pid, host and start time for the waiter's log. An in-memory database is
//! private to its process and needs no lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use super::backend::{DbError, Dialect, ErrorKind, LockHolder, Tables, Timeouts};
use crate::config::{DatabaseUrl, EngineSettings};

fn options(url: &DatabaseUrl) -> Result<SqliteConnectOptions, DbError> {
    SqliteConnectOptions::from_str(url.expose()).map_err(|e| DbError {
        kind: ErrorKind::Config,
        message: format!("invalid SQLite URL {}: {e}", url.redacted()),
        code: None,
        position: None,
    })
}

/// Opens the run's one connection, creating the database file if it is missing — except for
/// a command that only reads, which sees a missing file as an empty database and leaves the
/// disk as it was.
pub async fn connect(
    url: &DatabaseUrl,
    settings: &EngineSettings,
) -> Result<(SqliteConnection, Arc<AtomicBool>), DbError> {
    let mut opts = options(url)?;
    let file = opts.get_filename();
    let missing = file != std::path::Path::new(":memory:") && !file.exists();
    if settings.read_only && missing {
        tracing::info!(database = %url.redacted(), "the database file does not exist yet: reading it as an empty database, not creating it");
        opts = SqliteConnectOptions::from_str("sqlite::memory:").expect("a constant, valid URL");
    }
    let opts = opts
        .create_if_missing(!settings.read_only)
        .busy_timeout(settings.lock_timeout)
        .disable_statement_logging();
    let connection_error = |e: sqlx::Error| DbError {
        kind: ErrorKind::Connection,
        message: e.to_string(),
        code: None,
        position: None,
    };
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .map_err(connection_error)?;
    // SQLite runs a statement on the connection's worker thread, where dropping the
    // connection cannot reach it: a signal would leave it running (holding the write lock)
    // until the process exits. SQLite's progress handler is its way to interrupt a statement:
    // once `stop` is set the statement fails with SQLITE_INTERRUPT and its transaction rolls
    // back at once, so the run's outcome can be recorded from another connection.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    conn.lock_handle()
        .await
        .map_err(connection_error)?
        .set_progress_handler(1000, move || !flag.load(Ordering::Relaxed));
    Ok((conn, stop))
}

/// `PRAGMA busy_timeout` plays the role of lock_timeout; SQLite has no statement timeout.
pub fn timeouts_sql(t: Timeouts) -> String {
    format!("PRAGMA busy_timeout = {};\n", t.lock_timeout.as_millis())
}

const NOW: &str = "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))";

/// The history table's columns.
const HISTORY_COLUMNS: &[&str] = &[
    "version",
    "name",
    "checksum",
    "state",
    "statements_done",
    "error",
    "applied_at",
    "execution_ms",
    "applied_by",
    "deploy_id",
    "app_version",
];

/// The audit table's columns.
const AUDIT_COLUMNS: &[&str] = &[
    "id",
    "at",
    "action",
    "version",
    "actor",
    "reason",
    "\"before\"",
    "\"after\"",
    "deploy_id",
];

/// The history table `m`. The version is `TEXT`: a column of INTEGER affinity would store
/// `1.20` as the REAL 1.2.
fn history_ddl(m: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {m} (
    version TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'running', 'failed')),
    statements_done INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    applied_at TEXT NOT NULL DEFAULT {NOW},
    execution_ms INTEGER NOT NULL DEFAULT 0,
    applied_by TEXT,
    deploy_id TEXT,
    app_version TEXT
)"
    )
}

/// The audit table `a`.
fn audit_ddl(a: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {a} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL DEFAULT {NOW},
    action TEXT NOT NULL,
    version TEXT,
    actor TEXT NOT NULL,
    reason TEXT,
    before TEXT,
    after TEXT,
    deploy_id TEXT
)"
    )
}

/// DDL of shipgate's tables, idempotent.
pub fn create_tables(t: &Tables) -> String {
    format!(
        "{};
CREATE TABLE IF NOT EXISTS {r} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT {NOW},
    finished_at TEXT,
    outcome TEXT CHECK (outcome IN ('succeeded', 'failed', 'aborted', 'nothing_to_do')),
    applied INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    deploy_id TEXT,
    host TEXT,
    app_version TEXT
);
{};
CREATE TABLE IF NOT EXISTS {p} (
    name TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT {NOW},
    execution_ms INTEGER NOT NULL DEFAULT 0,
    applied_by TEXT,
    deploy_id TEXT,
    app_version TEXT
);",
        history_ddl(&t.migrations),
        audit_ddl(&t.audit),
        r = t.runs,
        p = t.repeatables,
    )
}

/// The declared types of the `version` columns of the history and audit tables (NULL for a
/// missing table).
pub fn version_types_sql(t: &Tables) -> String {
    let d = Dialect::Sqlite;
    let column = |table: &str| {
        let args = match &t.schema {
            Some(schema) => format!("{}, {}", d.quote(table), d.quote(schema)),
            None => d.quote(table),
        };
        format!("(SELECT type FROM pragma_table_info({args}) WHERE name = 'version')")
    };
    format!(
        "SELECT {}, {}",
        column(&t.migrations_name),
        column(&t.audit_name)
    )
}

/// Whether a `version` column of this declared type holds versions as text.
pub fn is_text(data_type: &str) -> bool {
    data_type.eq_ignore_ascii_case("TEXT")
}

/// Rebuilds the tables an older shipgate created with an `INTEGER` version (the history
/// table's is even the rowid, which refuses text) with a `TEXT` one, every row copied: SQLite
/// cannot change a column's type. Create new, copy, drop old, rename new onto the old name, in
/// one transaction.
pub fn version_as_text_sql(t: &Tables, migrations: bool, audit: bool) -> String {
    let history: Rebuild = (
        &t.migrations,
        &t.migrations_name,
        history_ddl,
        HISTORY_COLUMNS,
    );
    let audit_table: Rebuild = (&t.audit, &t.audit_name, audit_ddl, AUDIT_COLUMNS);
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for (table, name, ddl, columns) in [(migrations, history), (audit, audit_table)]
        .into_iter()
        .filter_map(|(stale, rebuild)| stale.then_some(rebuild))
    {
        let new = t.qualified(&format!("{name}_rebuild"));
        let copied: Vec<&str> = columns
            .iter()
            .map(|&c| {
                if c == "version" {
                    "CAST(version AS TEXT)"
                } else {
                    c
                }
            })
            .collect();
        sql.push_str(&format!(
            "{};\nINSERT INTO {new} ({}) SELECT {} FROM {table};\nDROP TABLE {table};\nALTER TABLE {new} RENAME TO {};\n",
            ddl(&new),
            columns.join(", "),
            copied.join(", "),
            Dialect::Sqlite.ident(name)
        ));
    }
    sql.push_str("COMMIT;");
    sql
}

/// A table to rebuild: its qualified name, its bare name, its DDL and its columns.
type Rebuild<'t> = (
    &'t str,
    &'t str,
    fn(&str) -> String,
    &'static [&'static str],
);

/// What the lock file says about its holder.
#[derive(Debug, Serialize, Deserialize)]
struct HolderFile {
    pid: u32,
    host: String,
    since: String,
}

/// The held lock file; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    file: Option<File>,
}

fn lock_path(url: &DatabaseUrl) -> Result<Option<PathBuf>, DbError> {
    let opts = options(url)?;
    let path = opts.get_filename();
    let lower = url.expose().to_ascii_lowercase();
    if path.as_os_str() == ":memory:" || lower.contains(":memory:") || lower.contains("mode=memory")
    {
        return Ok(None);
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".shipgate-lock");
    Ok(Some(PathBuf::from(name)))
}

impl FileLock {
    /// Takes the lock if it is free; `Ok(None)` when another process holds it.
    pub fn try_acquire(url: &DatabaseUrl, host: &str) -> Result<Option<FileLock>, DbError> {
        let Some(path) = lock_path(url)? else {
            return Ok(Some(FileLock { file: None }));
        };
        let io = |e: std::io::Error| DbError {
            kind: ErrorKind::Query,
            message: format!("lock file {}: {e}", path.display()),
            code: None,
            position: None,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = HolderFile {
            pid: std::process::id(),
            host: host.to_owned(),
            since: crate::migrate::now_rfc3339(),
        };
        let text = serde_json::to_string(&holder).unwrap_or_default();
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Some(FileLock { file: Some(file) }))
    }

    /// Reads who holds the lock from the lock file.
    pub fn holder(url: &DatabaseUrl) -> Option<LockHolder> {
        let path = lock_path(url).ok().flatten()?;
        let mut file = File::open(path).ok()?;
        // The file outlives its holder: it names a holder only while someone has it locked.
        if file.try_lock_shared().is_ok() {
            let _ = file.unlock();
            return None;
        }
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        let h: HolderFile = serde_json::from_str(&text).ok()?;
        Some(LockHolder {
            pid: Some(i64::from(h.pid)),
            application: Some("shipgate".into()),
            client: Some(h.host),
            since: Some(h.since),
        })
    }

    /// Releases the lock; `true` when it was held.
    pub fn release(self) -> bool {
        match self.file {
            Some(file) => file.unlock().is_ok(),
            None => true,
        }
    }
}

/// The catalog rows of the drift snapshot (`migrate::drift::normalise`), in one statement:
/// tables, columns (`pragma_table_xinfo`: type, nullability, default, position), foreign keys
/// (`pragma_foreign_key_list`), and the indexes, views and triggers `sqlite_master` holds
/// with their SQL (indexes SQLite made for a constraint have none and go with their table).
pub const SCHEMA_SNAPSHOT_SQL: &str = "\
SELECT 't', NULL, NULL, m.name, NULL, NULL, NULL, NULL FROM sqlite_master m
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
UNION ALL
SELECT 'c', NULL, m.name, p.name, p.type, CASE WHEN p.\"notnull\" THEN 'NOT NULL' ELSE 'NULL' END,
  p.dflt_value, CAST(p.cid + 1 AS TEXT)
FROM sqlite_master m, pragma_table_xinfo(m.name) p
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
UNION ALL
SELECT 'k', NULL, m.name, 'fk_' || f.\"table\" || '_' || f.id,
  'FOREIGN KEY (' || group_concat(f.\"from\", ', ') || ') REFERENCES ' || f.\"table\"
  || ' (' || group_concat(COALESCE(f.\"to\", ''), ', ') || ') ON UPDATE ' || f.on_update
  || ' ON DELETE ' || f.on_delete, NULL, NULL, NULL
FROM sqlite_master m, pragma_foreign_key_list(m.name) f
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
GROUP BY m.name, f.id
UNION ALL
SELECT CASE m.type WHEN 'index' THEN 'i' WHEN 'view' THEN 'v' ELSE 'g' END, NULL,
  CASE WHEN m.type = 'view' THEN NULL ELSE m.tbl_name END, m.name, m.sql, NULL, NULL, NULL
FROM sqlite_master m
WHERE m.type IN ('index', 'view', 'trigger') AND m.sql IS NOT NULL";
