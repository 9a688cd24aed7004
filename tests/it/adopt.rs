//! `shipgate adopt` for each other tool's history table, and `adopt = auto` (SPEC §4): each
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

/// `true` and `false` as SQL literals on `engine`.
fn yes_no(engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Sqlite => ("1", "0"),
        _ => ("true", "false"),
    }
}

// --- dbmate -----------------------------------------------------------------------------------

/// dbmate 2.x `CreateMigrationsTable`, as it sends it (table name quoted by the driver):
/// `pkg/driver/postgres/postgres.go` (`version varchar primary key`, schema-qualified),
/// `pkg/driver/mysql/mysql.go` and `pkg/driver/sqlite/sqlite.go` (`version varchar(128)
/// primary key`). bench/realworld.md compares these with the tables the real dbmate created.
pub(crate) fn dbmate_table(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "create table if not exists public.schema_migrations (version varchar primary key)"
        }
        Engine::Mariadb => {
            "create table if not exists `schema_migrations` (version varchar(128) primary key)"
        }
        Engine::Sqlite => {
            "create table if not exists \"schema_migrations\" (version varchar(128) primary key)"
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

// --- goose ------------------------------------------------------------------------------------

/// goose v3.27 `CreateTable`: `internal/dialects/postgres.go`, `mysql.go`, `sqlite3.go`.
fn goose_table(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "CREATE TABLE goose_db_version (
		id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NOT NULL DEFAULT now()
	)"
        }
        Engine::Mariadb => {
            "CREATE TABLE goose_db_version (
		id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NULL default now(),
		PRIMARY KEY(id)
	)"
        }
        Engine::Sqlite => {
            "CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	)"
        }
    }
}

on_every_engine!(goose_history_is_adopted_by_each_version_s_newest_row);

fn goose_history_is_adopted_by_each_version_s_newest_row(engine: Engine) {
    let p = project();
    let db = migrated_by(engine, goose_table(engine));
    let (yes, no) = yes_no(engine);
    // goose's bootstrap row 0 (createVersionTable), 1 to 3 applied, then 2 rolled back by an
    // older goose (a row with is_applied false; newer ones delete the rows); 9 has no file.
    db.exec(&format!(
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES \
         (0, {yes}), (1, {yes}), (2, {yes}), (3, {yes}), (2, {no}), (9, {yes})"
    ));
    refused(
        &p,
        &db,
        &["goose recorded version(s) 9 that have no file in"],
    );
    db.exec("DELETE FROM goose_db_version WHERE version_id = 9");
    adopted(
        &p,
        &db,
        "goose",
        &[1, 3],
        "SELECT count(*) FROM goose_db_version",
        5,
    );
}

// --- diesel -----------------------------------------------------------------------------------

/// diesel 2.x `diesel/src/migration/setup_migration_table.sql`, the same on every engine
/// (bench/realworld.md compares it with the table the real diesel_cli created).
const DIESEL_TABLE: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)";

on_every_engine!(diesel_history_is_adopted_without_its_setup_migration);

fn diesel_history_is_adopted_without_its_setup_migration(engine: Engine) {
    let p = project();
    let db = migrated_by(engine, DIESEL_TABLE);
    // `diesel setup`'s 00000000000000_diesel_initial_setup, then 1 and 3; 8 has no file.
    db.exec(
        "INSERT INTO __diesel_schema_migrations (version) VALUES \
         ('00000000000000'), ('1'), ('3'), ('8')",
    );
    refused(
        &p,
        &db,
        &["diesel recorded version(s) 8 that have no file in"],
    );
    db.exec("DELETE FROM __diesel_schema_migrations WHERE version = '8'");
    adopt(&p, &db).code(0).stdout_has(&[
        "recorded 2 migration(s) diesel applied",
        "diesel's initial setup migration (00000000000000_diesel_initial_setup) has no file here and was not recorded",
    ]);
    assert_eq!(db.versions(), [1, 3]);
    assert_eq!(db.int("SELECT count(*) FROM __diesel_schema_migrations"), 3);
}

// --- Prisma -----------------------------------------------------------------------------------

/// prisma-engines `create_migrations_table`: `schema-engine/connectors/sql-schema-connector/
/// src/flavour/postgres.rs`, `mysql.rs` and `sqlite.rs`.
pub(crate) fn prisma_table(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);"
        }
        Engine::Mariadb => {
            "CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        }
        Engine::Sqlite => {
            "CREATE TABLE \"_prisma_migrations\" (
    \"id\"                    TEXT PRIMARY KEY NOT NULL,
    \"checksum\"              TEXT NOT NULL,
    \"finished_at\"           DATETIME,
    \"migration_name\"        TEXT NOT NULL,
    \"logs\"                  TEXT,
    \"rolled_back_at\"        DATETIME,
    \"started_at\"            DATETIME NOT NULL DEFAULT current_timestamp,
    \"applied_steps_count\"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);"
        }
    }
}

fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Migration 3's file edited since the tool applied it: adopt refuses with `fragments`. The
/// file is put back after.
#[track_caller]
fn refused_while_3_is_edited(p: &Project, db: &Db, fragments: &[&str]) {
    p.write(
        "3_teams.up.sql",
        "CREATE TABLE teams (id bigint PRIMARY KEY);\n",
    );
    refused(p, db, fragments);
    p.write("3_teams.up.sql", TEAMS);
}

on_every_engine!(prisma_history_is_adopted_when_finished_and_checked_by_sha256);

fn prisma_history_is_adopted_when_finished_and_checked_by_sha256(engine: Engine) {
    let p = project();
    let db = migrated_by(engine, prisma_table(engine));
    let now = match engine {
        Engine::Sqlite => "1700000000000",
        _ => "CURRENT_TIMESTAMP",
    };
    // 1 and 3 finished; 2 failed and was rolled back (`migrate resolve --rolled-back`); 4
    // failed part-way and nobody has resolved it yet.
    db.exec(&format!(
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at, applied_steps_count) VALUES \
         ('a1', '{}', {now}, '1_users', NULL, NULL, 1), \
         ('a2', '{}', NULL, '2_plans', 'boom', {now}, 0), \
         ('a3', '{}', {now}, '3_teams', NULL, NULL, 1), \
         ('a4', '{}', NULL, '4_tags', 'Database error: boom', NULL, 0)",
        sha256(USERS),
        sha256(PLANS),
        sha256(TEAMS),
        sha256(TAGS)
    ));
    Run::wait(p.platform_command(&db, &["release"]))
        .code(5)
        .stderr_has(&[
            "Prisma's (_prisma_migrations: 4 row(s)",
            "migration 4_tags failed part-way",
        ]);
    refused(
        &p,
        &db,
        &[
            "migration 4_tags failed part-way",
            "prisma migrate resolve --applied 4_tags",
            "prisma migrate resolve --rolled-back 4_tags",
        ],
    );
    // What `prisma migrate resolve --rolled-back 4_tags` does.
    db.exec(&format!(
        "UPDATE _prisma_migrations SET rolled_back_at = {now} WHERE id = 'a4'"
    ));
    // A file edited since Prisma applied it is caught by Prisma's own checksum.
    refused_while_3_is_edited(
        &p,
        &db,
        &[
            "migration 3_teams (",
            "3_teams.up.sql) was edited since Prisma applied it",
        ],
    );
    adopted(
        &p,
        &db,
        "Prisma",
        &[1, 3],
        "SELECT count(*) FROM _prisma_migrations",
        4,
    );
}

// --- Flyway -----------------------------------------------------------------------------------

/// Flyway 13 `getRawCreateScript`: `flyway-database/flyway-database-postgresql/…/
/// PostgreSQLDatabase.java`, `flyway-database/flyway-mysql/…/MySQLDatabase.java` and
/// `flyway-core/…/database/sqlite/SQLiteDatabase.java` (no tablespace, no baseline marker).
fn flyway_table(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "CREATE TABLE \"flyway_schema_history\" (
    \"installed_rank\" INT NOT NULL,
    \"version\" VARCHAR(50),
    \"description\" VARCHAR(200) NOT NULL,
    \"type\" VARCHAR(20) NOT NULL,
    \"script\" VARCHAR(1000) NOT NULL,
    \"checksum\" INTEGER,
    \"installed_by\" VARCHAR(100) NOT NULL,
    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),
    \"execution_time\" INTEGER NOT NULL,
    \"success\" BOOLEAN NOT NULL
);
ALTER TABLE \"flyway_schema_history\" ADD CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\");
CREATE INDEX \"flyway_schema_history_s_idx\" ON \"flyway_schema_history\" (\"success\");"
        }
        Engine::Mariadb => {
            "CREATE TABLE `flyway_schema_history` (
    `installed_rank` INT NOT NULL,
    `version` VARCHAR(50),
    `description` VARCHAR(200) NOT NULL,
    `type` VARCHAR(20) NOT NULL,
    `script` VARCHAR(1000) NOT NULL,
    `checksum` INT,
    `installed_by` VARCHAR(100) NOT NULL,
    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    `execution_time` INT NOT NULL,
    `success` BOOL NOT NULL,
    CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)
);
CREATE INDEX `flyway_schema_history_s_idx` ON `flyway_schema_history` (`success`);"
        }
        Engine::Sqlite => {
            "CREATE TABLE \"flyway_schema_history\" (
    \"installed_rank\" INT NOT NULL PRIMARY KEY,
    \"version\" VARCHAR(50),
    \"description\" VARCHAR(200) NOT NULL,
    \"type\" VARCHAR(20) NOT NULL,
    \"script\" VARCHAR(1000) NOT NULL,
    \"checksum\" INT,
    \"installed_by\" VARCHAR(100) NOT NULL,
    \"installed_on\" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
    \"execution_time\" INT NOT NULL,
    \"success\" BOOLEAN NOT NULL
);
CREATE INDEX \"main\".\"flyway_schema_history_s_idx\" ON \"flyway_schema_history\" (\"success\");"
        }
    }
}

/// Flyway's checksum of a text with LF line endings and no BOM: CRC-32 of its lines without
/// their terminators, as a signed 32-bit integer (`ChecksumCalculator.java`).
fn flyway_crc(text: &str) -> i32 {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    crc.checksum(text.replace('\n', "").as_bytes()) as i32
}

on_every_engine!(flyway_history_is_adopted_from_its_baseline_and_crc32);

fn flyway_history_is_adopted_from_its_baseline_and_crc32(engine: Engine) {
    let p = project();
    let db = migrated_by(engine, flyway_table(engine));
    let (yes, no) = yes_no(engine);
    let q = |c: &str| db.ident(c);
    // `flyway baseline` at 1, then V3 applied, a repeatable R__views, and V4 failed (MySQL
    // records a failed migration: its DDL is not transactional).
    db.exec(&format!(
        "INSERT INTO flyway_schema_history (installed_rank, {version}, description, {kind}, script, {checksum}, installed_by, execution_time, success) VALUES \
         (1, '1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'ci', 0, {yes}), \
         (2, '3', 'teams', 'SQL', 'V3__teams.sql', {teams}, 'ci', 12, {yes}), \
         (3, NULL, 'views', 'SQL', 'R__views.sql', 1234, 'ci', 3, {yes}), \
         (4, '4', 'tags', 'SQL', 'V4__tags.sql', {tags}, 'ci', 5, {no})",
        version = q("version"),
        kind = q("type"),
        checksum = q("checksum"),
        teams = flyway_crc(TEAMS),
        tags = flyway_crc(TAGS),
    ));
    refused(
        &p,
        &db,
        &[
            "version 4 (V4__tags.sql) failed (success = false)",
            "flyway repair",
        ],
    );
    // What `flyway repair` does with a failed entry.
    db.exec("DELETE FROM flyway_schema_history WHERE installed_rank = 4");
    // A file edited since Flyway applied it is caught by Flyway's own checksum.
    refused_while_3_is_edited(
        &p,
        &db,
        &[
            "3_teams.up.sql) was edited since Flyway applied it as V3__teams.sql",
            &format!("Flyway's checksum {}", flyway_crc(TEAMS)),
        ],
    );
    adopt(&p, &db).code(0).stdout_has(&[
        "recorded 2 migration(s) Flyway applied",
        "Flyway's baseline at version 1 counts the 1 file(s) up to it as applied",
        "1 repeatable migration(s) Flyway ran (views) have no version and were not recorded",
    ]);
    assert_eq!(db.versions(), [1, 3]);
    assert_eq!(db.int("SELECT count(*) FROM flyway_schema_history"), 3);
}

// --- Atlas ------------------------------------------------------------------------------------

/// Atlas's revisions table as ent creates it from `cmd/atlas/internal/migrate/ent/migrate/
/// schema.go`, with ent's column types per engine (`dialect/sql/schema/{postgres,mysql,
/// sqlite}.go`, `atTypeC`): on PostgreSQL in Atlas's own schema (`revisionSchemaName`,
/// `cmd/atlas/internal/cmdapi/migrate.go`), elsewhere in the database itself.
fn atlas_table(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "CREATE SCHEMA \"atlas_schema_revisions\";
CREATE TABLE \"atlas_schema_revisions\".\"atlas_schema_revisions\" (\"version\" character varying NOT NULL, \"description\" character varying NOT NULL, \"type\" bigint NOT NULL DEFAULT 2, \"applied\" bigint NOT NULL DEFAULT 0, \"total\" bigint NOT NULL DEFAULT 0, \"executed_at\" timestamptz NOT NULL, \"execution_time\" bigint NOT NULL, \"error\" text NULL, \"error_stmt\" text NULL, \"hash\" character varying NOT NULL, \"partial_hashes\" jsonb NULL, \"operator_version\" character varying NOT NULL, PRIMARY KEY (\"version\"));"
        }
        Engine::Mariadb => {
            "CREATE TABLE `atlas_schema_revisions` (`version` varchar(255) NOT NULL, `description` varchar(255) NOT NULL, `type` bigint unsigned NOT NULL DEFAULT 2, `applied` bigint NOT NULL DEFAULT 0, `total` bigint NOT NULL DEFAULT 0, `executed_at` timestamp NULL, `execution_time` bigint NOT NULL, `error` longtext NULL, `error_stmt` longtext NULL, `hash` varchar(255) NOT NULL, `partial_hashes` json NULL, `operator_version` varchar(255) NOT NULL, PRIMARY KEY (`version`)) CHARSET utf8mb4 COLLATE utf8mb4_bin;"
        }
        Engine::Sqlite => {
            "CREATE TABLE `atlas_schema_revisions` (`version` text NOT NULL, `description` text NOT NULL, `type` integer NOT NULL DEFAULT (2), `applied` integer NOT NULL DEFAULT (0), `total` integer NOT NULL DEFAULT (0), `executed_at` datetime NOT NULL, `execution_time` integer NOT NULL, `error` text NULL, `error_stmt` text NULL, `hash` text NOT NULL, `partial_hashes` json NULL, `operator_version` text NOT NULL, PRIMARY KEY (`version`));"
        }
    }
}

on_every_engine!(atlas_history_is_adopted_where_atlas_keeps_it);

fn atlas_history_is_adopted_where_atlas_keeps_it(engine: Engine) {
    let p = project();
    let db = migrated_by(engine, atlas_table(engine));
    let table = match engine {
        Engine::Postgres => "atlas_schema_revisions.atlas_schema_revisions",
        _ => "atlas_schema_revisions",
    };
    let q = |c: &str| db.ident(c);
    // A baseline at 1 (`--baseline 1`), 3 executed, 4 stopped at its second statement, and
    // Atlas's own identifier row.
    db.exec(&format!(
        "INSERT INTO {table} ({version}, description, {kind}, applied, total, executed_at, execution_time, error, error_stmt, hash, operator_version) VALUES \
         ('1', 'users', 1, 0, 0, CURRENT_TIMESTAMP, 0, NULL, NULL, '', 'Atlas CLI v0.30.0'), \
         ('3', 'teams', 2, 1, 1, CURRENT_TIMESTAMP, 1000, NULL, NULL, 'h1', 'Atlas CLI v0.30.0'), \
         ('4', 'tags', 2, 1, 2, CURRENT_TIMESTAMP, 1000, 'relation already exists', 'CREATE TABLE tags (id integer PRIMARY KEY)', 'h2', 'Atlas CLI v0.30.0'), \
         ('.atlas_cloud_identifier', 'x', 2, 0, 0, CURRENT_TIMESTAMP, 0, NULL, NULL, '', 'Atlas CLI v0.30.0')",
        version = q("version"),
        kind = q("type"),
    ));
    Run::wait(p.platform_command(&db, &["release"]))
        .code(5)
        .stderr_has(&[&format!("Atlas's ({table}: 4 row(s)")]);
    refused(
        &p,
        &db,
        &[
            "version 4 stopped part-way (1 of 2 statement(s) ran; failed at `CREATE TABLE tags (id integer PRIMARY KEY)`: relation already exists)",
            "atlas migrate set 4",
        ],
    );
    // What `atlas migrate set 3` does with a later revision.
    db.exec(&format!("DELETE FROM {table} WHERE {} = '4'", q("version")));
    adopt(&p, &db).code(0).stdout_has(&[
        "recorded 2 migration(s) Atlas applied",
        "Atlas's baseline at version 1 counts the 1 file(s) up to it as applied",
    ]);
    assert_eq!(db.versions(), [1, 3]);
    assert_eq!(db.int(&format!("SELECT count(*) FROM {table}")), 3);
}

// --- adopt = auto -----------------------------------------------------------------------------

on_every_engine!(a_release_refuses_naming_the_tool_and_both_remedies_unless_adopt_is_auto);

fn a_release_refuses_naming_the_tool_and_both_remedies_unless_adopt_is_auto(engine: Engine) {
    let p = project();
    // goose applied 1 and 3; 2 (the gap) and 4 are new to it.
    let db = migrated_by(engine, goose_table(engine));
    let (yes, _) = yes_no(engine);
    db.exec(&format!(
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, {yes}), (1, {yes}), (3, {yes})"
    ));
    for args in [&["release"][..], &["up"]] {
        Run::wait(p.platform_command(&db, args))
            .code(5)
            .stderr_has(&[
                "no shipgate history but goose's (goose_db_version: 2 migration(s) recorded as applied, newest version 3)",
                "shipgate adopt --from goose --reason",
                "adopt = ",
                "SHIPGATE_ADOPT=auto",
                "nothing was applied",
            ])
            .secret_free();
        assert!(!db.table_exists("shipgate_migrations"), "{args:?} wrote");
    }
    // With auto, adopting leaves 2 pending before 3: the plan after adopting is refused (out of
    // order) before anything is written.
    let mut auto = p.platform_command(&db, &["release"]);
    auto.env("SHIPGATE_ADOPT", "auto");
    Run::wait(auto)
        .code(5)
        .stderr_has(&["pending migration 2 (plans) is older than the newest applied migration 3"]);
    assert!(!db.table_exists("shipgate_migrations"));
    // Allowed out of order, one release adopts 1 and 3 and applies 2 and 4.
    let mut auto = p.platform_command(&db, &["release"]);
    auto.env("SHIPGATE_ADOPT", "auto")
        .env("SHIPGATE_ALLOW_OUT_OF_ORDER", "true");
    Run::wait(auto)
        .code(0)
        .stderr_has(&[
            "adopt = auto: recorded 2 migration(s) goose applied: 1 … 3",
            "release succeeded: applied 2 migration(s)",
        ])
        .secret_free();
    assert_eq!(db.versions(), [1, 2, 3, 4]);
    assert!(db.table_exists("plans") && db.table_exists("tags"));
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "adopt");
    assert_eq!(
        audit[0].reason.as_deref(),
        Some("adopt = auto: release took over goose's history")
    );
    assert_eq!(db.int("SELECT count(*) FROM goose_db_version"), 3);
    assert_eq!(
        db.int("SELECT count(*) FROM shipgate_runs WHERE outcome = 'succeeded'"),
        1
    );
}

on_every_engine!(up_with_adopt_auto_takes_over_then_applies_and_refuses_a_dirty_history);

fn up_with_adopt_auto_takes_over_then_applies_and_refuses_a_dirty_history(engine: Engine) {
    let p = project();
    // golang-migrate stopped part-way through 2: nothing may be taken over or applied.
    let ddl = match engine {
        Engine::Mariadb => "CREATE TABLE schema_migrations (version bigint NOT NULL, dirty boolean NOT NULL, PRIMARY KEY (version))",
        _ => "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
    };
    let db = migrated_by(engine, ddl);
    let (yes, no) = yes_no(engine);
    db.exec(&format!(
        "INSERT INTO schema_migrations (version, dirty) VALUES (2, {yes})"
    ));
    let up = || {
        let mut cmd = p.command(Some(&db), &["up", "--adopt", "auto"]);
        cmd.env("SHIPGATE_LOCK_WAIT", "10s");
        Run::wait(cmd)
    };
    up().code(5).stderr_has(&[
        "adopt = auto: golang-migrate recorded version 2 as dirty",
        "nothing was applied",
    ]);
    assert!(!db.table_exists("shipgate_migrations"));
    assert!(!db.table_exists("tags"));
    // Fixed by hand and forced (`migrate force 3`): 1 to 3 are taken over, 4 is applied.
    db.exec(&format!(
        "UPDATE schema_migrations SET version = 3, dirty = {no}"
    ));
    db.exec(PLANS);
    up().code(0).stdout_has(&[
        "adopt = auto: recorded 3 migration(s) golang-migrate applied: 1 … 3",
        "applied 4 tags",
    ]);
    assert_eq!(db.versions(), [1, 2, 3, 4]);
    assert_eq!(db.audit().len(), 1);
    // Adopted once: the next run is an ordinary no-op, and an explicit adopt refuses.
    up().code(0).stdout_has(&["nothing to do"]);
    Run::wait(p.platform_command(&db, &["adopt", "--reason", "again"]))
        .code(5)
        .stderr_has(&["shipgate already has 4 migration(s)"]);
    assert_eq!(db.int("SELECT count(*) FROM schema_migrations"), 1);
}

#[test]
fn adopt_mode_is_validated_and_read_from_the_config_file() {
    let p = project();
    Run::wait(p.command(None, &["--adopt", "sometimes", "status"]))
        .code(2)
        .stderr_has(&["adopt", "sometimes", "manual or auto"]);
    // diesel applied 1 and 2.
    let db = Db::new(Engine::Sqlite);
    std::fs::File::create(db.sqlite_path()).expect("the database file diesel created");
    db.exec(DIESEL_TABLE);
    db.exec("INSERT INTO __diesel_schema_migrations (version) VALUES ('1'), ('2')");
    db.exec(USERS);
    db.exec(PLANS);
    p.write_root("shipgate.toml", "adopt = \"auto\"\n");
    Run::wait(p.command(Some(&db), &["--config", "shipgate.toml", "up"]))
        .code(0)
        .stdout_has(&[
            "adopt = auto: recorded 2 migration(s) diesel applied",
            "applied 3 teams",
            "applied 4 tags",
        ]);
    assert_eq!(db.versions(), [1, 2, 3, 4]);
}
