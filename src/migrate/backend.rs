//! One database connection for one run, behind an engine-neutral interface.
//!
//! Owns the connection (one dedicated connection per run, never pooled), the history,
//! run and audit tables, the migration lock, and executing scripts. What differs per engine
//! (SQL dialect, catalog queries, the lock primitive) comes from `postgres` and `sqlite`; what
//! does not (the shape of history rows, how a transactional migration and its history row are
//! sent together, error classification) lives here once. Nothing engine-specific — no sqlx row
//! or connection type — crosses this module's public surface.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use sqlx::{Connection, Row};

use super::plan::{History, HistoryRow, RepeatableRow, State};
use super::source::Version;
use super::{mysql, postgres, sqlite};
use crate::config::{DatabaseUrl, DeployInfo, Engine, EngineSettings};

/// What kind of database failure this is; the caller branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be made or was lost.
    Connection,
    /// The URL or connection settings are invalid: retrying cannot help.
    Config,
    /// A statement gave up waiting for a table lock (retried as a whole migration).
    LockTimeout,
    /// A statement ran past the statement timeout.
    StatementTimeout,
    /// The migration lock is no longer held by this session.
    LockLost,
    /// Anything else: the SQL failed.
    Query,
}

/// A database error, engine-neutral, with the server's message and code.
#[derive(Debug, Clone)]
pub struct DbError {
    /// Classification.
    pub kind: ErrorKind,
    /// The server's (or driver's) message.
    pub message: String,
    /// SQLSTATE (PostgreSQL) or result code (SQLite), when the server gave one.
    pub code: Option<String>,
    /// Where in what was sent the server found the error (PostgreSQL's position: 1-based, in
    /// characters; non-zero, which keeps `DbError` as small as it was); see [`DbError::at`].
    pub position: Option<std::num::NonZeroU32>,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} (code {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DbError {}

/// A place in a migration file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based, in characters; `None` when only the line is known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{c}", self.line),
            None => write!(f, "{}", self.line),
        }
    }
}

impl Location {
    /// The place of the 1-based character `position` of `text`, which starts at `start` of
    /// its file.
    pub fn within(text: &str, start: Location, position: usize) -> Location {
        let before: String = text.chars().take(position.saturating_sub(1)).collect();
        match before.rfind('\n') {
            Some(nl) => Location {
                line: start.line + before.matches('\n').count(),
                column: Some(before[nl + 1..].chars().count() + 1),
            },
            None => Location {
                line: start.line,
                column: Some(start.column.unwrap_or(1) + before.chars().count()),
            },
        }
    }
}

impl DbError {
    /// Where in the file the server found the error: `position` counted in `text` (the whole
    /// file, or one statement starting at `start`).
    pub fn at(&self, text: &str, start: Location) -> Option<Location> {
        self.position
            .map(|p| Location::within(text, start, p.get() as usize))
    }

    /// Whether this is the error of the look put in a migration's transaction by
    /// [`Backend::look_in_transaction`]: another session holds a lock on a table it locks.
    pub fn is_look(&self) -> bool {
        self.code.as_deref() == Some("22P02") && self.message.contains(postgres::LOOK_MARK)
    }
}

impl DbError {
    fn from_sqlx(err: sqlx::Error, engine: Engine) -> DbError {
        match err {
            sqlx::Error::Database(db) => {
                // MySQL's SQLSTATEs are coarse (HY000); its error numbers say what happened.
                let code = match db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    Some(my) => Some(my.number().to_string()),
                    None => db.code().map(|c| c.into_owned()),
                };
                let kind = match (engine, code.as_deref()) {
                    (Engine::Mysql, Some(c)) => mysql::classify(c),
                    (Engine::Postgres, Some("22P02"))
                        if db.message().contains(postgres::LOCK_LOST_MARK) =>
                    {
                        ErrorKind::LockLost
                    }
                    (Engine::Postgres, Some("55P03")) => ErrorKind::LockTimeout,
                    (Engine::Postgres, Some("57014")) => ErrorKind::StatementTimeout,
                    (Engine::Postgres, Some(c))
                        if c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03" =>
                    {
                        ErrorKind::Connection
                    }
                    // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
                    (Engine::Sqlite, Some(c))
                        if matches!(c.parse::<i32>().map(|n| n & 0xff), Ok(5 | 6)) =>
                    {
                        ErrorKind::LockTimeout
                    }
                    _ => ErrorKind::Query,
                };
                let mut message = db.message().to_owned();
                let mut position = None;
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    if let Some(sqlx::postgres::PgErrorPosition::Original(p)) = pg.position() {
                        position = u32::try_from(p).ok().and_then(std::num::NonZeroU32::new);
                    }
                    if let Some(detail) = pg.detail() {
                        message.push_str(&format!("; detail: {detail}"));
                    }
                    if let Some(hint) = pg.hint() {
                        message.push_str(&format!("; hint: {hint}"));
                    }
                }
                DbError {
                    kind,
                    message,
                    code,
                    position,
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => DbError {
                kind: ErrorKind::Connection,
                message: err.to_string(),
                code: None,
                position: None,
            },
            other => DbError {
                kind: ErrorKind::Query,
                message: other.to_string(),
                code: None,
                position: None,
            },
        }
    }

    /// A failed connection attempt. What the server (or the TLS handshake) refuses the same
    /// way on every attempt is a configuration error (exit 2 at once, with the server's
    /// reason): a database or role that does not exist, a wrong password, a setting out of
    /// range, TLS required on one side and absent on the other. Anything else (refused, reset,
    /// starting up, too many connections) may pass, and is waited out as an outage.
    pub(crate) fn from_connect(err: sqlx::Error, engine: Engine) -> DbError {
        let tls_config = matches!(&err, sqlx::Error::Tls(e) if {
            let m = e.to_string();
            m.contains("does not support TLS")
                || m.contains("TLS upgrade required")
                || m.contains("certificate")
        });
        let mut e = DbError::from_sqlx(err, engine);
        let refused = match (engine, e.code.as_deref()) {
            // invalid_catalog_name, invalid_authorization_specification, invalid_password;
            // data exception and syntax or access rule (a bad `options` setting).
            (Engine::Postgres, Some(c)) => {
                matches!(c, "3D000" | "28000" | "28P01")
                    || c.starts_with("22")
                    || c.starts_with("42")
            }
            // Access denied (user, password, database), unknown database, an authentication
            // method the client lacks, insecure transport refused.
            (Engine::Mysql, Some(c)) => {
                matches!(c, "1044" | "1045" | "1049" | "1251" | "1698" | "3159")
            }
            _ => false,
        };
        if refused || tls_config {
            e.kind = ErrorKind::Config;
            e.message = format!(
                "{} (the server refuses this the same way on every attempt: check the URL's database, user, password and TLS settings)",
                crate::config::redact_message(&e.message)
            );
        } else {
            e.kind = ErrorKind::Connection;
            e.message = crate::config::redact_message(&e.message);
        }
        e
    }

    pub(crate) fn query(message: impl Into<String>) -> DbError {
        DbError {
            kind: ErrorKind::Query,
            message: message.into(),
            code: None,
            position: None,
        }
    }
}

/// One table or index that exists in the database, with its size, for the release gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// An index (its figures are its table's) rather than a table.
    pub index: bool,
    /// Its name, without schema.
    pub name: String,
    /// Estimated rows; `None` when the engine does not keep an estimate (SQLite).
    pub rows: Option<i64>,
    /// Bytes on disk (tables: with indexes and TOAST); `None` when unknown (SQLite).
    pub bytes: Option<i64>,
}

/// A schema, database or column that exists in the database, for the release gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogObject {
    /// A schema (PostgreSQL).
    Schema(String),
    /// A database (a MySQL schema is one).
    Database(String),
    /// A column of a table, with its type as the server prints it.
    Column {
        /// The table, without schema.
        table: String,
        /// The column.
        column: String,
        /// Its type, e.g. `character varying(200)`.
        data_type: String,
    },
}

/// Who holds the migration lock, as far as the database can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    /// Server process (PostgreSQL) or OS process (SQLite) id.
    pub pid: Option<i64>,
    /// The holder's application_name (or shipgate's deploy id on SQLite).
    pub application: Option<String>,
    /// Client address or host.
    pub client: Option<String>,
    /// Since when (connection start on PostgreSQL, lock time on SQLite), RFC 3339.
    pub since: Option<String>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        write!(
            f,
            "pid {}, application {:?}, client {}, since {}",
            self.pid.map_or_else(|| "?".into(), |p| p.to_string()),
            or(&self.application),
            or(&self.client),
            or(&self.since)
        )
    }
}

/// The `error` of a history row whose down file is running statement by statement (or stopped
/// part-way): what an operator reading `status` needs to know.
pub const REVERTING: &str = "being reverted by `shipgate down` statement by statement; if this \
    row is still here the revert stopped part-way: finish or undo it by hand, then \
    `shipgate repair`";

/// Per-statement bounds for one migration: the session's, or the file's overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Wait for table locks.
    pub lock_timeout: Duration,
    /// Statement run time; `None` is off.
    pub statement_timeout: Option<Duration>,
}

/// Who applies a migration, written into its history row.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Version.
    pub version: &'a Version,
    /// Name.
    pub name: &'a str,
    /// Checksum of the up file.
    pub checksum: &'a str,
    /// Deploy metadata.
    pub deploy: &'a DeployInfo,
}

/// The row a migration of a `transaction_mode = all` release writes with it.
#[derive(Debug, Clone, Copy)]
pub enum BatchRow<'a> {
    /// A versioned migration's history row.
    Migration(&'a Record<'a>),
    /// A repeatable migration's row.
    Repeatable(&'a RepeatableRecord<'a>),
}

/// Who ran a repeatable migration, written into its row.
#[derive(Debug, Clone, Copy)]
pub struct RepeatableRecord<'a> {
    /// Name.
    pub name: &'a str,
    /// Checksum of the file that ran.
    pub checksum: &'a str,
    /// Deploy metadata.
    pub deploy: &'a DeployInfo,
}

/// A lock another session holds on a table a statement is about to lock.
#[derive(Debug, Clone)]
pub struct HeldLock {
    /// The table, as the statement names it, and the mode the statement takes.
    pub table: crate::pglock::TableLock,
    /// The mode the other session holds.
    pub held: crate::pglock::Mode,
    /// Who holds it.
    pub holder: super::heartbeat::Holder,
}

/// One audit row: baseline, repair, accept-checksum, down.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    /// What was done.
    pub action: &'a str,
    /// To which migration.
    pub version: Option<Version>,
    /// Why, as the operator said.
    pub reason: Option<&'a str>,
    /// The state before.
    pub before: Option<String>,
    /// The state after.
    pub after: Option<String>,
    /// Who.
    pub deploy: &'a DeployInfo,
}

/// A row of the audit table, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// When (RFC 3339).
    pub at: String,
    /// What was done.
    pub action: String,
    /// To which migration.
    pub version: Option<Version>,
    /// `host:pid`.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// State before.
    pub before: Option<String>,
    /// State after.
    pub after: Option<String>,
    /// The deploy it was part of.
    pub deploy_id: Option<String>,
}

/// How many `shipgate_runs` rows the status cache reads (for the status page's table).
pub const RECENT_RUNS: usize = 10;

/// What the status cache reads in one round trip.
#[derive(Debug, Clone, Default)]
pub struct StatusRows {
    /// History; `None` when the tables do not exist yet.
    pub history: Option<History>,
    /// The newest run.
    pub last_run: Option<RunRow>,
    /// The newest [`RECENT_RUNS`] runs, newest first (`last_run` is the first).
    pub recent_runs: Vec<RunRow>,
    /// The newest release (any command but `down`) that succeeded or had nothing to do.
    pub last_success: Option<RunRow>,
    /// The newest `down` that succeeded.
    pub last_down: Option<RunRow>,
    /// The lock holder, if held.
    pub lock_holder: Option<LockHolder>,
    /// Alembic's version table's rows, sorted, when they were asked for.
    pub alembic: Option<Vec<String>>,
    /// PostgreSQL's INVALID indexes (`schema.name`), left by failed or killed
    /// `CREATE INDEX CONCURRENTLY` builds.
    pub invalid_indexes: Vec<String>,
}

/// How a run ended, as stored in `shipgate_runs.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Everything pending was applied.
    Succeeded,
    /// A migration or a check failed.
    Failed,
    /// The process was stopped (SIGTERM/SIGINT).
    Aborted,
    /// Nothing was pending.
    NothingToDo,
}

impl RunOutcome {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Aborted => "aborted",
            RunOutcome::NothingToDo => "nothing_to_do",
        }
    }
}

/// A row of `shipgate_runs`: one release run, possibly written by another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    /// Row id.
    pub id: i64,
    /// `release` (or the command that wrote it).
    pub command: String,
    /// Start (RFC 3339).
    pub started_at: Option<String>,
    /// End (RFC 3339); `None` while it runs (or if its process died).
    pub finished_at: Option<String>,
    /// `succeeded`, `failed`, `aborted`, `nothing_to_do`; `None` while it runs.
    pub outcome: Option<String>,
    /// Migrations applied.
    pub applied: i64,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Deploy id.
    pub deploy_id: Option<String>,
    /// `host:pid` of the process that ran it.
    pub host: Option<String>,
    /// App version.
    pub app_version: Option<String>,
}

/// The SQL-level differences between engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
    Mysql,
}

impl Dialect {
    /// A string literal that is safe whatever the server's escaping settings.
    pub(crate) fn quote(self, s: &str) -> String {
        let s = s.replace('\0', "");
        match self {
            Dialect::Postgres => format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
            Dialect::Sqlite => format!("'{}'", s.replace('\'', "''")),
            // A hex literal means the same whatever sql_mode says about backslashes.
            Dialect::Mysql => format!("CONVERT(X'{}' USING utf8mb4)", hex::encode(s.as_bytes())),
        }
    }

    /// An expression as text (all reads go through text so rows decode the same everywhere).
    pub(crate) fn text(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CONVERT({expr} USING utf8mb4) COLLATE utf8mb4_bin"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// A text column as it is read back: on MySQL/MariaDB in one explicit character set and
    /// collation, so that a `UNION` of shipgate's tables (in the database's default collation)
    /// with `information_schema` (utf8mb3) and casts (the connection's collation) never mixes
    /// collations (error 1271 on servers whose defaults differ, e.g. Debian's MariaDB).
    pub(crate) fn str(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CONVERT({expr} USING utf8mb4) COLLATE utf8mb4_bin"),
            _ => expr.to_owned(),
        }
    }

    /// A quoted identifier.
    pub(crate) fn ident(self, name: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{name}`"),
            _ => format!("\"{name}\""),
        }
    }

    /// A version as history stores it: its canonical text ([`Version`]'s `Display`), quoted.
    fn version(self, v: &Version) -> String {
        self.quote(&v.to_string())
    }

    fn opt(self, s: Option<&str>) -> String {
        s.map_or_else(|| "NULL".into(), |s| self.quote(s))
    }

    fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "clock_timestamp()",
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ','now')",
            Dialect::Mysql => "UTC_TIMESTAMP(3)",
        }
    }

    fn time_text(self, column: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
            }
            Dialect::Sqlite => column.to_owned(),
            // %f is microseconds; keep milliseconds like the other engines.
            Dialect::Mysql => self.str(&format!(
                "CONCAT(LEFT(DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z')"
            )),
        }
    }

    /// Milliseconds since the transaction began, measured by the server, when it can tell.
    fn elapsed_ms(self) -> Option<&'static str> {
        match self {
            Dialect::Postgres => {
                // Since the message arrived: the migration's own time, also when it is one
                // message of a release-wide transaction (`now()` is the transaction's start).
                Some("CAST(EXTRACT(EPOCH FROM clock_timestamp() - statement_timestamp()) * 1000 AS bigint)")
            }
            Dialect::Sqlite | Dialect::Mysql => None,
        }
    }

    fn begin(self) -> &'static str {
        match self {
            Dialect::Postgres => "BEGIN",
            // Take the write lock up front, so a reader never has to be upgraded mid-migration.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Mysql => "START TRANSACTION",
        }
    }
}

/// About how many bytes of a migration file SQLite and MySQL get per message
/// ([`Backend::script_chunks`]): small enough that SQLite's copy of the rest of each message
/// per statement stays cheap, large enough that a file of many small statements takes few
/// round trips.
const CHUNK: usize = 16 * 1024;

/// The names of shipgate's tables, quoted and qualified for SQL.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub(crate) migrations: String,
    pub(crate) runs: String,
    pub(crate) audit: String,
    /// The history table's name, neither quoted nor qualified (for catalog lookups).
    pub(crate) migrations_name: String,
    /// The audit table's name, neither quoted nor qualified.
    pub(crate) audit_name: String,
    /// The configured schema (a database on MySQL), unquoted; `None`: the connection's.
    pub(crate) schema: Option<String>,
    dialect: Dialect,
    /// The repeatable migrations' table, quoted and qualified.
    pub(crate) repeatables: String,
}

impl Tables {
    fn new(settings: &EngineSettings, d: Dialect) -> Tables {
        let mut t = Tables {
            migrations: String::new(),
            runs: String::new(),
            audit: String::new(),
            repeatables: String::new(),
            migrations_name: format!("{}_migrations", settings.table_prefix),
            audit_name: format!("{}_audit", settings.table_prefix),
            schema: settings.schema.clone(),
            dialect: d,
        };
        t.migrations = t.qualified(&t.migrations_name);
        t.runs = t.qualified(&format!("{}_runs", settings.table_prefix));
        t.audit = t.qualified(&t.audit_name);
        t.repeatables = t.qualified(&format!("{}_repeatables", settings.table_prefix));
        t
    }

    /// `name` quoted and qualified like shipgate's tables.
    pub(crate) fn qualified(&self, name: &str) -> String {
        let table = self.dialect.ident(name);
        match &self.schema {
            Some(schema) => format!("{}.{table}", self.dialect.ident(schema)),
            None => table,
        }
    }
}

enum Conn {
    Postgres(sqlx::PgConnection),
    /// The connection, and the flag that interrupts its running statement.
    Sqlite(
        sqlx::SqliteConnection,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ),
    /// The connection, and whether the server is MariaDB (its statement timeout differs).
    Mysql(sqlx::MySqlConnection, bool),
}

/// An open connection to the database of one run.
pub struct Backend {
    conn: Conn,
    dialect: Dialect,
    tables: Tables,
    settings: EngineSettings,
    url: DatabaseUrl,
    /// This host's name as recorded in history, for the SQLite lock file.
    host: String,
    pg_lock: Option<postgres::LockKey>,
    mysql_lock: Option<mysql::LockName>,
    sqlite_lock: Option<sqlite::FileLock>,
    /// Set when the connection was lost or stayed silent past its bound: the protocol state is
    /// unknown, so every later call fails at once with this error instead of waiting again.
    lost: Option<DbError>,
    /// The session's `sql_mode` flags that change where a MySQL statement ends, once read.
    mysql_mode: Option<super::split::MysqlMode>,
    /// PostgreSQL: commit each migration's transaction without waiting for its WAL flush
    /// (`SET LOCAL synchronous_commit = off`); [`Backend::flush_commits`] makes them durable.
    fast_commits: bool,
    /// After a transaction committed under `fast_commits`: the statement that rewrites the row
    /// it wrote, in place, for [`Backend::flush_commits`].
    unflushed: Option<String>,
    /// The look before locking of the next migration transaction (PostgreSQL), sent in its
    /// message: see [`Backend::look_in_transaction`].
    look: Option<String>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("engine", &self.engine())
            .field("url", &self.url)
            .finish()
    }
}

impl Backend {
    /// Opens one connection (a single attempt; `apply::connect` owns the wait and backoff).
    pub async fn connect(
        url: &DatabaseUrl,
        settings: &EngineSettings,
        deploy: &DeployInfo,
    ) -> Result<Backend, DbError> {
        let engine = url.engine().map_err(DbError::query)?;
        // A driver may quote what it was given (a database name, a parameter) in its message:
        // every connect error passes through the URL's own scrubbing before anyone prints it.
        let scrub = |mut e: DbError| {
            e.message = url.scrub(&e.message);
            e
        };
        let conn = match engine {
            Engine::Postgres => Conn::Postgres(
                postgres::connect(url, settings, deploy)
                    .await
                    .map_err(scrub)?,
            ),
            Engine::Sqlite => {
                let (conn, stop) = sqlite::connect(url, settings).await.map_err(scrub)?;
                Conn::Sqlite(conn, stop)
            }
            Engine::Mysql => {
                let (conn, mariadb) = mysql::connect(url, settings).await.map_err(scrub)?;
                Conn::Mysql(conn, mariadb)
            }
        };
        let dialect = match engine {
            Engine::Postgres => Dialect::Postgres,
            Engine::Sqlite => Dialect::Sqlite,
            Engine::Mysql => Dialect::Mysql,
        };
        let mut backend = Backend {
            conn,
            dialect,
            tables: Tables::new(settings, dialect),
            settings: settings.clone(),
            url: url.clone(),
            host: deploy.host.clone(),
            pg_lock: None,
            mysql_lock: None,
            sqlite_lock: None,
            lost: None,
            mysql_mode: None,
            fast_commits: false,
            unflushed: None,
            look: None,
        };
        if let Some(sql) = settings.session_init.as_deref() {
            backend.exec(sql).await.map_err(|e| DbError {
                kind: ErrorKind::Config,
                message: format!("session_init failed: {e}"),
                code: e.code,
                position: None,
            })?;
        }
        Ok(backend)
    }

    /// The rules this connection's files are split by: the engine's, and on MySQL/MariaDB the
    /// session's `sql_mode` flags (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`), read once, after
    /// `session_init` (which may set it), and only when statements are to be found: the
    /// every-deploy no-op never asks.
    pub async fn split_rules(&mut self) -> Result<super::split::Rules, DbError> {
        let engine = self.engine();
        if engine == Engine::Mysql && self.mysql_mode.is_none() {
            let rows = self.rows("SELECT CAST(@@SESSION.sql_mode AS CHAR)").await?;
            let mode = first(&rows).unwrap_or_default();
            self.mysql_mode = Some(super::split::MysqlMode::from_sql_mode(&mode));
        }
        let server_version = match &self.conn {
            // Reported by the server when the connection starts: no round trip.
            Conn::Postgres(c) => c.server_version_num(),
            _ => None,
        };
        Ok(super::split::Rules {
            engine,
            mysql: self.mysql_mode.unwrap_or_default(),
            server_version,
        })
    }

    /// The engine behind this connection.
    pub fn engine(&self) -> Engine {
        match self.conn {
            Conn::Postgres(_) => Engine::Postgres,
            Conn::Sqlite(..) => Engine::Sqlite,
            Conn::Mysql(..) => Engine::Mysql,
        }
    }

    /// Runs a script of one or more statements as one simple-query message (one round trip),
    /// within the bound of shipgate's own statements.
    pub(crate) async fn exec(&mut self, sql: &str) -> Result<(), DbError> {
        let bound = self.internal_bound();
        self.exec_within(sql, bound).await
    }

    /// [`Backend::exec`] with an explicit client-side bound (`None`: wait as long as it takes).
    async fn exec_within(&mut self, sql: &str, bound: Option<Duration>) -> Result<(), DbError> {
        if let Some(e) = &self.lost {
            return Err(e.clone());
        }
        let engine = self.engine();
        let work = async {
            match &mut self.conn {
                // Calling the executor's method on a concrete `&mut Connection` (not the generic
                // `RawSql::execute`) keeps these futures provably `Send` for spawned tasks.
                Conn::Postgres(c) => sqlx::Executor::execute(&mut *c, sqlx::raw_sql(sql))
                    .await
                    .map(drop),
                Conn::Sqlite(c, _) => sqlx::Executor::execute(&mut *c, sqlx::raw_sql(sql))
                    .await
                    .map(drop),
                Conn::Mysql(c, _) => sqlx::Executor::execute(&mut *c, sqlx::raw_sql(sql))
                    .await
                    .map(drop),
            }
        };
        let result = within(bound, work).await;
        self.settle(result, engine)
    }

    /// Runs a query whose columns are all text (cast them in SQL) and returns its rows.
    pub(crate) async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DbError> {
        if let Some(e) = &self.lost {
            return Err(e.clone());
        }
        let engine = self.engine();
        let bound = self.internal_bound();
        let work = async {
            match &mut self.conn {
                Conn::Postgres(c) => sqlx::Executor::fetch_all(&mut *c, sqlx::raw_sql(sql))
                    .await
                    .map(|rows| rows.iter().map(texts).collect()),
                Conn::Sqlite(c, _) => sqlx::Executor::fetch_all(&mut *c, sqlx::raw_sql(sql))
                    .await
                    .map(|rows| rows.iter().map(texts).collect()),
                Conn::Mysql(c, _) => sqlx::Executor::fetch_all(&mut *c, sqlx::raw_sql(sql))
                    .await
                    .map(|rows| rows.iter().map(texts).collect()),
            }
        };
        let result = within(bound, work).await;
        self.settle(result, engine)
    }

    /// Maps a driver result, remembering a lost connection so that later calls fail at once.
    fn settle<T>(
        &mut self,
        result: Result<Result<T, sqlx::Error>, Duration>,
        engine: Engine,
    ) -> Result<T, DbError> {
        let error = match result {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => DbError::from_sqlx(e, engine),
            Err(bound) => DbError {
                kind: ErrorKind::Connection,
                message: format!(
                    "no answer from the database within {} (io_timeout beyond the statement's own bounds); the connection is treated as lost",
                    super::human(bound)
                ),
                code: None,
                position: None,
            },
        };
        if error.kind == ErrorKind::Connection {
            self.lost = Some(error.clone());
        }
        Err(error)
    }

    /// Whether the connection was lost (or went silent past its bound) during this run: its
    /// server session may still be alive, holding a transaction or the lock.
    pub fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    /// The client-side bound of shipgate's own statements (history, lock, progress, runs):
    /// `io_timeout` beyond `lock_timeout`. Only for network engines: a SQLite call cannot be
    /// stalled by a network, and abandoning one mid-statement would gain nothing.
    fn internal_bound(&self) -> Option<Duration> {
        match self.conn {
            Conn::Sqlite(..) => None,
            _ => self
                .settings
                .io_timeout
                .map(|io| io.saturating_add(self.settings.lock_timeout)),
        }
    }

    /// The client-side bound of a script of `statements` migration statements (plus shipgate's
    /// own around them): `io_timeout` beyond what the server's own bounds allow. Only when the
    /// server enforces a statement timeout (PostgreSQL, MariaDB): a migration without one may
    /// legitimately run for hours, and shipgate does not impose a limit the operator did not set.
    fn script_bound(&self, t: Timeouts, statements: usize) -> Option<Duration> {
        let enforced = match self.conn {
            Conn::Postgres(_) => true,
            Conn::Mysql(_, mariadb) => mariadb,
            Conn::Sqlite(..) => false,
        };
        let (true, Some(st), Some(io)) = (enforced, t.statement_timeout, self.settings.io_timeout)
        else {
            return None;
        };
        let per_statement = st.saturating_add(t.lock_timeout);
        let n = u32::try_from(statements.max(1)).unwrap_or(u32::MAX);
        Some(
            io.saturating_add(t.lock_timeout)
                .saturating_add(per_statement.saturating_mul(n)),
        )
    }

    /// The server's version string.
    pub async fn server_version(&mut self) -> Result<String, DbError> {
        let sql = match self.dialect {
            Dialect::Postgres => "SELECT current_setting('server_version')",
            Dialect::Sqlite => "SELECT sqlite_version()",
            Dialect::Mysql => "SELECT VERSION()",
        };
        let rows = self.rows(sql).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .unwrap_or_default())
    }

    /// The migration history, or `None` when the history table does not exist yet.
    /// One round trip; this is the every-deploy path.
    pub async fn read_history(&mut self) -> Result<Option<Vec<HistoryRow>>, DbError> {
        let columns = self.history_columns();
        self.history_query(&columns).await
    }

    /// History with only what planning needs (no times, durations or who), the every-deploy
    /// read: less for the server to format and for shipgate to decode. One statement: the
    /// versioned rows and the repeatables' checksums together (`UNION ALL`).
    ///
    /// A database whose tables an older shipgate created has no repeatables table until the
    /// next run that takes the lock creates it; until then the versioned rows are read on
    /// their own after the first statement fails (two round trips instead of one).
    pub async fn read_history_for_plan(&mut self) -> Result<Option<History>, DbError> {
        let d = self.dialect;
        // On MySQL every text column is read in one collation: a `UNION` of the two tables
        // must not mix theirs.
        let sql = format!(
            "SELECT 'm', {}, {}, {}, {}, {}, {} FROM {} \
             UNION ALL SELECT 'r', {}, {}, NULL, NULL, NULL, NULL FROM {}",
            d.text("version"),
            d.str("name"),
            d.str("checksum"),
            d.str("state"),
            d.text("statements_done"),
            d.str("error"),
            self.tables.migrations,
            d.str("name"),
            d.str("checksum"),
            self.tables.repeatables,
        );
        let rows = match self.rows(&sql).await {
            Ok(rows) => rows,
            Err(e) if self.is_missing_table(&e) => {
                let columns = format!(
                    "{}, name, checksum, state, {}, error",
                    d.text("version"),
                    d.text("statements_done"),
                );
                return Ok(self
                    .history_query(&columns)
                    .await?
                    .map(|migrations| History {
                        migrations,
                        repeatables: Vec::new(),
                    }));
            }
            Err(e) => return Err(e),
        };
        let mut history = History::default();
        for r in rows {
            match r.first().cloned().flatten().as_deref() {
                Some("r") => history.repeatables.push(repeatable_row(&r[1..])),
                _ => history.migrations.push(history_row(&r[1..])?),
            }
        }
        Ok(Some(history))
    }

    async fn history_query(&mut self, columns: &str) -> Result<Option<Vec<HistoryRow>>, DbError> {
        // Sorted here, not by the server: the version column is text (or, in a table an older
        // shipgate created, an integer), and text sorts `10` before `9` and `1.10` before `1.9`.
        let sql = format!("SELECT {columns} FROM {}", self.tables.migrations);
        let rows = match self.rows(&sql).await {
            Ok(rows) => rows,
            Err(e) if self.is_missing_table(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut history = rows
            .into_iter()
            .map(|r| history_row(&r))
            .collect::<Result<Vec<_>, _>>()?;
        history.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(Some(history))
    }

    /// Whether `e` says a table does not exist.
    pub(crate) fn is_missing_table(&self, e: &DbError) -> bool {
        match self.dialect {
            Dialect::Postgres => e.code.as_deref() == Some("42P01"),
            Dialect::Sqlite => e.message.contains("no such table"),
            Dialect::Mysql => e.code.as_deref() == Some(mysql::ER_NO_SUCH_TABLE),
        }
    }

    /// Creates shipgate's tables if they are missing, and moves tables an older shipgate
    /// created (an integer `version` column) to text versions in place, every row and key
    /// kept. Call under the lock: the every-deploy no-op never gets here. The type check
    /// travels in the message of the `CREATE` statements, so current tables cost no extra
    /// round trip; the conversion runs once.
    pub async fn ensure_tables(&mut self) -> Result<(), DbError> {
        let t = &self.tables;
        let (create, types, is_text): (String, String, fn(&str) -> bool) = match self.dialect {
            Dialect::Postgres => (
                postgres::create_tables(t, self.settings.schema.as_deref()),
                postgres::version_types_sql(t),
                postgres::is_text,
            ),
            Dialect::Sqlite => (
                sqlite::create_tables(t),
                sqlite::version_types_sql(t),
                sqlite::is_text,
            ),
            Dialect::Mysql => (
                mysql::create_tables(t),
                mysql::version_types_sql(t),
                mysql::is_text,
            ),
        };
        let create = create.trim_end().trim_end_matches(';');
        let rows = self.rows(&format!("{create};\n{types}")).await?;
        let row = rows.into_iter().next().unwrap_or_default();
        let stale = |i: usize| {
            row.get(i)
                .cloned()
                .flatten()
                .is_some_and(|data_type| !is_text(&data_type))
        };
        let (migrations, audit) = (stale(0), stale(1));
        if !migrations && !audit {
            return Ok(());
        }
        tracing::info!(
            history = migrations,
            audit,
            "storing versions as text: converting the version column of tables an older shipgate created"
        );
        let sql = match self.dialect {
            Dialect::Postgres => postgres::version_as_text_sql(&self.tables, migrations, audit),
            Dialect::Sqlite => sqlite::version_as_text_sql(&self.tables, migrations, audit),
            Dialect::Mysql => mysql::version_as_text_sql(&self.tables, migrations, audit),
        };
        self.exec_or_rollback(&sql).await
    }

    /// The database URL, for messages (its `Display` hides the password).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The server session that holds (or tries to take) the migration lock: PostgreSQL's
    /// backend pid, MySQL's connection id; `None` before the lock is asked for, on SQLite, and
    /// where the server did not report it.
    pub fn session_id(&self) -> Option<i64> {
        let id = match self.dialect {
            Dialect::Postgres => self.pg_lock.as_ref().map(|k| k.backend_pid),
            Dialect::Mysql => self.mysql_lock.as_ref().map(|l| l.connection_id),
            Dialect::Sqlite => None,
        };
        id.filter(|id| *id > 0)
    }

    /// What server session `session`'s statement waits for, read from this (second)
    /// connection: the lock and the session holding it (PostgreSQL), or what the server says
    /// the statement is doing while it waits for a lock (MySQL). `None` when it waits for none.
    pub async fn wait_of(
        &mut self,
        session: i64,
    ) -> Result<Option<super::heartbeat::Wait>, DbError> {
        match self.dialect {
            Dialect::Postgres => {
                let rows = self.rows(&postgres::wait_sql(session)).await?;
                Ok(rows.first().map(|row| postgres::wait_from(row)))
            }
            Dialect::Mysql => {
                let rows = self.rows(&mysql::wait_sql(session)).await?;
                let Some(wait) = first(&rows).and_then(mysql::wait_from) else {
                    return Ok(None);
                };
                // The best source this server has: an instrumentation that is off or absent
                // fails its statement, and the next source is asked.
                for (via, sql) in mysql::holder_sqls(session) {
                    match self.rows(&sql).await {
                        Ok(rows) => {
                            if let Some(row) = rows.first() {
                                return Ok(Some(mysql::with_holder(wait, via, row)));
                            }
                            if via == super::heartbeat::OPEN_TRANSACTIONS {
                                break;
                            }
                        }
                        Err(e) if e.kind == ErrorKind::Connection => return Err(e),
                        Err(e) => {
                            tracing::debug!(source = via, error = %e, "heartbeat: this source of lock holders is not available")
                        }
                    }
                }
                Ok(Some(wait))
            }
            Dialect::Sqlite => Ok(None),
        }
    }

    /// The INVALID indexes of the database (`pg_index.indisvalid = false`), as `schema.name`:
    /// what a failed or killed `CREATE INDEX CONCURRENTLY` leaves behind. Empty on the other
    /// engines, which have no such state.
    pub async fn invalid_indexes(&mut self) -> Result<Vec<String>, DbError> {
        if self.dialect != Dialect::Postgres {
            return Ok(Vec::new());
        }
        let rows = self.rows(postgres::INVALID_INDEXES_SQL).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    /// The INVALID index (schema, name) that `index`'s statement would find in its way: of its
    /// name, in the schema its table resolves to, and not being built by another session.
    pub async fn invalid_index(
        &mut self,
        index: &crate::pglock::ConcurrentIndex,
    ) -> Result<Option<(String, String)>, DbError> {
        let table = crate::pglock::TableLock {
            schema: index.schema.clone(),
            name: index.table.clone(),
            mode: crate::pglock::Mode::ShareUpdateExclusive,
        };
        let sql = postgres::invalid_index_sql(&table.regclass_text(), &index.name);
        let rows = self.rows(&sql).await?;
        Ok(rows.into_iter().next().and_then(|r| {
            let mut r = r.into_iter();
            Some((r.next().flatten()?, r.next().flatten()?))
        }))
    }

    /// `DROP INDEX CONCURRENTLY schema.name`, under the migration's bounds (outside a
    /// transaction, as the statement requires).
    pub async fn drop_index_concurrently(
        &mut self,
        schema: &str,
        name: &str,
        timeouts: Timeouts,
    ) -> Result<(), DbError> {
        let sql = format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
            crate::pglock::ident(schema),
            crate::pglock::ident(name)
        );
        self.exec_statement(&sql, timeouts).await
    }

    /// The other sessions holding a granted lock on any of `tables` (an index counts as its
    /// table; a table that does not exist has none), a cheap statement and, when it finds
    /// any, a second that names them: each with the table as
    /// `tables` names it, the mode held and who holds it. PostgreSQL only.
    pub async fn lock_holders(
        &mut self,
        tables: &[crate::pglock::TableLock],
    ) -> Result<Vec<HeldLock>, DbError> {
        if self.dialect != Dialect::Postgres || tables.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = tables.iter().map(|t| t.regclass_text()).collect();
        // Nobody else on these tables (the usual case): one cheap statement and done.
        if self
            .rows(&postgres::any_holder_sql(&names))
            .await?
            .is_empty()
        {
            return Ok(Vec::new());
        }
        let rows = self.rows(&postgres::holders_sql(&names)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let get = |i: usize| row.get(i).cloned().flatten();
                let ms = |i: usize| get(i).and_then(|v| v.parse::<u64>().ok());
                let name = get(0)?;
                let table = tables.iter().find(|t| t.regclass_text() == name)?.clone();
                Some(HeldLock {
                    table,
                    held: crate::pglock::Mode::from_pg_locks(&get(2)?)?,
                    holder: super::heartbeat::Holder {
                        pid: get(1)?.parse().ok()?,
                        application: get(3),
                        client: get(4),
                        state: get(5),
                        state_ms: ms(6),
                        xact_ms: ms(7),
                    },
                })
            })
            .collect())
    }

    /// Tries once to take the migration lock. On PostgreSQL a connection that turns out to be
    /// moved between server sessions (a transaction-pooling proxy) is a [`ErrorKind::Config`]
    /// error, and a lock taken in passing is freed by ending that session.
    pub async fn try_lock(&mut self) -> Result<bool, DbError> {
        match self.dialect {
            Dialect::Postgres => {
                let key = self.pg_key().await?;
                let rows = self.rows(&key.try_lock_sql()).await?;
                let row = rows.into_iter().next().unwrap_or_default();
                let got = row.first().cloned().flatten().as_deref() == Some("t");
                let pid = row.get(1).cloned().flatten().unwrap_or_default();
                // A pid the server did not report (0) cannot be compared: trust the lock.
                if key.backend_pid == 0 || pid == key.backend_pid.to_string() {
                    return Ok(got);
                }
                if got {
                    // Taken on a pooled backend this connection may never reach again: end
                    // that server session so the lock goes with it (the pooler reconnects).
                    let end = format!("SELECT pg_terminate_backend({pid})");
                    match self.rows(&end).await {
                        Ok(_) => {
                            tracing::warn!(backend_pid = %pid, "ended the pooled server session that took the migration lock")
                        }
                        Err(e) => {
                            tracing::error!(backend_pid = %pid, error = %e, "could not end the pooled server session that took the migration lock; it holds the lock until the pooler closes it")
                        }
                    }
                }
                Err(DbError {
                    kind: ErrorKind::Config,
                    message: key.pooled_message(&pid),
                    code: None,
                    position: None,
                })
            }
            Dialect::Sqlite => {
                if self.sqlite_lock.is_some() {
                    return Ok(true);
                }
                match sqlite::FileLock::try_acquire(&self.url, &self.host)? {
                    Some(lock) => {
                        self.sqlite_lock = Some(lock);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Dialect::Mysql => {
                let lock = self.mysql_name().await?;
                let rows = self.rows(&lock.try_lock_sql()).await?;
                Ok(first(&rows).as_deref() == Some("1"))
            }
        }
    }

    /// Who holds the lock now, if anyone can be seen holding it (this session included).
    pub async fn lock_holder(&mut self) -> Result<Option<LockHolder>, DbError> {
        match self.dialect {
            Dialect::Postgres => {
                let key = self.pg_key().await?;
                let rows = self.rows(&key.holder_sql()).await?;
                Ok(rows.first().map(|r| LockHolder {
                    pid: r.first().cloned().flatten().and_then(|p| p.parse().ok()),
                    application: r.get(1).cloned().flatten(),
                    client: r.get(2).cloned().flatten(),
                    since: r.get(3).cloned().flatten(),
                }))
            }
            Dialect::Sqlite => Ok(sqlite::FileLock::holder(&self.url)),
            Dialect::Mysql => {
                let lock = self.mysql_name().await?;
                let rows = self.rows(&lock.holder_sql()).await?;
                Ok(rows.first().map(|r| LockHolder {
                    pid: r.first().cloned().flatten().and_then(|p| p.parse().ok()),
                    application: r.get(1).cloned().flatten(),
                    client: r.get(2).cloned().flatten(),
                    since: r.get(3).cloned().flatten(),
                }))
            }
        }
    }

    async fn mysql_name(&mut self) -> Result<mysql::LockName, DbError> {
        if let Some(name) = &self.mysql_lock {
            return Ok(name.clone());
        }
        let name = mysql::lock_name(self, &self.settings.clone()).await?;
        self.mysql_lock = Some(name.clone());
        Ok(name)
    }

    async fn pg_key(&mut self) -> Result<postgres::LockKey, DbError> {
        if let Some(key) = &self.pg_lock {
            return Ok(key.clone());
        }
        let key = postgres::lock_key(self, &self.settings.clone()).await?;
        self.pg_lock = Some(key.clone());
        Ok(key)
    }

    /// Releases the lock; `Ok(false)` when it turned out not to be held.
    pub async fn unlock(&mut self) -> Result<bool, DbError> {
        match self.dialect {
            Dialect::Postgres => {
                let Some(key) = self.pg_lock.clone() else {
                    return Ok(false);
                };
                let rows = self.rows(&key.unlock_sql()).await?;
                Ok(first(&rows).as_deref() == Some("t"))
            }
            Dialect::Sqlite => Ok(self
                .sqlite_lock
                .take()
                .is_some_and(sqlite::FileLock::release)),
            Dialect::Mysql => {
                let Some(lock) = self.mysql_lock.clone() else {
                    return Ok(false);
                };
                let rows = self.rows(&lock.unlock_sql()).await?;
                Ok(first(&rows).as_deref() == Some("1"))
            }
        }
    }

    /// Checks that the lock is still ours (PostgreSQL: held by this very server session).
    pub async fn verify_lock(&mut self) -> Result<(), DbError> {
        match (&self.pg_lock, self.dialect) {
            (Some(key), Dialect::Postgres) => {
                let sql = key.check_sql();
                self.exec(&sql).await
            }
            (None, Dialect::Postgres) => Err(lost(
                "the migration lock was never taken on this connection",
            )),
            (_, Dialect::Sqlite) => match self.sqlite_lock {
                Some(_) => Ok(()),
                None => Err(lost("the migration lock file is not held by this process")),
            },
            (_, Dialect::Mysql) => {
                let Some(lock) = self.mysql_lock.clone() else {
                    return Err(lost(
                        "the migration lock was never taken on this connection",
                    ));
                };
                let rows = self.rows(&lock.check_sql()).await?;
                match first(&rows).as_deref() {
                    Some("1") => Ok(()),
                    _ => Err(lost(&format!(
                        "the migration lock {} is not held by this connection (id {}) any more",
                        lock.name, lock.connection_id
                    ))),
                }
            }
        }
    }

    /// Whether `script` and its history row can commit atomically. On MySQL only a file of data
    /// changes can ([`split::mysql::data_only`](super::split::mysql::data_only)): DDL and the
    /// other statements that commit implicitly would commit half of it, so such a file runs
    /// statement by statement with progress.
    pub fn atomic(&self, script: &super::source::Script) -> bool {
        self.dialect != Dialect::Mysql || super::split::mysql::data_only(&script.statements)
    }

    /// The tables (and, on PostgreSQL and SQLite, indexes) that exist now, with size estimates,
    /// in one query. PostgreSQL estimates rows as the planner does (rows per page from the last
    /// ANALYZE times the current pages; never analyzed: 64 bytes a row) and sizes with
    /// `pg_total_relation_size`; MySQL reads `information_schema.TABLES`; SQLite has no
    /// estimates, so its sizes are unknown.
    pub async fn relations(&mut self) -> Result<Vec<Relation>, DbError> {
        let sql = match self.dialect {
            Dialect::Postgres => concat!(
                "SELECT CASE WHEN c.relkind IN ('i', 'I') THEN 'i' ELSE 't' END, c.relname, ",
                "CAST(CAST(CASE WHEN t.relpages > 0 AND t.reltuples >= 0 ",
                "THEN t.reltuples / t.relpages * (pg_relation_size(t.oid) / current_setting('block_size')::bigint) ",
                "ELSE pg_relation_size(t.oid) / 64 END AS bigint) AS text), ",
                "CAST(pg_total_relation_size(t.oid) AS text) ",
                "FROM pg_catalog.pg_class c ",
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ",
                "LEFT JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid ",
                "JOIN pg_catalog.pg_class t ON t.oid = COALESCE(x.indrelid, c.oid) ",
                "WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I') ",
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ",
                "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
            ),
            Dialect::Mysql => concat!(
                "SELECT 't', TABLE_NAME, CAST(TABLE_ROWS AS CHAR), ",
                "CAST(COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) AS CHAR) ",
                "FROM information_schema.TABLES ",
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
            ),
            Dialect::Sqlite => concat!(
                "SELECT CASE type WHEN 'index' THEN 'i' ELSE 't' END, name, NULL, NULL ",
                "FROM sqlite_master WHERE type IN ('table', 'index') ",
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ),
        };
        let rows = self.rows(sql).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let get = |i: usize| r.get(i).cloned().flatten();
                let int = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
                Some(Relation {
                    index: get(0).as_deref() == Some("i"),
                    name: get(1)?,
                    rows: int(2),
                    bytes: int(3),
                })
            })
            .collect())
    }

    /// A script's statements, as this engine splits them (the set was read for this engine).
    pub fn statements<'s>(
        &self,
        script: &'s super::source::Script,
    ) -> &'s [super::split::Statement] {
        &script.statements
    }

    /// The SQL of a script run in one transaction, in pieces of whole statements of about
    /// [`CHUNK`] bytes. SQLite copies the rest of the text each time it prepares a statement,
    /// so one message of a whole file costs the square of its size; MySQL refuses a message
    /// beyond `max_allowed_packet` and does not know the client's `DELIMITER` lines, so its
    /// pieces are the statements joined. PostgreSQL takes the file as one message.
    fn script_chunks<'s>(
        &self,
        script: &'s super::source::Script,
    ) -> Vec<std::borrow::Cow<'s, str>> {
        use std::borrow::Cow;
        let engine = match self.dialect {
            Dialect::Postgres => return vec![Cow::Borrowed(&script.sql)],
            Dialect::Sqlite => Engine::Sqlite,
            Dialect::Mysql => Engine::Mysql,
        };
        let mut chunks = Vec::new();
        if engine == Engine::Sqlite {
            // Slices of the file's own bytes, cut just after a statement's terminator.
            let mut start = 0;
            for (_, span) in super::split::spanned(&script.sql, engine) {
                if span.end - start >= CHUNK {
                    chunks.push(Cow::Borrowed(&script.sql[start..span.end]));
                    start = span.end;
                }
            }
            if start < script.sql.len() {
                chunks.push(Cow::Borrowed(&script.sql[start..]));
            }
            return chunks;
        }
        let mut chunk = String::new();
        for s in &script.statements {
            if !chunk.is_empty() {
                // A statement may end in a line comment; MySQL refuses an empty statement.
                chunk.push_str("\n;\n");
            }
            chunk.push_str(&s.sql);
            if chunk.len() >= CHUNK {
                chunks.push(Cow::Owned(std::mem::take(&mut chunk)));
            }
        }
        if !chunk.is_empty() {
            chunks.push(Cow::Owned(chunk));
        }
        chunks
    }

    /// Runs `script` and then `tail` (shipgate's own bookkeeping) in one transaction, and
    /// rolls back on error. PostgreSQL: one message, `BEGIN; lock check; file; tail; COMMIT`.
    /// SQLite and MySQL: the same transaction in several messages ([`Backend::script_chunks`]);
    /// on MySQL, whose session timeouts cannot be local to a transaction, with the lock
    /// verified first and the file's timeouts set before and reset after.
    async fn run_transaction(
        &mut self,
        script: &super::source::Script,
        timeouts: Timeouts,
        tail: &str,
    ) -> Result<(), DbError> {
        let bound = self.script_bound(timeouts, script.statements.len());
        if self.dialect == Dialect::Postgres {
            let look = self.look.take();
            let (batch, offset) =
                self.transaction_batch(&script.sql, timeouts, look.as_deref(), tail);
            let result = self.exec_within(&batch, bound).await;
            if result.is_err() {
                self.rollback().await;
            }
            return result.map_err(|e| within_file(e, offset, &script.sql));
        }
        let mysql = self.dialect == Dialect::Mysql;
        let custom = timeouts != self.default_timeouts();
        if mysql {
            self.verify_lock().await?;
        }
        if custom && mysql {
            self.set_session_timeouts(timeouts).await?;
        }
        let mut head = format!("{};\n", self.dialect.begin());
        if custom && !mysql {
            head.push_str(&self.session_timeouts(timeouts, true));
        }
        let mut result = self.exec(&head).await;
        for chunk in self.script_chunks(script) {
            if result.is_err() {
                break;
            }
            result = self.exec_within(&chunk, bound).await;
        }
        if result.is_ok() {
            result = self.exec(&format!("{tail};\nCOMMIT")).await;
        }
        if result.is_err() {
            self.rollback().await;
        }
        if custom && mysql {
            let reset = self.reset_session_timeouts().await;
            result?;
            return reset;
        }
        result
    }

    fn session_timeouts(&self, t: Timeouts, local: bool) -> String {
        match self.dialect {
            Dialect::Postgres => postgres::timeouts_sql(t, local),
            Dialect::Sqlite => sqlite::timeouts_sql(t),
            Dialect::Mysql => mysql::timeouts_sql(t, matches!(self.conn, Conn::Mysql(_, true))),
        }
    }

    fn default_timeouts(&self) -> Timeouts {
        Timeouts {
            lock_timeout: self.settings.lock_timeout,
            statement_timeout: self.settings.statement_timeout,
        }
    }

    fn insert_applied_sql(&self, r: &Record<'_>, state: State, execution_ms: &str) -> String {
        let d = self.dialect;
        format!(
            "INSERT INTO {} (version, name, checksum, state, statements_done, applied_at, execution_ms, applied_by, deploy_id, app_version) \
             VALUES ({}, {}, {}, '{}', 0, {}, {}, {}, {}, {})",
            self.tables.migrations,
            d.version(r.version),
            d.quote(r.name),
            d.quote(r.checksum),
            state.as_str(),
            d.now(),
            execution_ms,
            d.quote(&r.deploy.applied_by()),
            d.opt(r.deploy.deploy_id.as_deref()),
            d.opt(r.deploy.app_version.as_deref()),
        )
    }

    /// Applies a script and writes its history row in one transaction, sent as one message:
    /// `BEGIN; timeouts; lock check; <file>; INSERT history; COMMIT`. On error the transaction
    /// is rolled back before returning.
    pub async fn apply_in_transaction(
        &mut self,
        script: &super::source::Script,
        record: &Record<'_>,
        timeouts: Timeouts,
    ) -> Result<(), DbError> {
        let table = self.tables.migrations.clone();
        let key = format!("version = {}", self.dialect.version(record.version));
        self.run_recorded(script, timeouts, (&table, &key), |b, ms| {
            b.insert_applied_sql(record, State::Applied, ms)
        })
        .await
    }

    /// Runs a repeatable migration and records its run (inserted, or its row updated) in one
    /// transaction, as [`Backend::apply_in_transaction`] does for a versioned one.
    pub async fn apply_repeatable_in_transaction(
        &mut self,
        script: &super::source::Script,
        record: &RepeatableRecord<'_>,
        timeouts: Timeouts,
    ) -> Result<(), DbError> {
        let table = self.tables.repeatables.clone();
        let key = format!("name = {}", self.dialect.quote(record.name));
        self.run_recorded(script, timeouts, (&table, &key), |b, ms| {
            b.upsert_repeatable_sql(record, ms)
        })
        .await
    }

    /// Records the run of a repeatable migration that ran statement by statement.
    pub async fn record_repeatable(
        &mut self,
        record: &RepeatableRecord<'_>,
        execution_ms: i64,
    ) -> Result<(), DbError> {
        let sql = self.upsert_repeatable_sql(record, &execution_ms.to_string());
        self.exec(&sql).await
    }

    /// `script` and the row `record` writes (given the SQL of its execution time) in one
    /// transaction. An engine that cannot time its own transaction gets the time written into
    /// the row of `table` that `key` selects after the commit.
    async fn run_recorded(
        &mut self,
        script: &super::source::Script,
        timeouts: Timeouts,
        (table, key): (&str, &str),
        record: impl FnOnce(&Backend, &str) -> String,
    ) -> Result<(), DbError> {
        let elapsed = self.dialect.elapsed_ms();
        let tail = record(self, elapsed.unwrap_or("0"));
        let started = std::time::Instant::now();
        self.run_transaction(script, timeouts, &tail).await?;
        if self.fast_commits {
            self.unflushed = Some(format!(
                "UPDATE {table} SET execution_ms = execution_ms WHERE {key}"
            ));
        }
        if elapsed.is_none() {
            let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let update = format!("UPDATE {table} SET execution_ms = {ms} WHERE {key}");
            if let Err(e) = self.exec(&update).await {
                tracing::warn!(file = %script.path.display(), error = %e, "could not record the execution time");
            }
        }
        Ok(())
    }

    /// The row of a repeatable migration's run, inserted or replacing the last one.
    fn upsert_repeatable_sql(&self, r: &RepeatableRecord<'_>, execution_ms: &str) -> String {
        let d = self.dialect;
        let update = [
            "checksum",
            "applied_at",
            "execution_ms",
            "applied_by",
            "deploy_id",
            "app_version",
        ];
        let set: Vec<String> = match d {
            Dialect::Mysql => update
                .iter()
                .map(|c| format!("{c} = VALUES({c})"))
                .collect(),
            _ => update
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect(),
        };
        let conflict = match d {
            Dialect::Mysql => "ON DUPLICATE KEY UPDATE",
            _ => "ON CONFLICT (name) DO UPDATE SET",
        };
        format!(
            "INSERT INTO {} (name, checksum, applied_at, execution_ms, applied_by, deploy_id, app_version) \
             VALUES ({}, {}, {}, {}, {}, {}, {}) {conflict} {}",
            self.tables.repeatables,
            d.quote(r.name),
            d.quote(r.checksum),
            d.now(),
            execution_ms,
            d.quote(&r.deploy.applied_by()),
            d.opt(r.deploy.deploy_id.as_deref()),
            d.opt(r.deploy.app_version.as_deref()),
            set.join(", "),
        )
    }

    /// `BEGIN; [timeouts;] [lock check;] [look;] <sql> ; <tail>; COMMIT` — one message, one
    /// round trip (PostgreSQL).
    /// The batch, and how many characters precede the file's SQL in it.
    fn transaction_batch(
        &self,
        sql: &str,
        timeouts: Timeouts,
        look: Option<&str>,
        tail: &str,
    ) -> (String, usize) {
        let mut batch = String::with_capacity(sql.len() + tail.len() + 512);
        batch.push_str(self.dialect.begin());
        batch.push_str(";\n");
        if self.fast_commits && self.dialect == Dialect::Postgres {
            batch.push_str("SET LOCAL synchronous_commit = off;\n");
        }
        if timeouts != self.default_timeouts() {
            batch.push_str(&self.session_timeouts(timeouts, true));
        }
        if let (Some(key), Dialect::Postgres) = (&self.pg_lock, self.dialect) {
            batch.push_str(&key.check_sql());
            batch.push_str(";\n");
        }
        if let Some(look) = look {
            batch.push_str(look);
            batch.push_str(";\n");
        }
        let offset = batch.chars().count();
        batch.push_str(sql);
        // A file may end in a line comment; start the appended statements on a new line.
        batch.push_str("\n;\n");
        batch.push_str(tail);
        batch.push_str(";\nCOMMIT;");
        (batch, offset)
    }

    async fn rollback(&mut self) {
        if let Err(e) = self.exec("ROLLBACK").await {
            tracing::debug!(error = %e, "rollback after a failed migration");
        }
    }

    /// Commits each later migration transaction (PostgreSQL) without waiting for its WAL to
    /// reach disk, or, `false`, waits again as the session's `synchronous_commit` says. A
    /// transaction so committed is atomic like any other — a crash loses it whole, history row
    /// included — and WAL is flushed in order, so [`Backend::flush_commits`] after the last one
    /// makes every one before it durable. No effect on the other engines.
    pub fn fast_commits(&mut self, on: bool) {
        self.fast_commits = on && self.dialect == Dialect::Postgres;
    }

    /// Puts the look before locking for `tables` into the next migration transaction's own
    /// message (PostgreSQL; nothing elsewhere or without tables), after `BEGIN` and before the
    /// file's first statement: when another session holds a granted lock on one of them, the
    /// transaction fails there, before it has asked for any lock, with an error that
    /// [`DbError::is_look`] recognises; the caller then rolls back (done), looks properly
    /// (who, how long: `lock_holders`) and runs the migration again without it. The usual case,
    /// nobody on those tables, costs no round trip and no transaction of its own. Applies to the
    /// next transaction only.
    pub fn look_in_transaction(&mut self, tables: &[crate::pglock::TableLock]) {
        self.look = (self.dialect == Dialect::Postgres && !tables.is_empty()).then(|| {
            let names: Vec<String> = tables.iter().map(|t| t.regclass_text()).collect();
            postgres::look_sql(&names)
        });
    }

    /// Waits until every transaction committed under [`Backend::fast_commits`] is as durable as
    /// the session's `synchronous_commit` makes a commit (flushed; on a synchronous standby too
    /// when so configured): one transaction rewrites the last such migration's history row as
    /// it is and commits at the session's setting, and its commit record is flushed only after
    /// every WAL record before it. It must write: PostgreSQL flushes nothing at the commit of a
    /// transaction that wrote no WAL, even one that took a transaction id. Nothing to do when
    /// no such commit is pending.
    pub async fn flush_commits(&mut self) -> Result<(), DbError> {
        let Some(rewrite) = self.unflushed.clone() else {
            return Ok(());
        };
        self.exec(&rewrite).await?;
        self.unflushed = None;
        Ok(())
    }

    /// Opens the one transaction of a `transaction_mode = all` release (SQLite: with the write
    /// lock taken at once). Each migration then goes in with [`Backend::apply_in_batch`].
    pub async fn begin_batch(&mut self) -> Result<(), DbError> {
        let begin = format!("{};", self.dialect.begin());
        self.exec(&begin).await
    }

    /// Commits the release's transaction: every migration in it and their history rows at once.
    pub async fn commit_batch(&mut self) -> Result<(), DbError> {
        self.exec("COMMIT").await
    }

    /// Rolls the release's transaction back: nothing of it remains.
    pub async fn rollback_batch(&mut self) {
        self.rollback().await;
    }

    /// Runs `script` and writes its row (history, or a repeatable's) inside the release's open
    /// transaction ([`Backend::begin_batch`]), without committing. PostgreSQL: one message, the
    /// file's bounds set `LOCAL` (every time, so one file's directive never reaches the next),
    /// the lock check, the file, the row. On error the caller rolls the whole transaction back.
    pub async fn apply_in_batch(
        &mut self,
        script: &super::source::Script,
        row: BatchRow<'_>,
        timeouts: Timeouts,
    ) -> Result<(), DbError> {
        self.run_in_batch(script, timeouts, |b, ms| match row {
            BatchRow::Migration(r) => b.insert_applied_sql(r, State::Applied, ms),
            BatchRow::Repeatable(r) => b.upsert_repeatable_sql(r, ms),
        })
        .await
    }

    async fn run_in_batch(
        &mut self,
        script: &super::source::Script,
        timeouts: Timeouts,
        record: impl FnOnce(&Backend, &str) -> String,
    ) -> Result<(), DbError> {
        let bound = self.script_bound(timeouts, script.statements.len());
        if self.dialect == Dialect::Postgres {
            let mut message = self.session_timeouts(timeouts, true);
            if let Some(key) = &self.pg_lock {
                message.push_str(&key.check_sql());
                message.push_str(";\n");
            }
            let offset = message.chars().count();
            message.push_str(&script.sql);
            message.push_str("\n;\n");
            message.push_str(&record(self, self.dialect.elapsed_ms().unwrap_or("0")));
            message.push(';');
            let result = self.exec_within(&message, bound).await;
            return result.map_err(|e| within_file(e, offset, &script.sql));
        }
        // SQLite: the write lock is held since BEGIN IMMEDIATE, so no busy wait can come up;
        // the time is measured here and written with the row.
        let started = std::time::Instant::now();
        for chunk in self.script_chunks(script) {
            self.exec_within(&chunk, bound).await?;
        }
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let row = record(self, &ms.to_string());
        self.exec(&row).await
    }

    /// Writes the `running` row of a no-transaction migration (replacing nothing: the plan
    /// guarantees there is no row for this version).
    pub async fn start_untracked(&mut self, record: &Record<'_>) -> Result<(), DbError> {
        let sql = self.insert_applied_sql(record, State::Running, "0");
        self.exec(&sql).await
    }

    /// Sets per-session timeouts for the statements of a no-transaction migration.
    pub async fn set_session_timeouts(&mut self, t: Timeouts) -> Result<(), DbError> {
        let sql = self.session_timeouts(t, false);
        if sql.is_empty() {
            return Ok(());
        }
        self.exec(&sql).await
    }

    /// Restores the session's default timeouts.
    pub async fn reset_session_timeouts(&mut self) -> Result<(), DbError> {
        let t = self.default_timeouts();
        self.set_session_timeouts(t).await
    }

    /// Marks an applied migration dirty before its down file runs statement by statement: a
    /// crash or failure part-way must not leave it looking applied. `statements_done` then
    /// counts statements of the down file; on success the row is removed ([`Self::forget`]).
    pub async fn start_untracked_revert(&mut self, version: &Version) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "UPDATE {} SET state = 'running', statements_done = 0, error = {} WHERE version = {version}",
            self.tables.migrations,
            self.dialect.quote(REVERTING)
        );
        self.exec(&sql).await
    }

    /// Records that `done` statements of a no-transaction migration have committed.
    pub async fn record_progress(&mut self, version: &Version, done: usize) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "UPDATE {} SET statements_done = {done} WHERE version = {version}",
            self.tables.migrations
        );
        self.exec(&sql).await
    }

    /// Flips a no-transaction migration to applied.
    pub async fn finish_untracked(
        &mut self,
        version: &Version,
        execution_ms: i64,
    ) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "UPDATE {} SET state = 'applied', error = NULL, execution_ms = {execution_ms}, applied_at = {} WHERE version = {version}",
            self.tables.migrations,
            self.dialect.now()
        );
        self.exec(&sql).await
    }

    /// Marks a no-transaction migration failed, keeping its progress, with the error.
    pub async fn fail_untracked(&mut self, version: &Version, error: &str) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "UPDATE {} SET state = 'failed', error = {} WHERE version = {version}",
            self.tables.migrations,
            self.dialect.quote(error)
        );
        self.exec(&sql).await
    }

    /// Reverts one migration: runs the down script and deletes its history row, with an audit
    /// row, in one transaction.
    pub async fn revert_in_transaction(
        &mut self,
        script: &super::source::Script,
        version: &Version,
        audit: &Audit<'_>,
        timeouts: Timeouts,
    ) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let tail = format!(
            "DELETE FROM {} WHERE version = {version};\n{}",
            self.tables.migrations,
            self.audit_sql(audit)
        );
        self.run_transaction(script, timeouts, &tail).await
    }

    /// Deletes a history row (after a no-transaction down script ran), with its audit row.
    pub async fn forget(&mut self, version: &Version, audit: &Audit<'_>) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "{};\nDELETE FROM {} WHERE version = {version};\n{};\nCOMMIT;",
            self.dialect.begin(),
            self.tables.migrations,
            self.audit_sql(audit)
        );
        self.exec_or_rollback(&sql).await
    }

    /// Runs one statement of a no-transaction script on its own, under the migration's bounds.
    pub async fn exec_statement(&mut self, sql: &str, timeouts: Timeouts) -> Result<(), DbError> {
        let bound = self.script_bound(timeouts, 1);
        self.exec_within(sql, bound).await
    }

    /// Sets a dirty row's state to applied (repair), with its audit row.
    pub async fn mark_applied(
        &mut self,
        version: &Version,
        audit: &Audit<'_>,
    ) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "{};\nUPDATE {} SET state = 'applied', error = NULL WHERE version = {version};\n{};\nCOMMIT;",
            self.dialect.begin(),
            self.tables.migrations,
            self.audit_sql(audit)
        );
        self.exec_or_rollback(&sql).await
    }

    /// Records a new checksum for an applied migration (repair), with its audit row.
    pub async fn accept_checksum(
        &mut self,
        version: &Version,
        checksum: &str,
        audit: &Audit<'_>,
    ) -> Result<(), DbError> {
        let version = self.dialect.version(version);
        let sql = format!(
            "{};\nUPDATE {} SET checksum = {} WHERE version = {version};\n{};\nCOMMIT;",
            self.dialect.begin(),
            self.tables.migrations,
            self.dialect.quote(checksum),
            self.audit_sql(audit)
        );
        self.exec_or_rollback(&sql).await
    }

    /// Records migrations as applied without running them (baseline), with one audit row.
    pub async fn record_baseline(
        &mut self,
        records: &[Record<'_>],
        audit: &Audit<'_>,
    ) -> Result<(), DbError> {
        let mut sql = format!("{};\n", self.dialect.begin());
        for r in records {
            sql.push_str(&self.insert_applied_sql(r, State::Applied, "0"));
            sql.push_str(";\n");
        }
        sql.push_str(&self.audit_sql(audit));
        sql.push_str(";\nCOMMIT;");
        self.exec_or_rollback(&sql).await
    }

    async fn exec_or_rollback(&mut self, sql: &str) -> Result<(), DbError> {
        match self.exec(sql).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.rollback().await;
                Err(e)
            }
        }
    }

    /// Writes one audit row on its own (a revert another tool ran, recorded afterwards).
    pub async fn record_audit(&mut self, audit: &Audit<'_>) -> Result<(), DbError> {
        let sql = self.audit_sql(audit);
        self.exec(&sql).await
    }

    fn audit_sql(&self, a: &Audit<'_>) -> String {
        let d = self.dialect;
        format!(
            "INSERT INTO {} (at, action, version, actor, reason, {}, {}, deploy_id) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
            self.tables.audit,
            d.ident("before"),
            d.ident("after"),
            d.now(),
            d.quote(a.action),
            a.version.as_ref().map_or_else(|| "NULL".into(), |v| d.version(v)),
            d.quote(&a.deploy.applied_by()),
            d.opt(a.reason),
            d.opt(a.before.as_deref()),
            d.opt(a.after.as_deref()),
            d.opt(a.deploy.deploy_id.as_deref()),
        )
    }

    /// The history columns, as text, in [`history_row`]'s order.
    fn history_columns(&self) -> String {
        let d = self.dialect;
        format!(
            "{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}",
            d.text("version"),
            d.str("name"),
            d.str("checksum"),
            d.str("state"),
            d.text("statements_done"),
            d.str("error"),
            d.time_text("applied_at"),
            d.text("execution_ms"),
            d.str("applied_by"),
            d.str("deploy_id"),
            d.str("app_version"),
        )
    }

    /// The run columns, as text, in [`run_row`]'s order.
    fn run_columns(&self) -> String {
        let d = self.dialect;
        format!(
            "{}, {}, {}, {}, {}, {}, {}, {}, {}, {}",
            d.text("id"),
            d.str("command"),
            d.time_text("started_at"),
            d.time_text("finished_at"),
            d.str("outcome"),
            d.text("applied"),
            d.str("error"),
            d.str("deploy_id"),
            d.str("host"),
            d.str("app_version"),
        )
    }

    /// History, the newest run and the lock holder in one statement (one round trip), for the
    /// status cache. `None` history when shipgate's tables do not exist yet. With `alembic`
    /// (the version table's schema and name), Alembic's rows ride in the same statement; where
    /// one of the tables does not exist yet they are read on their own (a missing version
    /// table is empty, as in [`Backend::alembic_rows`]).
    pub async fn status_rows(
        &mut self,
        alembic: Option<(Option<&str>, &str)>,
    ) -> Result<StatusRows, DbError> {
        let Some((schema, name)) = alembic else {
            return Ok(self.status_union("").await?.0);
        };
        let d = self.dialect;
        let extra = format!(
            " UNION ALL SELECT 'a', {}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM {}",
            d.text("version_num"),
            alembic_table(d, schema, name)
        );
        let (mut out, whole) = self.status_union(&extra).await?;
        if whole {
            out.alembic.get_or_insert_with(Vec::new).sort();
        } else {
            out.alembic = Some(self.alembic_rows(schema, name).await?);
        }
        Ok(out)
    }

    /// [`Backend::status_rows`]'s statement with `extra` (more `UNION ALL` branches) added, and
    /// whether it ran whole: `false` when a missing table made it fall back to fewer branches
    /// (`extra` among those dropped).
    async fn status_union(&mut self, extra: &str) -> Result<(StatusRows, bool), DbError> {
        let d = self.dialect;
        let history = format!(
            "SELECT 'h', {} FROM {}",
            self.history_columns(),
            self.tables.migrations
        );
        // The newest runs ('r', the page's last RECENT_RUNS), the newest successful release
        // ('s': any command but `down`, having applied everything or found nothing to do) and
        // the newest successful `down` ('d'), each the newest rows matching its filter.
        let newest = |tag: &str, filter: &str, limit: usize| {
            format!(
                "SELECT '{tag}', {}, NULL FROM (SELECT * FROM {}{filter} ORDER BY id DESC LIMIT {limit}) run_{tag}",
                self.run_columns(),
                self.tables.runs
            )
        };
        let (down, succeeded, nothing) = (
            d.quote("down"),
            d.quote(RunOutcome::Succeeded.as_str()),
            d.quote(RunOutcome::NothingToDo.as_str()),
        );
        let run = format!(
            "{} UNION ALL {} UNION ALL {}",
            newest("r", "", RECENT_RUNS),
            newest(
                "s",
                &format!(" WHERE command <> {down} AND outcome IN ({succeeded}, {nothing})"),
                1
            ),
            newest(
                "d",
                &format!(" WHERE command = {down} AND outcome = {succeeded}"),
                1
            ),
        );
        let holder_sql = match d {
            Dialect::Postgres => Some(self.pg_key().await?.holder_sql()),
            Dialect::Mysql => Some(self.mysql_name().await?.holder_sql()),
            Dialect::Sqlite => None,
        };
        let holder = holder_sql.map_or_else(String::new, |sql| {
            format!(" UNION ALL SELECT 'l', holder.*, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ({sql}) holder")
        });
        let repeatables = format!(
            " UNION ALL SELECT 'p', {}, {}, {}, {}, {}, {}, {}, NULL, NULL, NULL, NULL FROM {}",
            d.str("name"),
            d.str("checksum"),
            d.time_text("applied_at"),
            d.text("execution_ms"),
            d.str("applied_by"),
            d.str("deploy_id"),
            d.str("app_version"),
            self.tables.repeatables
        );
        // INVALID indexes ride in the same statement: no extra round trip for the refresher.
        let invalid = match d {
            Dialect::Postgres => format!(
                " UNION ALL SELECT 'i', invalid.*, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ({}) invalid",
                postgres::INVALID_INDEXES_SQL
            ),
            _ => String::new(),
        };
        let sql = format!("{history} UNION ALL {run}{holder}{repeatables}{invalid}{extra}");
        let mut whole = true;
        let rows = match self.rows(&sql).await {
            Ok(rows) => rows,
            // Tables an older shipgate created: no repeatables table until the next locked run.
            Err(e) if self.is_missing_table(&e) => {
                whole = false;
                match self
                    .rows(&format!("{history} UNION ALL {run}{holder}"))
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) if self.is_missing_table(&e) => {
                        let lock_holder = self.lock_holder().await?;
                        let rows = StatusRows {
                            lock_holder,
                            ..StatusRows::default()
                        };
                        return Ok((rows, false));
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let mut out = StatusRows {
            history: Some(History::default()),
            ..StatusRows::default()
        };
        for r in rows {
            let get = |i: usize| r.get(i).cloned().flatten();
            match get(0).as_deref() {
                Some("h") => {
                    if let Some(h) = out.history.as_mut() {
                        h.migrations.push(history_row(&r[1..])?);
                    }
                }
                Some("p") => {
                    if let Some(h) = out.history.as_mut() {
                        h.repeatables.push(repeatable_row(&r[1..]));
                    }
                }
                Some("r") => out.recent_runs.push(run_row(&r[1..])),
                Some("s") => out.last_success = Some(run_row(&r[1..])),
                Some("d") => out.last_down = Some(run_row(&r[1..])),
                Some("a") => out.alembic.get_or_insert_with(Vec::new).extend(get(1)),
                Some("i") => out.invalid_indexes.extend(get(1)),
                Some("l") => {
                    out.lock_holder = Some(LockHolder {
                        pid: get(1).and_then(|p| p.parse().ok()),
                        application: get(2),
                        client: get(3),
                        since: get(4),
                    })
                }
                _ => {}
            }
        }
        if let Some(h) = out.history.as_mut() {
            h.migrations.sort_by(|a, b| a.version.cmp(&b.version));
        }
        // A UNION ALL keeps no order: newest run first, by id.
        out.recent_runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        out.last_run = out.recent_runs.first().cloned();
        if d == Dialect::Sqlite {
            out.lock_holder = sqlite::FileLock::holder(&self.url);
        }
        Ok((out, whole))
    }

    /// Opens a `shipgate_runs` row for a run that is starting; returns its id.
    pub async fn start_run(&mut self, command: &str, deploy: &DeployInfo) -> Result<i64, DbError> {
        let d = self.dialect;
        let insert = format!(
            "INSERT INTO {} (command, started_at, applied, deploy_id, host, app_version) VALUES ({}, {}, 0, {}, {}, {})",
            self.tables.runs,
            d.quote(command),
            d.now(),
            d.opt(deploy.deploy_id.as_deref()),
            d.quote(&deploy.applied_by()),
            d.opt(deploy.app_version.as_deref()),
        );
        let sql = match d {
            // MySQL has no RETURNING; LAST_INSERT_ID() is per connection, so this is safe.
            Dialect::Mysql => format!("{insert};\nSELECT CAST(LAST_INSERT_ID() AS CHAR)"),
            _ => format!("{insert} RETURNING {}", d.text("id")),
        };
        let rows = self.rows(&sql).await?;
        first(&rows)
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| DbError::query("inserting a run row returned no id"))
    }

    /// Records a run that ends as it starts (nothing to do, or refused before the lock) as one
    /// closed `shipgate_runs` row, in one statement, so no open row of it is ever visible. Also
    /// returns how many rows are open (runs in progress, or left open by killed ones).
    pub async fn record_closed_run(
        &mut self,
        command: &str,
        deploy: &DeployInfo,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> Result<i64, DbError> {
        let d = self.dialect;
        let runs = &self.tables.runs;
        let insert = format!(
            "INSERT INTO {runs} (command, started_at, finished_at, outcome, applied, error, deploy_id, host, app_version) VALUES ({}, {now}, {now}, '{}', 0, {}, {}, {}, {})",
            d.quote(command),
            outcome.as_str(),
            d.opt(error),
            d.opt(deploy.deploy_id.as_deref()),
            d.quote(&deploy.applied_by()),
            d.opt(deploy.app_version.as_deref()),
            now = d.now(),
        );
        let open = format!("SELECT count(*) FROM {runs} WHERE finished_at IS NULL");
        let sql = match d {
            Dialect::Mysql => format!("{insert};\nSELECT CAST(({open}) AS CHAR)"),
            _ => format!("{insert} RETURNING {}", d.text(&format!("({open})"))),
        };
        let rows = self.rows(&sql).await?;
        Ok(first(&rows).and_then(|n| n.parse().ok()).unwrap_or(0))
    }

    /// The revisions Alembic's version table (`version_num` of `schema.name`) holds, in one
    /// statement; none when the table does not exist (Alembic creates it on its first run).
    /// The names are plain identifiers (checked by `config`), quoted here.
    pub async fn alembic_rows(
        &mut self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<Vec<String>, DbError> {
        let d = self.dialect;
        let sql = format!(
            "SELECT {} FROM {} ORDER BY 1",
            d.text("version_num"),
            alembic_table(d, schema, name)
        );
        match self.rows(&sql).await {
            Ok(rows) => Ok(rows
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect()),
            Err(e) if self.is_missing_table(&e) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Closes the `shipgate_runs` rows left open by runs that died (SIGKILL, a lost connection)
    /// as `aborted`. Call under the lock: a row is open only while its run holds the lock, so
    /// any open row seen by the lock's holder belongs to a run that is gone.
    pub async fn close_orphaned_runs(&mut self) -> Result<(), DbError> {
        let d = self.dialect;
        let sql = format!(
            "UPDATE {} SET finished_at = {}, outcome = 'aborted', error = {} WHERE finished_at IS NULL",
            self.tables.runs,
            d.now(),
            d.quote("the run ended without recording an outcome: its process was killed or lost its database connection"),
        );
        self.exec(&sql).await
    }

    /// Closes a `shipgate_runs` row with its outcome.
    pub async fn finish_run(
        &mut self,
        id: i64,
        outcome: RunOutcome,
        applied: usize,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        let d = self.dialect;
        let sql = format!(
            "UPDATE {} SET finished_at = {}, outcome = '{}', applied = {applied}, error = {} WHERE id = {id}",
            self.tables.runs,
            d.now(),
            outcome.as_str(),
            d.opt(error),
        );
        self.exec(&sql).await
    }

    /// The id of the newest `shipgate_runs` row that succeeded (any command), if the table
    /// exists and has one: what a `command` runner's drift snapshot is keyed by.
    pub async fn last_succeeded_run(&mut self) -> Result<Option<i64>, DbError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE outcome = 'succeeded' ORDER BY id DESC LIMIT 1",
            self.dialect.text("id"),
            self.tables.runs
        );
        match self.rows(&sql).await {
            Ok(rows) => Ok(first(&rows).and_then(|id| id.parse().ok())),
            Err(e) if self.is_missing_table(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The newest `shipgate_runs` row, if the table exists and has one.
    pub async fn last_run(&mut self) -> Result<Option<RunRow>, DbError> {
        Ok(self.recent_runs(1).await?.into_iter().next())
    }

    /// The newest `limit` `shipgate_runs` rows, newest first (none when the table does not
    /// exist yet).
    pub async fn recent_runs(&mut self, limit: u32) -> Result<Vec<RunRow>, DbError> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY id DESC LIMIT {limit}",
            self.run_columns(),
            self.tables.runs
        );
        match self.rows(&sql).await {
            Ok(rows) => Ok(rows.iter().map(|r| run_row(r)).collect()),
            Err(e) if self.is_missing_table(&e) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The audit table, oldest first (empty when it does not exist yet).
    pub async fn read_audit(&mut self) -> Result<Vec<AuditRow>, DbError> {
        let d = self.dialect;
        let sql = format!(
            "SELECT {}, action, {}, actor, reason, {}, {}, deploy_id FROM {} ORDER BY id",
            d.time_text("at"),
            d.text("version"),
            d.ident("before"),
            d.ident("after"),
            self.tables.audit
        );
        let rows = match self.rows(&sql).await {
            Ok(rows) => rows,
            Err(e) if self.is_missing_table(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                let get = |i: usize| r.get(i).cloned().flatten();
                AuditRow {
                    at: get(0).unwrap_or_default(),
                    action: get(1).unwrap_or_default(),
                    version: get(2).and_then(|v| Version::parse(&v).ok()),
                    actor: get(3).unwrap_or_default(),
                    reason: get(4),
                    before: get(5),
                    after: get(6),
                    deploy_id: get(7),
                }
            })
            .collect())
    }

    /// Stops whatever this connection is doing on the server, from a second connection, and
    /// closes it. Used when the process is interrupted mid-migration: the server rolls back the
    /// transaction and the session's advisory lock goes with the session.
    pub async fn abort(self, bound: Duration) {
        let Backend {
            conn,
            pg_lock,
            mysql_lock,
            url,
            settings,
            ..
        } = self;
        match conn {
            Conn::Postgres(c) => {
                drop(c);
                if let Some(key) = &pg_lock {
                    postgres::terminate(&url, &settings, key, bound).await;
                }
            }
            Conn::Sqlite(c, stop) => {
                // Interrupt the statement in progress (its transaction rolls back), then wait,
                // within the bound, for the worker to finish with the connection.
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                if tokio::time::timeout(bound, c.close()).await.is_err() {
                    tracing::warn!("the SQLite statement did not stop within the bound");
                }
            }
            Conn::Mysql(c, _) => {
                drop(c);
                if let Some(id) = mysql_lock.as_ref().map(|l| l.connection_id) {
                    mysql::kill(&url, &settings, id, bound).await;
                }
            }
        }
    }

    /// Closes the connection cleanly (within a bound: a stalled peer must not hold the exit).
    /// A connection that was lost mid-run is aborted instead: its server session may still be
    /// alive, holding a transaction or the lock, and is ended from a fresh connection.
    pub async fn close(self) {
        if self.lost.is_some() {
            return self.abort(CLOSE_BOUND).await;
        }
        let closed = match self.conn {
            Conn::Postgres(c) => tokio::time::timeout(CLOSE_BOUND, c.close()).await.is_ok(),
            Conn::Sqlite(c, _) => tokio::time::timeout(CLOSE_BOUND, c.close()).await.is_ok(),
            Conn::Mysql(c, _) => tokio::time::timeout(CLOSE_BOUND, c.close()).await.is_ok(),
        };
        if !closed {
            tracing::warn!("closing the database connection did not finish in time; dropped it");
        }
    }

    /// Schemas, databases and table columns (with their types as the server prints them), for
    /// the release gate's exact "existed before this run". One statement.
    pub async fn catalog_objects(&mut self) -> Result<Vec<CatalogObject>, DbError> {
        let sql = match self.dialect {
            Dialect::Postgres => concat!(
                "SELECT 's', CAST(nspname AS text), NULL, NULL FROM pg_catalog.pg_namespace ",
                "WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ",
                "UNION ALL SELECT 'd', CAST(datname AS text), NULL, NULL FROM pg_catalog.pg_database ",
                "UNION ALL SELECT 'c', CAST(c.relname AS text), CAST(a.attname AS text), ",
                "pg_catalog.format_type(a.atttypid, a.atttypmod) ",
                "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid ",
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ",
                "WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ",
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ",
                "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
            ),
            // A MySQL schema is a database.
            Dialect::Mysql => concat!(
                "SELECT 'd', CONVERT(SCHEMA_NAME USING utf8mb4) COLLATE utf8mb4_bin, NULL, NULL ",
                "FROM information_schema.SCHEMATA UNION ALL ",
                "SELECT 'c', CONVERT(TABLE_NAME USING utf8mb4) COLLATE utf8mb4_bin, ",
                "CONVERT(COLUMN_NAME USING utf8mb4) COLLATE utf8mb4_bin, ",
                "CONVERT(COLUMN_TYPE USING utf8mb4) COLLATE utf8mb4_bin ",
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            ),
            Dialect::Sqlite => concat!(
                "SELECT 'c', m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p ",
                "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ),
        };
        let rows = self.rows(sql).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let get = |i: usize| r.get(i).cloned().flatten();
                Some(match get(0)?.as_str() {
                    "s" => CatalogObject::Schema(get(1)?),
                    "d" => CatalogObject::Database(get(1)?),
                    _ => CatalogObject::Column {
                        table: get(1)?,
                        column: get(2)?,
                        data_type: get(3).unwrap_or_default(),
                    },
                })
            })
            .collect())
    }

    /// The schema shipgate compares for drift, normalised (`drift::normalise`): one catalog
    /// statement (SQL in the engine's module), shipgate's own and other tools' history tables
    /// left out, and `also` (a runner's version table under a name of its own).
    pub async fn schema_snapshot(
        &mut self,
        also: Option<&str>,
    ) -> Result<super::drift::Snapshot, DbError> {
        let sql = match self.dialect {
            Dialect::Postgres => postgres::SCHEMA_SNAPSHOT_SQL.to_owned(),
            Dialect::Sqlite => sqlite::SCHEMA_SNAPSHOT_SQL.to_owned(),
            Dialect::Mysql => mysql::schema_snapshot_sql(),
        };
        let started = std::time::Instant::now();
        let rows = self.rows(&sql).await?;
        let read = started.elapsed();
        let mut exclude = super::drift::Exclude::for_prefix(&self.settings.table_prefix);
        exclude.tables.extend(also.map(str::to_owned));
        let snapshot = super::drift::normalise(&rows, &exclude);
        tracing::debug!(
            rows = rows.len(),
            statement_us = read.as_micros() as u64,
            normalise_us = (started.elapsed() - read).as_micros() as u64,
            "read the schema from the catalog"
        );
        Ok(snapshot)
    }

    /// `shipgate_schema` (under the configured prefix and schema), quoted and qualified.
    fn schema_table(&self) -> String {
        self.tables
            .qualified(&format!("{}_schema", self.settings.table_prefix))
    }

    /// Stores `snapshot` as the schema of `version` (a `schema::Key` as stored: replacing an
    /// earlier one of that key), taken by run `run_id`, and keeps only the newest
    /// [`super::drift::KEEP`]. Creates the table first if needed; the write is one
    /// transaction. Call under the lock.
    pub async fn store_snapshot(
        &mut self,
        version: &str,
        run_id: Option<i64>,
        snapshot: &super::drift::Snapshot,
    ) -> Result<(), DbError> {
        let d = self.dialect;
        let t = self.schema_table();
        let create = match d {
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version text PRIMARY KEY, \
                 taken_at timestamptz NOT NULL, run_id bigint, hash text NOT NULL, \
                 snapshot text NOT NULL)"
            ),
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version TEXT PRIMARY KEY, \
                 taken_at TEXT NOT NULL, run_id INTEGER, hash TEXT NOT NULL, \
                 snapshot TEXT NOT NULL)"
            ),
            Dialect::Mysql => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version {} NOT NULL PRIMARY KEY, \
                 taken_at DATETIME(3) NOT NULL, run_id BIGINT NULL, hash VARCHAR(64) NOT NULL, \
                 snapshot LONGTEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                mysql::SNAPSHOT_VERSION_TYPE
            ),
        };
        // DDL commits implicitly on MySQL: the table is made before the transaction opens.
        self.exec(&create).await?;
        let v = d.quote(version);
        let run = run_id.map_or_else(|| "NULL".to_owned(), |id| id.to_string());
        // The derived table lets MySQL read the table it deletes from (error 1093 otherwise);
        // its LIMIT keeps it from being merged away.
        let sql = format!(
            "{begin};\n\
             DELETE FROM {t} WHERE version = {v};\n\
             INSERT INTO {t} (version, taken_at, run_id, hash, snapshot) \
             VALUES ({v}, {now}, {run}, {hash}, {json});\n\
             DELETE FROM {t} WHERE version NOT IN (SELECT version FROM \
             (SELECT version FROM {t} ORDER BY taken_at DESC LIMIT {keep}) AS newest);\n\
             COMMIT",
            begin = d.begin(),
            now = d.now(),
            hash = d.quote(&snapshot.hash()),
            json = d.quote(&snapshot.to_json()),
            keep = super::drift::KEEP,
        );
        self.exec_or_rollback(&sql).await
    }

    /// The snapshot stored for `version` (a `schema::Key` as stored), if any (none when the
    /// table does not exist yet).
    pub async fn read_snapshot(
        &mut self,
        version: &str,
    ) -> Result<Option<super::drift::Stored>, DbError> {
        let d = self.dialect;
        let sql = format!(
            "SELECT {}, {}, {}, {}, {} FROM {} WHERE version = {}",
            d.str("version"),
            d.time_text("taken_at"),
            d.text("run_id"),
            d.str("hash"),
            d.str("snapshot"),
            self.schema_table(),
            d.quote(version),
        );
        let rows = match self.rows(&sql).await {
            Ok(rows) => rows,
            Err(e) if self.is_missing_table(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let get = |i: usize| row.get(i).cloned().flatten();
        let snapshot =
            super::drift::Snapshot::from_json(&get(4).unwrap_or_default()).map_err(|e| {
                DbError::query(format!("{}: version {version}: {e}", self.schema_table()))
            })?;
        Ok(Some(super::drift::Stored {
            version: get(0).unwrap_or_default(),
            taken_at: get(1),
            run_id: get(2).and_then(|r| r.parse().ok()),
            hash: get(3).unwrap_or_default(),
            snapshot,
        }))
    }

    /// Another migration tool's history table in this database (the connection's schema, and
    /// on PostgreSQL also Atlas's own `atlas_schema_revisions` schema, where Atlas keeps its
    /// table unless its URL names a schema), if there is one: the tool, its table, how many rows
    /// it holds and its newest version where the table has a version column that orders. Two
    /// or three statements, run only where shipgate's own tables do not exist yet.
    pub async fn foreign_history(&mut self) -> Result<Option<ForeignHistory>, DbError> {
        let d = self.dialect;
        let names = FOREIGN_TABLES
            .iter()
            .map(|t| d.quote(t.table))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = match d {
            Dialect::Postgres => format!(
                "SELECT CAST(table_schema AS TEXT), CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE (table_schema = current_schema() AND table_name IN ({names})) \
                 OR (table_schema = {atlas} AND table_name = {atlas})",
                atlas = d.quote(ATLAS_SCHEMA)
            ),
            Dialect::Sqlite => format!(
                "SELECT NULL, name FROM sqlite_master WHERE type = 'table' AND name IN ({names})"
            ),
            Dialect::Mysql => format!(
                "SELECT NULL, {} FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({names})",
                d.str("TABLE_NAME")
            ),
        };
        // (table, in Atlas's own schema rather than the connection's)
        let found: Vec<(String, bool)> = self
            .rows(&sql)
            .await?
            .into_iter()
            .filter_map(|r| {
                let schema = r.first().cloned().flatten();
                let table = r.get(1).cloned().flatten()?;
                Some((table, schema.as_deref() == Some(ATLAS_SCHEMA)))
            })
            .collect();
        let Some((known, elsewhere)) = FOREIGN_TABLES.iter().find_map(|t| {
            let mut places = found.iter().filter(|(f, _)| f == t.table);
            let first = places.next()?;
            // In both places: the connection's schema is the one Atlas would use with it.
            let elsewhere = first.1 && places.next().is_none();
            Some((t, elsewhere))
        }) else {
            return Ok(None);
        };
        let (table, sql_name) = if elsewhere {
            (
                format!("{ATLAS_SCHEMA}.{}", known.table),
                format!("{}.{}", d.ident(ATLAS_SCHEMA), d.ident(known.table)),
            )
        } else {
            (known.table.to_owned(), d.ident(known.table))
        };
        // golang-migrate's `schema_migrations` has a `dirty` column; dbmate's has only `version`.
        let tool = if known.table == "schema_migrations" {
            let probe = format!("SELECT dirty FROM {sql_name} WHERE 1 = 0");
            if self.rows(&probe).await.is_ok() {
                "golang-migrate"
            } else {
                "dbmate"
            }
        } else {
            known.tool
        };
        let count = self
            .rows(&format!("SELECT {} FROM {sql_name}", d.text("count(*)")))
            .await?;
        let count = first(&count).and_then(|n| n.parse().ok()).unwrap_or(0);
        let newest = match known.version {
            Some(column) => self
                .rows(&format!(
                    "SELECT {} FROM {sql_name}",
                    d.text(&format!("max({column})"))
                ))
                .await
                .ok()
                .and_then(|rows| first(&rows)),
            None => None,
        };
        Ok(Some(ForeignHistory {
            tool,
            table,
            sql_name,
            count,
            newest,
        }))
    }
}

/// The schema Atlas keeps its revisions table in on PostgreSQL when its URL names none
/// (`cmd/atlas/internal/cmdapi/migrate.go`, `revisionSchemaName`).
const ATLAS_SCHEMA: &str = "atlas_schema_revisions";

/// Another tool's history table as [`Backend::foreign_history`] looks for it.
struct KnownTable {
    table: &'static str,
    tool: &'static str,
    /// A column whose `max` is the newest version (not where it is a name, dotted, or absent).
    version: Option<&'static str>,
}

/// Other tools' history tables, and the tool each belongs to (`schema_migrations` is told apart
/// by its columns in [`Backend::foreign_history`]). The first found wins.
const FOREIGN_TABLES: &[KnownTable] = &[
    KnownTable {
        table: "_sqlx_migrations",
        tool: "sqlx",
        version: Some("version"),
    },
    KnownTable {
        table: "schema_migrations",
        tool: "golang-migrate",
        version: Some("version"),
    },
    KnownTable {
        table: "goose_db_version",
        tool: "goose",
        version: Some("version_id"),
    },
    KnownTable {
        table: "flyway_schema_history",
        tool: "Flyway",
        version: None,
    },
    KnownTable {
        table: "_prisma_migrations",
        tool: "Prisma",
        version: None,
    },
    KnownTable {
        table: "__diesel_schema_migrations",
        tool: "diesel",
        version: Some("version"),
    },
    KnownTable {
        table: "atlas_schema_revisions",
        tool: "Atlas",
        version: Some("version"),
    },
    KnownTable {
        table: "alembic_version",
        tool: "Alembic",
        version: None,
    },
];

/// Another tool's migration history, found where shipgate has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignHistory {
    /// The tool.
    pub tool: &'static str,
    /// Its history table, as people name it (`schema.table` when it is not in the connection's
    /// schema).
    pub table: String,
    /// The table as SQL on this connection names it (quoted, schema-qualified where needed).
    pub sql_name: String,
    /// Rows in it.
    pub count: i64,
    /// Its newest version, when the table has a version column that orders.
    pub newest: Option<String>,
}

/// Alembic's version table (`schema.name`, plain identifiers checked by `config`) quoted.
fn alembic_table(d: Dialect, schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(schema) => format!("{}.{}", d.ident(schema), d.ident(name)),
        None => d.ident(name),
    }
}

/// How long closing a connection, or ending a lost one's server session, may take.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// Awaits `work` within `bound` (`None`: unbounded); `Err(bound)` when it ran out.
async fn within<T>(
    bound: Option<Duration>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Duration> {
    match bound {
        None => Ok(work.await),
        Some(b) => tokio::time::timeout(b, work).await.map_err(|_| b),
    }
}

/// `e` with its position made relative to a file that starts `offset` characters into the
/// message the server saw (dropped when it falls outside the file).
fn within_file(mut e: DbError, offset: usize, sql: &str) -> DbError {
    e.position = e
        .position
        .and_then(|p| (p.get() as usize).checked_sub(offset))
        .filter(|p| *p <= sql.chars().count())
        .and_then(|p| u32::try_from(p).ok())
        .and_then(std::num::NonZeroU32::new);
    e
}

fn lost(message: &str) -> DbError {
    DbError {
        kind: ErrorKind::LockLost,
        message: message.into(),
        code: None,
        position: None,
    }
}

fn first(rows: &[Vec<Option<String>>]) -> Option<String> {
    rows.first().and_then(|r| r.first().cloned().flatten())
}

/// Every column of a row as optional text.
fn texts<R: Row>(row: &R) -> Vec<Option<String>>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    (0..row.len())
        .map(|i| {
            row.try_get_unchecked::<Option<String>, usize>(i)
                .ok()
                .flatten()
        })
        .collect()
}

fn run_row(r: &[Option<String>]) -> RunRow {
    let get = |i: usize| r.get(i).cloned().flatten();
    RunRow {
        id: get(0).and_then(|v| v.parse().ok()).unwrap_or_default(),
        command: get(1).unwrap_or_default(),
        started_at: get(2),
        finished_at: get(3),
        outcome: get(4),
        applied: get(5).and_then(|v| v.parse().ok()).unwrap_or_default(),
        error: get(6),
        deploy_id: get(7),
        host: get(8),
        app_version: get(9),
    }
}

/// A repeatable's row: name, checksum, then (when read) applied_at, execution_ms, applied_by,
/// deploy_id, app_version.
fn repeatable_row(r: &[Option<String>]) -> RepeatableRow {
    let get = |i: usize| r.get(i).cloned().flatten();
    RepeatableRow {
        name: get(0).unwrap_or_default(),
        checksum: get(1).unwrap_or_default(),
        applied_at: get(2),
        execution_ms: get(3).and_then(|v| v.parse().ok()).unwrap_or(0),
        applied_by: get(4),
        deploy_id: get(5),
        app_version: get(6),
    }
}

fn history_row(r: &[Option<String>]) -> Result<HistoryRow, DbError> {
    let get = |i: usize| r.get(i).cloned().flatten();
    let int = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
    let text = get(0).unwrap_or_default();
    let version = Version::parse(&text).map_err(|reason| {
        DbError::query(format!("history row with an unreadable version: {reason}"))
    })?;
    let state_text = get(3).unwrap_or_default();
    let state = State::parse(&state_text).ok_or_else(|| {
        DbError::query(format!(
            "history row {version} has unknown state `{state_text}`"
        ))
    })?;
    Ok(HistoryRow {
        version,
        name: get(1).unwrap_or_default(),
        checksum: get(2).unwrap_or_default(),
        state,
        statements_done: int(4).unwrap_or(0),
        error: get(5),
        applied_at: get(6),
        execution_ms: int(7).unwrap_or(0),
        applied_by: get(8),
        deploy_id: get(9),
        app_version: get(10),
    })
}
