//! The migration lock held by another process: `up` waits, names the holder, and gives up
//! with exit 4 at the `--lock-wait` bound. A migration in progress under another process's
//! lock (its history row says `running`) is waited for, not mistaken for a dirty one.

use std::time::{Duration, Instant};

use crate::support::{spawn, wait_for, Db, Engine, Project, Run};

/// A migration that keeps its process (and so the lock) busy for several seconds.
fn slow_sql(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "CREATE TABLE held (id integer);\nSELECT pg_sleep(5);\n",
        Engine::Mariadb => "CREATE TABLE held (id integer);\nSELECT SLEEP(4);\n",
        // SQLite cannot sleep: count a long recursive sequence (about 4 s unloaded).
        Engine::Sqlite => {
            "CREATE TABLE held (id integer);\n\
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) \
             SELECT count(*) FROM c;\n"
        }
    }
}

/// The pid the holder is known by once it holds the lock and runs its migration: the server
/// backend pid on PostgreSQL (from pg_stat_activity), the connection id on MariaDB (from the
/// process list), the OS pid on SQLite (from the lock file, which must name the holder
/// process).
fn holder_pid(db: &Db, holder_os_pid: u32) -> Option<i64> {
    match db.engine() {
        Engine::Postgres => {
            let rows = db.query(&format!(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = '{}' AND application_name LIKE 'shipgate%' \
                 AND state = 'active' AND query LIKE '%pg_sleep%'",
                db.name()
            ));
            rows.first()
                .and_then(|r| r[0].as_deref())
                .and_then(|p| p.parse().ok())
        }
        Engine::Mariadb => {
            let rows = db.query(&format!(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE DB = '{}' AND INFO LIKE 'SELECT SLEEP%' AND ID <> CONNECTION_ID()",
                db.name()
            ));
            rows.first()
                .and_then(|r| r[0].as_deref())
                .and_then(|p| p.parse().ok())
        }
        Engine::Sqlite => {
            let mut lock = db.sqlite_path().as_os_str().to_owned();
            lock.push(".shipgate-lock");
            let text = std::fs::read_to_string(lock).ok()?;
            let holder: serde_json::Value = serde_json::from_str(&text).ok()?;
            (holder["pid"] == i64::from(holder_os_pid)).then_some(i64::from(holder_os_pid))
        }
    }
}

on_every_engine!(
    up_waits_for_a_held_lock_names_the_holder_and_exits_4,
    up_waits_for_a_no_transaction_migration_in_progress_instead_of_calling_it_dirty,
);

fn up_waits_for_a_held_lock_names_the_holder_and_exits_4(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_slow.up.sql", slow_sql(engine));
    p.write("2_next.up.sql", "CREATE TABLE next (id integer);\n");

    let holder_started = Instant::now();
    let holder = spawn(&mut p.command(Some(&db), &["up"]));
    let holder_os_pid = holder.id();
    let pid = wait_for(
        "the holder to take the lock",
        Duration::from_secs(20),
        || holder_pid(&db, holder_os_pid),
    );

    // status shows who holds the lock.
    let status = p.run(&db, &["status", "--json"]);
    let holder_seen = status.code(0).json()["lock_holder"].clone();
    assert_eq!(holder_seen["pid"], pid, "{status:?}");

    let waiter = p.run(&db, &["up", "--lock-wait", "1s", "--log-format", "json"]);
    let holder = Run::finish(holder, holder_started);

    waiter.code(4).stderr_has(&[
        "migration lock not acquired within",
        &format!("held by pid {pid},"),
    ]);
    assert!(
        waiter.elapsed >= Duration::from_millis(1000),
        "exit 4 before the 1s bound: {waiter:?}"
    );
    assert!(
        waiter.elapsed < Duration::from_secs(5),
        "exit 4 long after the 1s bound: {waiter:?}"
    );
    let logged = waiter.log_lines().into_iter().any(|l| {
        l["level"] == "warn"
            && l["holder_pid"] == pid
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("waiting for the migration lock"))
    });
    assert!(logged, "no log line names holder pid {pid}: {waiter:?}");

    // The holder was not disturbed and applied everything.
    holder.code(0);
    assert_eq!(db.versions(), [1, 2]);
}

/// A `running` row is dirty only when nobody holds the lock (its process died). While the
/// process that wrote it still runs the migration, a second `up` must wait for the lock like
/// any other, then find nothing left to do. On MariaDB every migration writes a `running` row
/// first; on PostgreSQL and SQLite a no-transaction file does.
fn up_waits_for_a_no_transaction_migration_in_progress_instead_of_calling_it_dirty(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write(
        "1_slow.up.sql",
        &format!("-- shipgate:no-transaction\n{}", slow_sql(engine)),
    );
    p.write("2_next.up.sql", "CREATE TABLE next (id integer);\n");

    let holder_started = Instant::now();
    let holder = spawn(&mut p.command(Some(&db), &["up"]));
    wait_for(
        "the holder to record migration 1 as running",
        Duration::from_secs(20),
        || {
            let running = db.table_exists("shipgate_migrations")
                && db.history().first().is_some_and(|r| r.state == "running");
            running.then_some(())
        },
    );

    // SQLite's slow statement is CPU-bound (about 4 s unloaded): the wait is generous so a
    // loaded machine does not turn "waits instead of calling it dirty" into a lock timeout.
    let waiter = Run::wait_within(
        p.command(Some(&db), &["up", "--lock-wait", "120s"]),
        Duration::from_secs(130),
    );
    let holder = Run::finish(holder, holder_started);

    holder
        .code(0)
        .stdout_has(&["applied 1 slow", "applied 2 next"]);
    waiter.code(0);
    assert!(!waiter.stderr.contains("dirty"), "{waiter:?}");
    assert!(!waiter.stdout.contains("applied 1 slow"), "{waiter:?}");
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.history().iter().all(|r| r.state == "applied"));
}
