//! PostgreSQL specifics: connecting, the advisory lock, catalog queries, DDL of shipgate's tables.
//!
//! Owns nothing that the other engines share; `backend` calls in here for SQL text and the
//! connection. The lock is a session advisory lock taken with `pg_try_advisory_lock(k1, k2)`
//! (polled, never blocking: a blocked waiter would deadlock `CREATE INDEX CONCURRENTLY`), keyed
//! by a hash of `shipgate:<database>:<schema>:<table>` so it never collides with sqlx's or
//! Rails' keys.

use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::backend::{Backend, DbError, Dialect, ErrorKind, Tables, Timeouts};
use crate::config::{DatabaseUrl, DeployInfo, EngineSettings};

/// How the lock check's error message starts (it fails as a cast, SQLSTATE 22P02).
pub const LOCK_LOST_MARK: &str = "shipgate: the migration lock is not held by this session";

fn options(
    url: &DatabaseUrl,
    settings: &EngineSettings,
    application_name: &str,
) -> Result<PgConnectOptions, DbError> {
    let opts = PgConnectOptions::from_str(&url.for_driver()).map_err(|e| DbError {
        kind: ErrorKind::Config,
        message: format!(
            "invalid PostgreSQL URL {}: {}",
            url.redacted(),
            crate::config::redact_message(&e.to_string())
        ),
        code: None,
        position: None,
    })?;
    // Session bounds travel in the startup packet: no extra round trip. The server's TCP
    // keepalives make it notice a client that vanished (host gone, network cut) within about a
    // minute instead of the operating system's two hours, so the session's transaction rolls
    // back and its lock goes with it.
    let statement_ms = settings.statement_timeout.map_or(0, |d| d.as_millis());
    Ok(opts
        .application_name(application_name)
        .options([
            (
                "lock_timeout",
                format!("{}", settings.lock_timeout.as_millis()),
            ),
            ("statement_timeout", format!("{statement_ms}")),
            ("tcp_keepalives_idle", "30".to_owned()),
            ("tcp_keepalives_interval", "10".to_owned()),
            ("tcp_keepalives_count", "3".to_owned()),
        ])
        .disable_statement_logging())
}

/// Opens the run's one dedicated connection.
pub async fn connect(
    url: &DatabaseUrl,
    settings: &EngineSettings,
    deploy: &DeployInfo,
) -> Result<PgConnection, DbError> {
    let opts = options(url, settings, &deploy.application_name())?;
    PgConnection::connect_with(&opts)
        .await
        .map_err(|e| DbError::from_connect(e, crate::config::Engine::Postgres))
}

/// The advisory lock's key, and the server session that took it.
#[derive(Debug, Clone)]
pub struct LockKey {
    k1: i32,
    k2: i32,
    /// The backend pid of the session that took (or tries to take) the lock.
    pub backend_pid: i64,
    /// When that session started, as the server prints it: with the pid, it names the session
    /// exactly (a pid alone could be reused by another session once this one is gone).
    pub backend_start: String,
}

/// Derives the lock key for this database, schema and history table.
pub async fn lock_key(
    backend: &mut Backend,
    settings: &EngineSettings,
) -> Result<LockKey, DbError> {
    // Before migrating, the same statement asks PostgreSQL 14+ to check every second during a
    // long statement whether the client is still there (`client_connection_check_interval`):
    // a migration whose shipgate was killed or cut off is then cancelled and rolled back at
    // once, instead of running on (and holding the lock) to its end. Older servers lack the
    // setting; the condition skips it there.
    let rows = backend
        .rows(
            "SELECT current_database(), current_schema(), CAST(pg_backend_pid() AS TEXT), \
             (SELECT set_config('client_connection_check_interval', '1000', false) \
              WHERE current_setting('server_version_num')::int >= 140000), \
             (SELECT CAST(backend_start AS TEXT) FROM pg_catalog.pg_stat_activity \
              WHERE pid = pg_backend_pid())",
        )
        .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let schema = settings.schema.clone().unwrap_or_else(|| get(1));
    let ident = format!(
        "shipgate:{}:{schema}:{}",
        get(0),
        settings.migrations_table()
    );
    let hash = Sha256::digest(ident.as_bytes());
    let half = |b: &[u8]| i32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    Ok(LockKey {
        k1: half(&hash[0..4]),
        k2: half(&hash[4..8]),
        backend_pid: get(2).parse().unwrap_or(0),
        backend_start: get(4),
    })
}

impl LockKey {
    /// One poll of the lock, with the pid of the backend it ran on: a different pid than the
    /// one [`lock_key`] saw means a transaction-pooling proxy moves this connection between
    /// server sessions, and a session lock taken that way would stay with a pooled backend.
    pub fn try_lock_sql(&self) -> String {
        format!(
            "SELECT CASE WHEN pg_try_advisory_lock({}, {}) THEN 't' ELSE 'f' END, CAST(pg_backend_pid() AS TEXT)",
            self.k1, self.k2
        )
    }

    /// What a transaction-pooling proxy looks like from here.
    pub fn pooled_message(&self, other_pid: &str) -> String {
        format!(
            "the connection moved between server sessions (backend pid {} then {other_pid}): a \
             transaction-pooling proxy (PgBouncer in transaction mode) sits between shipgate and \
             the database, and the migration lock, a session lock, cannot be held through it; \
             connect directly or through a session-mode pool",
            self.backend_pid
        )
    }

    /// Releases it; answers `t` when it was held.
    pub fn unlock_sql(&self) -> String {
        format!(
            "SELECT CASE WHEN pg_advisory_unlock({}, {}) THEN 't' ELSE 'f' END",
            self.k1, self.k2
        )
    }

    /// Who holds it: pid, application_name, client, connected since.
    pub fn holder_sql(&self) -> String {
        format!(
            "SELECT CAST(l.pid AS TEXT), a.application_name, COALESCE(host(a.client_addr), 'local socket'), \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.classid = {} AND l.objid = {} AND l.objsubid = 2 AND l.granted LIMIT 1",
            self.k1, self.k2
        )
    }

    /// A statement that fails, with a message starting [`LOCK_LOST_MARK`], unless it runs on
    /// the very server session that took the lock. A session lock cannot be lost while its
    /// session lives, so "same session" is "lock still ours". Sent in the same message as each
    /// migration, it costs no round trip, and being a plain expression (no PL/pgSQL block, no
    /// pg_locks scan) it costs next to nothing on the server. A transaction-pooling proxy shows
    /// up here: the next transaction runs on another backend.
    pub fn check_sql(&self) -> String {
        format!(
            // The message concatenates the current pid: a constant would be folded (and fail)
            // at plan time whatever the condition says.
            "SELECT CASE WHEN pg_catalog.pg_backend_pid() = {pid} THEN 1 ELSE CAST('{mark}: this transaction runs on backend pid ' \
             || pg_catalog.pg_backend_pid() || ', the lock was taken by backend pid {pid}; a transaction-pooling proxy (PgBouncer in \
             transaction mode) between shipgate and the database does this: connect directly or through a session-mode pool' AS int) END",
            pid = self.backend_pid,
            mark = LOCK_LOST_MARK,
        )
    }
}

/// `SET [LOCAL]` statements for a migration's bounds.
pub fn timeouts_sql(t: Timeouts, local: bool) -> String {
    let scope = if local { "LOCAL " } else { "" };
    let statement_ms = t.statement_timeout.map_or(0, |d| d.as_millis());
    format!(
        "SET {scope}lock_timeout = '{}ms';\nSET {scope}statement_timeout = '{statement_ms}ms';\n",
        t.lock_timeout.as_millis()
    )
}

/// DDL of shipgate's tables, idempotent.
pub fn create_tables(t: &Tables, schema: Option<&str>) -> String {
    let schema_ddl = schema
        .map(|s| format!("CREATE SCHEMA IF NOT EXISTS \"{s}\";\n"))
        .unwrap_or_default();
    format!(
        "{schema_ddl}\
CREATE TABLE IF NOT EXISTS {m} (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    state text NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'running', 'failed')),
    statements_done integer NOT NULL DEFAULT 0,
    error text,
    applied_at timestamptz NOT NULL DEFAULT now(),
    execution_ms bigint NOT NULL DEFAULT 0,
    applied_by text,
    deploy_id text,
    app_version text
);
CREATE TABLE IF NOT EXISTS {r} (
    id bigserial PRIMARY KEY,
    command text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome text CHECK (outcome IN ('succeeded', 'failed', 'aborted', 'nothing_to_do')),
    applied integer NOT NULL DEFAULT 0,
    error text,
    deploy_id text,
    host text,
    app_version text
);
CREATE TABLE IF NOT EXISTS {a} (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL,
    version text,
    actor text NOT NULL,
    reason text,
    before text,
    after text,
    deploy_id text
);
CREATE TABLE IF NOT EXISTS {p} (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    execution_ms bigint NOT NULL DEFAULT 0,
    applied_by text,
    deploy_id text,
    app_version text
);",
        m = t.migrations,
        r = t.runs,
        a = t.audit,
        p = t.repeatables
    )
}

/// The declared types of the `version` columns of the history and audit tables (NULL for a
/// missing table). `to_regclass` resolves each name exactly as the statements do (the
/// configured schema, or the search path).
pub fn version_types_sql(t: &Tables) -> String {
    let column = |table: &str| {
        format!(
            "(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = pg_catalog.to_regclass({}) AND a.attname = 'version' AND NOT a.attisdropped)",
            Dialect::Postgres.quote(table)
        )
    };
    format!("SELECT {}, {}", column(&t.migrations), column(&t.audit))
}

/// Whether a `version` column of this type holds versions as text.
pub fn is_text(data_type: &str) -> bool {
    data_type == "text"
}

/// Turns the `version` columns an older shipgate created (`bigint`) into text, in place: the
/// primary key and every row stay; one message, so one transaction.
pub fn version_as_text_sql(t: &Tables, migrations: bool, audit: bool) -> String {
    [(migrations, &t.migrations), (audit, &t.audit)]
        .into_iter()
        .filter(|(stale, _)| *stale)
        .map(|(_, table)| {
            format!(
                "ALTER TABLE {table} ALTER COLUMN version TYPE text USING CAST(version AS text);\n"
            )
        })
        .collect()
}

/// Ends the server session that took `key` from a second, short-lived connection, within
/// `bound` — that very session: pid and start time must both match.
pub async fn terminate(
    url: &DatabaseUrl,
    settings: &EngineSettings,
    key: &LockKey,
    bound: Duration,
) {
    let pid = key.backend_pid;
    let work = async {
        let opts = options(url, settings, "shipgate (abort)").ok()?;
        let mut conn = PgConnection::connect_with(&opts).await.ok()?;
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
             WHERE pid = {pid} AND CAST(backend_start AS TEXT) = '{}'",
            key.backend_start.replace('\'', "''")
        );
        // The executor's method on the concrete connection keeps this future `Send`.
        let done = sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&sql))
            .await
            .ok();
        let _ = conn.close().await;
        done
    };
    match tokio::time::timeout(bound, work).await {
        Ok(Some(_)) => tracing::info!(backend_pid = pid, "ended the interrupted migration's database session"),
        _ => tracing::warn!(backend_pid = pid, "could not end the interrupted migration's database session; the server ends it when it notices the closed connection"),
    }
}

/// The session blocking server session `pid` (the longest in its transaction first), as text
/// columns: pid, application, client address, state, milliseconds in that state and in its
/// transaction, and the lock `pid` waits for (a relation, or the lock's type). No row when
/// nothing blocks it.
pub fn wait_sql(pid: i64) -> String {
    let ms = |since: &str| {
        format!(
            "CAST(CAST(EXTRACT(EPOCH FROM clock_timestamp() - {since}) * 1000 AS BIGINT) AS TEXT)"
        )
    };
    format!(
        "SELECT CAST(b.pid AS TEXT), b.application_name, host(b.client_addr), b.state, {}, {}, \
         (SELECT COALESCE(CAST(CAST(w.relation AS pg_catalog.regclass) AS TEXT), w.locktype) \
          FROM pg_catalog.pg_locks w WHERE w.pid = {pid} AND NOT w.granted LIMIT 1) \
         FROM pg_catalog.pg_stat_activity b \
         WHERE b.pid = ANY(pg_catalog.pg_blocking_pids({pid})) \
         ORDER BY b.xact_start NULLS LAST LIMIT 1",
        ms("b.state_change"),
        ms("b.xact_start")
    )
}

/// A row of [`wait_sql`].
pub fn wait_from(row: &[Option<String>]) -> super::heartbeat::Wait {
    let get = |i: usize| row.get(i).cloned().flatten();
    let ms = |i: usize| get(i).and_then(|v| v.parse::<u64>().ok());
    super::heartbeat::Wait {
        lock: get(6),
        holder: get(0)
            .and_then(|p| p.parse().ok())
            .map(|pid| super::heartbeat::Holder {
                pid,
                application: get(1),
                client: get(2),
                state: get(3),
                state_ms: ms(4),
                xact_ms: ms(5),
            }),
        state: None,
        via: None,
    }
}

/// The catalog rows of the drift snapshot (`migrate::drift::normalise`), in one statement:
/// tables, columns (type, nullability, default or identity, position), constraints, indexes
/// that back no constraint (definition, validity), views, functions and procedures that no
/// extension owns, triggers, enums (labels in order), extensions and sequences (with the
/// table that owns them; identity sequences belong to their column), in the schemas of the
/// connection's search path. shipgate's own and other tools' tables are left out by the
/// caller, by name.
pub const SCHEMA_SNAPSHOT_SQL: &str = "\
WITH ns AS (
  SELECT n.oid, CAST(n.nspname AS text) AS nspname FROM pg_catalog.pg_namespace n
  WHERE n.nspname = ANY (pg_catalog.current_schemas(false))
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
)
SELECT 'S', CAST(pg_catalog.current_schema() AS text), NULL, NULL, NULL, NULL, NULL, NULL
UNION ALL
SELECT 't', ns.nspname, NULL, CAST(c.relname AS text), CAST(c.relkind AS text), NULL, NULL, NULL
FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f')
UNION ALL
SELECT 'c', ns.nspname, CAST(c.relname AS text), CAST(a.attname AS text),
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END,
  COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid),
    CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
      WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END),
  CAST(a.attnum AS text)
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN ns ON ns.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'k', ns.nspname, CAST(c.relname AS text), CAST(k.conname AS text),
  pg_catalog.pg_get_constraintdef(k.oid), NULL, NULL, NULL
FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN ns ON ns.oid = c.relnamespace
WHERE k.contype <> 'n'
UNION ALL
SELECT 'i', ns.nspname, CAST(t.relname AS text), CAST(ic.relname AS text),
  pg_catalog.pg_get_indexdef(i.indexrelid), CASE WHEN i.indisvalid THEN NULL ELSE 'no' END,
  NULL, NULL
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid JOIN ns ON ns.oid = t.relnamespace
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT 'v', ns.nspname, NULL, CAST(c.relname AS text), pg_catalog.pg_get_viewdef(c.oid),
  NULL, NULL, NULL
FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm')
UNION ALL
SELECT 'f', ns.nspname, NULL,
  CAST(p.proname AS text) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
  pg_catalog.pg_get_functiondef(p.oid), CAST(p.prokind AS text), NULL, NULL
FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
  WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
UNION ALL
SELECT 'g', ns.nspname, CAST(c.relname AS text), CAST(g.tgname AS text),
  pg_catalog.pg_get_triggerdef(g.oid), CASE WHEN g.tgenabled = 'D' THEN 'disabled' END,
  NULL, NULL
FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
JOIN ns ON ns.oid = c.relnamespace
WHERE NOT g.tgisinternal
UNION ALL
SELECT 'e', ns.nspname, NULL, CAST(t.typname AS text),
  (SELECT CAST(array_agg(e.enumlabel ORDER BY e.enumsortorder) AS text)
   FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), NULL, NULL, NULL
FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE t.typtype = 'e' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
  WHERE e.classid = 'pg_catalog.pg_type'::regclass AND e.objid = t.oid AND e.deptype = 'e')
UNION ALL
SELECT 'x', NULL, NULL, CAST(x.extname AS text), x.extversion, NULL, NULL, NULL
FROM pg_catalog.pg_extension x WHERE x.extname <> 'plpgsql'
UNION ALL
SELECT 'q', ns.nspname, CAST(o.relname AS text), CAST(c.relname AS text),
  pg_catalog.format_type(s.seqtypid, NULL), CAST(s.seqincrement AS text), NULL, NULL
FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN ns ON ns.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass
  AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a'
LEFT JOIN pg_catalog.pg_class o ON o.oid = d.refobjid
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i
  WHERE i.classid = 'pg_catalog.pg_class'::regclass AND i.objid = c.oid AND i.deptype = 'i')";

/// The INVALID indexes of the database (`pg_index.indisvalid = false`), as `schema.name`:
/// what a failed or killed `CREATE INDEX CONCURRENTLY` leaves behind.
pub const INVALID_INDEXES_SQL: &str =
    "SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_index i \
     JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE NOT i.indisvalid ORDER BY 1";

/// The INVALID index named `name` in the schema of `table` (a `to_regclass` text: the schema
/// the statement names, or the `search_path`'s first that has the table, as the server
/// resolves it), unless a build of it is in progress in another session: one row of its
/// schema and name, or none.
pub fn invalid_index_sql(table: &str, name: &str) -> String {
    let d = Dialect::Postgres;
    format!(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid AND c.relname = {} \
         AND c.relnamespace = (SELECT t.relnamespace FROM pg_catalog.pg_class t \
                               WHERE t.oid = pg_catalog.to_regclass({})) \
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p \
                         WHERE p.index_relid = c.oid)",
        d.quote(name),
        d.quote(table)
    )
}

/// Whether any session other than this one holds a granted lock on one of `tables`
/// (`to_regclass` texts; an index counts as its table): the fast path of the blocker check,
/// as cheap as `SELECT 1` (no join, no `pg_stat_activity`). One row when one does.
pub fn any_holder_sql(tables: &[String]) -> String {
    let d = Dialect::Postgres;
    let rels: Vec<String> = tables
        .iter()
        .map(|t| {
            let t = d.quote(t);
            format!(
                "CAST(pg_catalog.to_regclass({t}) AS oid), \
                 (SELECT x.indrelid FROM pg_catalog.pg_index x \
                  WHERE x.indexrelid = pg_catalog.to_regclass({t}))"
            )
        })
        .collect();
    format!(
        "SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'relation' AND l.granted \
         AND l.pid <> pg_backend_pid() AND l.relation IN ({}) LIMIT 1",
        rels.join(", ")
    )
}

/// The start of the message of the error [`look_sql`] raises.
pub const LOOK_MARK: &str =
    "shipgate: another session holds a lock on a table this migration locks";

/// [`any_holder_sql`] as a statement inside a migration's transaction that fails, with a
/// message starting [`LOOK_MARK`], when another session holds a lock on one of `tables`. The
/// message concatenates the current pid, so the cast is not folded (and raised) at plan time.
pub fn look_sql(tables: &[String]) -> String {
    format!(
        "SELECT CASE WHEN EXISTS ({}) THEN CAST('{LOOK_MARK}; backend pid ' || pg_catalog.pg_backend_pid() AS int) END",
        any_holder_sql(tables)
    )
}

/// The sessions other than this one holding a granted lock on any of `tables` (`to_regclass`
/// texts; an index counts as its table, a name that resolves to nothing is skipped): one row
/// per session and table, `table, pid, mode, application, client, state, state ms, xact ms`.
/// One statement, whatever the number of tables.
pub fn holders_sql(tables: &[String]) -> String {
    let d = Dialect::Postgres;
    let ms = |since: &str| {
        format!(
            "CAST(CAST(EXTRACT(EPOCH FROM clock_timestamp() - {since}) * 1000 AS BIGINT) AS TEXT)"
        )
    };
    let names: Vec<String> = tables.iter().map(|t| d.quote(t)).collect();
    format!(
        "SELECT r.name, CAST(l.pid AS TEXT), l.mode, a.application_name, host(a.client_addr), \
         a.state, {}, {} \
         FROM (SELECT t.name, COALESCE(x.indrelid, pg_catalog.to_regclass(t.name)) AS rel \
               FROM unnest(ARRAY[{}]::text[]) AS t(name) \
               LEFT JOIN pg_catalog.pg_index x ON x.indexrelid = pg_catalog.to_regclass(t.name)) r \
         JOIN pg_catalog.pg_locks l ON l.locktype = 'relation' AND l.granted AND l.relation = r.rel \
          AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
         JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.pid <> pg_backend_pid() \
         ORDER BY a.xact_start NULLS LAST, l.pid",
        ms("a.state_change"),
        ms("a.xact_start"),
        names.join(", ")
    )
}
