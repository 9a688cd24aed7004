//! MySQL and MariaDB specifics: connecting, the named lock, session bounds, catalog queries,
//! DDL of shipgate's tables, error numbers.
//!
//! DDL commits implicitly on MySQL, so `backend::Backend::atomic` is false here for every
//! file but one of data changes only, and such a migration runs statement by statement with
//! its progress recorded: a failure or a crash leaves a precise dirty row. The lock is `GET_LOCK(name, 0)`, polled (never a blocking wait),
//! with a name derived from database and table that fits MySQL's 64-character limit.

use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection};

use super::backend::{Backend, DbError, Dialect, ErrorKind, Tables, Timeouts};
use crate::config::{redact_message, DatabaseUrl, EngineSettings};

/// `ER_NO_SUCH_TABLE`.
pub const ER_NO_SUCH_TABLE: &str = "1146";

/// Classifies a MySQL/MariaDB error number.
pub fn classify(number: &str) -> ErrorKind {
    match number {
        // ER_LOCK_WAIT_TIMEOUT (row locks and metadata locks alike).
        "1205" => ErrorKind::LockTimeout,
        // MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT.
        "1969" | "3024" => ErrorKind::StatementTimeout,
        // Server gone, lost, shutting down, connection killed.
        "2006" | "2013" | "1053" | "1927" => ErrorKind::Connection,
        _ => ErrorKind::Query,
    }
}

fn options(url: &DatabaseUrl) -> Result<MySqlConnectOptions, DbError> {
    let raw = url.for_driver();
    let normalised = match raw.get(..10) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mariadb://") => {
            format!("mysql://{}", &raw[10..])
        }
        _ => raw.into_owned(),
    };
    let opts = MySqlConnectOptions::from_str(&normalised).map_err(|e| DbError {
        kind: ErrorKind::Config,
        message: format!(
            "invalid MySQL URL {}: {}",
            url.redacted(),
            redact_message(&e.to_string())
        ),
        code: None,
        position: None,
    })?;
    // Leave the server's sql_mode and time zone alone: migrations must run as the operator's
    // own client would run them. shipgate writes UTC explicitly.
    Ok(opts
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .timezone(None)
        .disable_statement_logging())
}

/// Opens the run's one dedicated connection and sets its session bounds. Returns whether the
/// server is MariaDB.
pub async fn connect(
    url: &DatabaseUrl,
    settings: &EngineSettings,
) -> Result<(MySqlConnection, bool), DbError> {
    let opts = options(url)?;
    let mut conn = MySqlConnection::connect_with(&opts)
        .await
        .map_err(|e| DbError::from_connect(e, crate::config::Engine::Mysql))?;
    // Executor methods on the concrete connection keep the future `Send` (see backend::exec).
    let rows = sqlx::Executor::fetch_all(&mut conn, sqlx::raw_sql("SELECT VERSION()"))
        .await
        .map_err(|e| DbError {
            kind: ErrorKind::Connection,
            message: e.to_string(),
            code: None,
            position: None,
        })?;
    let version: String = rows
        .first()
        .and_then(|r| {
            sqlx::Row::try_get_unchecked::<Option<String>, usize>(r, 0)
                .ok()
                .flatten()
        })
        .unwrap_or_default();
    let mariadb = version.contains("MariaDB");
    let t = Timeouts {
        lock_timeout: settings.lock_timeout,
        statement_timeout: settings.statement_timeout,
    };
    let set = timeouts_sql(t, mariadb);
    sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&set))
        .await
        .map_err(|e| DbError {
            kind: ErrorKind::Query,
            message: format!("setting session bounds: {e}"),
            code: None,
            position: None,
        })?;
    Ok((conn, mariadb))
}

/// `SET SESSION` for a migration's bounds. The metadata-lock wait (`lock_wait_timeout`, a year
/// by default) and the row-lock wait (`innodb_lock_wait_timeout`) both follow shipgate's lock
/// timeout, in whole seconds (at least 1). The statement limit is MariaDB's
/// `max_statement_time`; MySQL's `max_execution_time` only bounds SELECTs.
pub fn timeouts_sql(t: Timeouts, mariadb: bool) -> String {
    let lock = t.lock_timeout.as_secs_f64().ceil().max(1.0) as u64;
    let statement = match (mariadb, t.statement_timeout) {
        (true, Some(d)) => format!(", max_statement_time = {:.3}", d.as_secs_f64()),
        (true, None) => ", max_statement_time = 0".to_owned(),
        (false, Some(d)) => format!(", max_execution_time = {}", d.as_millis()),
        (false, None) => ", max_execution_time = 0".to_owned(),
    };
    format!("SET SESSION lock_wait_timeout = {lock}, innodb_lock_wait_timeout = {lock}{statement}")
}

/// The named lock, and the connection that takes it.
#[derive(Debug, Clone)]
pub struct LockName {
    /// `shipgate:` and 40 hex digits of a hash of database and table: 49 characters.
    pub name: String,
    /// `CONNECTION_ID()` of the connection that takes the lock.
    pub connection_id: i64,
}

/// Derives the lock name for this database and history table.
pub async fn lock_name(
    backend: &mut Backend,
    settings: &EngineSettings,
) -> Result<LockName, DbError> {
    let rows = backend
        .rows("SELECT DATABASE(), CAST(CONNECTION_ID() AS CHAR)")
        .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let ident = format!("shipgate:{}:{}", get(0), settings.migrations_table());
    let hash = hex::encode(Sha256::digest(ident.as_bytes()));
    Ok(LockName {
        name: format!("shipgate:{}", &hash[..40]),
        connection_id: get(1).parse().unwrap_or(0),
    })
}

impl LockName {
    /// One poll: `1` when taken.
    pub fn try_lock_sql(&self) -> String {
        format!("SELECT CAST(GET_LOCK('{}', 0) AS CHAR)", self.name)
    }

    /// Release: `1` when it was held by this connection.
    pub fn unlock_sql(&self) -> String {
        format!("SELECT CAST(RELEASE_LOCK('{}') AS CHAR)", self.name)
    }

    /// `1` when this connection holds it.
    pub fn check_sql(&self) -> String {
        format!(
            "SELECT CAST(IS_USED_LOCK('{}') = CONNECTION_ID() AS CHAR)",
            self.name
        )
    }

    /// Holder: connection id, user, client host, since (start of its current state).
    pub fn holder_sql(&self) -> String {
        format!(
            "SELECT CONVERT(p.ID USING utf8mb4) COLLATE utf8mb4_bin, \
             CONVERT(CONCAT('user ', p.USER) USING utf8mb4) COLLATE utf8mb4_bin, \
             CONVERT(p.HOST USING utf8mb4) COLLATE utf8mb4_bin, \
             CONVERT(DATE_FORMAT(UTC_TIMESTAMP() - INTERVAL p.TIME SECOND, '%Y-%m-%dT%H:%i:%sZ') USING utf8mb4) COLLATE utf8mb4_bin \
             FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK('{}')",
            self.name
        )
    }
}

/// The `version` columns: text compared byte for byte, so the one canonical form of a version
/// is its only spelling whatever the server's default collation.
const VERSION_TYPE: &str = "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";

/// DDL of shipgate's tables, idempotent.
pub fn create_tables(t: &Tables) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {m} (
    version {VERSION_TYPE} NOT NULL PRIMARY KEY,
    name VARCHAR(1024) NOT NULL,
    checksum CHAR(64) NOT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'applied',
    statements_done INT NOT NULL DEFAULT 0,
    error TEXT NULL,
    applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    execution_ms BIGINT NOT NULL DEFAULT 0,
    applied_by VARCHAR(512) NULL,
    deploy_id VARCHAR(512) NULL,
    app_version VARCHAR(512) NULL,
    CONSTRAINT shipgate_state_check CHECK (state IN ('applied', 'running', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {r} (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    command VARCHAR(64) NOT NULL,
    started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    finished_at DATETIME(3) NULL,
    outcome VARCHAR(32) NULL,
    applied INT NOT NULL DEFAULT 0,
    error TEXT NULL,
    deploy_id VARCHAR(512) NULL,
    host VARCHAR(512) NULL,
    app_version VARCHAR(512) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {a} (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    action VARCHAR(64) NOT NULL,
    version {VERSION_TYPE} NULL,
    actor VARCHAR(512) NOT NULL,
    reason TEXT NULL,
    `before` TEXT NULL,
    `after` TEXT NULL,
    deploy_id VARCHAR(512) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {p} (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    checksum CHAR(64) NOT NULL,
    applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    execution_ms BIGINT NOT NULL DEFAULT 0,
    applied_by VARCHAR(512) NULL,
    deploy_id VARCHAR(512) NULL,
    app_version VARCHAR(512) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        m = t.migrations,
        r = t.runs,
        a = t.audit,
        p = t.repeatables
    )
}

/// The data types of the `version` columns of the history and audit tables (NULL for a missing
/// table), from `information_schema`.
pub fn version_types_sql(t: &Tables) -> String {
    let d = Dialect::Mysql;
    let schema = t
        .schema
        .as_deref()
        .map_or_else(|| "DATABASE()".to_owned(), |s| d.quote(s));
    let column = |table: &str| {
        format!(
            "(SELECT {} FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema} \
             AND TABLE_NAME = {} AND COLUMN_NAME = 'version')",
            d.str("DATA_TYPE"),
            d.quote(table)
        )
    };
    format!(
        "SELECT {}, {}",
        column(&t.migrations_name),
        column(&t.audit_name)
    )
}

/// Whether a `version` column of this data type holds versions as text.
pub fn is_text(data_type: &str) -> bool {
    data_type.eq_ignore_ascii_case("varchar")
}

/// Turns the `version` columns an older shipgate created (`BIGINT`) into text, in place: the
/// primary key and every row stay (each `ALTER` commits on its own; the caller checks the types
/// again on its next run, so a cut between the two finishes then).
pub fn version_as_text_sql(t: &Tables, migrations: bool, audit: bool) -> String {
    [
        (migrations, &t.migrations, "NOT NULL"),
        (audit, &t.audit, "NULL"),
    ]
    .into_iter()
    .filter(|(stale, ..)| *stale)
    .map(|(_, table, null)| format!("ALTER TABLE {table} MODIFY version {VERSION_TYPE} {null}"))
    .collect::<Vec<_>>()
    .join(";\n")
}

/// Ends connection `id` (its statement, its transaction and its named lock) from a second,
/// short-lived connection, within `bound`.
pub async fn kill(url: &DatabaseUrl, _settings: &EngineSettings, id: i64, bound: Duration) {
    let work = async {
        let opts = options(url).ok()?;
        let mut conn = MySqlConnection::connect_with(&opts).await.ok()?;
        let sql = format!("KILL {id}");
        // The executor's method on the concrete connection keeps this future `Send`.
        let done = sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&sql))
            .await
            .ok();
        let _ = conn.close().await;
        done
    };
    match tokio::time::timeout(bound, work).await {
        Ok(Some(_)) => tracing::info!(connection_id = id, "ended the interrupted migration's database connection"),
        _ => tracing::warn!(connection_id = id, "could not end the interrupted migration's connection; the server ends it when it notices the closed socket"),
    }
}

/// What connection `id` is doing, from the processlist (the one source every MySQL and
/// MariaDB has).
pub fn wait_sql(id: i64) -> String {
    format!("SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = {id}")
}

/// A [`wait_sql`] state that is a wait for a lock (`Waiting for table metadata lock`).
pub fn wait_from(state: String) -> Option<super::heartbeat::Wait> {
    state
        .to_ascii_lowercase()
        .contains("lock")
        .then_some(super::heartbeat::Wait {
            lock: None,
            holder: None,
            state: Some(state),
            via: None,
        })
}

/// The catalog rows of the drift snapshot (`migrate::drift::normalise`), in one statement,
/// from `information_schema` for the connection's database: base tables (engine), columns
/// (type, nullability, default and extra, position), indexes as `CREATE INDEX` (the primary
/// key as `ALTER TABLE … ADD PRIMARY KEY`), foreign keys, views, routines and triggers. Every
/// text value in one collation (`utf8mb4_bin`), as everything shipgate reads back.
pub fn schema_snapshot_sql() -> String {
    let s = |e: &str| format!("CONVERT({e} USING utf8mb4) COLLATE utf8mb4_bin");
    let cols = "GROUP_CONCAT(CONCAT('`', COLUMN_NAME, '`', COALESCE(CONCAT('(', SUB_PART, ')'), '')) ORDER BY SEQ_IN_INDEX SEPARATOR ', ')";
    format!(
        "SELECT 't', NULL, NULL, {t_name}, {t_engine}, NULL, NULL, NULL \
FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
UNION ALL SELECT 'c', NULL, {c_table}, {c_name}, {c_type}, {c_null}, {c_default}, {c_pos} \
FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE' \
WHERE c.TABLE_SCHEMA = DATABASE() \
UNION ALL SELECT 'i', NULL, {i_table}, {i_name}, {i_def}, NULL, NULL, NULL \
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE \
UNION ALL SELECT 'k', NULL, {k_table}, {k_name}, {k_def}, NULL, NULL, NULL \
FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() \
AND REFERENCED_TABLE_NAME IS NOT NULL GROUP BY TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME \
UNION ALL SELECT 'v', NULL, NULL, {v_name}, {v_def}, NULL, NULL, NULL \
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() \
UNION ALL SELECT 'f', NULL, NULL, {f_name}, {f_def}, {f_type}, NULL, NULL \
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() \
UNION ALL SELECT 'g', NULL, {g_table}, {g_name}, {g_def}, {g_event}, NULL, NULL \
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
        t_name = s("TABLE_NAME"),
        t_engine = s("ENGINE"),
        c_table = s("c.TABLE_NAME"),
        c_name = s("c.COLUMN_NAME"),
        c_type = s("c.COLUMN_TYPE"),
        c_null = s("CASE c.IS_NULLABLE WHEN 'NO' THEN 'NOT NULL' ELSE 'NULL' END"),
        c_default = s("NULLIF(CONCAT_WS(' ', c.COLUMN_DEFAULT, NULLIF(c.EXTRA, '')), '')"),
        c_pos = s("CAST(c.ORDINAL_POSITION AS CHAR)"),
        i_table = s("TABLE_NAME"),
        i_name = s("INDEX_NAME"),
        i_def = s(&format!(
            "CASE WHEN INDEX_NAME = 'PRIMARY' \
THEN CONCAT('ALTER TABLE `', TABLE_NAME, '` ADD PRIMARY KEY (', {cols}, ')') \
ELSE CONCAT('CREATE ', CASE WHEN NON_UNIQUE = 0 THEN 'UNIQUE ' ELSE '' END, 'INDEX `', INDEX_NAME, '` ON `', TABLE_NAME, '` (', {cols}, ') USING ', INDEX_TYPE) END"
        )),
        k_table = s("TABLE_NAME"),
        k_name = s("CONSTRAINT_NAME"),
        k_def = s("CONCAT('FOREIGN KEY (', GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR ', '), ') REFERENCES ', REFERENCED_TABLE_NAME, ' (', GROUP_CONCAT(REFERENCED_COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR ', '), ')')"),
        v_name = s("TABLE_NAME"),
        v_def = s("VIEW_DEFINITION"),
        f_name = s("ROUTINE_NAME"),
        f_def = s("ROUTINE_DEFINITION"),
        f_type = s("ROUTINE_TYPE"),
        g_table = s("EVENT_OBJECT_TABLE"),
        g_name = s("TRIGGER_NAME"),
        g_def = s("ACTION_STATEMENT"),
        g_event = s("CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION)"),
    )
}

/// The type of the drift snapshot table's `version` column: the history table's.
pub const SNAPSHOT_VERSION_TYPE: &str = VERSION_TYPE;

/// The holder's columns of [`holder_sqls`]: connection id, host, state (`idle in transaction`
/// for a sleeping connection with an open transaction, else its processlist state or command),
/// milliseconds in it, milliseconds its transaction has been open (`trx` is its `INNODB_TRX`
/// row, if any).
fn holder_columns(h: &str, trx: &str) -> String {
    format!(
        "CAST({h}.ID AS CHAR), {h}.HOST, \
         CASE WHEN {h}.COMMAND = 'Sleep' AND {trx}.trx_started IS NOT NULL THEN 'idle in transaction' \
              ELSE COALESCE(NULLIF({h}.STATE, ''), {h}.COMMAND) END, \
         CAST({h}.TIME * 1000 AS CHAR), \
         CAST(TIMESTAMPDIFF(MICROSECOND, {trx}.trx_started, NOW(6)) DIV 1000 AS CHAR)"
    )
}

/// Who holds what connection `id` waits for, best source first, each with its name: the
/// metadata lock instrumentation (MySQL 8; MariaDB with `performance_schema` on) names the
/// session holding the very lock, granted, on the object `id` waits for; without it, the oldest
/// open InnoDB transaction of another connection on the same database is the likely holder
/// (a transaction that read or wrote a table keeps its metadata lock until it ends). Each
/// returns at most one row: holder columns ([`holder_columns`]) then the object (or NULL).
pub fn holder_sqls(id: i64) -> [(&'static str, String); 2] {
    use super::heartbeat::{METADATA_LOCKS, OPEN_TRANSACTIONS};
    let instrumented = format!(
        "SELECT {}, CONCAT(g.OBJECT_SCHEMA, '.', g.OBJECT_NAME) \
         FROM performance_schema.metadata_locks w \
         JOIN performance_schema.threads wt ON wt.THREAD_ID = w.OWNER_THREAD_ID \
         JOIN performance_schema.metadata_locks g ON g.OBJECT_TYPE = w.OBJECT_TYPE \
          AND g.OBJECT_SCHEMA = w.OBJECT_SCHEMA AND g.OBJECT_NAME = w.OBJECT_NAME \
          AND g.LOCK_STATUS = 'GRANTED' AND g.OWNER_THREAD_ID <> w.OWNER_THREAD_ID \
         JOIN performance_schema.threads gt ON gt.THREAD_ID = g.OWNER_THREAD_ID \
         JOIN information_schema.PROCESSLIST h ON h.ID = gt.PROCESSLIST_ID \
         LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = h.ID \
         WHERE wt.PROCESSLIST_ID = {id} AND w.LOCK_STATUS = 'PENDING' \
         ORDER BY t.trx_started IS NULL, t.trx_started LIMIT 1",
        holder_columns("h", "t")
    );
    let open = format!(
        "SELECT {}, NULL \
         FROM information_schema.INNODB_TRX t \
         JOIN information_schema.PROCESSLIST h ON h.ID = t.trx_mysql_thread_id \
         JOIN information_schema.PROCESSLIST w ON w.ID = {id} \
         WHERE h.ID <> w.ID AND h.DB = w.DB \
         ORDER BY t.trx_started LIMIT 1",
        holder_columns("h", "t")
    );
    [(METADATA_LOCKS, instrumented), (OPEN_TRANSACTIONS, open)]
}

/// `wait` with the holder a [`holder_sqls`] row names, read from `via`.
pub fn with_holder(
    mut wait: super::heartbeat::Wait,
    via: &'static str,
    row: &[Option<String>],
) -> super::heartbeat::Wait {
    let get = |i: usize| row.get(i).cloned().flatten();
    let ms = |i: usize| get(i).and_then(|v| v.parse::<u64>().ok());
    if let Some(pid) = get(0).and_then(|p| p.parse().ok()) {
        wait.holder = Some(super::heartbeat::Holder {
            pid,
            application: None,
            client: get(1),
            state: get(2),
            state_ms: ms(3),
            xact_ms: ms(4),
        });
        wait.lock = get(5);
        wait.via = Some(via);
    }
    wait
}
