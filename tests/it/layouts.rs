//! Other tools' directories, read as they are: for every layout, `release` applies the files,
//! the next `release` has nothing to do, `down` reverts where the layout has downs, an edit to
//! an applied file is caught by its checksum, and the layout's own no-transaction marker runs a
//! file outside a transaction. Flyway's own rules: repeatables, what its parsers run outside a
//! transaction, placeholders refused, its configurable prefixes.

use crate::support::{Db, Engine, Project};

/// One layout's directory: two migrations creating tables `a` and `b`, then the edit that
/// changes the first one's up script.
struct Layout {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// The file holding migration 1's up script, and its edited text.
    edit: (&'static str, &'static str),
    /// Whether `down --steps 1` reverts migration 2.
    has_downs: bool,
    /// The versions history records, in order.
    versions: [&'static str; 2],
}

const LAYOUTS: &[Layout] = &[
    Layout {
        name: "dbmate",
        files: &[
            ("20240101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id integer);\n\n-- migrate:down\nDROP TABLE a;\n"),
            ("20240102000000_b.sql", "-- a header comment\n-- migrate:up\nCREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n-- migrate:down\nDROP TABLE b;\n"),
        ],
        edit: ("20240101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id integer, x integer);\n\n-- migrate:down\nDROP TABLE a;\n"),
        has_downs: true,
        versions: ["20240101000000", "20240102000000"],
    },
    Layout {
        name: "goose",
        files: &[
            ("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id integer);\n\n-- +goose Down\nDROP TABLE a;\n"),
            ("00002_b.sql", "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n-- +goose StatementEnd\n\n-- +goose Down\n-- +goose StatementBegin\nDROP TABLE b;\n-- +goose StatementEnd\n"),
        ],
        edit: ("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id integer, x integer);\n\n-- +goose Down\nDROP TABLE a;\n"),
        has_downs: true,
        versions: ["1", "2"],
    },
    Layout {
        name: "diesel",
        files: &[
            ("00000000000000_diesel_initial_setup/up.sql", "-- diesel's own setup, empty here\n"),
            ("00000000000000_diesel_initial_setup/down.sql", "-- nothing\n"),
            ("2024-01-01-000000_a/up.sql", "CREATE TABLE a (id integer);\n"),
            ("2024-01-01-000000_a/down.sql", "DROP TABLE a;\n"),
            ("2024-01-02-000000_b/up.sql", "CREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n"),
            ("2024-01-02-000000_b/down.sql", "DROP TABLE b;\n"),
        ],
        edit: ("2024-01-01-000000_a/up.sql", "CREATE TABLE a (id integer, x integer);\n"),
        has_downs: true,
        versions: ["20240101000000", "20240102000000"],
    },
    Layout {
        name: "Prisma",
        files: &[
            ("migration_lock.toml", "provider = \"postgresql\"\n"),
            ("20240101000000_a/migration.sql", "-- CreateTable\nCREATE TABLE a (id integer);\n"),
            ("20240102000000_b/migration.sql", "CREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n"),
        ],
        edit: ("20240101000000_a/migration.sql", "CREATE TABLE a (id integer, x integer);\n"),
        has_downs: false,
        versions: ["20240101000000", "20240102000000"],
    },
    Layout {
        name: "Flyway",
        files: &[
            ("V1__create_a.sql", "CREATE TABLE a (id integer);\n"),
            ("V2__create_b.sql", "CREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n"),
            ("U2__create_b.sql", "DROP TABLE b;\n"),
        ],
        edit: ("V1__create_a.sql", "CREATE TABLE a (id integer, x integer);\n"),
        has_downs: true,
        versions: ["1", "2"],
    },
    Layout {
        name: "Atlas",
        files: &[
            ("20240101000000_a.sql", "CREATE TABLE a (id integer);\n"),
            ("20240102000000_b.sql", "CREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n"),
            // As `atlas migrate hash` writes it for these two files.
            ("atlas.sum", "h1:jRAyXCLOABHgQRdl3XfUl2WjZNSz2Lc/pfxov28ciF8=\n20240101000000_a.sql h1:zapeE87YmKkD0QPtdReWF8o5JMYsDuga9kcUVOcU0IY=\n20240102000000_b.sql h1:it6ZV31suEStHUeIY1zsGOTU6s3hd4x8NgHqF3zpz2E=\n"),
        ],
        edit: ("20240101000000_a.sql", "CREATE TABLE a (id integer, x integer);\n"),
        has_downs: false,
        versions: ["20240101000000", "20240102000000"],
    },
];

fn project(layout: &Layout) -> Project {
    let p = Project::new();
    for (name, text) in layout.files {
        if let Some((dir, _)) = name.split_once('/') {
            std::fs::create_dir_all(p.migrations().join(dir)).expect("a migration directory");
        }
        p.write(name, text);
    }
    p
}

on_every_engine!(
    every_layout_applies_is_a_no_op_then_reverts_and_catches_edits,
    a_forced_layout_refuses_the_files_it_does_not_read,
);

fn every_layout_applies_is_a_no_op_then_reverts_and_catches_edits(engine: Engine) {
    for layout in LAYOUTS {
        // Prisma's lock file names PostgreSQL (layouts_prisma_atlas.rs runs each provider on
        // its own engine and refuses the others).
        if layout.name == "Prisma" && engine != Engine::Postgres {
            continue;
        }
        let db = Db::new(engine);
        let p = project(layout);
        let what = layout.name;
        p.run(&db, &["release"]).code(0);
        assert!(
            db.table_exists("a") && db.table_exists("b"),
            "{what}: applied"
        );
        let versions: Vec<String> = db
            .query("SELECT version FROM shipgate_migrations")
            .into_iter()
            .filter_map(|r| r[0].clone())
            .collect();
        let mut versions = versions;
        versions.retain(|v| v != "0");
        versions.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        assert_eq!(versions, layout.versions, "{what}: history");
        assert_eq!(db.int("SELECT count(*) FROM b"), 1, "{what}: b's row once");

        // The every-deploy no-op: nothing runs again.
        let again = p.run(&db, &["release"]);
        again.code(0);
        assert_eq!(
            db.int("SELECT count(*) FROM b"),
            1,
            "{what}: nothing ran twice"
        );

        if layout.has_downs {
            p.run(&db, &["down", "--steps", "1", "--yes"]).code(0);
            assert!(!db.table_exists("b"), "{what}: reverted");
            assert!(db.table_exists("a"), "{what}: only one step");
            p.run(&db, &["release"]).code(0);
            assert!(db.table_exists("b"), "{what}: re-applied");
        }

        // An edit to the applied up script is caught, whichever file holds it (in an Atlas
        // directory by atlas.sum first, with Atlas's words).
        p.write(layout.edit.0, layout.edit.1);
        let caught = if layout.name == "Atlas" {
            "checksum mismatch"
        } else {
            "repair --accept-checksum"
        };
        p.run(&db, &["release"])
            .code(5)
            .stderr_has(&[layout.edit.0, caught]);
    }
}

fn a_forced_layout_refuses_the_files_it_does_not_read(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer);\n")
        .write("V2__b.sql", "CREATE TABLE b (id integer);\n");
    // Auto: a mix of layouts is refused, naming the odd file.
    p.run(&db, &["release"]).code(5).stderr_has(&[
        "V2__b.sql",
        "Flyway migration in a directory read as shipgate",
    ]);
    p.run(&db, &["release", "--layout", "flyway"])
        .code(5)
        .stderr_has(&["1_a.up.sql", "read as Flyway"]);
    p.run(&db, &["release", "--layout", "liquibase"])
        .code(2)
        .stderr_has(&["layout", "liquibase"]);
    assert!(!db.table_exists("a") && !db.table_exists("b"));
    assert!(!db.table_exists("shipgate_migrations"));
}

on_every_engine!(a_layouts_no_transaction_marker_runs_the_file_outside_a_transaction);

/// dbmate's `transaction:false`, goose's `NO TRANSACTION` and diesel's `run_in_transaction =
/// false` mean what `-- shipgate:no-transaction` means: the statements commit one by one, so
/// a failing second statement leaves the first one's table (in a transaction it would not).
fn a_layouts_no_transaction_marker_runs_the_file_outside_a_transaction(engine: Engine) {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "dbmate",
            &[("1_a.sql", "-- migrate:up transaction:false\nCREATE TABLE a (id integer);\nSELECT * FROM missing_table;\n-- migrate:down\n")],
        ),
        (
            "goose",
            &[("1_a.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE a (id integer);\nSELECT * FROM missing_table;\n")],
        ),
        (
            "diesel",
            &[
                ("2024-01-01-000000_a/up.sql", "CREATE TABLE a (id integer);\nSELECT * FROM missing_table;\n"),
                ("2024-01-01-000000_a/metadata.toml", "run_in_transaction = false\n"),
            ],
        ),
    ];
    for (what, files) in cases {
        let db = Db::new(engine);
        let p = Project::new();
        for (name, text) in *files {
            if let Some((dir, _)) = name.split_once('/') {
                std::fs::create_dir_all(p.migrations().join(dir)).expect("a migration directory");
            }
            p.write(name, text);
        }
        p.run(&db, &["release"]).code(1);
        assert!(
            db.table_exists("a"),
            "{what}: the first statement committed on its own"
        );
        let state = db.query("SELECT state FROM shipgate_migrations");
        assert_eq!(state, [[Some("failed".to_owned())]], "{what}");
    }
}

/// `shipgate new` writes the form of the layout the directory is in, and what it writes is read
/// back in that layout (an untouched template is a no-op migration).
#[test]
fn new_writes_the_directorys_own_layout() {
    type Wrote = fn(&[String]) -> bool;
    let cases: &[(&str, &str, Wrote)] = &[
        ("goose", "00001_a.sql", |files| {
            files.iter().any(|f| f.ends_with("_add_x.sql"))
        }),
        ("dbmate", "20240101000000_a.sql", |files| {
            files.iter().any(|f| f.ends_with("_add_x.sql"))
        }),
        ("diesel", "2024-01-01-000000_a/up.sql", |files| {
            files.iter().any(|f| f.ends_with("_add_x/up.sql"))
                && files.iter().any(|f| f.ends_with("_add_x/down.sql"))
        }),
        ("Flyway", "V1__a.sql", |files| {
            files.iter().any(|f| f == "V2__add_x.sql") && files.iter().any(|f| f == "U2__add_x.sql")
        }),
        ("native", "1_a.up.sql", |files| {
            files.iter().any(|f| f.ends_with("_add_x.up.sql"))
        }),
    ];
    for (what, first, wrote) in cases {
        let db = Db::new(Engine::Sqlite);
        std::fs::File::create(db.sqlite_path()).expect("the database file");
        let p = Project::new();
        let text = match *what {
            "goose" => "-- +goose Up\nCREATE TABLE a (id integer);\n",
            "dbmate" => "-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:down\n",
            _ => "CREATE TABLE a (id integer);\n",
        };
        if let Some((dir, _)) = first.split_once('/') {
            std::fs::create_dir_all(p.migrations().join(dir)).expect("a migration directory");
        }
        p.write(first, text);
        p.run(&db, &["new", "add x"]).code(0);
        let files = walk(&p.migrations());
        assert!(wrote(&files), "{what}: {files:?}");
        p.run(&db, &["release"]).code(0);
        assert_eq!(
            db.int("SELECT count(*) FROM shipgate_migrations"),
            2,
            "{what}"
        );
    }
}

/// Every file under `dir`, relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("list").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(name);
        }
    }
    out
}

on_every_engine!(flyway_dotted_versions_apply_in_version_order);

/// Flyway's dotted versions are ordered part by part (1.10 after 1.9), `_` reads as `.`, and
/// history keeps them as written.
fn flyway_dotted_versions_apply_in_version_order(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("V1.1__a.sql", "CREATE TABLE a (id integer);\n")
        .write("V1.10__c.sql", "INSERT INTO a VALUES (10);\n")
        .write("V1_9__b.sql", "INSERT INTO a VALUES (9);\n");
    p.run(&db, &["release"]).code(0);
    let order = db.query("SELECT id FROM a ORDER BY id");
    assert_eq!(order.len(), 2);
    let mut versions: Vec<String> = db
        .query("SELECT version FROM shipgate_migrations")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    versions.sort();
    assert_eq!(versions, ["1.1", "1.10", "1.9"]);
    let status = p.run(&db, &["status", "--json"]);
    status.code(0);
    let json = status.json();
    let text = json.to_string();
    let (at_9, at_10) = (text.find("\"1.9\""), text.find("\"1.10\""));
    assert!(at_9.is_some() && at_10.is_some(), "{text}");
    // A new file between two applied ones is out of order, as in any layout.
    p.write("V1.5__late.sql", "SELECT 1;\n");
    p.run(&db, &["release"]).code(5).stderr_has(&["1.5"]);
}

on_every_engine!(a_tool_that_orders_versions_as_text_is_warned_about);

/// diesel orders versions as text: `2024-03-13_170000_x` is version `20240313`, which diesel
/// runs between March 6th and 14th and shipgate (numbers) first. `check` and the release say
/// so, naming both directories.
fn a_tool_that_orders_versions_as_text_is_warned_about(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    for (dir, sql) in [
        ("2024-03-06-000000_a", "CREATE TABLE a (id integer);\n"),
        ("2024-03-13_170000_b", "CREATE TABLE b (id integer);\n"),
    ] {
        std::fs::create_dir_all(p.migrations().join(dir)).expect("a migration directory");
        p.write(&format!("{dir}/up.sql"), sql);
    }
    let words = [
        "2024-03-13_170000_b",
        "2024-03-06-000000_a",
        "orders versions as text",
    ];
    p.run(&db, &["check"]).stdout_has(&words);
    p.run(&db, &["release"]).code(0).stderr_has(&words);
    // Nothing pending: nothing to say.
    let quiet = p.run(&db, &["release"]);
    quiet.code(0);
    assert!(
        !quiet.stderr.contains("orders versions as text"),
        "{quiet:?}"
    );
}

on_every_engine!(flyway_runs_repeatables_and_refuses_placeholders);

/// A Flyway directory with a repeatable: applied after the versions, recorded in
/// `shipgate_repeatables`; a file with a placeholder is refused naming file and line, unless
/// placeholder replacement is off (then the text runs as written).
fn flyway_runs_repeatables_and_refuses_placeholders(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("V1__create_t.sql", "CREATE TABLE t (x varchar(20));\n")
        .write(
            "R__seed.sql",
            "DELETE FROM t;\nINSERT INTO t VALUES ('seed');\n",
        );
    p.run(&db, &["release"]).code(0);
    assert_eq!(db.int("SELECT count(*) FROM t"), 1);
    assert_eq!(db.int("SELECT count(*) FROM shipgate_repeatables"), 1);
    p.run(&db, &["release"]).code(0);
    assert_eq!(db.int("SELECT count(*) FROM t"), 1, "not run again");

    p.write(
        "V2__placeholder.sql",
        "-- ${not_this_one}: comments are not run\nINSERT INTO t VALUES ('a');\nINSERT INTO t VALUES ('${who}');\n",
    );
    p.run(&db, &["release"]).code(5).stderr_has(&[
        "V2__placeholder.sql:3: Flyway placeholder `${who}`",
        "placeholderReplacement",
    ]);
    assert_eq!(db.int("SELECT count(*) FROM t"), 1, "nothing ran");
    p.run(
        &db,
        &["release", "--flyway", "placeholderReplacement=false"],
    )
    .code(0);
    assert_eq!(db.int("SELECT count(*) FROM t WHERE x = '${who}'"), 1);
}

/// What Flyway's PostgreSQL parser says cannot run in a transaction runs outside one, as
/// Flyway runs it; a file that mixes both kinds is refused unless `mixed`.
#[test]
fn flyway_runs_what_postgresql_cannot_run_in_a_transaction_outside_one() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("V1__create_t.sql", "CREATE TABLE t (id integer);\n")
        .write(
            "V2__index_t.sql",
            "-- Flyway runs this outside a transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
        );
    p.run(&db, &["release"]).code(0);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 't_id'"),
        1
    );
    p.write(
        "V3__mixed.sql",
        "CREATE TABLE u (id integer);\nCREATE INDEX CONCURRENTLY u_id ON u (id);\n",
    );
    p.run(&db, &["release"]).code(5).stderr_has(&[
        "V3__mixed.sql:2: `CREATE INDEX CONCURRENTLY u_id ON u (id)` cannot run in a transaction",
        "mixed",
    ]);
    assert!(!db.table_exists("u"));
    p.run(&db, &["release", "--flyway", "mixed=true"]).code(0);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 'u_id'"),
        1
    );
}

/// Flyway's prefixes, separator and suffixes come from the project's settings, in the config
/// file as in Flyway's own.
#[test]
fn flyway_names_follow_the_projects_settings() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::new();
    p.write("M1-create_t.pgsql", "CREATE TABLE t (id integer);\n")
        .write(
            "RM-seed.pgsql",
            "DELETE FROM t;\nINSERT INTO t VALUES (1);\n",
        );
    let config = p.write_root(
        "shipgate.toml",
        "[flyway]\nsqlMigrationPrefix = \"M\"\nrepeatableSqlMigrationPrefix = \"RM\"\nsqlMigrationSeparator = \"-\"\nsqlMigrationSuffixes = \".pgsql\"\n",
    );
    let config = config.display().to_string();
    p.run(&db, &["--config", &config, "release"]).code(0);
    assert_eq!(db.versions(), [1]);
    assert_eq!(db.int("SELECT count(*) FROM t"), 1);
    p.run(&db, &["--config", &config, "new", "add x"]).code(0);
    assert!(
        p.files().contains(&"M2-add_x.pgsql".to_owned()),
        "{:?}",
        p.files()
    );
}
