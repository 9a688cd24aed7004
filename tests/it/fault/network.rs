//! Network faults between shipgate and the database, through a TCP proxy in the test process
//! that cuts or stalls connections on command.
//!
//! A cut during a migration: shipgate exits 1 saying the connection was lost, the server rolls
//! the migration back (or, had it reached its COMMIT, keeps it together with its history row),
//! the lock goes with the session, and the next run completes. A stall: shipgate's client-side
//! bound (`io_timeout` beyond the statement's own bounds) fires, it ends the stuck server
//! session from a fresh connection and exits 1 within the bound; a stall while connecting ends
//! in exit 3 after the connect wait. A killed release's long migration is cancelled by the
//! server within seconds (`client_connection_check_interval`), so the lock does not stay held
//! until it would have finished.

use std::process::Command;
use std::time::{Duration, Instant};

use super::state::{lock_held, pg_lock_key, wait_sessions_gone};
use super::Tally;
use crate::support::proxy::Proxy;
use crate::support::{
    assert_secret_free, finish_within, spawn, wait_for, Db, Engine, Project, Receiver, Reply, Run,
};

const BOUND: Duration = Duration::from_secs(30);

/// Three migrations; the second sleeps in the server for `sleep_s` seconds between creating a
/// table and inserting into it.
fn with_slow_second(sleep_s: u32) -> Project {
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n")
        .write(
            "2_slow.up.sql",
            &format!(
                "CREATE TABLE slow (id integer PRIMARY KEY);\nSELECT pg_sleep({sleep_s});\n\
                 INSERT INTO slow (id) VALUES (1);\n"
            ),
        )
        .write("3_c.up.sql", "CREATE TABLE c (id integer PRIMARY KEY);\n");
    p
}

/// `release` through `url` (the proxy), as a platform runs it.
fn release_via(p: &Project, db: &Db, url: &str) -> Command {
    let mut cmd = p.platform_command(db, &["release"]);
    cmd.env("DATABASE_URL", url);
    cmd
}

/// Waits until the server runs `pg_sleep(<sleep_s>)` for this database.
/// After a run left migration 2 dirty: the next release is refused (exit 5, pointing at
/// `shipgate repair`); the operator runs `undo` and `repair --mark-rolled-back 2`; then a
/// release with `env` added completes.
fn repair_then_release(p: &Project, db: &Db, url: &str, undo: &str, env: &[(&str, &str)]) {
    Run::wait_within(release_via(p, db, url), BOUND)
        .code(5)
        .secret_free()
        .stderr_has(&["migration 2", "dirty", "shipgate repair"]);
    db.exec(undo);
    let repair = p.platform_command(
        db,
        &[
            "repair",
            "--mark-rolled-back",
            "2",
            "--reason",
            "undone by hand",
        ],
    );
    Run::wait_within(repair, BOUND).code(0).secret_free();
    let mut release = release_via(p, db, url);
    release.envs(env.iter().copied());
    Run::wait_within(release, BOUND).code(0).secret_free();
}

fn wait_for_sleep(db: &Db, sleep_s: u32) {
    let sql = format!(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = '{}' \
         AND state = 'active' AND query LIKE '%pg_sleep({sleep_s})%' AND pid <> pg_backend_pid()",
        db.name()
    );
    wait_for("the slow migration to run", BOUND, || {
        (db.admin_int(&sql) > 0).then_some(())
    });
}

fn last_run_outcome(db: &Db) -> Option<String> {
    db.query("SELECT outcome FROM shipgate_runs ORDER BY id DESC LIMIT 1")
        .first()
        .and_then(|r| r[0].clone())
}

#[test]
fn a_cut_during_a_migration_rolls_it_back_frees_the_lock_and_the_next_run_completes() {
    let db = Db::new(Engine::Postgres);
    let p = with_slow_second(5);
    let (proxy, url) = Proxy::for_url(&db.url_with_password());
    let hooks = Receiver::start(Reply::Accept);
    let mut cmd = release_via(&p, &db, &url);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    let started = Instant::now();
    let child = spawn(&mut cmd);
    wait_for_sleep(&db, 5);
    proxy.cut();
    let cut = Instant::now();

    let run = finish_within(child, started, BOUND);
    run.code(1).secret_free().stderr_has(&[
        "migration 2",
        "2_slow.up.sql",
        "connection was lost before the outcome was known",
        "never one without the other",
    ]);
    assert!(
        cut.elapsed() < Duration::from_secs(10),
        "exit {:?} after the cut",
        cut.elapsed()
    );
    // The server rolled the migration back (the cut came mid-statement, long before its
    // COMMIT), and the lock went with the session: nothing of it remains.
    wait_sessions_gone(&db, Duration::from_secs(10));
    assert_eq!(db.versions(), [1]);
    assert!(!db.table_exists("slow"));
    assert!(!lock_held(&db), "the lock outlived the session");
    // The run is closed as failed from a fresh connection, with the reason.
    assert_eq!(last_run_outcome(&db).as_deref(), Some("failed"));

    // The network is back: the next release completes.
    Run::wait_within(release_via(&p, &db, &url), BOUND)
        .code(0)
        .secret_free();
    assert_eq!(db.versions(), [1, 2, 3]);
    assert_eq!(db.int("SELECT count(*) FROM slow"), 1);
    assert!(!lock_held(&db));
    for d in hooks.deliveries() {
        assert_secret_free("a webhook body", &d.text());
    }
    let failed = hooks.of_type("release.failed");
    assert_eq!(failed.len(), 1, "{:?}", hooks.deliveries());
    assert!(failed[0].text().contains("connection was lost"));
    Tally::passed(
        "network cut mid-migration (transactional)",
        "postgres",
        1,
        "exit 1, rolled back, lock freed, next run completes",
    );
}

#[test]
fn a_cut_during_a_no_transaction_migration_leaves_it_dirty_then_repair_completes() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n")
        .write(
            "2_nt.up.sql",
            "-- shipgate:no-transaction\nCREATE TABLE nt (id integer PRIMARY KEY);\n\
             SELECT pg_sleep(6);\nCREATE INDEX CONCURRENTLY nt_id ON nt (id);\n",
        );
    let (proxy, url) = Proxy::for_url(&db.url_with_password());
    let started = Instant::now();
    let child = spawn(&mut release_via(&p, &db, &url));
    wait_for_sleep(&db, 6);
    proxy.cut();
    let run = finish_within(child, started, BOUND);
    run.code(1)
        .secret_free()
        .stderr_has(&["migration 2", "at statement 2 of 3", "dirty"]);
    wait_sessions_gone(&db, Duration::from_secs(10));
    let history = db.history();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1].state, "running", "{history:?}");
    assert_eq!(history[1].statements_done, 1, "{history:?}");
    assert!(!lock_held(&db));

    // Refused until repaired; after the operator undoes statement 1, the release completes.
    repair_then_release(&p, &db, &url, "DROP TABLE nt", &[]);
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.history().iter().all(|r| r.state == "applied"));
    Tally::passed(
        "network cut mid-migration (no-transaction)",
        "postgres",
        1,
        "exit 1, dirty at statement 2, refused until repair, then completes",
    );
}

#[test]
fn a_stall_during_a_migration_ends_within_the_io_bound_and_frees_the_lock() {
    let db = Db::new(Engine::Postgres);
    let p = with_slow_second(1);
    let (proxy, url) = Proxy::for_url(&db.url_with_password());
    let mut cmd = release_via(&p, &db, &url);
    // The slow file has 3 statements: bound = io 1s + lock 1s + 3 × (statement 2s + lock 1s).
    cmd.env("SHIPGATE_STATEMENT_TIMEOUT", "2s")
        .env("SHIPGATE_LOCK_TIMEOUT", "1s")
        .env("SHIPGATE_IO_TIMEOUT", "1s");
    let started = Instant::now();
    let child = spawn(&mut cmd);
    wait_for_sleep(&db, 1);
    proxy.stall();
    let stalled = Instant::now();

    let run = finish_within(child, started, Duration::from_secs(40));
    let after = stalled.elapsed();
    run.code(1).secret_free().stderr_has(&[
        "migration 2",
        "no answer from the database within 11s",
        "connection was lost before the outcome was known",
    ]);
    assert!(
        after < Duration::from_secs(11 + 8),
        "exit {after:?} after the stall: beyond the bound and the abort"
    );
    // The stuck server session (which may well have committed: the server never saw a problem)
    // was ended from a fresh connection, so the lock is gone without waiting for keepalives.
    wait_sessions_gone(&db, Duration::from_secs(10));
    assert!(!lock_held(&db), "the lock outlived the stall");
    let versions = db.versions();
    assert!(versions == [1] || versions == [1, 2], "{versions:?}");
    assert_eq!(
        db.table_exists("slow"),
        versions.len() == 2,
        "the file and its row together"
    );

    let direct = Run::wait_within(p.platform_command(&db, &["release"]), BOUND);
    direct.code(0).secret_free();
    assert_eq!(db.versions(), [1, 2, 3]);
    assert_eq!(
        db.int("SELECT count(*) FROM slow"),
        1,
        "applied exactly once"
    );
    drop(proxy);
    Tally::passed(
        "network stall mid-migration",
        "postgres",
        1,
        "exit 1 within io_timeout + statement bounds, stuck session ended, next run completes",
    );
}

#[test]
fn a_stall_while_connecting_ends_in_exit_3_after_the_connect_wait() {
    let db = Db::new(Engine::Postgres);
    let p = with_slow_second(0);
    let (proxy, url) = Proxy::for_url(&db.url_with_password());
    proxy.stall_new(true);
    let mut cmd = release_via(&p, &db, &url);
    cmd.env("SHIPGATE_CONNECT_TIMEOUT", "3s");
    let run = Run::wait_within(cmd, BOUND);
    run.code(3)
        .secret_free()
        .stderr_has(&["unreachable after", "connect attempt timed out"]);
    assert!(run.elapsed < Duration::from_secs(10), "{run:?}");
    assert!(proxy.accepted() >= 1, "shipgate never reached the proxy");
    assert!(
        !db.table_exists("shipgate_migrations"),
        "nothing was written"
    );
    Tally::passed(
        "network stall while connecting",
        "postgres",
        1,
        "exit 3 after the 3 s connect wait",
    );
}

#[test]
fn a_stall_on_shipgates_own_statements_is_bounded_by_io_timeout() {
    let db = Db::new(Engine::Postgres);
    let p = with_slow_second(0);
    // The test's own session holds shipgate's lock, so shipgate sits polling it; the stall
    // lands on one of those polls.
    let (k1, k2) = pg_lock_key(&db);
    let mut holder = db.session();
    holder.exec(&format!("SELECT pg_advisory_lock({k1}, {k2})"));
    let (proxy, url) = Proxy::for_url(&db.url_with_password());
    let mut cmd = release_via(&p, &db, &url);
    cmd.env("SHIPGATE_LOCK_TIMEOUT", "1s")
        .env("SHIPGATE_IO_TIMEOUT", "2s");
    let started = Instant::now();
    let child = spawn(&mut cmd);
    wait_for("shipgate to wait for the lock", BOUND, || {
        db.admin_int(&format!(
            "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = '{}' \
             AND application_name LIKE 'shipgate%' AND query LIKE '%pg_try_advisory_lock%'",
            db.name()
        ))
        .gt(&0)
        .then_some(())
    });
    proxy.stall();
    let stalled = Instant::now();
    let run = finish_within(child, started, BOUND);
    run.code(1).secret_free().stderr_has(&[
        "taking the migration lock",
        "no answer from the database within 3s",
    ]);
    assert!(stalled.elapsed() < Duration::from_secs(3 + 8), "{run:?}");
    drop(holder);
    wait_sessions_gone(&db, Duration::from_secs(10));
    assert!(!lock_held(&db));
    assert!(
        !db.table_exists("shipgate_migrations"),
        "nothing was written"
    );
    drop(proxy);
    Tally::passed(
        "network stall on shipgate's own statements",
        "postgres",
        1,
        "exit 1 within io_timeout + lock_timeout",
    );
}

#[test]
fn a_killed_release_does_not_keep_the_lock_until_its_long_migration_ends() {
    let db = Db::new(Engine::Postgres);
    let p = with_slow_second(60);
    let mut tally = Tally::new("SIGKILL during a 60 s migration", "postgres");
    tally.trials = 1;
    let started = Instant::now();
    let mut child = spawn(&mut p.platform_command(&db, &["release"]));
    wait_for_sleep(&db, 60);
    let _ = child.kill();
    let killed = Instant::now();
    Run::finish(child, started).secret_free();
    // The server checks every second whether its client is still there, cancels the
    // migration and ends the session: the lock is free long before the 60 s sleep would end.
    wait_for("the lock to be released", Duration::from_secs(10), || {
        (!lock_held(&db)).then_some(())
    });
    let freed = killed.elapsed();
    assert_eq!(db.versions(), [1]);
    assert!(!db.table_exists("slow"), "the migration was rolled back");
    tally.survived = 1;
    tally.note = format!("lock free {} ms after the kill", freed.as_millis());
    tally.finish();
}

/// Waits until MariaDB runs `SLEEP(<sleep_s>)` for this database.
fn wait_for_mariadb_sleep(db: &Db, sleep_s: u32) {
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' \
         AND INFO LIKE '%SLEEP({sleep_s})%' AND ID <> CONNECTION_ID()",
        db.name()
    );
    wait_for("the slow statement to run", BOUND, || {
        (db.int(&sql) > 0).then_some(())
    });
}

fn mariadb_project(sleep_s: u32) -> Project {
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n")
        .write(
            "2_slow.up.sql",
            &format!(
                "CREATE TABLE slow (id integer PRIMARY KEY);\nSELECT SLEEP({sleep_s});\n\
                 INSERT INTO slow (id) VALUES (1);\n"
            ),
        );
    p
}

#[test]
fn mariadb_a_cut_mid_statement_leaves_a_precise_dirty_row_and_frees_the_lock() {
    let db = Db::new(Engine::Mariadb);
    let p = mariadb_project(5);
    let (proxy, url) = Proxy::for_url(db.url());
    let started = Instant::now();
    let child = spawn(&mut release_via(&p, &db, &url));
    wait_for_mariadb_sleep(&db, 5);
    proxy.cut();
    let run = finish_within(child, started, BOUND);
    run.code(1).secret_free().stderr_has(&[
        "migration 2",
        "at statement 2 of 3",
        "1 statement(s) before it had committed",
        "connection was lost",
    ]);
    wait_sessions_gone(&db, Duration::from_secs(15));
    assert!(!lock_held(&db), "the lock outlived the session");
    let history = db.history();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1].state, "running", "{history:?}");
    assert_eq!(history[1].statements_done, 1, "{history:?}");

    repair_then_release(
        &p,
        &db,
        &url,
        "DROP TABLE slow",
        &[("SHIPGATE_STATEMENT_TIMEOUT", "30s")],
    );
    assert_eq!(db.versions(), [1, 2]);
    assert_eq!(db.int("SELECT COUNT(*) FROM slow"), 1);
    Tally::passed(
        "network cut mid-statement",
        "mariadb",
        1,
        "exit 1, precise dirty row, lock freed, repair then completes",
    );
}

#[test]
fn mariadb_a_stall_mid_statement_ends_within_the_io_bound_and_frees_the_lock() {
    let db = Db::new(Engine::Mariadb);
    let p = mariadb_project(1);
    let (proxy, url) = Proxy::for_url(db.url());
    let mut cmd = release_via(&p, &db, &url);
    // One statement: bound = io 1s + lock 1s + (statement 3s + lock 1s) = 6s.
    cmd.env("SHIPGATE_STATEMENT_TIMEOUT", "3s")
        .env("SHIPGATE_LOCK_TIMEOUT", "1s")
        .env("SHIPGATE_IO_TIMEOUT", "1s");
    let started = Instant::now();
    let child = spawn(&mut cmd);
    wait_for_mariadb_sleep(&db, 1);
    proxy.stall();
    let stalled = Instant::now();
    let run = finish_within(child, started, Duration::from_secs(40));
    run.code(1)
        .secret_free()
        .stderr_has(&["migration 2", "no answer from the database within 6s"]);
    assert!(stalled.elapsed() < Duration::from_secs(6 + 8), "{run:?}");
    wait_sessions_gone(&db, Duration::from_secs(15));
    assert!(!lock_held(&db), "the lock outlived the stall");
    drop(proxy);
    Tally::passed(
        "network stall mid-statement",
        "mariadb",
        1,
        "exit 1 within io_timeout + statement bounds, connection killed, lock freed",
    );
}

#[test]
fn mariadb_a_killed_release_frees_the_lock_when_the_server_notices() {
    let db = Db::new(Engine::Mariadb);
    let p = mariadb_project(20);
    let started = Instant::now();
    let mut child = spawn(&mut p.platform_command(&db, &["release"]));
    wait_for_mariadb_sleep(&db, 20);
    let _ = child.kill();
    let killed = Instant::now();
    Run::finish(child, started).secret_free();
    // MariaDB checks the client socket during SLEEP and ends the session when it is gone.
    wait_for("the lock to be released", Duration::from_secs(15), || {
        (!lock_held(&db)).then_some(())
    });
    let history = db.history();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        history[1].state, "running",
        "the cut migration is dirty: {history:?}"
    );
    let freed = killed.elapsed().as_millis();
    Tally::passed(
        "SIGKILL during a 20 s statement",
        "mariadb",
        1,
        &format!("lock free {freed} ms after the kill (the server checks its client every 5 s)"),
    );
}
