//! Repeatable migrations (`R__<name>.sql`): run after the versioned ones, again whenever their
//! checksum changes, each with its row in `shipgate_repeatables`; the every-deploy no-op runs
//! none of them; `status`, `/migrations/status`, readiness and the release gate see the ones
//! that would run again; `down` never touches them; a failure leaves the recorded checksum as it
//! was, so the file runs whole again.

use std::time::Duration;

use crate::support::{checksum, Db, Engine, Project, Run, Service};

const BOUND: Duration = Duration::from_secs(15);

/// Re-runnable on every engine: a view rebuilt from scratch, and a data-only file that counts
/// its runs (one transaction even on MariaDB).
const VIEWS: &str = "DROP VIEW IF EXISTS a_ids;\nCREATE VIEW a_ids AS SELECT id FROM a;\n";
const COUNT: &str = "-- counts its runs\nINSERT INTO runs_log (what) VALUES ('count');\n";

fn project() -> Project {
    let p = Project::new();
    p.write(
        "1_a.up.sql",
        "CREATE TABLE a (id integer);\nCREATE TABLE runs_log (what varchar(20));\n",
    )
    .write("2_b.up.sql", "CREATE TABLE b (id integer);\n")
    .write("2_b.down.sql", "DROP TABLE b;\n")
    .write("R__views.sql", VIEWS)
    .write("R__count.sql", COUNT);
    p
}

/// `name → checksum` of `shipgate_repeatables`, in name order.
fn recorded(db: &Db) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = db
        .query("SELECT name, checksum FROM shipgate_repeatables")
        .into_iter()
        .map(|r| (r[0].clone().expect("name"), r[1].clone().expect("checksum")))
        .collect();
    rows.sort();
    rows
}

fn runs(db: &Db) -> i64 {
    db.int("SELECT count(*) FROM runs_log")
}

on_every_engine!(
    repeatables_run_after_the_versioned_ones_and_again_when_edited,
    a_failing_repeatable_keeps_its_recorded_checksum_and_runs_whole_again,
    tables_an_older_shipgate_created_gain_the_repeatables_table,
    readiness_and_the_status_document_wait_for_a_changed_repeatable,
);

fn repeatables_run_after_the_versioned_ones_and_again_when_edited(engine: Engine) {
    let db = Db::new(engine);
    let p = project();
    let first = p.run(&db, &["up"]);
    first.code(0).stdout_has(&[
        "applied 1 a",
        "applied 2 b",
        "ran repeatable count",
        "ran repeatable views",
        "applied 2 migration(s) and ran 2 repeatable migration(s)",
    ]);
    // After the versioned ones (the view reads table a), in name order.
    let count_at = first.stdout.find("ran repeatable count");
    let views_at = first.stdout.find("ran repeatable views");
    assert!(
        first.stdout.find("applied 2 b") < count_at && count_at < views_at,
        "{first:?}"
    );
    assert_eq!(
        recorded(&db),
        [
            ("count".to_owned(), checksum(COUNT)),
            ("views".to_owned(), checksum(VIEWS))
        ]
    );
    assert_eq!(db.int("SELECT count(*) FROM a_ids"), 0, "the view exists");
    assert_eq!(runs(&db), 1);
    let applied_by = db.query("SELECT applied_by, execution_ms FROM shipgate_repeatables");
    assert!(
        applied_by
            .iter()
            .all(|r| r[0].as_deref().is_some_and(|h| h.starts_with("it-host:")) && r[1].is_some()),
        "{applied_by:?}"
    );

    // The every-deploy no-op runs nothing again.
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["up"]).code(0).stdout_has(&["nothing to do"]);
    assert_eq!(runs(&db), 1, "nothing ran twice");
    let status = p.run(&db, &["status", "--json"]);
    status.code(0);
    assert_eq!(status.json()["pending_repeatables"], serde_json::json!([]));
    p.run(&db, &["status", "--exit-code"]).code(0);

    // An edit makes it pending: status says so, and only it runs again.
    let edited = format!("{COUNT}-- edited\n");
    p.write("R__count.sql", &edited);
    let status = p.run(&db, &["status", "--json"]);
    status.code(0);
    assert_eq!(
        status.json()["pending_repeatables"],
        serde_json::json!([{
            "name": "count",
            "file": "migrations/R__count.sql",
            "recorded_checksum": checksum(COUNT),
            "file_checksum": checksum(&edited),
        }]),
        "{status:?}"
    );
    assert_eq!(status.json()["pending"], serde_json::json!([]));
    p.run(&db, &["status"]).code(0).stdout_has(&[
        "repeatables   1 to run again",
        "run again   count (changed since it last ran)",
    ]);
    p.run(&db, &["status", "--exit-code"]).code(10);
    p.run(&db, &["up", "--dry-run"]).code(0).stdout_has(&[
        "would apply 0 migration(s) and run 1 repeatable migration(s)",
        "-- repeatable count",
    ]);
    assert_eq!(runs(&db), 1, "a dry run runs nothing");
    p.run(&db, &["release"]).code(0);
    assert_eq!(runs(&db), 2, "the edited file ran again");
    assert_eq!(
        recorded(&db),
        [
            ("count".to_owned(), checksum(&edited)),
            ("views".to_owned(), checksum(VIEWS))
        ]
    );
    let run = db.query("SELECT outcome, applied FROM shipgate_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(
        run,
        [[Some("succeeded".to_owned()), Some("1".to_owned())]],
        "a release that only ran a repeatable is not `nothing_to_do`"
    );

    // `down` reverts versioned migrations only.
    p.run(&db, &["down", "--steps", "1", "--yes"]).code(0);
    assert!(!db.table_exists("b"));
    assert_eq!(recorded(&db).len(), 2, "down never touches repeatables");
    p.run(&db, &["release"]).code(0);
    assert_eq!(runs(&db), 2, "re-applying 2 runs no repeatable again");
}

fn a_failing_repeatable_keeps_its_recorded_checksum_and_runs_whole_again(engine: Engine) {
    let db = Db::new(engine);
    let p = project();
    p.run(&db, &["release"]).code(0);
    let before = recorded(&db);

    // In one transaction: nothing of it remains.
    p.write(
        "R__count.sql",
        "INSERT INTO runs_log (what) VALUES ('count');\nINSERT INTO missing_table VALUES (1);\n",
    );
    p.run(&db, &["release"]).code(1).stderr_has(&[
        "repeatable migration count",
        "R__count.sql",
        "runs again",
    ]);
    assert_eq!(runs(&db), 1, "rolled back");
    assert_eq!(recorded(&db), before);

    // Statement by statement (no-transaction): the first statement stays, the row does not
    // change, and no row is dirty.
    let no_tx = "-- shipgate:no-transaction\nCREATE TABLE made_once (id integer);\nINSERT INTO missing_table VALUES (1);\n";
    p.write("R__count.sql", no_tx);
    p.run(&db, &["release"])
        .code(1)
        .stderr_has(&["repeatable migration count", "at statement 2 of 2"]);
    assert!(db.table_exists("made_once"));
    assert_eq!(recorded(&db), before);
    assert!(db.history().iter().all(|r| r.state == "applied"));

    // Fixed: it runs whole again and is recorded.
    let fixed = "-- shipgate:no-transaction\nCREATE TABLE IF NOT EXISTS made_once (id integer);\nSELECT 1;\n";
    p.write("R__count.sql", fixed);
    p.run(&db, &["release"]).code(0);
    assert!(recorded(&db).contains(&("count".to_owned(), checksum(fixed))));
}

/// A database whose tables an older shipgate created has no `shipgate_repeatables`: the no-op
/// and `status` still read it, and the first run with a repeatable to run creates the table.
fn tables_an_older_shipgate_created_gain_the_repeatables_table(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::with_users();
    p.run(&db, &["release"]).code(0);
    db.exec("DROP TABLE shipgate_repeatables");
    p.run(&db, &["release"]).code(0);
    p.run(&db, &["status", "--exit-code"]).code(0);
    assert!(
        !db.table_exists("shipgate_repeatables"),
        "the no-op wrote nothing"
    );
    // The status refresher reads it too, and the service turns ready.
    let service = Service::start(p.platform_command(&db, &["serve"]));
    service.wait_ready(BOUND);
    assert_eq!(service.get("/migrations/status").json()["applied"], 1);
    service.terminate();
    service.wait(BOUND).code(0);
    p.write("R__grants.sql", "SELECT 1;\n");
    p.run(&db, &["status", "--exit-code"]).code(10);
    p.run(&db, &["release"]).code(0);
    assert_eq!(
        recorded(&db),
        [("grants".to_owned(), checksum("SELECT 1;\n"))]
    );
}

fn readiness_and_the_status_document_wait_for_a_changed_repeatable(engine: Engine) {
    let db = Db::new(engine);
    let p = project();
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    p.write("R__views.sql", &format!("{VIEWS}-- v2\n"));
    let service = Service::start(p.platform_command(&db, &["serve"]));
    let ready = service.poll("readiness", "/health/ready", BOUND, |r| {
        r.body.contains("repeatable")
    });
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready
            .body
            .contains("1 repeatable migration(s) to run again"),
        "{ready:?}"
    );
    let status = service.get("/migrations/status").json();
    assert_eq!(status["pending"], serde_json::json!([]), "{status}");
    assert_eq!(
        status["pending_repeatables"][0]["name"], "views",
        "{status}"
    );
    // Another process runs it: the service turns ready.
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    service.wait_ready(BOUND);
    service.terminate();
    service.wait(BOUND).code(0);
}

/// The release gate lints a repeatable that would run again like a pending file: a `DROP
/// TABLE` of an existing table in it refuses the release before the lock.
#[test]
fn the_release_gate_lints_a_repeatable_that_would_run_again() {
    let db = Db::new(Engine::Postgres);
    let p = project();
    p.run(&db, &["release"]).code(0);
    p.write("R__count.sql", "DROP TABLE b;\n");
    p.run(&db, &["release"])
        .code(5)
        .stderr_has(&["R__count.sql", "drop-table"]);
    assert!(db.table_exists("b"), "refused before anything ran");
    p.run(&db, &["check"]).code(5).stdout_has(&["R__count.sql"]);
}
