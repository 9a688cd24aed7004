//! Drift without a shadow database (SPEC §1 `shipgate drift`, §4 `shipgate_schema`), on each
//! engine: a release stores the schema snapshot; changes made by hand are named by `drift`
//! (exit 5), `status --json` and the release's drift check (`drift = warn` applies, `error`
//! refuses with exit 5 and changes nothing); ignore globs leave objects out; `--accept` makes
//! the live schema the snapshot.

use std::time::Duration;

use crate::support::{Db, Engine, Project, Run, Service};

/// How many snapshots `shipgate_schema` holds for `version`.
fn snapshots(db: &Db, version: &str) -> i64 {
    db.int(&format!(
        "SELECT COUNT(*) FROM shipgate_schema WHERE version = '{version}'"
    ))
}

fn with_env(p: &Project, db: &Db, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = p.command(Some(db), args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::wait(cmd)
}

fn drift_by_hand(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, nickname varchar(40));\n\
         CREATE TABLE audit_log (id bigint PRIMARY KEY, at varchar(30));\n",
    );
    p.run(&db, &["release"]).code(0);
    assert_eq!(snapshots(&db, "1"), 1, "the release stored a snapshot");
    p.run(&db, &["drift"])
        .code(0)
        .stdout_has(&["no drift", "version 1"]);

    // By hand, outside the migrations: an index, a column, a dropped table, a changed type.
    db.exec("CREATE INDEX users_nick_idx ON users (nickname)");
    db.exec("ALTER TABLE users ADD COLUMN email text");
    db.exec("DROP TABLE audit_log");
    match engine {
        Engine::Postgres => db.exec("ALTER TABLE users ALTER COLUMN nickname TYPE varchar(80)"),
        Engine::Mariadb => db.exec("ALTER TABLE users MODIFY nickname varchar(80)"),
        Engine::Sqlite => {}
    }
    let run = p.run(&db, &["drift"]);
    run.code(5).stdout_has(&[
        "schema drift",
        "index users_nick_idx exists but no migration created it (CREATE",
        "column users.email exists but no migration created it (ALTER TABLE users ADD COLUMN email ",
        "table audit_log is missing: no migration dropped it",
    ]);
    if engine != Engine::Sqlite {
        run.stdout_has(&[
            "column users.nickname: type ",
            "(80), snapshot has ",
            "(40)",
        ]);
    }
    let json = p.run(&db, &["drift", "--json"]).code(5).json();
    assert_eq!(json["state"], "drift", "{json}");
    assert_eq!(json["version"], "1", "{json}");
    let expected = if engine == Engine::Sqlite { 3 } else { 4 };
    assert_eq!(
        json["differences"].as_array().map(Vec::len),
        Some(expected),
        "{json}"
    );
    let status = p.run(&db, &["status", "--json"]).code(0).json();
    assert_eq!(status["drift"]["state"], "drift", "{status}");

    // Ignore globs: a name glob, a table's column, a table.
    with_env(
        &p,
        &db,
        &["drift"],
        &[(
            "SHIPGATE_DRIFT_IGNORE",
            "users_nick_*, users.email,audit_*,users.nick*",
        )],
    )
    .code(0)
    .stdout_has(&["no drift"]);

    // drift = error: refused before anything runs, each difference named.
    p.write(
        "2_teams.up.sql",
        "CREATE TABLE teams (id bigint PRIMARY KEY);\n",
    );
    with_env(
        &p,
        &db,
        &["release", "--dry-run"],
        &[("SHIPGATE_DRIFT", "error")],
    )
    .code(5)
    .stdout_has(&["release gate: schema drift", "users_nick_idx"]);
    with_env(&p, &db, &["release"], &[("SHIPGATE_DRIFT", "error")])
        .code(5)
        .stderr_has(&[
            "schema drift",
            "users_nick_idx",
            "audit_log",
            "drift --accept",
        ]);
    assert!(
        !db.table_exists("teams"),
        "a refused release changed nothing"
    );
    assert_eq!(db.versions(), [1]);

    // drift = warn (the default): logged, applied, and the new snapshot is the baseline.
    p.run(&db, &["release"])
        .code(0)
        .stderr_has(&["drift: index users_nick_idx exists but no migration created it"]);
    assert!(db.table_exists("teams"));
    assert_eq!(
        snapshots(&db, "2"),
        1,
        "the release stored the new snapshot"
    );
    p.run(&db, &["drift"])
        .code(0)
        .stdout_has(&["no drift", "version 2"]);

    // --accept makes changes made by hand the snapshot, with an audit row.
    db.exec("CREATE INDEX teams_id_idx ON teams (id)");
    p.run(&db, &["drift"]).code(5).stdout_has(&["teams_id_idx"]);
    p.run(&db, &["drift", "--accept", "--reason", "hot fix index"])
        .code(0)
        .stdout_has(&["accepted: index teams_id_idx", "snapshot of version 2"]);
    p.run(&db, &["drift"]).code(0);
    assert!(
        db.audit()
            .iter()
            .any(|a| a.action == "drift-accept" && a.reason.as_deref() == Some("hot fix index")),
        "{:?}",
        db.audit()
    );
}

#[test]
fn drift_by_hand_on_postgres() {
    drift_by_hand(Engine::Postgres);
}

#[test]
fn drift_by_hand_on_mariadb() {
    drift_by_hand(Engine::Mariadb);
}

#[test]
fn drift_by_hand_on_sqlite() {
    drift_by_hand(Engine::Sqlite);
}

#[test]
fn postgres_snapshot_covers_functions_triggers_enums_views_and_schemas() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write(
        "1_kinds.up.sql",
        "CREATE TYPE mood AS ENUM ('sad', 'ok');\n\
         CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL DEFAULT '', m mood);\n\
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n\
         CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();\n\
         CREATE VIEW sad_notes AS SELECT id FROM notes WHERE m = 'sad';\n\
         CREATE SCHEMA scratch;\n",
    );
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["drift"]).code(0).stdout_has(&["no drift"]);
    db.exec("ALTER TYPE mood ADD VALUE 'happy'");
    db.exec("CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := 'x'; RETURN NEW; END $$");
    db.exec("CREATE OR REPLACE VIEW sad_notes AS SELECT id, body FROM notes WHERE m = 'sad'");
    db.exec("DROP TRIGGER notes_touch ON notes");
    db.exec("CREATE TABLE scratch.tmp (id int)");
    p.run(&db, &["drift"]).code(5).stdout_has(&[
        "enum mood: labels {sad,ok,happy}, snapshot has {sad,ok}",
        "function touch(): definition changed",
        "view sad_notes: definition",
        "trigger notes_touch is missing",
    ]);
    // scratch is not in the search path: not shipgate's to compare.
    let out = p.run(&db, &["drift"]);
    assert!(!out.stdout.contains("scratch"), "{out:?}");
    with_env(
        &p,
        &db,
        &["drift"],
        &[("SHIPGATE_DRIFT_IGNORE", "mood,touch*,sad_*,notes_touch")],
    )
    .code(0);
    with_env(
        &p,
        &db,
        &["drift"],
        &[("SHIPGATE_DRIFT_IGNORE_SCHEMAS", "pub*")],
    )
    .code(0);
}

#[test]
fn no_snapshot_yet_is_a_warning_not_drift() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.run(&db, &["release"]).code(0);
    db.exec("DROP TABLE shipgate_schema");
    p.run(&db, &["drift"]).code(0).stdout_has(&[
        "no schema snapshot is stored for version 1",
        "drift --accept",
    ]);
    p.write(
        "2_teams.up.sql",
        "CREATE TABLE teams (id bigint PRIMARY KEY);\n",
    );
    with_env(&p, &db, &["release"], &[("SHIPGATE_DRIFT", "error")])
        .code(0)
        .stderr_has(&["no schema snapshot is stored for version 1"]);
    assert_eq!(snapshots(&db, "2"), 1);
}

#[test]
fn migrations_status_reports_drift_from_the_refresher() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.run(&db, &["release"]).code(0);
    db.exec("CREATE INDEX users_id_idx ON users (id)");
    // The refresher checks drift on its first refresh, then every minute.
    let service = Service::start(p.platform_command(&db, &["serve"]));
    let response = service.poll(
        "the drift check",
        "/migrations/status",
        Duration::from_secs(15),
        |r| r.status == 200 && r.json()["drift"]["state"] == "drift",
    );
    let json = response.json();
    assert_eq!(json["drift"]["version"], "1", "{json}");
    assert!(
        json["drift"]["differences"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("index users_id_idx exists but no migration created it")),
        "{json}"
    );
}

#[test]
fn differences_while_a_release_holds_the_lock_are_not_judged() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.run(&db, &["release"]).code(0);
    // Statement by statement: the table is committed (visible) while the sleep holds the lock.
    p.write(
        "2_slow.up.sql",
        "-- shipgate:no-transaction\nCREATE TABLE held (id integer);\nSELECT pg_sleep(4);\n",
    );
    let started = std::time::Instant::now();
    let mut release = crate::support::spawn(&mut p.command(Some(&db), &["release"]));
    while !db.table_exists("held") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the release never created held"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    p.run(&db, &["drift"]).code(0).stdout_has(&[
        "1 difference(s) from the snapshot of version 1",
        "not judged",
        "table held exists",
    ]);
    assert!(release.wait().expect("release ran").success());
    p.run(&db, &["drift"])
        .code(0)
        .stdout_has(&["no drift", "version 2"]);
}

#[test]
fn drift_settings_are_validated_before_connecting() {
    let p = Project::with_users();
    let mut cmd = p.command(None, &["drift"]);
    cmd.env("SHIPGATE_DRIFT", "sometimes");
    Run::wait(cmd).code(2).stderr_has(&[
        "drift",
        "sometimes",
        "SHIPGATE_DRIFT",
        "warn, error or off",
    ]);
    let mut cmd = p.command(None, &["drift"]);
    cmd.env("SHIPGATE_DRIFT_IGNORE", "users_*,bad glob");
    Run::wait(cmd)
        .code(2)
        .stderr_has(&["drift_ignore", "bad glob", "SHIPGATE_DRIFT_IGNORE"]);
}
