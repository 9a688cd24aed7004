//! A database another tool has been migrating and shipgate has never seen (SPEC §4): every
//! command that would apply refuses before writing anything, naming the tool, its table, what
//! it recorded and the command that records it; after `baseline`, the release applies only
//! what is new.

use sha2::{Digest, Sha384};

use crate::support::{Db, Engine, Project, Run};

/// `_sqlx_migrations` as sqlx-cli creates it (sqlx 0.8.6: sqlx-postgres/src/migrate.rs,
/// sqlx-sqlite/src/migrate.rs and sqlx-mysql/src/migrate.rs, `ensure_migrations_table`), with
/// the rows it writes for applied migrations: `checksum` is the SHA-384 of the file's text.
fn sqlx_table(engine: Engine, applied: &[(i64, &str, &str)]) -> String {
    let (installed, checksum, yes) = match engine {
        Engine::Postgres => ("TIMESTAMPTZ NOT NULL DEFAULT now()", "BYTEA", "true"),
        Engine::Sqlite | Engine::Mariadb => {
            ("TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP", "BLOB", "1")
        }
    };
    let rows: Vec<String> = applied
        .iter()
        .map(|(version, description, text)| {
            let hex = hex::encode(Sha384::digest(text.as_bytes()));
            let bytes = match engine {
                Engine::Postgres => format!("decode('{hex}', 'hex')"),
                _ => format!("X'{hex}'"),
            };
            format!("({version}, '{description}', {yes}, {bytes}, 1)")
        })
        .collect();
    format!(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on {installed}, success BOOLEAN NOT NULL, checksum {checksum} NOT NULL, \
         execution_time BIGINT NOT NULL); \
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES {}",
        rows.join(", ")
    )
}

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const PLANS: &str = "CREATE TABLE plans (id integer PRIMARY KEY);\n";

on_every_engine!(a_database_sqlx_migrated_is_refused_then_adopted_exactly);

fn a_database_sqlx_migrated_is_refused_then_adopted_exactly(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::with_users();
    p.write("2_plans.up.sql", PLANS).write(
        "3_teams.up.sql",
        "CREATE TABLE teams (id integer PRIMARY KEY);\n",
    );
    // What sqlx-cli left: its table, and the schema of migrations 1 and 2.
    if engine == Engine::Sqlite {
        std::fs::File::create(db.sqlite_path()).expect("the database file sqlx-cli created");
    }
    db.exec(&sqlx_table(
        engine,
        &[(1, "users", USERS), (2, "plans", PLANS)],
    ));
    db.exec("CREATE TABLE users (id bigint PRIMARY KEY)");
    db.exec("CREATE TABLE plans (id integer PRIMARY KEY)");

    for args in [&["release"][..], &["up"]] {
        let run = Run::wait(p.platform_command(&db, args));
        run.code(5)
            .stderr_has(&[
                "sqlx's (_sqlx_migrations: 2 migration(s) recorded as applied, newest version 2)",
                "shipgate adopt --from sqlx",
                "SHIPGATE_ADOPT=auto",
                "nothing was applied",
            ])
            .secret_free();
        assert!(
            !db.table_exists("shipgate_migrations"),
            "{args:?} wrote shipgate's tables"
        );
        assert!(!db.table_exists("teams"), "{args:?} applied something");
    }

    // A dry run reads and checks, and changes nothing.
    Run::wait(p.platform_command(&db, &["adopt", "--dry-run"]))
        .code(0)
        .stdout_has(&["dry run: would record 2 migration(s) sqlx applied"]);
    assert!(!db.table_exists("shipgate_migrations"));
    // A file edited since sqlx applied it is caught by sqlx's own checksum.
    p.write(
        "2_plans.up.sql",
        "CREATE TABLE plans (id bigint PRIMARY KEY);\n",
    );
    Run::wait(p.platform_command(&db, &["adopt", "--reason", "switching from sqlx"]))
        .code(5)
        .stderr_has(&["version 2", "was edited since sqlx applied it"]);
    assert!(!db.table_exists("shipgate_migrations"));
    p.write("2_plans.up.sql", PLANS);

    Run::wait(p.platform_command(&db, &["adopt", "--reason", "switching from sqlx"]))
        .code(0)
        .stdout_has(&["recorded 2 migration(s) sqlx applied", "left as it is"]);
    assert_eq!(db.versions(), [1, 2]);
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "adopt");
    assert_eq!(audit[0].reason.as_deref(), Some("switching from sqlx"));
    // Adopted once: a second adopt refuses, the release applies only what is new.
    Run::wait(p.platform_command(&db, &["adopt", "--reason", "again"]))
        .code(5)
        .stderr_has(&["shipgate already has 2 migration(s)"]);
    Run::wait(p.platform_command(&db, &["release"]))
        .code(0)
        .secret_free();
    assert_eq!(db.versions(), [1, 2, 3]);
    assert!(db.table_exists("teams"));
    assert_eq!(
        db.int("SELECT count(*) FROM _sqlx_migrations"),
        2,
        "sqlx's table untouched"
    );
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
            "golang-migrate's (schema_migrations: 1 row(s), newest version 20240101000001; `shipgate adopt` would refuse it: golang-migrate recorded version(s) 20240101000001 that have no file",
        ]);
    // A dirty golang-migrate version is refused; a clean one adopts every file up to it.
    let gm = Db::new(Engine::Postgres);
    gm.exec("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (1, true)");
    Run::wait(p.platform_command(&gm, &["adopt", "--reason", "from golang-migrate"]))
        .code(5)
        .stderr_has(&["recorded version 1 as dirty"]);
    gm.exec(
        "UPDATE schema_migrations SET dirty = false; CREATE TABLE users (id bigint PRIMARY KEY)",
    );
    Run::wait(p.platform_command(
        &gm,
        &[
            "adopt",
            "--from",
            "golang-migrate",
            "--reason",
            "from golang-migrate",
        ],
    ))
    .code(0)
    .stdout_has(&["recorded 1 migration(s) golang-migrate applied"]);
    assert_eq!(gm.versions(), [1]);
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
