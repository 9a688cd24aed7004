//! The `shipgate_runs` rows of releases that do not go the usual way: a no-op release while
//! another process writes to a SQLite database, a SIGTERM in the middle of a long SQLite
//! statement, and a run killed after its last migration whose row the next (no-op) release
//! must close.

use std::time::{Duration, Instant};

use crate::support::{finish_within, spawn, terminate, wait_for, Db, Engine, Project, Run};

/// The outcomes of `shipgate_runs`, oldest first.
fn outcomes(db: &Db) -> Vec<Option<String>> {
    db.query("SELECT outcome FROM shipgate_runs ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn a_no_op_release_waits_out_another_sqlite_writer() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::with_users();
    Run::wait(p.platform_command(&db, &["release"])).code(0);

    // The app holds a write transaction for two seconds, longer than the lock timeout.
    let mut app = db.session();
    app.exec("CREATE TABLE app_writes (id integer)");
    app.exec("BEGIN IMMEDIATE; INSERT INTO app_writes VALUES (1)");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        app.exec("COMMIT");
    });
    let run = Run::wait(p.platform_command(&db, &["release", "--lock-timeout", "300ms"]));
    writer.join().expect("writer");
    run.code(0)
        .stderr_has(&["nothing to do", "retrying"])
        .secret_free();
    assert_eq!(
        outcomes(&db),
        [Some("succeeded".into()), Some("nothing_to_do".into())]
    );
}

#[test]
fn sigterm_during_a_long_sqlite_statement_records_the_run_as_aborted() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::with_users();
    // Tens of seconds of work in one statement, with no sleep function to wait on.
    p.write(
        "2_long.up.sql",
        "CREATE TABLE long_work AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000000) SELECT count(*) AS c FROM n;\n",
    );
    let mut cmd = p.platform_command(&db, &["release"]);
    let started = Instant::now();
    let child = spawn(&mut cmd);
    wait_for(
        "the long statement to start",
        Duration::from_secs(20),
        || {
            (db.table_exists("shipgate_runs")
                && db.int("SELECT count(*) FROM shipgate_runs WHERE finished_at IS NULL") == 1)
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    terminate(child.id());
    let run = finish_within(child, started, Duration::from_secs(20));
    run.code(143).secret_free();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?} to stop after SIGTERM: {run:?}",
        signalled.elapsed()
    );
    assert_eq!(outcomes(&db), [Some("aborted".into())], "{run:?}");
    assert!(!db.table_exists("long_work"), "rolled back");
    assert_eq!(
        db.int("SELECT count(*) FROM shipgate_migrations"),
        1,
        "only migration 1: {run:?}"
    );
}

/// A run killed between its last migration and closing its row leaves the row open and
/// nothing pending: the next release takes the no-op path, and still closes it (when no live
/// run holds the lock).
fn a_no_op_release_closes_the_row_of_a_run_killed_after_its_last_migration(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::with_users();
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    // What the killed run left: its row, open.
    db.exec("INSERT INTO shipgate_runs (command, started_at, applied) VALUES ('release', CURRENT_TIMESTAMP, 1)");
    Run::wait(p.platform_command(&db, &["release"]))
        .code(0)
        .secret_free();
    assert_eq!(
        outcomes(&db),
        [
            Some("succeeded".into()),
            Some("aborted".into()),
            Some("nothing_to_do".into())
        ]
    );
    let error = db.query("SELECT error FROM shipgate_runs WHERE outcome = 'aborted'");
    assert!(
        error[0][0].as_deref().is_some_and(|e| e.contains("killed")),
        "{error:?}"
    );
    // Nothing is open, so the next no-op touches nothing but its own row.
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    assert_eq!(
        db.int("SELECT count(*) FROM shipgate_runs WHERE finished_at IS NULL"),
        0
    );
}

on_every_engine!(a_no_op_release_closes_the_row_of_a_run_killed_after_its_last_migration);

/// A live run's row is open while it holds the lock: a no-op release from another replica
/// leaves it alone, and the live run closes it with its own outcome.
#[test]
fn a_no_op_release_leaves_a_live_runs_row_open() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    p.write("2_slow.up.sql", "SELECT pg_sleep(3);\n");
    let mut live = p.platform_command(&db, &["release"]);
    let started = Instant::now();
    let live = spawn(&mut live);
    wait_for(
        "the live run to open its row",
        Duration::from_secs(20),
        || {
            (db.int("SELECT count(*) FROM shipgate_runs WHERE finished_at IS NULL") == 1)
                .then_some(())
        },
    );
    // A replica of the previous build: nothing pending for it, so it takes the no-op path.
    let old_build = Project::with_users();
    let run = Run::wait(old_build.platform_command(&db, &["release"]));
    run.code(0).secret_free();
    assert_eq!(
        db.int("SELECT count(*) FROM shipgate_runs WHERE finished_at IS NULL"),
        1,
        "the live run's row was closed under it"
    );
    Run::finish(live, started).code(0);
    assert_eq!(
        outcomes(&db),
        [
            Some("succeeded".into()),
            Some("succeeded".into()),
            Some("nothing_to_do".into())
        ]
    );
}
