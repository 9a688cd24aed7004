//! Every rule flags its unsafe example and not its safe alternative; acknowledgements,
//! contract files, severities and the live catalog gate findings as documented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;
use crate::migrate::source;

fn set(files: &[(&str, &str)]) -> MigrationSet {
    let files = files
        .iter()
        .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
        .collect();
    source::parse(Path::new("m"), files).expect("valid migration files")
}

fn run(engine: Engine, files: &[(&str, &str)], catalog: &Catalog) -> Vec<Finding> {
    lint(&set(files), &LintOptions::new(engine), catalog)
}

/// Rule ids of unacknowledged findings.
fn flagged(engine: Engine, files: &[(&str, &str)]) -> Vec<String> {
    run(engine, files, &Catalog::Assumed)
        .into_iter()
        .filter(|f| f.acknowledged.is_none())
        .map(|f| f.rule)
        .collect()
}

const PG: Engine = Engine::Postgres;
const MY: Engine = Engine::Mysql;
const LITE: Engine = Engine::Sqlite;

type Files = &'static [(&'static str, &'static str)];

/// (rule, engine, unsafe files, safe alternative).
const CASES: &[(&str, Engine, Files, Files)] = &[
    ("index-not-concurrent", PG,
        &[("1_a.up.sql", "CREATE INDEX users_email_idx ON users (email);")],
        &[("1_a.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);")]),
    ("index-not-concurrent", PG,
        &[("1_a.up.sql", "DROP INDEX users_email_idx;")],
        &[("1_a.up.sql", "-- shipgate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS users_email_idx;")]),
    ("index-not-concurrent", PG,
        &[("1_a.up.sql", "CREATE UNIQUE INDEX ON users (email);")],
        &[("1_a.up.sql", "CREATE TABLE t (id int);\nCREATE INDEX t_id_idx ON t (id);")]),
    ("concurrently-in-transaction", PG,
        &[("1_a.up.sql", "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);")],
        &[("1_a.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);")]),
    ("concurrently-in-transaction", PG,
        &[("1_a.up.sql", "DROP INDEX CONCURRENTLY users_email_idx;")],
        &[("1_a.up.sql", "-- no-transaction\nDROP INDEX CONCURRENTLY users_email_idx;")]),
    ("concurrently-not-alone", PG,
        &[("1_a.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY a_idx ON users (a);\nCREATE INDEX CONCURRENTLY b_idx ON users (b);")],
        &[("1_a.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY a_idx ON users (a);"),
          ("2_b.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY b_idx ON users (b);")]),
    ("constraint-not-valid", PG,
        &[("1_a.up.sql", "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);")],
        &[("1_a.up.sql", "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"),
          ("2_b.up.sql", "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;")]),
    ("constraint-not-valid", PG,
        &[("1_a.up.sql", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0);")],
        &[("1_a.up.sql", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID;")]),
    ("constraint-not-valid", PG,
        &[("1_a.up.sql", "ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id);")],
        &[("1_a.up.sql", "ALTER TABLE orders ADD COLUMN user_id bigint;")]),
    ("validate-in-same-transaction", PG,
        &[("1_a.up.sql", "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT fk;")],
        &[("1_a.up.sql", "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"),
          ("2_b.up.sql", "ALTER TABLE orders VALIDATE CONSTRAINT fk;")]),
    ("unique-not-using-index", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);")],
        &[("1_a.up.sql", "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;")]),
    ("unique-not-using-index", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD PRIMARY KEY (id);")],
        &[("1_a.up.sql", "ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_id_idx;")]),
    ("set-not-null", PG,
        &[("1_a.up.sql", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;"),
          ("2_b.up.sql", "ALTER TABLE users VALIDATE CONSTRAINT email_nn;"),
          ("3_c.up.sql", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;")]),
    ("add-column-not-null-no-default", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN age integer NOT NULL;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN age integer NOT NULL DEFAULT 0;")]),
    ("add-column-not-null-no-default", LITE,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN age integer NOT NULL;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN age integer;")]),
    ("add-column-volatile-default", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();")]),
    ("add-column-volatile-default", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN seq bigserial;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN seq bigint;")]),
    ("column-type-change", PG,
        &[("1_a.up.sql", "ALTER TABLE users ALTER COLUMN id TYPE bigint;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN id_new bigint;")]),
    ("column-type-change", MY,
        &[("1_a.up.sql", "ALTER TABLE users MODIFY COLUMN name varchar(500) NOT NULL;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN name_long varchar(500);")]),
    ("rename-column", PG,
        &[("1_a.up.sql", "ALTER TABLE users RENAME COLUMN email TO mail;")],
        &[("1_a.up.sql", "-- shipgate:contract\nALTER TABLE users RENAME COLUMN email TO mail;")]),
    ("rename-table", PG,
        &[("1_a.up.sql", "ALTER TABLE users RENAME TO accounts;")],
        &[("1_a.up.sql", "-- shipgate:contract\nALTER TABLE users RENAME TO accounts;")]),
    ("rename-table", MY,
        &[("1_a.up.sql", "RENAME TABLE users TO accounts;")],
        &[("1_a.up.sql", "CREATE TABLE t (id int);\nRENAME TABLE t TO t2;")]),
    ("drop-table", PG,
        &[("1_a.up.sql", "DROP TABLE users;")],
        &[("1_a.up.sql", "-- shipgate:contract\nDROP TABLE users;")]),
    ("drop-table", PG,
        &[("1_a.up.sql", "DROP TABLE IF EXISTS users CASCADE;")],
        &[("1_a.up.sql", "CREATE TABLE scratch (id int);\nDROP TABLE scratch;")]),
    ("drop-column", PG,
        &[("1_a.up.sql", "ALTER TABLE users DROP COLUMN email;")],
        &[("1_a.up.sql", "-- shipgate:contract\nALTER TABLE users DROP COLUMN email;")]),
    ("drop-schema", PG,
        &[("1_a.up.sql", "DROP SCHEMA billing CASCADE;")],
        &[("1_a.up.sql", "-- shipgate:contract\nDROP SCHEMA billing CASCADE;")]),
    ("drop-database", MY,
        &[("1_a.up.sql", "DROP DATABASE legacy;")],
        &[("1_a.up.sql", "-- shipgate:contract\nDROP DATABASE legacy;")]),
    ("truncate", PG,
        &[("1_a.up.sql", "TRUNCATE sessions;")],
        &[("1_a.up.sql", "-- shipgate:contract\nTRUNCATE sessions;")]),
    ("exclusive-lock-then-more", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN plan text;\nUPDATE users SET plan = 'free' WHERE id < 1000;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN plan text;"),
          ("2_b.up.sql", "UPDATE users SET plan = 'free' WHERE id < 1000;")]),
    ("exclusive-lock-then-more", PG,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE orders ADD COLUMN b int;")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users ADD COLUMN b int;")]),
    ("exclusive-lock-then-more", PG,
        &[("1_a.up.sql", "LOCK TABLE users;\nINSERT INTO audit (what) VALUES ('x');")],
        &[("1_a.up.sql", "LOCK TABLE users IN SHARE MODE;\nINSERT INTO audit (what) VALUES ('x');")]),
    ("update-without-where", PG,
        &[("1_a.up.sql", "UPDATE users SET plan = 'free';")],
        &[("1_a.up.sql", "UPDATE users SET plan = 'free' WHERE id BETWEEN 1 AND 10000;")]),
    ("delete-without-where", PG,
        &[("1_a.up.sql", "DELETE FROM sessions;")],
        &[("1_a.up.sql", "DELETE FROM sessions WHERE expires_at < now();")]),
    ("timeout-disabled", PG,
        &[("1_a.up.sql", "SET LOCAL lock_timeout = 0;\nALTER TABLE users ADD COLUMN a int;")],
        &[("1_a.up.sql", "SET LOCAL lock_timeout = '5s';\nALTER TABLE users ADD COLUMN a int;")]),
    ("timeout-session-level", PG,
        &[("1_a.up.sql", "SET statement_timeout = '5min';\nALTER TABLE users ADD COLUMN a int;")],
        &[("1_a.up.sql", "SET LOCAL statement_timeout = '5min';\nALTER TABLE users ADD COLUMN a int;")]),
    ("timeout-session-level", MY,
        &[("1_a.up.sql", "SET SESSION lock_wait_timeout = 5;")],
        &[("1_a.up.sql", "-- shipgate:lock-timeout 5s\nALTER TABLE users ADD COLUMN a int;")]),
    ("missing-down", PG,
        &[("1_a.up.sql", "CREATE TABLE a (id int);"), ("1_a.down.sql", "DROP TABLE a;"), ("2_b.up.sql", "CREATE TABLE b (id int);")],
        &[("1_a.up.sql", "CREATE TABLE a (id int);"), ("1_a.down.sql", "DROP TABLE a;"), ("2_b.sql", "CREATE TABLE b (id int);")]),
    ("empty-down", PG,
        &[("1_a.up.sql", "CREATE TABLE a (id int);"), ("1_a.down.sql", "-- nothing to undo\n")],
        &[("1_a.up.sql", "CREATE TABLE a (id int);"), ("1_a.down.sql", "DROP TABLE a;")]),
    ("empty-up", LITE,
        &[("1_a.up.sql", "-- write the forward migration here\n")],
        &[("1_a.up.sql", "-- shipgate:allow empty-up holds version 1: the schema came from a dump\n")]),
    ("mysql-multiple-ddl", MY,
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN a int;\nCREATE INDEX users_a ON users (a);")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN a int, ADD INDEX users_a (a);")]),
    ("opaque-sql", PG,
        &[("1_a.up.sql", "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$;")],
        &[("1_a.up.sql", "-- shipgate:allow opaque-sql reviewed: only touches the audit table\nDO $$ BEGIN PERFORM 1; END $$;")]),
    ("opaque-sql", PG,
        &[("1_a.up.sql", "CREATE SOMETHING NOBODY KNOWS;")],
        &[("1_a.up.sql", "CREATE TABLE t (id int);")]),
    ("opaque-sql", PG,
        &[("1_a.up.sql", "CALL backfill_users();")],
        &[("1_a.up.sql", "UPDATE users SET plan = 'free' WHERE plan IS NULL AND id < 1000;")]),
];

#[test]
fn every_rule_flags_its_unsafe_example_and_not_its_safe_alternative() {
    for (rule, engine, bad, good) in CASES {
        let got = flagged(*engine, bad);
        assert!(
            got.iter().any(|r| r == rule),
            "{rule} ({engine}): unsafe example not flagged: {bad:?} gave {got:?}"
        );
        let got = flagged(*engine, good);
        assert!(
            !got.iter().any(|r| r == rule),
            "{rule} ({engine}): safe alternative flagged: {good:?} gave {got:?}"
        );
    }
    for r in RULES {
        assert!(
            CASES.iter().any(|c| c.0 == r.id),
            "rule {} has no test case",
            r.id
        );
    }
}

#[test]
fn safe_alternatives_raise_nothing_at_all_where_they_should() {
    let clean: &[Files] = &[
        &[("1_a.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);")],
        &[("1_a.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\nCREATE INDEX users_email_idx ON users (email);\nINSERT INTO users VALUES (1, 'a');")],
        &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();")],
    ];
    for files in clean {
        let got = flagged(PG, files);
        assert!(got.is_empty(), "{files:?} gave {got:?}");
    }
}

#[test]
fn findings_point_at_the_statement_and_carry_the_rule_texts() {
    let f = run(
        PG,
        &[("1_a.up.sql", "-- leading comment\nSELECT 1;  CREATE INDEX i ON users (a);\n\n  UPDATE users\n  SET a = 1;")],
        &Catalog::Assumed,
    );
    let at: Vec<(&str, Option<usize>, Option<usize>)> = f
        .iter()
        .map(|f| (f.rule.as_str(), f.line, f.column))
        .collect();
    assert_eq!(
        at,
        vec![
            ("index-not-concurrent", Some(2), Some(12)),
            ("update-without-where", Some(4), Some(3))
        ]
    );
    let index = &f[0];
    assert_eq!(index.file.as_deref(), Some("m/1_a.up.sql"));
    assert!(index.message.contains("users"), "{}", index.message);
    assert_eq!(
        index.why,
        rules::find("index-not-concurrent").expect("rule").why
    );
    assert_eq!(
        index.to_string(),
        format!(
            "m/1_a.up.sql:2:12: error [index-not-concurrent] {}",
            index.message
        )
    );
}

#[test]
fn an_acknowledgement_silences_one_rule_for_one_statement() {
    let f = run(
        PG,
        &[(
            "1_a.up.sql",
            "-- shipgate:allow index-not-concurrent users is tiny in every environment\nCREATE INDEX a_idx ON users (a);\nCREATE INDEX b_idx ON users (b);\n-- shipgate:allow set-not-null wrong rule for this statement\nCREATE INDEX c_idx ON users (c);",
        )],
        &Catalog::Assumed,
    );
    let summary: Vec<(usize, bool)> = f
        .iter()
        .map(|f| (f.line.unwrap_or(0), f.acknowledged.is_some()))
        .collect();
    assert_eq!(summary, vec![(2, true), (3, false), (5, false)]);
    assert_eq!(
        f[0].acknowledged.as_deref(),
        Some("users is tiny in every environment")
    );
    assert!(!f[0].blocks() && f[1].blocks());
}

#[test]
fn an_acknowledgement_naming_no_rule_is_an_error() {
    let f = run(
        PG,
        &[(
            "1_a.up.sql",
            "-- shipgate:allow index-not-concurent typo\nCREATE INDEX a_idx ON users (a);",
        )],
        &Catalog::Assumed,
    );
    let got: Vec<(&str, bool)> = f.iter().map(|f| (f.rule.as_str(), f.blocks())).collect();
    assert_eq!(
        got,
        vec![("index-not-concurrent", true), (UNKNOWN_RULE, true)]
    );
    assert_eq!(f[1].line, Some(1));
}

#[test]
fn only_the_contract_marker_releases_a_destructive_step() {
    let f = run(
        PG,
        &[(
            "1_a.up.sql",
            "-- shipgate:allow drop-table we are sure\nDROP TABLE users;",
        )],
        &Catalog::Assumed,
    );
    assert_eq!(f.len(), 1);
    assert!(f[0].blocks(), "{f:?}");
    assert!(f[0].instead.contains("shipgate:contract"));
}

#[test]
fn severities_are_configurable_per_rule() {
    let s = set(&[(
        "1_a.up.sql",
        "CREATE INDEX a_idx ON users (a);\nUPDATE users SET a = 1;",
    )]);
    let mut options = LintOptions::new(PG);
    options.severities = BTreeMap::from([
        ("index-not-concurrent".to_owned(), Severity::Off),
        ("update-without-where".to_owned(), Severity::Warning),
    ]);
    let f = lint(&s, &options, &Catalog::Assumed);
    let got: Vec<(&str, Severity)> = f.iter().map(|f| (f.rule.as_str(), f.severity)).collect();
    assert_eq!(got, vec![("update-without-where", Severity::Warning)]);
    assert!(!f[0].blocks());
}

#[test]
fn rules_apply_only_to_engines_with_the_hazard() {
    let files: Files = &[("1_a.up.sql", "CREATE INDEX a_idx ON users (a);")];
    assert_eq!(flagged(PG, files), vec!["index-not-concurrent"]);
    assert!(flagged(MY, files).is_empty());
    assert!(flagged(LITE, files).is_empty());
}

fn live(tables: &[(&str, i64, i64)]) -> Catalog {
    Catalog::live(
        tables.iter().map(|(n, rows, bytes)| {
            (
                n.to_string(),
                TableStats {
                    rows: Some(*rows),
                    bytes: Some(*bytes),
                },
            )
        }),
        [(
            "users_email_idx".to_owned(),
            TableStats {
                rows: Some(50_000),
                bytes: Some(5_000_000),
            },
        )],
        Threshold::default(),
    )
}

#[test]
fn with_a_database_hazards_count_only_for_large_tables_that_existed_before_the_run() {
    let index: Files = &[("1_a.up.sql", "CREATE INDEX a_idx ON users (a);")];
    let drop: Files = &[("1_a.up.sql", "DROP TABLE users;")];
    type Tables = &'static [(&'static str, i64, i64)];
    let cases: &[(Files, Tables, &[&str])] = &[
        (
            index,
            &[("users", 50_000, 4_000_000)],
            &["index-not-concurrent"],
        ),
        (index, &[("users", 100, 16_384)], &[]),
        (
            index,
            &[("users", 100, 50_000_000)],
            &["index-not-concurrent"],
        ),
        (index, &[], &[]),
        // A drop counts for any table that existed, whatever its size.
        (drop, &[("users", 3, 8_192)], &["drop-table"]),
        (drop, &[], &[]),
        // Created earlier in the pending batch: new.
        (
            &[
                ("1_a.up.sql", "CREATE TABLE users (id int);"),
                (
                    "2_b.up.sql",
                    "CREATE INDEX a_idx ON users (id);\nDROP TABLE users;",
                ),
            ],
            &[],
            &[],
        ),
        (
            &[("1_a.up.sql", "DROP INDEX users_email_idx;")],
            &[("users", 50_000, 5_000_000)],
            &["index-not-concurrent"],
        ),
    ];
    for (files, tables, want) in cases {
        let got: Vec<String> = run(PG, files, &live(tables))
            .into_iter()
            .map(|f| f.rule)
            .collect();
        assert_eq!(got, *want, "{files:?} with {tables:?}");
    }
}

#[test]
fn without_a_database_only_the_file_itself_makes_a_table_new() {
    let files: Files = &[
        ("1_a.up.sql", "CREATE TABLE users (id int);"),
        ("2_b.up.sql", "CREATE INDEX a_idx ON users (id);"),
    ];
    assert_eq!(flagged(PG, files), vec!["index-not-concurrent"]);
}

#[test]
fn only_reports_the_selected_versions_but_learns_from_the_rest() {
    let s = set(&[
        ("1_a.up.sql", "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\nDROP TABLE x;"),
        ("2_b.up.sql", "ALTER TABLE users VALIDATE CONSTRAINT email_nn;"),
        ("3_c.up.sql", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users DROP COLUMN y;"),
    ]);
    let mut options = LintOptions::new(PG);
    options.only = Some(super::Only {
        versions: BTreeSet::from([Version::from_int(3)]),
        ..super::Only::default()
    });
    let got: Vec<(String, Option<String>)> = lint(&s, &options, &Catalog::Assumed)
        .into_iter()
        .map(|f| (f.rule, f.file))
        .collect();
    assert_eq!(
        got,
        vec![("drop-column".to_owned(), Some("m/3_c.up.sql".to_owned()))]
    );
}

#[test]
fn repeatables_are_linted_after_the_versioned_files_and_selected_by_name() {
    let s = set(&[
        ("1_a.up.sql", "CREATE TABLE t (id int);"),
        ("R__b.sql", "DROP TABLE gone;"),
        ("R__c.sql", "DROP TABLE other;"),
    ]);
    let mut options = LintOptions::new(PG);
    options.only = Some(Only {
        repeatables: BTreeSet::from(["b".to_owned()]),
        ..Only::default()
    });
    let got: Vec<(String, Option<String>)> = lint(&s, &options, &Catalog::Assumed)
        .into_iter()
        .map(|f| (f.rule, f.file))
        .collect();
    assert_eq!(
        got,
        vec![("drop-table".to_owned(), Some("m/R__b.sql".to_owned()))]
    );
}

#[test]
fn unknown_sizes_count_as_large() {
    let t = Threshold::default();
    let cases = [
        (None, None, true),
        (Some(10_001), None, true),
        (Some(10_000), Some(1), false),
        (None, Some(20 * 1024 * 1024), true),
        (None, Some(8192), false),
    ];
    for (rows, bytes, want) in cases {
        assert_eq!(
            TableStats { rows, bytes }.is_large(&t),
            want,
            "{rows:?} {bytes:?}"
        );
    }
}

fn catalog(tables: &[(&str, i64)], columns: &[(&str, &str, &str)], schemas: &[&str]) -> Catalog {
    let mut c = Catalog::live(
        tables.iter().map(|(n, rows)| {
            (
                n.to_string(),
                TableStats {
                    rows: Some(*rows),
                    bytes: Some(rows * 100),
                },
            )
        }),
        [],
        Threshold::default(),
    );
    for (t, col, ty) in columns {
        c.add_column(t, col, ty);
    }
    for s in schemas {
        c.add_schema(s);
    }
    c
}

/// (rule, severity) of every unacknowledged finding for the release gate.
fn release(engine: Engine, files: &[(&str, &str)], catalog: &Catalog) -> Vec<(String, Severity)> {
    let options = LintOptions {
        verdict: Verdict::Release,
        ..LintOptions::new(engine)
    };
    lint(&set(files), &options, catalog)
        .into_iter()
        .filter(|f| f.acknowledged.is_none())
        .map(|f| (f.rule, f.severity))
        .collect()
}

fn refused(engine: Engine, files: &[(&str, &str)], catalog: &Catalog) -> Vec<String> {
    release(engine, files, catalog)
        .into_iter()
        .filter(|(_, s)| *s == Severity::Error)
        .map(|(r, _)| r)
        .collect()
}

#[test]
fn the_release_gate_refuses_only_what_endangers_the_database_in_hand() {
    let big = catalog(&[("users", 50_000)], &[("users", "email", "text")], &[]);
    const E: Severity = Severity::Error;
    const W: Severity = Severity::Warning;
    type Expected = &'static [(&'static str, Severity)];
    let cases: &[(Engine, Files, Expected)] = &[
        // Rules about files and reverts are warnings, whatever the tables.
        (PG, &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN a int;"), ("1_a.down.sql", "-- no way back\n"),
               ("2_b.up.sql", "ALTER TABLE users ADD COLUMN b int;")],
            &[("empty-down", W), ("missing-down", W)]),
        (PG, &[("1_a.up.sql", "SET statement_timeout = 0;\nSELECT 1;")],
            &[("timeout-disabled", W), ("timeout-session-level", W)]),
        (PG, &[("1_a.up.sql", "-- nothing yet\n")], &[("empty-up", W)]),
        (MY, &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users ADD COLUMN b int;")],
            &[("mysql-multiple-ddl", W)]),
        (PG, &[("1_a.up.sql", "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY a ON users (email);\nSELECT 1;")],
            &[("concurrently-not-alone", W)]),
        // A statement shipgate cannot read refuses only when it names a large existing table.
        // A DO block's static statements are read (PL/pgSQL parser) and linted like top-level
        // ones; its dynamic SQL is what stays unreadable.
        (PG, &[("1_a.up.sql", "DO $$ BEGIN PERFORM 1; END $$;")], &[]),
        (PG, &[("1_a.up.sql", "DO $$ BEGIN EXECUTE 'SELECT ' || 1; END $$;")], &[("opaque-sql", W)]),
        (PG, &[("1_a.up.sql", "DO $$ BEGIN EXECUTE 'UPDATE users SET email = lower(email)'; END $$;")],
            &[("opaque-sql", E)]),
        (PG, &[("1_a.up.sql", "CREATE TABLE t (id int);\nDO $$ BEGIN UPDATE t SET id = 1; END $$;")],
            &[]),
        (PG, &[("1_a.up.sql", "DO $$ BEGIN UPDATE users SET email = lower(email); END $$;")],
            &[("update-without-where", E)]),
        // Hazards on the large table, and certain failures, refuse.
        (PG, &[("1_a.up.sql", "CREATE INDEX a ON users (email);")], &[("index-not-concurrent", E)]),
        (PG, &[("1_a.up.sql", "CREATE INDEX CONCURRENTLY a ON t (id);")], &[("concurrently-in-transaction", E)]),
    ];
    for (engine, files, want) in cases {
        let got = release(*engine, files, &big);
        let want: Vec<(String, Severity)> = want.iter().map(|(r, s)| (r.to_string(), *s)).collect();
        assert_eq!(got, want, "{engine} {files:?}");
    }
    // `check` reports the same files at their own severities.
    assert_eq!(
        flagged(
            PG,
            &[("1_a.up.sql", "DO $$ BEGIN EXECUTE 'SELECT ' || 1; END $$;")]
        ),
        ["opaque-sql"]
    );
    let f = run(
        PG,
        &[("1_a.up.sql", "DO $$ BEGIN EXECUTE 'SELECT ' || 1; END $$;")],
        &big,
    );
    assert_eq!(f[0].severity, Severity::Error);
}

/// Real projects' histories, from scratch: nothing refuses on a fresh database.
#[test]
fn a_fresh_database_is_never_refused() {
    let fresh = catalog(&[], &[], &[]);
    let histories: &[(Engine, Files)] = &[
        (PG, &[
            ("1_init.up.sql", "CREATE SCHEMA billing;\nCREATE TABLE users (id bigint PRIMARY KEY, email varchar(200) NOT NULL);\nCREATE TABLE billing.invoices (id bigint, user_id bigint);"),
            ("1_init.down.sql", ""),
            ("2_fn.up.sql", "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql COST 100 AS $$ BEGIN NEW.id = 1; RETURN NEW; END $$;"),
            ("2_fn.down.sql", "-- irreversible"),
            ("3_guard.up.sql", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN CREATE TYPE mood AS ENUM ('ok'); END IF; END $$;"),
            ("4_alter.up.sql", "ALTER TABLE users ALTER COLUMN email TYPE text;\nALTER TABLE users ADD COLUMN age int NOT NULL;\nALTER TABLE users ALTER COLUMN age SET NOT NULL;\nCREATE INDEX users_email ON users (email);\nALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES users (id);"),
            ("5_cleanup.up.sql", "DROP SCHEMA IF EXISTS legacy CASCADE;\nDROP TABLE IF EXISTS old_users;\nALTER TABLE users DROP COLUMN age;\nUPDATE users SET email = lower(email);\nDROP TABLE billing.invoices;\nDROP SCHEMA billing;"),
            ("6_seed.up.sql", "-- nothing for now\n"),
        ]),
        (MY, &[
            ("1_init.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(200));\nCREATE INDEX users_email ON users (email);"),
            ("2_more.up.sql", "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users MODIFY COLUMN email varchar(500);\nDROP DATABASE IF EXISTS scratch;"),
        ]),
        (LITE, &[
            ("1_init.up.sql", "CREATE TABLE users (id integer PRIMARY KEY, email text);"),
            ("2_rebuild.up.sql", "CREATE TABLE users_new (id integer PRIMARY KEY, email text NOT NULL);\nINSERT INTO users_new SELECT * FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;"),
        ]),
    ];
    for (engine, files) in histories {
        assert_eq!(
            refused(*engine, files, &fresh),
            Vec::<String>::new(),
            "{engine}"
        );
    }
}

#[test]
fn existing_means_before_the_run_exactly() {
    let live = catalog(
        &[("users", 3)],
        &[("users", "email", "text"), ("users", "id", "bigint")],
        &["public", "billing"],
    );
    let cases: &[(Files, &[&str])] = &[
        (
            &[("1_a.up.sql", "DROP SCHEMA IF EXISTS legacy CASCADE;")],
            &[],
        ),
        (
            &[("1_a.up.sql", "DROP SCHEMA billing CASCADE;")],
            &["drop-schema"],
        ),
        (&[("1_a.up.sql", "DROP TABLE IF EXISTS old_users;")], &[]),
        (
            &[(
                "1_a.up.sql",
                "DROP TABLE users;\nDROP TABLE IF EXISTS users;",
            )],
            &["drop-table"],
        ),
        // A column a pending migration of the same batch adds is new.
        (
            &[
                ("1_a.up.sql", "ALTER TABLE users ADD COLUMN nickname text;"),
                ("2_b.up.sql", "ALTER TABLE users DROP COLUMN nickname;"),
            ],
            &[],
        ),
        (
            &[
                ("1_a.up.sql", "ALTER TABLE users ADD COLUMN nickname text;"),
                (
                    "2_b.up.sql",
                    "ALTER TABLE users RENAME COLUMN nickname TO nick;",
                ),
            ],
            &[],
        ),
        (
            &[(
                "1_a.up.sql",
                "ALTER TABLE users DROP COLUMN IF EXISTS nickname;",
            )],
            &[],
        ),
        (
            &[("1_a.up.sql", "ALTER TABLE users DROP COLUMN email;")],
            &["drop-column"],
        ),
    ];
    for (files, want) in cases {
        assert_eq!(refused(PG, files, &live), *want, "{files:?}");
    }
    // On MySQL a schema is a database.
    let mut mysql = catalog(&[], &[], &[]);
    mysql.add_database("legacy");
    assert_eq!(
        refused(MY, &[("1_a.up.sql", "DROP SCHEMA legacy;")], &mysql),
        ["drop-schema"]
    );
    assert_eq!(
        refused(MY, &[("1_a.up.sql", "DROP SCHEMA IF EXISTS gone;")], &mysql),
        Vec::<String>::new()
    );
    // Without a database, a column the set added in an earlier file still exists for the
    // file that drops it, but not in the file that adds it.
    assert_eq!(
        flagged(
            PG,
            &[(
                "1_a.up.sql",
                "ALTER TABLE users ADD COLUMN n text;\nALTER TABLE users DROP COLUMN n;"
            )]
        ),
        Vec::<String>::new()
    );
}

#[test]
fn binary_coercible_type_changes_are_not_rewrites() {
    let change = |from: &str, to: &str| -> Vec<String> {
        let create = format!("CREATE TABLE t (id bigint, c {from});");
        let alter = format!("ALTER TABLE t ALTER COLUMN c TYPE {to};");
        let files = [
            ("1_a.up.sql", create.as_str()),
            ("2_b.up.sql", alter.as_str()),
        ];
        let without_db = flagged(PG, &files);
        // The same answer from the type the database reports.
        let live = catalog(&[("t", 50_000)], &[("t", "c", &pg_format(from))], &[]);
        let with_db: Vec<String> = run(PG, &files[1..], &live)
            .into_iter()
            .map(|f| f.rule)
            .collect();
        assert_eq!(without_db, with_db, "{from} -> {to}");
        without_db
    };
    for (from, to) in [
        ("varchar(200)", "varchar(500)"),
        ("varchar(200)", "varchar"),
        ("varchar(200)", "text"),
        ("character varying(20)", "TEXT"),
        ("text", "varchar"),
        ("text", "text"),
        ("bigint", "int8"),
        ("numeric(10,2)", "numeric"),
        ("numeric(10,2)", "numeric(12,2)"),
        ("timestamp(3)", "timestamp"),
        ("timestamptz(0)", "timestamptz(6)"),
    ] {
        assert!(
            change(from, to).is_empty(),
            "{from} -> {to} is not a rewrite"
        );
    }
    for (from, to) in [
        ("varchar(500)", "varchar(200)"),
        ("text", "varchar(20)"),
        ("int", "bigint"),
        ("numeric(10,2)", "numeric(10,4)"),
        ("numeric", "numeric(10,2)"),
        ("timestamp", "timestamptz"),
        ("varchar(20)", "int"),
    ] {
        assert_eq!(
            change(from, to),
            ["column-type-change"],
            "{from} -> {to} rewrites"
        );
    }
    // An unknown old type, or a USING that computes, is a rewrite as far as shipgate knows.
    assert_eq!(
        flagged(
            PG,
            &[(
                "1_a.up.sql",
                "ALTER TABLE users ALTER COLUMN email TYPE text;"
            )]
        ),
        ["column-type-change"]
    );
    assert_eq!(
        flagged(
            PG,
            &[
                ("1_a.up.sql", "CREATE TABLE t (c varchar(20));"),
                (
                    "2_b.up.sql",
                    "ALTER TABLE t ALTER COLUMN c TYPE text USING lower(c);"
                )
            ]
        ),
        ["column-type-change"]
    );
}

/// A type as PostgreSQL's `format_type` prints it.
fn pg_format(t: &str) -> String {
    match t {
        "int" => "integer".to_owned(),
        "timestamp" => "timestamp without time zone".to_owned(),
        "timestamp(3)" => "timestamp(3) without time zone".to_owned(),
        "timestamptz(0)" => "timestamp(0) with time zone".to_owned(),
        t => t.replace("varchar", "character varying"),
    }
}

#[test]
fn temporary_tables_are_never_large() {
    let files: Files = &[
        ("1_a.up.sql", "CREATE TEMP TABLE staging (id int);"),
        ("2_b.up.sql", "CREATE INDEX staging_id ON staging (id);\nUPDATE staging SET id = 1;\nDELETE FROM staging;\nALTER TABLE staging ADD COLUMN x int NOT NULL;"),
    ];
    assert_eq!(flagged(PG, files), Vec::<String>::new());
    assert_eq!(
        refused(PG, files, &catalog(&[("staging", 1_000_000)], &[], &[])),
        Vec::<String>::new()
    );
}

#[test]
fn literal_rows_into_a_table_the_file_created_take_no_risk() {
    let ok: Files = &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN plan text;\nCREATE TABLE plans (name text);\nINSERT INTO plans (name) VALUES ('free'), ('pro');")];
    assert_eq!(flagged(PG, ok), Vec::<String>::new());
    let copy: Files = &[("1_a.up.sql", "ALTER TABLE users ADD COLUMN plan text;\nCREATE TABLE plans (name text);\nINSERT INTO plans (name) SELECT DISTINCT plan FROM users;")];
    assert_eq!(flagged(PG, copy), ["exclusive-lock-then-more"]);
    let existing: Files = &[(
        "1_a.up.sql",
        "ALTER TABLE users ADD COLUMN plan text;\nINSERT INTO audit (what) VALUES ('x');",
    )];
    assert_eq!(flagged(PG, existing), ["exclusive-lock-then-more"]);
}

#[test]
fn the_sqlite_table_rebuild_is_not_a_drop() {
    let rebuild = "CREATE TABLE users_new (id integer PRIMARY KEY, email text NOT NULL);\nINSERT INTO users_new (id, email) SELECT id, coalesce(email, '') FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;\nCREATE INDEX users_email ON users (email);";
    let files = [("1_a.up.sql", rebuild)];
    assert_eq!(flagged(LITE, &files), Vec::<String>::new());
    let live = catalog(&[("users", 50_000)], &[], &[]);
    assert_eq!(refused(LITE, &files, &live), Vec::<String>::new());
    // Without the rename it is a drop; on PostgreSQL writers between the copy and the drop
    // would be lost, so it stays one there.
    let dropped = [(
        "1_a.up.sql",
        "CREATE TABLE users_new (id integer);\nDROP TABLE users;",
    )];
    assert_eq!(flagged(LITE, &dropped), ["drop-table"]);
    assert!(flagged(PG, &files).contains(&"drop-table".to_owned()));
}

#[test]
fn empty_files_are_warnings_that_say_what_they_mean() {
    let f = run(
        PG,
        &[
            ("1_a.up.sql", "-- holds version 1\n"),
            ("1_a.down.sql", "/* irreversible */\n"),
        ],
        &Catalog::Assumed,
    );
    let got: Vec<(&str, Severity)> = f.iter().map(|f| (f.rule.as_str(), f.severity)).collect();
    assert_eq!(
        got,
        [
            ("empty-up", Severity::Warning),
            ("empty-down", Severity::Warning)
        ]
    );
    assert!(f[1].message.contains("irreversible"), "{}", f[1].message);
    assert!(f.iter().all(|f| !f.blocks()));
}

#[test]
fn postgresql_statements_are_read_by_postgresqls_grammar() {
    // Valid PostgreSQL that the general parser cannot read is not opaque.
    for sql in [
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql COST 100 AS $$ BEGIN RETURN 1; END $$;",
        "ALTER TABLE users ALTER CONSTRAINT users_fk DEFERRABLE;",
        "ALTER SEQUENCE users_id_seq RENAME TO users_id_seq2;",
        "CREATE STATISTICS users_st (dependencies) ON a, b FROM users;",
    ] {
        assert_eq!(
            flagged(PG, &[("1_a.up.sql", sql)]),
            Vec::<String>::new(),
            "{sql}"
        );
    }
    // A DO block's static statements are linted like top-level ones.
    let got = flagged(
        PG,
        &[(
            "1_a.up.sql",
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_class WHERE relname = 'users') THEN DROP TABLE users; END IF; END $$;",
        )],
    );
    assert_eq!(got, ["drop-table"]);
    let guarded = "DO $$ BEGIN CREATE TYPE mood AS ENUM ('ok'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;";
    assert_eq!(
        flagged(PG, &[("1_a.up.sql", guarded)]),
        Vec::<String>::new()
    );
    // Dynamic SQL stays opaque; so does what the grammar rejects.
    assert_eq!(
        flagged(
            PG,
            &[(
                "1_a.up.sql",
                "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$;"
            )]
        ),
        ["opaque-sql"]
    );
}

#[test]
fn an_index_on_a_materialized_view_the_file_creates_is_on_a_new_relation() {
    let files = &[(
        "1_a.up.sql",
        "CREATE MATERIALIZED VIEW totals AS SELECT status, count(*) AS n FROM users GROUP BY status WITH DATA;\nCREATE UNIQUE INDEX totals_status_idx ON totals (status);",
    )];
    assert_eq!(flagged(PG, files), Vec::<String>::new());
}

#[test]
fn what_postgresql_rejects_is_not_analysed_as_the_general_parser_reads_it() {
    // The general parser takes MySQL's table options; PostgreSQL does not.
    let got = run(
        PG,
        &[("1_a.up.sql", "CREATE TABLE t (id int) ENGINE=InnoDB;")],
        &Catalog::Assumed,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rule, "opaque-sql");
    assert!(
        got[0].message.contains("PostgreSQL's grammar rejects"),
        "{}",
        got[0].message
    );
}

#[test]
fn postgresql_rules_read_the_servers_parse_tree() {
    // A data change under a WITH clause is a data change all the same.
    assert_eq!(
        flagged(
            PG,
            &[(
                "1_a.up.sql",
                "WITH x AS (SELECT 1) UPDATE users SET plan = 'free';"
            )]
        ),
        ["update-without-where"]
    );
    // Dropping objects no rule is about is read, not opaque.
    assert_eq!(
        flagged(
            PG,
            &[(
                "1_a.up.sql",
                "DROP STATISTICS users_st;\nDROP PUBLICATION users_pub;"
            )]
        ),
        Vec::<String>::new()
    );
    // A materialized view the file creates is new, with or without WITH DATA.
    assert_eq!(
        flagged(
            PG,
            &[(
                "1_a.up.sql",
                "CREATE MATERIALIZED VIEW totals AS SELECT 1 AS a;\nCREATE INDEX totals_a ON totals (a);"
            )]
        ),
        Vec::<String>::new()
    );
}

#[test]
fn a_function_body_is_linted_by_check_but_never_refuses_a_release() {
    let big = catalog(&[("users", 50_000)], &[("users", "email", "text")], &[]);
    let file = "CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  DELETE FROM users;\n  DROP TABLE users;\nEND $$;\nCREATE INDEX users_email_idx ON users (email);";
    // `check` reports what the body would do when called, saying so.
    let found = run(PG, &[("1_a.up.sql", file)], &Catalog::Assumed);
    let rules: Vec<&str> = found.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        rules,
        ["delete-without-where", "drop-table", "index-not-concurrent"],
        "{found:?}"
    );
    assert!(
        found[0].message.contains("in the body of function purge"),
        "{}",
        found[0].message
    );
    // The body did not run: the index after it is still on an existing table, not on a
    // dropped one.
    assert!(
        !found[2].message.contains("function"),
        "{}",
        found[2].message
    );
    // The release gate refuses for the index the migration builds, not for the body.
    assert_eq!(
        release(PG, &[("1_a.up.sql", file)], &big),
        [("index-not-concurrent".to_owned(), Severity::Error)]
    );
}
