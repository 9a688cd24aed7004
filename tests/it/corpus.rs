//! The fixture corpus (`tests/corpus/<engine>/`): what real projects put in migrations —
//! functions and triggers with every option, guarded DO blocks, enums, partitions, generated
//! columns, policies, publications, hand-written transactions, empty downs and comment-only
//! ups; MySQL routines with DELIMITER, PREPARE, executable comments; SQLite STRICT tables,
//! FTS5, trigger bodies and the table-rebuild pattern. Written for shipgate's tests; each file
//! was checked to apply with the engine's own client.
//!
//! On a fresh database the release applies every file with no refusal, and `down` reverts to
//! the newest irreversible migration. `check` reads every PostgreSQL statement (no
//! `opaque-sql`).

use std::path::PathBuf;

use crate::support::{Db, Engine, Project, Run};

fn corpus_dir(engine: Engine) -> PathBuf {
    let name = match engine {
        Engine::Postgres => "postgres",
        Engine::Mariadb => "mysql",
        Engine::Sqlite => "sqlite",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// A project holding the engine's corpus, and its up files' versions in order.
fn corpus(engine: Engine) -> (Project, Vec<i64>) {
    let p = Project::new();
    let mut versions = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir(engine))
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("corpus file");
        p.write(&name, &text);
        if name.ends_with(".up.sql") || (name.ends_with(".sql") && !name.ends_with(".down.sql")) {
            let version = name
                .split('_')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("version");
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
    }
    versions.sort();
    (p, versions)
}

on_every_engine!(the_corpus_releases_on_a_fresh_database_without_a_refusal);

fn the_corpus_releases_on_a_fresh_database_without_a_refusal(engine: Engine) {
    let db = Db::new(engine);
    let (p, versions) = corpus(engine);
    let run = Run::wait(p.platform_command(&db, &["release"]));
    run.code(0).secret_free();
    assert!(!run.stderr.contains("refusing"), "{run:?}");
    assert_eq!(db.versions(), versions, "{run:?}");
    // Applied once: the next release has nothing to do.
    Run::wait(p.platform_command(&db, &["release"]))
        .code(0)
        .stderr_has(&["nothing to do"]);
}

#[test]
fn check_reads_every_postgresql_statement_of_the_corpus() {
    let db = Db::new(Engine::Postgres);
    let (p, _) = corpus(Engine::Postgres);
    let run = Run::wait(p.platform_command(&db, &["check", "--format", "json"]));
    let report = run.json();
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let opaque: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "opaque-sql")
        .collect();
    assert!(opaque.is_empty(), "unread statements: {opaque:#?}");
}
