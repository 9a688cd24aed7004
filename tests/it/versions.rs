//! Versions as shipgate stores them: text columns in its history and audit tables. A database
//! whose tables an older shipgate created (an integer `version` column) keeps working: read as
//! it is, converted in place by the first run that takes the lock, every row kept.

use serde_json::json;

use crate::support::{checksum, Db, Engine, Project};

on_every_engine!(
    tables_an_older_shipgate_created_are_read_then_converted_in_place,
    versions_are_text_read_in_version_order,
);

const T1: &str = "CREATE TABLE t1 (id integer PRIMARY KEY);\n";
const T2: &str = "CREATE TABLE t2 (id integer PRIMARY KEY);\n";
const STAMP: &str = "20240101120000";

/// shipgate's tables exactly as shipgate 0.1 (before text versions) created them.
fn old_tables(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "CREATE TABLE IF NOT EXISTS \"shipgate_migrations\" (
    version bigint PRIMARY KEY,
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
CREATE TABLE IF NOT EXISTS \"shipgate_runs\" (
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
CREATE TABLE IF NOT EXISTS \"shipgate_audit\" (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL,
    version bigint,
    actor text NOT NULL,
    reason text,
    before text,
    after text,
    deploy_id text
);"
        }
        Engine::Sqlite => {
            "CREATE TABLE IF NOT EXISTS \"shipgate_migrations\" (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'running', 'failed')),
    statements_done INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    execution_ms INTEGER NOT NULL DEFAULT 0,
    applied_by TEXT,
    deploy_id TEXT,
    app_version TEXT
);
CREATE TABLE IF NOT EXISTS \"shipgate_runs\" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    finished_at TEXT,
    outcome TEXT CHECK (outcome IN ('succeeded', 'failed', 'aborted', 'nothing_to_do')),
    applied INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    deploy_id TEXT,
    host TEXT,
    app_version TEXT
);
CREATE TABLE IF NOT EXISTS \"shipgate_audit\" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    action TEXT NOT NULL,
    version INTEGER,
    actor TEXT NOT NULL,
    reason TEXT,
    before TEXT,
    after TEXT,
    deploy_id TEXT
);"
        }
        Engine::Mariadb => {
            "CREATE TABLE IF NOT EXISTS `shipgate_migrations` (
    version BIGINT NOT NULL PRIMARY KEY,
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
CREATE TABLE IF NOT EXISTS `shipgate_runs` (
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
CREATE TABLE IF NOT EXISTS `shipgate_audit` (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    action VARCHAR(64) NOT NULL,
    version BIGINT NULL,
    actor VARCHAR(512) NOT NULL,
    reason TEXT NULL,
    `before` TEXT NULL,
    `after` TEXT NULL,
    deploy_id VARCHAR(512) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        }
    }
}

/// The declared type of `table`'s `version` column, in lower case.
fn version_type(db: &Db, table: &str) -> String {
    let sql = match db.engine() {
        Engine::Postgres => format!(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = '{table}' AND column_name = 'version'"
        ),
        Engine::Mariadb => format!(
            "SELECT CONCAT_WS(' ', column_type, collation_name, is_nullable, column_key) \
             FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name = '{table}' AND column_name = 'version'"
        ),
        Engine::Sqlite => {
            format!("SELECT type FROM pragma_table_info('{table}') WHERE name = 'version'")
        }
    };
    let rows = db.query(&sql);
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_else(|| panic!("{table} has no version column"))
        .to_lowercase()
}

/// What each engine's text `version` columns are declared as (MariaDB: type, collation,
/// nullability, key).
fn text_types(engine: Engine) -> [&'static str; 2] {
    match engine {
        Engine::Postgres => ["text", "text"],
        Engine::Sqlite => ["text", "text"],
        Engine::Mariadb => [
            "varchar(255) utf8mb4_bin no pri",
            "varchar(255) utf8mb4_bin yes ",
        ],
    }
}

/// Every column of the history row and of the audit row the test wrote, as text, to compare
/// before and after the conversion (`'1'` compares with the old integer column and the new
/// text one alike).
fn old_rows(db: &Db) -> Vec<Vec<Option<String>>> {
    let mut rows = db.query(
        "SELECT name, checksum, state, applied_at, execution_ms, applied_by, deploy_id, app_version \
         FROM shipgate_migrations WHERE version = '1'",
    );
    rows.extend(db.query(&format!(
        "SELECT id, at, action, actor, reason, {}, {} FROM shipgate_audit WHERE action = 'baseline'",
        db.ident("before"),
        db.ident("after")
    )));
    rows
}

fn tables_an_older_shipgate_created_are_read_then_converted_in_place(engine: Engine) {
    let db = Db::new(engine);
    if engine == Engine::Sqlite {
        std::fs::File::create(db.sqlite_path()).expect("the database file an older shipgate made");
    }
    db.exec(old_tables(engine));
    db.exec(T1);
    db.exec(&format!(
        "INSERT INTO shipgate_migrations (version, name, checksum, applied_by, deploy_id) \
         VALUES (1, 'create_t1', '{}', 'old-host:1', 'deploy-1')",
        checksum(T1)
    ));
    db.exec(&format!(
        "INSERT INTO shipgate_audit (action, version, actor, reason, {}, {}) \
         VALUES ('baseline', 1, 'old-host:1', 'adopted', '0 migration(s) in history', 'recorded 1')",
        db.ident("before"),
        db.ident("after")
    ));
    let before = old_rows(&db);
    let p = Project::new();
    p.write("1_create_t1.up.sql", T1)
        .write(&format!("{STAMP}_create_t2.up.sql"), T2)
        .write(&format!("{STAMP}_create_t2.down.sql"), "DROP TABLE t2;\n");

    // Read as it is: reading never converts (status, history and serve take no lock).
    let s = p.run(&db, &["status", "--json"]).json();
    assert_eq!(s["current_version"], 1, "{s}");
    assert_eq!(s["head_version"], json!(20240101120000_i64), "{s}");
    assert_eq!(
        s["pending"],
        json!([{"version": 20240101120000_i64, "name": "create_t2"}])
    );
    let h = p.run(&db, &["history", "--json"]).json();
    assert_eq!(h[0]["version"], 1, "{h}");
    assert_eq!(h[0]["name"], "create_t1", "{h}");
    let old_type = version_type(&db, "shipgate_migrations");
    assert!(
        old_type.contains("int"),
        "{old_type}: reading converted nothing"
    );

    // The first run under the lock converts, then applies the pending file.
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 20240101120000 create_t2"]);
    assert!(db.table_exists("t2"));
    assert_eq!(
        [
            version_type(&db, "shipgate_migrations"),
            version_type(&db, "shipgate_audit")
        ],
        text_types(engine).map(str::to_owned)
    );
    assert_eq!(db.versions(), [1, 20240101120000]);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(old_rows(&db), before, "the old rows are intact");
    assert_eq!(
        db.query("SELECT version FROM shipgate_audit"),
        [[Some("1".to_owned())]]
    );
    if engine == Engine::Sqlite {
        // Text, not a number that SQLite's affinity would have made of it.
        assert_eq!(
            db.query("SELECT DISTINCT typeof(version) FROM shipgate_migrations"),
            [[Some("text".to_owned())]]
        );
    }

    // The converted tables take every write: a revert deletes by version and adds an audit
    // row after the old one.
    p.run(&db, &["down", "--to", "1", "--yes", "--reason", "undo"])
        .code(0)
        .stdout_has(&["reverted 1 migration(s)"]);
    assert_eq!(db.versions(), [1]);
    let audit = db.audit();
    assert_eq!(
        audit
            .iter()
            .map(|a| (a.action.as_str(), a.version))
            .collect::<Vec<_>>(),
        [("baseline", Some(1)), ("down", Some(20240101120000))]
    );
    let ids = db.query("SELECT id FROM shipgate_audit ORDER BY id");
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0][0], before[1][0], "the old audit row keeps its id");

    // And again: converted once, the next run finds text and changes nothing but history.
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 20240101120000 create_t2"]);
    let s = p.run(&db, &["status", "--json"]).json();
    assert_eq!(s["current_version"], json!(20240101120000_i64), "{s}");
}

/// History is text, ordered as versions, not as strings: `1.10` after `1.9`, `10` after `9`.
/// A multi-part version (another tool's layout) reads back and prints as text in JSON.
fn versions_are_text_read_in_version_order(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    for v in [9, 10] {
        p.write(
            &format!("{v}_t{v}.up.sql"),
            &format!("CREATE TABLE t{v} (id integer PRIMARY KEY);\n"),
        );
    }
    p.run(&db, &["up"]).code(0);
    // Rows as a Flyway layout would record them, written straight into history.
    for v in ["1.9", "1.10"] {
        db.exec(&format!(
            "INSERT INTO shipgate_migrations (version, name, checksum, state, statements_done, applied_at, execution_ms) \
             VALUES ('{v}', 'flyway', 'x', 'applied', 0, CURRENT_TIMESTAMP, 0)"
        ));
    }
    let h = p.run(&db, &["history", "--json"]).json();
    let versions: Vec<&serde_json::Value> = h
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| &r["version"])
        .collect();
    assert_eq!(
        versions,
        [&json!("1.9"), &json!("1.10"), &json!(9), &json!(10)]
    );
    let s = p.run(&db, &["status", "--json"]).json();
    assert_eq!(s["current_version"], 10, "{s}");
    assert_eq!(
        s["missing"],
        json!([{"version": "1.9", "name": "flyway"}, {"version": "1.10", "name": "flyway"}])
    );
    p.run(&db, &["history"])
        .code(0)
        .stdout_has(&["1.10 ", "flyway"]);
}
