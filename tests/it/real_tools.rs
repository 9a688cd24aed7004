//! The real tools, installed by `.ci/run` from the registries (dbmate from npm, diesel_cli
//! from crates.io), migrate a database from a directory in their own layout; shipgate then
//! reads the same directory unchanged, refuses until the history is taken over, adopts it
//! exactly, applies what the tool had not, has nothing to do next time, and reverts with the
//! layout's own down scripts. The tools' paths come from `SHIPGATE_TEST_DBMATE` and
//! `SHIPGATE_TEST_DIESEL` (exported by `.ci/run`), else `../tools-ci`, where `.ci/run` puts them.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Db, Engine, Project};

/// The installed tool: the variable's path, else `.ci/run`'s cache beside the clone.
fn tool(var: &str, cached: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("tools-ci")
            .join(cached)
    });
    assert!(
        path.is_file(),
        "{} is not installed: `bash .ci/run` installs it (or set {var})",
        path.display()
    );
    path
}

/// Runs a real tool and insists it succeeded.
fn run_tool(what: &str, cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const DBMATE_FILES: [(&str, &str); 3] = [
    (
        "20240101000001_users.sql",
        "-- migrate:up\nCREATE TABLE users (id integer PRIMARY KEY, email varchar(200));\nINSERT INTO users VALUES (1, 'a@example.com');\n\n-- migrate:down\nDROP TABLE users;\n",
    ),
    (
        "20240101000002_plans.sql",
        "-- migrate:up\nCREATE TABLE plans (id integer PRIMARY KEY);\n\n-- migrate:down\nDROP TABLE plans;\n",
    ),
    (
        "20240101000003_invoices.sql",
        "-- migrate:up\nCREATE TABLE invoices (id integer PRIMARY KEY, plan_id integer);\nINSERT INTO invoices VALUES (1, 1);\n\n-- migrate:down\nDROP TABLE invoices;\n",
    ),
];

/// dbmate's URL for `db`.
fn dbmate_url(db: &Db) -> String {
    match db.engine() {
        Engine::Postgres => format!("{}?sslmode=disable", db.url()),
        Engine::Mariadb => db.url().to_owned(),
        Engine::Sqlite => format!("sqlite:{}", db.sqlite_path().display()),
    }
}

on_every_engine!(a_database_the_real_dbmate_migrated_is_taken_over_and_released);

fn a_database_the_real_dbmate_migrated_is_taken_over_and_released(engine: Engine) {
    let dbmate = tool("SHIPGATE_TEST_DBMATE", "dbmate/node_modules/.bin/dbmate");
    let db = Db::new(engine);
    let p = Project::new();
    for (name, text) in &DBMATE_FILES[..2] {
        p.write(name, text);
    }
    run_tool(
        "dbmate up",
        Command::new(&dbmate)
            .arg("--url")
            .arg(dbmate_url(&db))
            .arg("--migrations-dir")
            .arg(p.migrations())
            .args(["--no-dump-schema", "up"]),
    );
    assert_eq!(db.int("SELECT count(*) FROM schema_migrations"), 2);

    // The third file arrives with the next build: never run twice, refused until adopted.
    let (name, text) = DBMATE_FILES[2];
    p.write(name, text);
    p.run(&db, &["release"])
        .code(5)
        .stderr_has(&["dbmate", "schema_migrations", "shipgate adopt"]);
    assert!(!db.table_exists("invoices"));
    p.run(&db, &["adopt", "--reason", "switching from dbmate"])
        .code(0);
    p.run(&db, &["release"]).code(0);
    assert_eq!(db.int("SELECT count(*) FROM users"), 1, "users ran once");
    assert_eq!(db.int("SELECT count(*) FROM invoices"), 1);
    assert_eq!(
        db.int("SELECT count(*) FROM shipgate_migrations WHERE state = 'applied'"),
        3
    );
    assert_eq!(
        db.int("SELECT count(*) FROM schema_migrations"),
        2,
        "dbmate's table is left as it was"
    );
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["down", "--steps", "1", "--yes"]).code(0);
    assert!(
        !db.table_exists("invoices"),
        "dbmate's down section reverted it"
    );
    assert!(db.table_exists("plans"));
}

on_every_engine!(a_database_the_real_diesel_cli_migrated_is_taken_over_and_released);

fn a_database_the_real_diesel_cli_migrated_is_taken_over_and_released(engine: Engine) {
    // diesel_cli is built for PostgreSQL and SQLite (its MySQL backend needs libmysqlclient).
    if engine == Engine::Mariadb {
        return;
    }
    let diesel = tool("SHIPGATE_TEST_DIESEL", "diesel/bin/diesel");
    let db = Db::new(engine);
    let p = Project::new();
    let write = |dir: &str, up: &str, down: &str| {
        std::fs::create_dir_all(p.migrations().join(dir)).expect("a migration directory");
        p.write(&format!("{dir}/up.sql"), up);
        p.write(&format!("{dir}/down.sql"), down);
    };
    write(
        "2024-01-01-000001_users",
        "CREATE TABLE users (id integer PRIMARY KEY);\nINSERT INTO users VALUES (1);\n",
        "DROP TABLE users;\n",
    );
    write(
        "2024-01-01-000002_plans",
        "CREATE TABLE plans (id integer PRIMARY KEY);\n",
        "DROP TABLE plans;\n",
    );
    let url = match engine {
        Engine::Sqlite => db.sqlite_path().display().to_string(),
        _ => db.url().to_owned(),
    };
    if engine == Engine::Sqlite {
        std::fs::File::create(db.sqlite_path()).expect("the database file");
    }
    run_tool(
        "diesel migration run",
        Command::new(&diesel)
            .args([
                "migration",
                "run",
                "--database-url",
                &url,
                "--migration-dir",
            ])
            .arg(p.migrations())
            .current_dir(p.root()),
    );
    assert_eq!(db.int("SELECT count(*) FROM __diesel_schema_migrations"), 2);

    write(
        "2024-01-01-000003_invoices",
        "CREATE TABLE invoices (id integer PRIMARY KEY);\nINSERT INTO invoices VALUES (1);\n",
        "DROP TABLE invoices;\n",
    );
    p.run(&db, &["release"]).code(5).stderr_has(&[
        "diesel",
        "__diesel_schema_migrations",
        "shipgate adopt",
    ]);
    p.run(&db, &["adopt", "--reason", "switching from diesel"])
        .code(0);
    p.run(&db, &["release"]).code(0);
    assert_eq!(db.int("SELECT count(*) FROM users"), 1, "users ran once");
    assert_eq!(db.int("SELECT count(*) FROM invoices"), 1);
    let versions = db.query("SELECT version FROM shipgate_migrations ORDER BY version");
    assert_eq!(
        versions,
        [
            [Some("20240101000001".to_owned())],
            [Some("20240101000002".to_owned())],
            [Some("20240101000003".to_owned())]
        ]
    );
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["down", "--steps", "1", "--yes"]).code(0);
    assert!(!db.table_exists("invoices"));
    // diesel itself still reads its directory and its table after shipgate: the two agree.
    run_tool(
        "diesel migration pending",
        Command::new(&diesel)
            .args([
                "migration",
                "list",
                "--database-url",
                &url,
                "--migration-dir",
            ])
            .arg(p.migrations())
            .current_dir(p.root()),
    );
}
