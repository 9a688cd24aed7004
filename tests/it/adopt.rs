//! `shipgate adopt` for each other tool's history table (SPEC §4): each
//! table is created exactly as its tool creates it (the source file is named above each one),
//! with applied rows, a gap (a version the tool did not apply, between two it did), and the
//! tool's failed or dirty state where it has one. Adopt records exactly the applied versions,
//! refuses a failed entry with the tool's own fix and a file edited since the tool applied it
//! (where the tool kept a checksum), and never writes to the other tool's table.
//!
//! The migration files are in shipgate's own layout (`<version>_<name>.up.sql`) and the
//! versions single integers; the tools' own layouts are read by other modules.

use crate::support::{Db, Engine, Project, Run};

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const PLANS: &str = "CREATE TABLE plans (id integer PRIMARY KEY);\n";
const TEAMS: &str = "CREATE TABLE teams (id integer PRIMARY KEY);\n";
const TAGS: &str = "CREATE TABLE tags (id integer PRIMARY KEY);\n";

/// Four migrations; the tools below applied 1 and 3 (2 is the gap), and 4 is pending or
/// failed.
fn project() -> Project {
    let p = Project::new();
    p.write("1_users.up.sql", USERS)
        .write("2_plans.up.sql", PLANS)
        .write("3_teams.up.sql", TEAMS)
        .write("4_tags.up.sql", TAGS);
    p
}

/// A fresh database holding what the other tool left: its table (`ddl`) and the schema of
/// migrations 1 and 3.
fn migrated_by(engine: Engine, ddl: &str) -> Db {
    let db = Db::new(engine);
    if engine == Engine::Sqlite {
        std::fs::File::create(db.sqlite_path()).expect("the database file the tool created");
    }
    db.exec(ddl);
    db.exec(USERS);
    db.exec(TEAMS);
    db
}

fn adopt(p: &Project, db: &Db) -> Run {
    Run::wait(p.platform_command(db, &["adopt", "--reason", "switching tools"]))
}

/// Adopt refuses with every fragment and writes nothing.
#[track_caller]
fn refused(p: &Project, db: &Db, fragments: &[&str]) {
    adopt(p, db)
        .code(5)
        .stderr_has(fragments)
        .stderr_has(&["nothing was changed"])
        .secret_free();
    assert!(
        !db.table_exists("shipgate_migrations"),
        "a refused adopt created shipgate's tables"
    );
}

/// Adopt succeeds and records exactly `versions`, with one audit row; the other tool's table
/// (`count_sql`) still has `rows` rows.
#[track_caller]
fn adopted(p: &Project, db: &Db, tool: &str, versions: &[i64], count_sql: &str, rows: i64) {
    adopt(p, db)
        .code(0)
        .stdout_has(&[
            &format!("recorded {} migration(s) {tool} applied", versions.len()),
            "left as it is",
        ])
        .secret_free();
    assert_eq!(db.versions(), versions);
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "adopt");
    assert_eq!(audit[0].reason.as_deref(), Some("switching tools"));
    assert_eq!(db.int(count_sql), rows, "{tool}'s table was written to");
}

// --- dbmate -----------------------------------------------------------------------------------

/// dbmate 2.x `CreateMigrationsTable`: `pkg/driver/postgres/postgres.go` (`version varchar
/// primary key`), `pkg/driver/mysql/mysql.go` and `pkg/driver/sqlite/sqlite.go` (`version
/// varchar(128) primary key`).
fn dbmate_table(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "create table if not exists schema_migrations (version varchar primary key)"
        }
        Engine::Mariadb | Engine::Sqlite => {
            "create table if not exists schema_migrations (version varchar(128) primary key)"
        }
    }
}

on_every_engine!(dbmate_history_is_adopted_exactly);

fn dbmate_history_is_adopted_exactly(engine: Engine) {
    let p = project();
    let db = migrated_by(engine, dbmate_table(engine));
    // dbmate's InsertMigration, one row per applied file; 7 has no file here.
    db.exec("insert into schema_migrations (version) values ('1'), ('3'), ('7')");
    Run::wait(p.platform_command(&db, &["release"]))
        .code(5)
        .stderr_has(&[
            "dbmate's (schema_migrations: 3 row(s), newest version 7; `shipgate adopt` would refuse it: dbmate recorded version(s) 7 that have no file",
        ]);
    refused(
        &p,
        &db,
        &["dbmate recorded version(s) 7 that have no file in"],
    );
    db.exec("delete from schema_migrations where version = '7'");
    adopted(
        &p,
        &db,
        "dbmate",
        &[1, 3],
        "SELECT count(*) FROM schema_migrations",
        2,
    );
}
