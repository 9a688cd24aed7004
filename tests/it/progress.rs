//! Progress an operator can act on: a line when each migration starts and ends (`n/of`), a
//! heartbeat naming the session a statement waits for, and a failing statement named by file,
//! line and column.

use std::time::{Duration, Instant};

use std::process::{Command, Stdio};

use crate::support::mariadbserver::MariaServer;
use crate::support::{email_pending, spawn, wait_for, Db, Engine, Project, Run, Session};

on_every_engine!(each_migration_has_a_start_and_an_end_line_counting_n_of_m);

fn each_migration_has_a_start_and_an_end_line_counting_n_of_m(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::with_users();
    p.write("2_orders.up.sql", "CREATE TABLE orders (id bigint);\n");
    let mut cmd = p.command(Some(&db), &["up"]);
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    let run = Run::wait(cmd);
    run.code(0);
    let lines = run.log_lines();
    let of = |target: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["target"] == target).collect()
    };
    let starts = of("shipgate::progress::start");
    let ends = of("shipgate::progress::end");
    assert_eq!(starts.len(), 2, "{run:?}");
    assert_eq!(ends.len(), 2, "{run:?}");
    assert_eq!(starts[0]["message"], "applying 1/2 1 users", "{run:?}");
    assert_eq!(starts[1]["message"], "applying 2/2 2 orders", "{run:?}");
    assert_eq!(starts[1]["n"], 2);
    assert_eq!(starts[1]["of"], 2);
    assert_eq!(starts[1]["migration_version"], 2);
    assert!(
        starts[1]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("2_orders.up.sql")),
        "{run:?}"
    );
    let message = ends[0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("applied 1/2 1 users in "), "{run:?}");
    assert!(message.ends_with("ms") || message.ends_with('s'), "{run:?}");
    assert!(ends[1]["duration_ms"].is_u64(), "{run:?}");
    assert_eq!(ends[1]["n"], 2);
    // The start line comes before the end line of the same migration.
    let at = |m: &str| run.stderr.find(m).expect("logged");
    assert!(at("applying 2/2") < at("applied 2/2"), "{run:?}");
    // stdout (a pipe here) keeps its lines for scripts, durations in the one human format.
    run.stdout_has(&["applied 2 orders (", "applied 2 migration(s) in "]);
    assert!(!run.stdout.contains(" ms)"), "{run:?}");

    // `down` has the same lines, newest first: `reverting 1/2 2 orders` … `reverted 2/2 1 users`.
    p.write("2_orders.down.sql", "DROP TABLE orders;\n");
    p.write("1_users.down.sql", "DROP TABLE users;\n");
    let mut cmd = p.command(Some(&db), &["down", "--to", "0", "--yes"]);
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    let run = Run::wait(cmd);
    run.code(0);
    let lines = run.log_lines();
    let of = |target: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["target"] == target)
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        of("shipgate::progress::start"),
        ["reverting 1/2 2 orders", "reverting 2/2 1 users"],
        "{run:?}"
    );
    let ends = of("shipgate::progress::end");
    assert_eq!(ends.len(), 2, "{run:?}");
    assert!(ends[0].starts_with("reverted 1/2 2 orders in "), "{run:?}");
    assert!(ends[1].starts_with("reverted 2/2 1 users in "), "{run:?}");
}

/// The first heartbeat line of a run with JSON logs.
fn first_beat(run: &Run) -> serde_json::Value {
    run.log_lines()
        .into_iter()
        .find(|l| l["target"] == "shipgate::progress::beat")
        .unwrap_or_else(|| panic!("no heartbeat: {run:?}"))
}

/// Runs `shipgate up` (with `format` logs) while `session` holds a lock its migration needs,
/// for `hold` from the start; then the session commits.
fn up_behind(session: &mut Session, db: &Db, p: &Project, format: &str, hold: Duration) -> Run {
    let mut cmd = p.command(Some(db), &["up"]);
    cmd.env("SHIPGATE_LOG_FORMAT", format);
    // The statement must queue in the server for the heartbeat to see it wait: without this the
    // blocker check waits for the idle session before the statement (tests/it/pgguard.rs).
    cmd.env("SHIPGATE_BLOCKER_CHECK", "false");
    // Long enough to wait out the hold in one attempt, unless the hold is shorter than the
    // default (5 s).
    if hold >= Duration::from_secs(5) {
        cmd.env("SHIPGATE_LOCK_TIMEOUT", "60s");
    }
    let started = Instant::now();
    let child = spawn(&mut cmd);
    std::thread::sleep(hold);
    session.exec("COMMIT");
    Run::finish(child, started)
}

/// Holds a lock on `users` from a session named `held-by-test` for `hold`, while `shipgate up`
/// applies a migration that needs it. Returns the run and the session's backend pid.
fn up_behind_a_lock(db: &Db, p: &Project, format: &str, hold: Duration) -> (Run, i64) {
    let (mut session, pid) = db.idle_reader_of_users();
    (up_behind(&mut session, db, p, format, hold), pid)
}

/// A statement waiting on another session's lock gets a heartbeat after 5 s naming the lock,
/// the session (pid, application) and its state, read from a second connection: as fields in
/// JSON, in words in text. The migration itself is not disturbed.
#[test]
fn a_heartbeat_names_the_session_holding_the_lock_the_migration_waits_for() {
    let (db, p) = email_pending(Engine::Postgres);
    let (run, pid) = up_behind_a_lock(&db, &p, "json", Duration::from_millis(7_500));
    run.code(0);
    let beats: Vec<serde_json::Value> = run
        .log_lines()
        .into_iter()
        .filter(|l| l["target"] == "shipgate::progress::beat")
        .collect();
    let beat = beats
        .first()
        .unwrap_or_else(|| panic!("no heartbeat: {run:?}"));
    assert_eq!(beat["blocking_pid"], pid, "{run:?}");
    assert_eq!(beat["blocking_application"], "held-by-test", "{run:?}");
    assert_eq!(beat["blocking_state"], "idle in transaction", "{run:?}");
    assert_eq!(beat["lock"], "users", "{run:?}");
    assert_eq!(beat["n"], 1);
    assert_eq!(beat["of"], 1);
    assert!(
        beat["elapsed_ms"].as_u64().is_some_and(|ms| ms >= 5_000),
        "{run:?}"
    );
    assert!(beat["blocking_xact_ms"]
        .as_u64()
        .is_some_and(|ms| ms >= 5_000));
    let message = beat["message"].as_str().unwrap_or_default();
    let expected = format!(
        "waiting for a lock on users held by pid {pid} (held-by-test, from 127.0.0.1, idle in transaction for "
    );
    assert!(
        message.starts_with("still applying 1/1 2 email (5.") && message.contains(&expected),
        "{message}"
    );
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.history().iter().all(|r| r.state == "applied"));

    // Text: the same words on one line.
    p.write("3_name.up.sql", "ALTER TABLE users ADD COLUMN name text;\n");
    let (run, pid) = up_behind_a_lock(&db, &p, "text", Duration::from_millis(6_500));
    run.code(0).stderr_has(&[
        "still applying 1/1 3 name (5.",
        &format!("waiting for a lock on users held by pid {pid} (held-by-test, from 127.0.0.1, idle in transaction for "),
        "applied 1/1 3 name in ",
    ]);
}

/// With the default 5 s `lock_timeout`, the first beat comes at half of it, while the statement
/// still waits, and names the holder.
#[test]
fn with_the_default_lock_timeout_the_first_beat_comes_while_the_statement_still_waits() {
    let (db, p) = email_pending(Engine::Postgres);
    let (run, pid) = up_behind_a_lock(&db, &p, "json", Duration::from_millis(4_000));
    run.code(0);
    let beat = first_beat(&run);
    assert_eq!(beat["blocking_pid"], pid, "{run:?}");
    assert!(
        beat["elapsed_ms"]
            .as_u64()
            .is_some_and(|ms| (2_500..4_000).contains(&ms)),
        "{run:?}"
    );
}

/// MariaDB without metadata lock instrumentation (its default): the heartbeat says what the
/// server says the statement does and names the likely holder, the oldest open transaction of
/// another session on the database, read from `information_schema.INNODB_TRX`.
#[test]
fn a_heartbeat_on_mariadb_names_the_open_transaction_in_the_way_of_a_metadata_lock() {
    let (db, p) = email_pending(Engine::Mariadb);
    let mut session = db.session();
    let id: i64 = session.query("SELECT CAST(CONNECTION_ID() AS CHAR)")[0][0]
        .as_deref()
        .and_then(|id| id.parse().ok())
        .expect("a connection id");
    session.exec("BEGIN");
    session.exec("SELECT count(*) FROM users");
    let run = up_behind(&mut session, &db, &p, "json", Duration::from_millis(7_000));
    run.code(0);
    let beat = first_beat(&run);
    let waiting_for = beat["waiting_for"].as_str().unwrap_or_default();
    assert!(
        waiting_for.starts_with(&format!(
            "a lock (Waiting for table metadata lock); the oldest open transaction on this database: pid {id} (from 127.0.0.1:"
        )),
        "{run:?}"
    );
    assert_eq!(beat["blocking_pid"], id, "{run:?}");
    assert_eq!(beat["blocking_state"], "idle in transaction", "{run:?}");
    assert_eq!(
        beat["holder_source"], "information_schema.INNODB_TRX",
        "{run:?}"
    );
    assert!(beat["blocking_xact_ms"]
        .as_u64()
        .is_some_and(|ms| ms >= 5_000));
    assert!(beat["elapsed_ms"].as_u64().is_some_and(|ms| ms >= 5_000));
}

/// With metadata lock instrumentation (a private MariaDB with `performance_schema` on), the
/// heartbeat names the session holding the very lock and the table, from
/// `performance_schema.metadata_locks`.
#[test]
fn a_heartbeat_on_instrumented_mariadb_names_the_metadata_lock_holder() {
    let server = MariaServer::start_with(&[
        "--performance-schema=ON",
        "--performance-schema-instrument=wait/lock/metadata/sql/mdl=ON",
    ]);
    server.sql("", "CREATE DATABASE app");
    let p = Project::with_users();
    let up = |p: &Project| {
        let mut cmd = p.command(None, &["up"]);
        cmd.env("DATABASE_URL", server.url("app"))
            .env("SHIPGATE_LOG_FORMAT", "json")
            .env("SHIPGATE_LOCK_TIMEOUT", "60s");
        cmd
    };
    Run::wait(up(&p)).code(0);
    p.write(
        "2_email.up.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    // A client that reads users in a transaction and then sleeps 7 s holding its metadata lock.
    let mut holder = Command::new("mariadb");
    holder
        .args(["--no-defaults", "-h", "127.0.0.1", "-uroot", "-N", "-B"])
        .arg(format!("-P{}", server.port))
        .args([
            "-e",
            "BEGIN; SELECT count(*) FROM users; SELECT SLEEP(7);",
            "app",
        ])
        .stdout(Stdio::null());
    let mut holder = holder.spawn().expect("the mariadb client");
    let find = "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(7)%'";
    let id = wait_for("the holder to sleep", Duration::from_secs(10), || {
        Some(server.sql("", find)).filter(|id| !id.is_empty())
    });
    let run = Run::wait(up(&p));
    let _ = holder.wait();
    run.code(0);
    let beat = first_beat(&run);
    assert_eq!(
        beat["holder_source"], "performance_schema.metadata_locks",
        "{run:?}"
    );
    assert_eq!(beat["lock"], "app.users", "{run:?}");
    assert_eq!(beat["blocking_pid"].to_string(), id, "{run:?}");
    assert!(
        beat["waiting_for"]
            .as_str()
            .is_some_and(|w| w.starts_with(&format!(
                "a lock on app.users held by pid {id} (from "
            ))),
        "{run:?}"
    );
}

/// SQLite has no server session to ask: the heartbeat carries the elapsed time only.
#[test]
fn a_heartbeat_on_sqlite_carries_the_elapsed_time_only() {
    let (db, p) = email_pending(Engine::Sqlite);
    let mut session = db.session();
    session.exec("BEGIN IMMEDIATE");
    let run = up_behind(&mut session, &db, &p, "json", Duration::from_millis(6_500));
    run.code(0);
    let beat = first_beat(&run);
    assert!(beat["elapsed_ms"].as_u64().is_some_and(|ms| ms >= 5_000));
    assert!(beat.get("waiting_for").is_none(), "{run:?}");
    assert!(
        beat["message"]
            .as_str()
            // `(5s)` when the beat lands on the whole second, `(5.0s)` a millisecond later.
            .is_some_and(|m| m.starts_with("still applying 1/1 2 email (5") && m.ends_with("s)")),
        "{run:?}"
    );
}

/// A failing statement is named by file, line and the server's position: inside a
/// transactional file (the whole file sent at once) and in a no-transaction file alike.
#[test]
fn a_failing_statement_is_named_by_file_line_and_column() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_bad.up.sql",
        "CREATE TABLE a (id bigint);\n-- a comment\nCREATE TABLE b (id bigint,\n  name txet);\n",
    );
    let run = p.run(&db, &["up"]);
    run.code(1)
        .stderr_has(&["2_bad.up.sql:4:8)", "type \"txet\" does not exist"]);
    assert!(!db.table_exists("a"), "rolled back");

    p.write(
        "2_bad.up.sql",
        "-- shipgate:no-transaction\nCREATE TABLE a (id bigint);\nSELECT nosuch FROM a;\n",
    );
    let run = p.run(&db, &["up"]);
    run.code(1)
        .stderr_has(&["2_bad.up.sql:3:8)", "at statement 2 of 2"]);
}
