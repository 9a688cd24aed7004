//! A database another tool has been migrating and shipgate has never seen (SPEC §4): every
//! command that would apply refuses before writing anything, naming the tool, its table, what
//! it recorded and the command that records it; after `baseline`, the release applies only
//! what is new.

use crate::support::{Db, Engine, Project, Run};

/// `_sqlx_migrations` as sqlx-cli creates it (sqlx 0.8.6: sqlx-postgres/src/migrate.rs,
/// sqlx-sqlite/src/migrate.rs and sqlx-mysql/src/migrate.rs, `ensure_migrations_table`), with
/// the rows it writes for two applied migrations.
fn sqlx_table(engine: Engine) -> String {
    let (installed, checksum, yes, value) = match engine {
        Engine::Postgres => (
            "TIMESTAMPTZ NOT NULL DEFAULT now()",
            "BYTEA",
            "true",
            "'\\x00'",
        ),
        Engine::Sqlite => (
            "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP",
            "BLOB",
            "1",
            "X'00'",
        ),
        Engine::Mariadb => (
            "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP",
            "BLOB",
            "1",
            "X'00'",
        ),
    };
    format!(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on {installed}, success BOOLEAN NOT NULL, checksum {checksum} NOT NULL, \
         execution_time BIGINT NOT NULL); \
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (1, 'users', {yes}, {value}, 1), (2, 'plans', {yes}, {value}, 1)"
    )
}

on_every_engine!(a_database_another_tool_migrated_is_refused_until_its_history_is_recorded);

fn a_database_another_tool_migrated_is_refused_until_its_history_is_recorded(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::with_users();
    p.write(
        "2_plans.up.sql",
        "CREATE TABLE plans (id integer PRIMARY KEY);\n",
    )
    .write(
        "3_teams.up.sql",
        "CREATE TABLE teams (id integer PRIMARY KEY);\n",
    );
    // What sqlx-cli left: its table, and the schema of migrations 1 and 2.
    if engine == Engine::Sqlite {
        std::fs::File::create(db.sqlite_path()).expect("the database file sqlx-cli created");
    }
    db.exec(&sqlx_table(engine));
    db.exec("CREATE TABLE users (id integer PRIMARY KEY)");
    db.exec("CREATE TABLE plans (id integer PRIMARY KEY)");

    for args in [&["release"][..], &["up"]] {
        let run = Run::wait(p.platform_command(&db, args));
        run.code(5)
            .stderr_has(&[
                "sqlx's (_sqlx_migrations: 2 row(s), newest version 2)",
                "shipgate baseline --version 2",
                "nothing was applied",
            ])
            .secret_free();
        assert!(
            !db.table_exists("shipgate_migrations"),
            "{args:?} wrote shipgate's tables"
        );
        assert!(!db.table_exists("teams"), "{args:?} applied something");
    }

    // Recording what sqlx applied is the way through; the other tool's table is left alone.
    Run::wait(p.platform_command(
        &db,
        &[
            "baseline",
            "--version",
            "2",
            "--reason",
            "switching from sqlx",
        ],
    ))
    .code(0);
    Run::wait(p.platform_command(&db, &["release"]))
        .code(0)
        .secret_free();
    assert_eq!(db.versions(), [1, 2, 3]);
    assert!(db.table_exists("teams"));
    assert_eq!(db.int("SELECT count(*) FROM _sqlx_migrations"), 2);
}

#[test]
fn golang_migrate_and_dbmate_tables_are_told_apart() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    // golang-migrate's postgres driver: `CREATE TABLE IF NOT EXISTS schema_migrations (version
    // bigint not null primary key, dirty boolean not null)` (database/postgres/postgres.go).
    db.exec("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (20240101000001, false)");
    Run::wait(p.platform_command(&db, &["release"]))
        .code(5)
        .stderr_has(&[
            "golang-migrate's (schema_migrations: 1 row(s), newest version 20240101000001)",
        ]);
    // dbmate: `create table if not exists schema_migrations (version varchar(128) primary key)`
    // (pkg/driver/postgres/postgres.go).
    let db = Db::new(Engine::Postgres);
    db.exec("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000002')");
    Run::wait(p.platform_command(&db, &["release"]))
        .code(5)
        .stderr_has(&["dbmate's (schema_migrations: 2 row(s)"]);
    // A database shipgate already manages is not refused for a leftover table of another tool.
    let db = Db::new(Engine::Postgres);
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    db.exec("CREATE TABLE goose_db_version (id serial, version_id bigint, is_applied boolean)");
    p.write("2_more.up.sql", "CREATE TABLE more (id integer);\n");
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    assert_eq!(db.versions(), [1, 2]);
}
