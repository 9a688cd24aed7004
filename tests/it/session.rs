//! The migration connection's own session: `--lock-timeout` bounds how long a statement waits
//! for a table lock held by someone else (with `--lock-retries` bounded retries), and
//! `--session-init` / `SHIPGATE_SESSION_INIT` runs before anything else on that connection.

use std::time::Duration;

use crate::support::{Db, Engine, Project, Run};

/// Statements another session runs to hold a lock on table `t` that `ALTER TABLE t` must wait
/// for, until the session ends. On SQLite a write transaction holds the whole file.
fn hold_table_t(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::Postgres => &["BEGIN", "SELECT * FROM t FOR UPDATE"],
        // A metadata lock: without shipgate's `lock_wait_timeout` (a day by default on
        // MariaDB, a year on MySQL), the ALTER would wait for it that long.
        Engine::Mariadb => &["START TRANSACTION", "SELECT * FROM t FOR UPDATE"],
        Engine::Sqlite => &["BEGIN IMMEDIATE"],
    }
}

/// What the server says when a statement gives up waiting for that lock.
fn lock_wait_error(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "lock timeout",
        Engine::Mariadb => "Lock wait timeout exceeded",
        Engine::Sqlite => "database is locked",
    }
}

/// A session setting the migration can read back (`init`), and a migration that records it in
/// table `marker`, column `v`.
fn session_marker(engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Postgres => (
            "SET shipgate_it.marker = '42'",
            "CREATE TABLE marker AS SELECT current_setting('shipgate_it.marker') AS v;\n",
        ),
        Engine::Mariadb => (
            "SET @shipgate_it_marker = 42",
            "CREATE TABLE marker AS SELECT @shipgate_it_marker AS v;\n",
        ),
        Engine::Sqlite => (
            "CREATE TEMP TABLE shipgate_it_marker AS SELECT 42 AS v",
            "CREATE TABLE marker AS SELECT v FROM temp.shipgate_it_marker;\n",
        ),
    }
}

on_every_engine!(
    a_table_lock_held_elsewhere_fails_the_migration_after_the_lock_timeout,
    a_statement_by_statement_revert_retries_the_statement_that_hit_the_lock_timeout,
    session_init_runs_on_the_migration_connection_before_anything_else,
);

fn a_table_lock_held_elsewhere_fails_the_migration_after_the_lock_timeout(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_t.up.sql", "CREATE TABLE t (id integer PRIMARY KEY);\n");
    p.run(&db, &["up"]).code(0);
    p.write("2_alter.up.sql", "ALTER TABLE t ADD COLUMN c integer;\n");

    let mut holder = db.session();
    for sql in hold_table_t(engine) {
        holder.exec(sql);
    }
    // The lock timeout itself: the blocker check would wait for the idle holder before the
    // statement instead (tests/it/pgguard.rs).
    let cmd = p.command(
        Some(&db),
        &[
            "up",
            "--lock-timeout",
            "1s",
            "--lock-retries",
            "1",
            "--blocker-check",
            "false",
        ],
    );
    let run = Run::wait_within(cmd, Duration::from_secs(30));
    drop(holder);

    run.code(1).stderr_has(&[
        "migration 2",
        "2_alter.up.sql",
        "hit the lock timeout",
        lock_wait_error(engine),
    ]);
    // Two attempts of 1 s each, with a backoff between them; not the server's default wait.
    assert!(
        run.elapsed >= Duration::from_secs(2),
        "gave up before two 1s lock waits: {run:?}"
    );
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took far longer than two 1s lock waits: {run:?}"
    );

    if engine.atomic_ddl() {
        // PostgreSQL, SQLite: the migration rolled back with its history row.
        assert_eq!(db.versions(), [1]);
    } else {
        // MariaDB: the migration is recorded dirty with no statement committed, and must be
        // repaired before the next run.
        run.stderr_has(&[
            "at statement 1 of 1",
            "0 statement(s) before it had committed",
        ]);
        let history = db.history();
        assert_eq!(db.versions(), [1, 2], "{history:?}");
        assert_eq!(history[1].state, "failed");
        assert_eq!(history[1].statements_done, 0);
        p.run(&db, &["up"])
            .code(5)
            .stderr_has(&["migration 2", "dirty", "shipgate repair"]);
        p.run(
            &db,
            &[
                "repair",
                "--mark-rolled-back",
                "2",
                "--reason",
                "checked by hand",
            ],
        )
        .code(0);
        assert_eq!(db.versions(), [1]);
    }

    // Once the other session has gone, the same migration goes through.
    p.run(&db, &["up", "--lock-timeout", "1s"]).code(0);
    assert_eq!(db.versions(), [1, 2]);
    db.exec("INSERT INTO t (id, c) VALUES (1, 2)");
}

fn a_statement_by_statement_revert_retries_the_statement_that_hit_the_lock_timeout(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_t.up.sql", "CREATE TABLE t (id integer PRIMARY KEY);\n");
    p.write("2_c.up.sql", "ALTER TABLE t ADD COLUMN c integer;\n");
    p.write(
        "2_c.down.sql",
        "-- shipgate:no-transaction\nALTER TABLE t DROP COLUMN c;\n",
    );
    p.run(&db, &["up"]).code(0);

    // The other session lets go after 1.5 s: the first 1 s wait times out, the retry succeeds.
    let mut holder = db.session();
    for sql in hold_table_t(engine) {
        holder.exec(sql);
    }
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(holder);
    });
    let cmd = p.command(
        Some(&db),
        &[
            "down",
            "--to",
            "1",
            "--yes",
            "--lock-timeout",
            "1s",
            "--lock-retries",
            "3",
            // The retry itself: the blocker check would wait for the idle holder first.
            "--blocker-check",
            "false",
        ],
    );
    let run = Run::wait_within(cmd, Duration::from_secs(30));
    release.join().expect("the holder thread");

    // On SQLite the other writer locks the whole file, so the first write to wait is
    // shipgate's own (marking the migration as being reverted); it is retried the same way.
    run.code(0)
        .stderr_has(&["hit the lock timeout; retrying it"]);
    assert!(
        run.elapsed >= Duration::from_secs(1),
        "finished before the first 1s lock wait could time out: {run:?}"
    );
    assert_eq!(db.versions(), [1]);
    db.exec("INSERT INTO t (id) VALUES (1)");
}

fn session_init_runs_on_the_migration_connection_before_anything_else(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let (init, migration) = session_marker(engine);
    p.write("1_marker.up.sql", migration);

    p.run(&db, &["up", "--session-init", init]).code(0);
    assert_eq!(db.int("SELECT v FROM marker"), 42);
    assert_eq!(db.versions(), [1]);

    // The same setting from the environment; an invalid statement is a configuration error
    // (exit 2) reported at once, and nothing runs.
    p.write("2_after.up.sql", "CREATE TABLE after_init (id integer);\n");
    let mut cmd = p.command(Some(&db), &["up"]);
    cmd.env("SHIPGATE_SESSION_INIT", "SELEC 1");
    let run = Run::wait(cmd);
    run.code(2).stderr_has(&["session_init failed", "SELEC"]);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "a bad session_init must not be retried like an unreachable database: {run:?}"
    );
    assert_eq!(db.versions(), [1]);
    assert!(!db.table_exists("after_init"));

    let mut cmd = p.command(Some(&db), &["up"]);
    cmd.env("SHIPGATE_SESSION_INIT", init);
    Run::wait(cmd).code(0);
    assert_eq!(db.versions(), [1, 2]);
}
