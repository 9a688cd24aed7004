//! Behind a transaction-pooling proxy (PgBouncer in transaction mode) consecutive statements of
//! one client may run on different server sessions, so a session advisory lock cannot protect a
//! deploy. shipgate notices when it takes the lock, refuses as a configuration error (exit 2)
//! before changing anything, and does not leave the lock behind on a pooled session.

use std::time::{Duration, Instant};

use sqlx::{Connection, Row};

use crate::support::pgbouncer::PgBouncer;
use crate::support::{block_on, Db, Engine, Project, Run};

/// Opens two transactions through the pooler at once, so it holds two server sessions, then
/// ends them; with `server_round_robin` the next statements of one client alternate between
/// them. Returns the two backend pids.
fn two_server_sessions(url: &str) -> (i32, i32) {
    block_on(async {
        let mut a = sqlx::PgConnection::connect(url).await.expect("connect a");
        let mut b = sqlx::PgConnection::connect(url).await.expect("connect b");
        let mut pids = Vec::new();
        for c in [&mut a, &mut b] {
            sqlx::raw_sql("BEGIN")
                .execute(&mut *c)
                .await
                .expect("begin");
            let row = sqlx::raw_sql("SELECT pg_backend_pid()")
                .fetch_one(&mut *c)
                .await
                .expect("pid");
            pids.push(row.get::<i32, _>(0));
        }
        for c in [&mut a, &mut b] {
            sqlx::raw_sql("COMMIT")
                .execute(&mut *c)
                .await
                .expect("commit");
        }
        let _ = a.close().await;
        let _ = b.close().await;
        (pids[0], pids[1])
    })
}

#[test]
fn a_transaction_pooling_proxy_is_refused_before_anything_changes() {
    let db = Db::new(Engine::Postgres);
    let bouncer = PgBouncer::start();
    let url = bouncer.url(db.pg_name());
    let (first, second) = two_server_sessions(&url);
    assert_ne!(first, second, "the pooler should hold two server sessions");

    let p = Project::new();
    p.write("1_t.up.sql", "CREATE TABLE t (id integer PRIMARY KEY);\n");
    let mut cmd = p.command(None, &["up"]);
    cmd.env("DATABASE_URL", &url);
    let run = Run::wait_within(cmd, Duration::from_secs(60));
    run.code(2).stderr_has(&[
        "transaction-pooling proxy",
        "connect directly or through a session-mode pool",
        &format!("127.0.0.1:{}", bouncer.port),
    ]);
    assert!(!db.table_exists("t"), "a migration ran: {run:?}");

    // No session keeps shipgate's lock: the one that took it in passing was ended.
    let started = Instant::now();
    loop {
        let held = db.int(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND d.datname = current_database()",
        );
        if held == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the migration lock outlived the refused run: {run:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Connected directly, the same files apply.
    p.run(&db, &["up"]).code(0);
    assert!(db.table_exists("t"));
}
