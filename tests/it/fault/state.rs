//! Reading a database's state for the fault tests: catalog dumps to compare a faulted run with
//! an uninterrupted one, whether shipgate's migration lock is still held, and waiting for the
//! server sessions of a killed process to end.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::{wait_for, Db};

/// The schema as the catalog describes it, one sorted line per column and per index, shipgate's
/// own tables included. Two databases with equal dumps have the same tables, columns (type,
/// nullability, default) and indexes.
pub fn catalog(db: &Db) -> Vec<String> {
    let queries: &[&str] = match db {
        Db::Postgres { .. } => &[
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' \
             || is_nullable || ' ' || coalesce(column_default, '-') \
             FROM information_schema.columns WHERE table_schema = current_schema()",
            "SELECT 'index ' || tablename || ' ' || indexname || ' ' || indexdef \
             FROM pg_indexes WHERE schemaname = current_schema()",
        ],
        Db::Mariadb { .. } => &[
            "SELECT CONCAT('column ', TABLE_NAME, '.', COLUMN_NAME, ' ', COLUMN_TYPE, ' ', \
             IS_NULLABLE, ' ', COALESCE(COLUMN_DEFAULT, '-')) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
            "SELECT CONCAT('index ', TABLE_NAME, ' ', INDEX_NAME, ' ', SEQ_IN_INDEX, ' ', \
             COLUMN_NAME, ' ', NON_UNIQUE) \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()",
        ],
        Db::Sqlite { path, .. } => {
            if !path.exists() {
                return Vec::new();
            }
            &[
                "SELECT type || ' ' || name || ' ' || coalesce(sql, '-') FROM sqlite_master \
               WHERE name NOT LIKE 'sqlite_%'",
            ]
        }
    };
    let mut lines: Vec<String> = queries
        .iter()
        .flat_map(|q| db.query(q))
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    lines.sort();
    lines
}

/// Whether shipgate's migration lock (default table prefix) is held by anyone now.
pub fn lock_held(db: &Db) -> bool {
    match db {
        Db::Postgres { name, .. } => {
            db.admin_int(&format!(
                "SELECT count(*) FROM pg_catalog.pg_locks l \
                 JOIN pg_catalog.pg_database d ON d.oid = l.database \
                 WHERE l.locktype = 'advisory' AND d.datname = '{name}'"
            )) > 0
        }
        Db::Mariadb { name, .. } => {
            let ident = format!("shipgate:{name}:shipgate_migrations");
            let hash = hex::encode(Sha256::digest(ident.as_bytes()));
            let lock = format!("shipgate:{}", &hash[..40]);
            db.int(&format!(
                "SELECT COUNT(*) FROM (SELECT IS_USED_LOCK('{lock}') AS holder) l \
                 WHERE holder IS NOT NULL"
            )) > 0
        }
        Db::Sqlite { path, .. } => {
            let mut lock = path.as_os_str().to_owned();
            lock.push(".shipgate-lock");
            match std::fs::File::open(&lock) {
                Err(_) => false,
                Ok(file) => match file.try_lock() {
                    Ok(()) => {
                        let _ = file.unlock();
                        false
                    }
                    Err(_) => true,
                },
            }
        }
    }
}

/// The two keys of shipgate's advisory lock on this PostgreSQL database (default schema and
/// table prefix), derived as shipgate derives them.
pub fn pg_lock_key(db: &Db) -> (i32, i32) {
    let ident = format!("shipgate:{}:public:shipgate_migrations", db.name());
    let hash = Sha256::digest(ident.as_bytes());
    let half = |b: &[u8]| i32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    (half(&hash[0..4]), half(&hash[4..8]))
}

/// The server sessions shipgate has open on this database (0 for SQLite).
pub fn shipgate_sessions(db: &Db) -> i64 {
    match db {
        Db::Postgres { name, .. } => db.admin_int(&format!(
            "SELECT count(*) FROM pg_catalog.pg_stat_activity \
             WHERE datname = '{name}' AND application_name LIKE 'shipgate%'"
        )),
        Db::Mariadb { name, .. } => db.int(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE DB = '{name}' AND ID <> CONNECTION_ID()"
        )),
        Db::Sqlite { .. } => 0,
    }
}

/// Waits until the server has ended every session of killed shipgate processes: a session
/// whose client died may still finish the statement it was running (and commit it), so the
/// state is read only once it is gone.
#[track_caller]
pub fn wait_sessions_gone(db: &Db, bound: Duration) {
    wait_for("the killed process's server sessions to end", bound, || {
        (shipgate_sessions(db) == 0).then_some(())
    });
}
