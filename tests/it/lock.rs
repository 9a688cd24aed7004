//! The migration lock held by another process: `up` waits, names the holder, and gives up
//! with exit 4 at the `--lock-wait` bound.

use std::time::{Duration, Instant};

use crate::support::{spawn, wait_for, Db, Engine, Project, Run};

/// A migration that keeps its process (and so the lock) busy for several seconds.
fn slow_sql(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "CREATE TABLE held (id integer);\nSELECT pg_sleep(5);\n",
        // SQLite cannot sleep: count a long recursive sequence (about 4 s unloaded).
        Engine::Sqlite => {
            "CREATE TABLE held (id integer);\n\
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) \
             SELECT count(*) FROM c;\n"
        }
    }
}

/// The pid the holder is known by once it holds the lock and runs its migration: the server
/// backend pid on PostgreSQL (from pg_stat_activity), the OS pid on SQLite (from the lock
/// file, which must name the holder process).
fn holder_pid(db: &Db, holder_os_pid: u32) -> Option<i64> {
    match db.engine() {
        Engine::Postgres => {
            let rows = db.query(&format!(
                "SELECT CAST(pid AS TEXT) FROM pg_stat_activity \
                 WHERE datname = '{}' AND application_name LIKE 'shipgate%' \
                 AND state = 'active' AND query LIKE '%pg_sleep%'",
                db.pg_name()
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

on_both_engines!(up_waits_for_a_held_lock_names_the_holder_and_exits_4);

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
