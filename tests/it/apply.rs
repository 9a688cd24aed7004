//! Applying and reverting: `up` (with `--to` and the no-op re-run), `down`, `baseline`, and
//! the `status --json` / `history --json` documents.

use serde_json::json;

use crate::support::{checksum, keys, Db, Engine, Project};

const T1: &str = "CREATE TABLE t1 (id integer PRIMARY KEY);\n";
const T2: &str =
    "CREATE TABLE t2 (id integer PRIMARY KEY);\nINSERT INTO t2 (id) VALUES (1), (2);\n";
const T3: &str = "CREATE TABLE t3 (id integer PRIMARY KEY);\n";

/// Three reversible migrations creating t1, t2 (with two rows) and t3.
fn three_tables() -> Project {
    let p = Project::new();
    p.write("1_create_t1.up.sql", T1)
        .write("1_create_t1.down.sql", "DROP TABLE t1;\n")
        .write("2_create_t2.up.sql", T2)
        .write("2_create_t2.down.sql", "DROP TABLE t2;\n")
        .write("3_create_t3.up.sql", T3)
        .write("3_create_t3.down.sql", "DROP TABLE t3;\n");
    p
}

on_every_engine!(
    up_to_stops_then_applies_the_rest_and_a_rerun_is_a_no_op,
    down_to_reverts_newest_first_with_audit_rows,
    down_refuses_a_range_that_is_not_applied,
    status_json_reports_every_field,
    history_json_reports_every_field,
    baseline_records_without_running,
    out_of_order_missing_and_irreversible_follow_the_policy,
);

fn up_to_stops_then_applies_the_rest_and_a_rerun_is_a_no_op(engine: Engine) {
    let db = Db::new(engine);
    let p = three_tables();

    p.run(&db, &["up", "--to", "2"]).code(0).stdout_has(&[
        "applied 1 create_t1",
        "applied 2 create_t2",
        "now at version 2",
        "1 migration(s) beyond --to left pending",
    ]);
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.table_exists("t1") && db.table_exists("t2"));
    assert!(!db.table_exists("t3"), "--to 2 must not apply 3");
    assert_eq!(db.int("SELECT count(*) FROM t2"), 2);

    let run = p.run(&db, &["up"]);
    run.code(0)
        .stdout_has(&["applied 3 create_t3", "now at version 3"]);
    assert!(
        !run.stdout.contains("applied 1 create_t1") && !run.stdout.contains("applied 2 create_t2"),
        "{run:?}"
    );
    assert!(db.table_exists("t3"));
    let history = db.history();
    assert_eq!(db.versions(), [1, 2, 3]);
    for (row, (name, text)) in
        history
            .iter()
            .zip([("create_t1", T1), ("create_t2", T2), ("create_t3", T3)])
    {
        assert_eq!(row.name, name);
        assert_eq!(row.checksum, checksum(text), "checksum of {name}");
        assert_eq!(row.state, "applied");
    }
    let applied_at = db.query("SELECT applied_at FROM shipgate_migrations ORDER BY version");

    // The every-deploy path: nothing pending, nothing changes.
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["nothing to do: at version 3 (head 3), 3 applied"]);
    assert_eq!(db.history(), history, "a re-run must not touch history");
    assert_eq!(
        db.query("SELECT applied_at FROM shipgate_migrations ORDER BY version"),
        applied_at
    );
    assert_eq!(db.int("SELECT count(*) FROM t2"), 2, "no re-insert");
    assert!(db.audit().is_empty(), "up writes no audit rows");
}

fn down_to_reverts_newest_first_with_audit_rows(engine: Engine) {
    let db = Db::new(engine);
    let p = three_tables();
    p.run(&db, &["up"]).code(0);

    // stdin is not a terminal: without --yes, down refuses and changes nothing.
    p.run(&db, &["down", "--to", "1"])
        .code(2)
        .stderr_has(&["--yes"]);
    assert_eq!(db.versions(), [1, 2, 3]);
    assert!(db.table_exists("t3"));

    let run = p.run(
        &db,
        &["down", "--to", "1", "--yes", "--reason", "bad release 42"],
    );
    run.code(0).stdout_has(&["reverted 2 migration(s)"]);
    let three = run.stdout.find("reverted 3 create_t3").expect("3 reverted");
    let two = run.stdout.find("reverted 2 create_t2").expect("2 reverted");
    assert!(three < two, "newest first: {run:?}");

    assert_eq!(db.versions(), [1], "--to 1 keeps 1 applied");
    assert!(db.table_exists("t1"));
    assert!(!db.table_exists("t2") && !db.table_exists("t3"));

    let audit = db.audit();
    let downs: Vec<Option<i64>> = audit
        .iter()
        .filter(|a| a.action == "down")
        .map(|a| a.version)
        .collect();
    assert_eq!(
        downs,
        [Some(3), Some(2)],
        "audit in revert order: {audit:?}"
    );
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(
        audit
            .iter()
            .all(|a| a.reason.as_deref() == Some("bad release 42")),
        "--reason is recorded with every revert: {audit:?}"
    );
    // The revert is a run of its own in shipgate_runs (SPEC §4), counting what it reverted.
    let runs = db.query("SELECT command, outcome FROM shipgate_runs");
    assert_eq!(
        runs,
        [[Some("down".to_owned()), Some("succeeded".to_owned())]],
        "{runs:?}"
    );
    assert_eq!(db.int("SELECT applied FROM shipgate_runs"), 2);
    assert_eq!(
        audit[0].before.as_deref(),
        Some(format!("applied {}", checksum(T3)).as_str())
    );
    assert_eq!(audit[0].after.as_deref(), Some("reverted"));

    // What was reverted can be applied again.
    p.run(&db, &["up"]).code(0);
    assert_eq!(db.versions(), [1, 2, 3]);
    assert_eq!(db.int("SELECT count(*) FROM t2"), 2);
}

fn status_json_reports_every_field(engine: Engine) {
    let db = Db::new(engine);
    let p = three_tables();
    p.run(&db, &["up", "--to", "2"]).code(0);

    let run = p.run(&db, &["status", "--json"]);
    run.code(0);
    let s = run.json();
    assert_eq!(
        keys(&s),
        [
            "applied",
            "current_version",
            "database",
            "dirty",
            "drift",
            "engine",
            "head_version",
            "in_progress",
            "invalid_indexes",
            "layout",
            "lock_holder",
            "migrations_dir",
            "missing",
            "modified",
            "out_of_order",
            "pending",
            "pending_repeatables",
            "problems",
            "server_version",
        ]
    );
    assert_eq!(s["engine"], engine.name());
    assert_eq!(s["drift"]["state"], "clean", "up stored the snapshot: {s}");
    let server_version = s["server_version"].as_str().expect("server_version string");
    assert!(
        server_version.starts_with(|c: char| c.is_ascii_digit()),
        "{server_version}"
    );
    assert_eq!(s["database"], db.url());
    assert_eq!(s["migrations_dir"], "migrations");
    assert_eq!(s["layout"], "native");
    assert_eq!(s["current_version"], 2);
    assert_eq!(s["head_version"], 3);
    assert_eq!(
        s["applied"],
        json!([{"version": 1, "name": "create_t1"}, {"version": 2, "name": "create_t2"}])
    );
    assert_eq!(s["pending"], json!([{"version": 3, "name": "create_t3"}]));
    assert_eq!(
        s["lock_holder"],
        serde_json::Value::Null,
        "nobody holds the lock"
    );
    for empty in [
        "modified",
        "missing",
        "out_of_order",
        "dirty",
        "problems",
        "pending_repeatables",
    ] {
        assert_eq!(s[empty], json!([]), "{empty}");
    }

    // --exit-code: 10 while something is pending, 0 once nothing is.
    p.run(&db, &["status", "--exit-code"]).code(10);
    p.run(&db, &["up"]).code(0);
    p.run(&db, &["status", "--exit-code"]).code(0);

    // A missing file (the database is ahead of this build) and an edited one.
    std::fs::remove_file(p.migrations().join("3_create_t3.up.sql")).expect("rm");
    std::fs::remove_file(p.migrations().join("3_create_t3.down.sql")).expect("rm");
    let edited = "CREATE TABLE t1 (id integer PRIMARY KEY); -- edited\n";
    p.write("1_create_t1.up.sql", edited);
    let s = p.run(&db, &["status", "--json"]).code(0).json();
    assert_eq!(s["current_version"], 3);
    assert_eq!(s["head_version"], 2);
    assert_eq!(s["pending"], json!([]));
    assert_eq!(s["missing"], json!([{"version": 3, "name": "create_t3"}]));
    assert_eq!(
        s["modified"],
        json!([{
            "version": 1,
            "name": "create_t1",
            "file": "migrations/1_create_t1.up.sql",
            "recorded_checksum": checksum(T1),
            "file_checksum": checksum(edited),
        }])
    );
    let problems = s["problems"].as_array().expect("problems array");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .as_str()
            .is_some_and(|m| m.contains("migration 1") && m.contains("edited")),
        "{problems:?}"
    );
    p.run(&db, &["status", "--exit-code"]).code(5);
}

fn history_json_reports_every_field(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_create_t1.up.sql", T1);
    p.write("2_create_t2.up.sql", T2);
    let mut cmd = p.command(Some(&db), &["up"]);
    cmd.env("SHIPGATE_DEPLOY_ID", "deploy-42")
        .env("SHIPGATE_APP_VERSION", "abc1234");
    let up = crate::support::Run::wait(cmd);
    up.code(0);

    let h = p.run(&db, &["history", "--json"]).code(0).json();
    let rows = h.as_array().expect("history is an array");
    assert_eq!(rows.len(), 2, "{h}");
    for (row, (version, name, text, statements)) in rows
        .iter()
        .zip([(1, "create_t1", T1, 1), (2, "create_t2", T2, 2)])
    {
        assert_eq!(
            keys(row),
            [
                "app_version",
                "applied_at",
                "applied_by",
                "checksum",
                "deploy_id",
                "error",
                "execution_ms",
                "name",
                "state",
                "statements_done",
                "version",
            ]
        );
        assert_eq!(row["version"], version);
        assert_eq!(row["name"], name);
        assert_eq!(row["checksum"], checksum(text));
        assert_eq!(row["state"], "applied");
        // A migration is one transaction on PostgreSQL and SQLite, with no statement progress;
        // on MariaDB it runs statement by statement and its row counts the committed ones.
        let statements_done = if engine.atomic_ddl() { 0 } else { statements };
        assert_eq!(row["statements_done"], statements_done, "{row}");
        assert_eq!(row["error"], serde_json::Value::Null);
        assert_eq!(row["deploy_id"], "deploy-42");
        assert_eq!(row["app_version"], "abc1234");
        assert_eq!(row["applied_by"], format!("it-host:{}", up.pid));
        assert!(
            row["execution_ms"].as_i64().is_some_and(|ms| ms >= 0),
            "{row}"
        );
        let at = row["applied_at"].as_str().expect("applied_at string");
        let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        assert!(
            at.len() == shape.len()
                && at.chars().zip(shape.chars()).all(|(a, s)| match s {
                    'd' => a.is_ascii_digit(),
                    _ => a == s,
                }),
            "applied_at {at:?} is not RFC 3339 UTC with milliseconds"
        );
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let now = time::OffsetDateTime::now_utc();
        let earliest = (now - time::Duration::minutes(5))
            .format(&format)
            .expect("format");
        let latest = (now + time::Duration::seconds(1))
            .format(&format)
            .expect("format");
        assert!(
            (earliest.as_str()..=latest.as_str()).contains(&at),
            "applied_at {at} is not recent ({earliest}..={latest})"
        );
    }

    // An empty database has an empty history, not an error.
    let fresh = Db::new(engine);
    assert_eq!(
        p.run(&fresh, &["history", "--json"]).code(0).json(),
        json!([])
    );
}

fn baseline_records_without_running(engine: Engine) {
    let db = Db::new(engine);
    let p = three_tables();

    p.run(
        &db,
        &["baseline", "--version", "2", "--reason", "adopting prod"],
    )
    .code(0)
    .stdout_has(&["recorded 2 migration(s) up to 2"]);
    let history = db.history();
    assert_eq!(db.versions(), [1, 2]);
    assert_eq!(history[0].checksum, checksum(T1));
    assert_eq!(history[1].checksum, checksum(T2));
    assert!(history.iter().all(|r| r.state == "applied"));
    assert!(
        !db.table_exists("t1") && !db.table_exists("t2"),
        "baseline must not run the SQL"
    );
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "baseline");
    assert_eq!(audit[0].version, Some(2));
    assert_eq!(audit[0].reason.as_deref(), Some("adopting prod"));

    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 3 create_t3", "applied 1 migration(s)"]);
    assert!(db.table_exists("t3"));
    assert!(!db.table_exists("t1"), "baselined migrations never run");
    assert_eq!(db.versions(), [1, 2, 3]);

    // An unknown version is refused and records nothing.
    let before = db.audit().len();
    p.run(&db, &["baseline", "--version", "7"])
        .code(5)
        .stderr_has(&["7"]);
    assert_eq!(db.audit().len(), before);
}

/// The planning policies of SPEC §3 through the binary: a pending migration older than the
/// newest applied one is refused (exit 5) unless `--allow-out-of-order`; an applied migration
/// whose file is gone is a warning, and a refusal under `--strict`; `down` refuses, before
/// reverting anything, a range that holds a migration without a down file; `--steps N` reverts
/// the newest N.
fn out_of_order_missing_and_irreversible_follow_the_policy(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("10_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n")
        .write("10_a.down.sql", "DROP TABLE a;\n")
        .write("30_c.up.sql", "CREATE TABLE c (id integer PRIMARY KEY);\n")
        .write("30_c.down.sql", "DROP TABLE c;\n");
    p.run(&db, &["up"]).code(0);

    // 20 arrives after 30 was applied.
    p.write("20_b.sql", "CREATE TABLE b (id integer PRIMARY KEY);\n");
    p.run(&db, &["up"]).code(5).stderr_has(&[
        "pending migration 20 (b) is older than the newest applied migration 30",
        "--allow-out-of-order",
    ]);
    assert!(!db.table_exists("b"));
    p.run(&db, &["up", "--allow-out-of-order"]).code(0);
    assert_eq!(db.versions(), [10, 20, 30]);

    // 20 has no down file: a revert down to 10 would cross it, so nothing is reverted.
    p.run(&db, &["down", "--to", "10", "--yes"])
        .code(5)
        .stderr_has(&["migration 20", "has no down file", "nothing was reverted"]);
    assert_eq!(db.versions(), [10, 20, 30]);
    assert!(db.table_exists("c"));
    p.run(&db, &["down", "--steps", "1", "--yes"])
        .code(0)
        .stdout_has(&["reverted 30 c"]);
    assert_eq!(db.versions(), [10, 20]);

    // The build no longer has 20's file: the database is ahead of it.
    std::fs::remove_file(p.migrations().join("20_b.sql")).expect("remove 20_b.sql");
    p.run(&db, &["up"])
        .code(0)
        .stderr_has(&["applied migration has no file in this build"]);
    p.run(&db, &["up", "--strict"]).code(5).stderr_has(&[
        "applied migration 20 (b) has no file in this build",
        "--strict refuses",
    ]);
}

/// `--to` must name an applied version (0: everything) and `--steps` no more than is applied:
/// a mistyped version or an oversized count is refused before anything changes.
fn down_refuses_a_range_that_is_not_applied(engine: Engine) {
    let db = Db::new(engine);
    let p = three_tables();
    p.run(&db, &["up"]).code(0);
    for (args, says) in [
        (&["--to", "20"][..], "version 20 is not applied"),
        (&["--steps", "4"], "only 3 migration(s) are applied"),
        (&["--steps", "99"], "only 3 migration(s) are applied"),
        (&["--steps", "0"], "--steps 0"),
    ] {
        let mut full = vec!["down", "--yes", "--reason", "test"];
        full.extend_from_slice(args);
        p.run(&db, &full)
            .code(5)
            .stderr_has(&[says, "nothing was reverted"]);
        assert_eq!(db.versions(), [1, 2, 3], "{args:?} changed history");
        assert!(db.table_exists("t3"), "{args:?} reverted");
        assert!(db.audit().is_empty(), "{args:?} wrote an audit row");
    }
    // A negative number is no version at all: refused as a usage error before connecting.
    p.run(&db, &["down", "--yes", "--to=-1"])
        .code(2)
        .stderr_has(&["version `-1` has a sign"]);
    assert_eq!(db.versions(), [1, 2, 3], "--to=-1 changed history");
    // The newest applied version: nothing newer, nothing to do.
    p.run(&db, &["down", "--yes", "--to", "3"])
        .code(0)
        .stdout_has(&["nothing to revert"]);
    // 0 reverts everything.
    p.run(&db, &["down", "--yes", "--to", "0"])
        .code(0)
        .stdout_has(&["reverted 3 migration(s)"]);
    assert_eq!(db.versions(), Vec::<i64>::new());
    assert!(!db.table_exists("t1"));
}
