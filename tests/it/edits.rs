//! Applied files that change afterwards: an edit blocks `up` until `repair --accept-checksum`,
//! a line-ending-only change does not, and `check --database` catches the edit in CI.

use serde_json::json;

use crate::support::{checksum, keys, Db, Engine, Project};

const ONE: &str = "CREATE TABLE one (id integer PRIMARY KEY);\n";
const TWO: &str = "CREATE TABLE two (id integer PRIMARY KEY);\n";
const TWO_EDITED: &str = "CREATE TABLE two (id integer PRIMARY KEY, note text);\n";
const THREE: &str = "CREATE TABLE three (id integer PRIMARY KEY);\n";

on_every_engine!(
    an_edited_file_blocks_until_its_checksum_is_accepted,
    a_crlf_or_bom_only_change_is_not_an_edit,
    check_database_catches_an_edited_checksum,
);

fn an_edited_file_blocks_until_its_checksum_is_accepted(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_one.up.sql", ONE).write("2_two.up.sql", TWO);
    p.run(&db, &["up"]).code(0);
    let old = db.history()[1].checksum.clone();
    assert_eq!(old, checksum(TWO));

    p.write("2_two.up.sql", TWO_EDITED)
        .write("3_three.up.sql", THREE);
    let new = checksum(TWO_EDITED);
    p.run(&db, &["up"]).code(5).stderr_has(&[
        "migration 2",
        "2_two.up.sql",
        &old,
        &new,
        "shipgate repair --accept-checksum 2",
    ]);
    assert_eq!(db.versions(), [1, 2], "nothing applied");
    assert!(
        !db.table_exists("three"),
        "the pending migration stays unapplied"
    );
    assert_eq!(db.history()[1].checksum, old);

    // --accept-checksum insists on a reason.
    p.run(&db, &["repair", "--accept-checksum", "2"]).code(2);
    assert!(db.audit().is_empty());

    p.run(
        &db,
        &[
            "repair",
            "--accept-checksum",
            "2",
            "--reason",
            "added a column before release",
        ],
    )
    .code(0)
    .stdout_has(&[&new]);
    assert_eq!(db.history()[1].checksum, new);
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "accept-checksum");
    assert_eq!(audit[0].version, Some(2));
    assert_eq!(
        audit[0].reason.as_deref(),
        Some("added a column before release")
    );
    assert_eq!(audit[0].before.as_deref(), Some(old.as_str()));
    assert_eq!(audit[0].after.as_deref(), Some(new.as_str()));

    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 3 three", "applied 1 migration(s)"]);
    assert_eq!(db.versions(), [1, 2, 3]);
    assert!(db.table_exists("three"));

    // Accepting a checksum that already matches is refused and writes no audit row.
    p.run(
        &db,
        &["repair", "--accept-checksum", "2", "--reason", "again"],
    )
    .code(5);
    assert_eq!(db.audit().len(), 1);
}

fn a_crlf_or_bom_only_change_is_not_an_edit(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let text = "-- two lines\nCREATE TABLE crlf (id integer PRIMARY KEY);\n";
    p.write("1_crlf.up.sql", text);
    p.run(&db, &["up"]).code(0);
    let recorded = db.history()[0].checksum.clone();

    p.write("1_crlf.up.sql", &text.replace('\n', "\r\n"));
    assert!(
        std::fs::read(p.migrations().join("1_crlf.up.sql"))
            .expect("read")
            .windows(2)
            .any(|w| w == b"\r\n"),
        "the file really has CRLF now"
    );
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["nothing to do: at version 1"]);
    let s = p.run(&db, &["status", "--json"]).code(0).json();
    assert_eq!(s["modified"], json!([]));

    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
    p.write_bytes("1_crlf.up.sql", &bom);
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["nothing to do: at version 1"]);
    assert_eq!(db.history()[0].checksum, recorded);
    assert!(db.audit().is_empty());
}

fn check_database_catches_an_edited_checksum(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_one.up.sql", ONE).write("2_two.up.sql", TWO);
    p.run(&db, &["up"]).code(0);

    p.run(&db, &["check", "--database"])
        .code(0)
        .stdout_has(&["ok: 2 migration(s) in migrations are valid and consistent with history"]);

    p.write("2_two.up.sql", TWO_EDITED);
    // Without --database the files alone are valid.
    p.run(&db, &["check"]).code(0);

    let run = p.run(&db, &["check", "--database", "--format", "json"]);
    run.code(5);
    let doc = run.json();
    assert_eq!(
        keys(&doc),
        [
            "acknowledged",
            "engine",
            "findings",
            "linted",
            "migrations",
            "ok"
        ]
    );
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["migrations"], 2);
    let findings = doc["findings"].as_array().expect("findings array");
    assert_eq!(findings.len(), 1, "{doc}");
    let f = &findings[0];
    assert_eq!(
        keys(f),
        [
            "acknowledged",
            "column",
            "file",
            "instead",
            "line",
            "message",
            "rule",
            "severity",
            "why"
        ]
    );
    assert_eq!(f["rule"], "history");
    assert_eq!(f["file"], "migrations/2_two.up.sql");
    assert_eq!(f["line"], serde_json::Value::Null);
    assert_eq!(f["severity"], "error");
    let message = f["message"].as_str().expect("message string");
    assert!(
        message.contains("migration 2")
            && message.contains(&checksum(TWO))
            && message.contains(&checksum(TWO_EDITED)),
        "{message}"
    );

    // The URL can be given to --database directly, without DATABASE_URL.
    let mut cmd = p.command(None, &["check", "--database", db.url()]);
    cmd.env_remove("DATABASE_URL");
    crate::support::Run::wait(cmd)
        .code(5)
        .stdout_has(&["error: migration 2"]);
    assert_eq!(db.versions(), [1, 2], "check changes nothing");
    assert!(db.audit().is_empty());
}
