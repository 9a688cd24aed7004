//! Constructs found in real projects' migration directories (bench/realworld.md, "Other tools'
//! directories, run as they are"), each in a minimal fixture of our own: what the tool itself
//! runs, shipgate runs; what it leaves alone, shipgate leaves alone.

use crate::support::{Db, Engine, Project};

fn project(files: &[(&str, &str)]) -> Project {
    let p = Project::new();
    for (name, text) in files {
        if let Some((dir, _)) = name.split_once('/') {
            std::fs::create_dir_all(p.migrations().join(dir)).expect("a migration directory");
        }
        p.write(name, text);
    }
    p
}

fn versions(db: &Db) -> Vec<String> {
    let mut v: Vec<String> = db
        .query("SELECT version FROM shipgate_migrations")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    v.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    v
}

on_every_engine!(
    an_atlas_sum_beside_golang_migrate_files_is_read_as_golang_migrate,
    atlas_files_named_by_version_alone_apply,
    a_loose_sql_file_beside_diesel_directories_is_not_run,
    a_dbmate_file_with_several_blocks_runs_every_up_section,
);

/// `atlas migrate diff --dir "file://…?format=golang-migrate"` keeps `atlas.sum` beside
/// golang-migrate's `.up.sql` and `.down.sql` files, which golang-migrate runs.
fn an_atlas_sum_beside_golang_migrate_files_is_read_as_golang_migrate(engine: Engine) {
    let db = Db::new(engine);
    let p = project(&[
        ("20240101000000_a.up.sql", "CREATE TABLE a (id integer);\n"),
        ("20240101000000_a.down.sql", "DROP TABLE a;\n"),
        ("20240102000000_b.up.sql", "CREATE TABLE b (id integer);\n"),
        ("20240102000000_b.down.sql", "DROP TABLE b;\n"),
        (
            "atlas.sum",
            "h1:unchecked\n20240101000000_a.down.sql h1:x\n",
        ),
    ]);
    p.run(&db, &["release"]).code(0);
    assert!(db.table_exists("a") && db.table_exists("b"));
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["down", "--steps", "1", "--yes"]).code(0);
    assert!(db.table_exists("a") && !db.table_exists("b"));
}

/// `atlas migrate diff` without a name writes `<version>.sql`.
fn atlas_files_named_by_version_alone_apply(engine: Engine) {
    let db = Db::new(engine);
    let p = project(&[
        ("1.sql", "CREATE TABLE a (id integer);\n"),
        ("2_b.sql", "CREATE TABLE b (id integer);\n"),
        // What `atlas migrate hash` writes for these two files.
        ("atlas.sum", "h1:rIsBim8tW1VCTNtnGcJDmklULyruTgkJ0ulbf/gJ+qg=\n1.sql h1:Qc34/RNPFbqqcJJUB1sEcSV83V075fw/IB6aEOQrK8Q=\n2_b.sql h1:ju+43QoEr5ztcVIy5tvkO3Izy7srJYFSt6Th7Z8fkRM=\n"),
    ]);
    p.run(&db, &["release"]).code(0);
    assert!(db.table_exists("a") && db.table_exists("b"));
    assert_eq!(versions(&db), ["1", "2"]);
    p.run(&db, &["release"]).code(0);
}

/// diesel runs the migration directories only: a loose `.sql` file beside them (a data script
/// run by hand) and a README are not migrations.
fn a_loose_sql_file_beside_diesel_directories_is_not_run(engine: Engine) {
    let db = Db::new(engine);
    let p = project(&[
        (
            "2024-01-01-000000_a/up.sql",
            "CREATE TABLE a (id integer);\n",
        ),
        ("2024-01-01-000000_a/down.sql", "DROP TABLE a;\n"),
        ("data_backfill.sql", "CREATE TABLE never (id integer);\n"),
        ("README.md", "Run data_backfill.sql by hand.\n"),
    ]);
    p.run(&db, &["check"])
        .code(0)
        .stdout_has(&["1 migration(s)", "read as diesel"]);
    p.run(&db, &["release"]).code(0);
    assert!(db.table_exists("a"));
    assert!(!db.table_exists("never"));
    assert_eq!(versions(&db), ["20240101000000"]);
    // status says what it read, too.
    p.run(&db, &["status"])
        .code(0)
        .stdout_has(&["migrations    migrations (diesel layout)"]);
    p.run(&db, &["status", "--json"])
        .code(0)
        .stdout_has(&[r#""layout": "diesel""#]);
}

/// dbmate 2.29 reads a file with several `-- migrate:up` blocks as one migration: every up
/// section runs on `up`, every down section on `down`.
fn a_dbmate_file_with_several_blocks_runs_every_up_section(engine: Engine) {
    let db = Db::new(engine);
    let p = project(&[(
        "20240101000000_a.sql",
        "-- migrate:up\nCREATE TABLE a (id integer);\n\n-- migrate:down\nDROP TABLE a;\n\n\
         -- migrate:up\nCREATE TABLE b (id integer);\n\n-- migrate:down\nDROP TABLE b;\n",
    )]);
    p.run(&db, &["release"]).code(0);
    assert!(db.table_exists("a") && db.table_exists("b"));
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["down", "--steps", "1", "--yes"]).code(0);
    assert!(!db.table_exists("a") && !db.table_exists("b"));
}
