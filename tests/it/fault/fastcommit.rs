//! Fast commits under a server crash, on a private PostgreSQL server: each migration of a
//! release commits without waiting for its WAL flush and one synchronous commit after the last
//! makes them durable. Crashed (`pg_ctl stop -m immediate`) in the middle of a release of many
//! migrations, the server comes back with history and schema in step — every history row has
//! its table and its seed row, every table its history row, and the rows are a prefix of the
//! release — and the next release finishes it. A run that reported success and is followed at
//! once by a crash has lost nothing.
//!
//! The WAL writer is slowed (`wal_writer_delay = 10s`) so that commits not yet flushed stay in
//! memory as long as possible: a crash then loses whatever was committed without a flush, which
//! is what the final synchronous commit must cover.

use std::time::{Duration, Instant};

use super::Tally;
use crate::support::pgcluster::PgCluster;
use crate::support::{finish_within, spawn, wait_for, Project, Run, DB_PASSWORD};

const N: usize = 300;

fn project() -> Project {
    let p = Project::new();
    for i in 1..=N {
        p.write(
            &format!("{i}_t{i}.up.sql"),
            &format!(
                "CREATE TABLE t{i} (id integer PRIMARY KEY, v text);\n\
                 INSERT INTO t{i} (id, v) VALUES (1, repeat('x', 500));\n\
                 SELECT pg_sleep(0.01);\n"
            ),
        );
    }
    p
}

fn command(p: &Project, url: &str, what: &str) -> std::process::Command {
    let mut cmd = p.command(None, &[what]);
    cmd.env("DATABASE_URL", url)
        .env("SHIPGATE_LOG_FORMAT", "json")
        .env("SHIPGATE_CONNECT_TIMEOUT", "30s")
        // Warnings and errors only: two lines per migration would fill the pipe, which the
        // bounded waits do not read until the process exits.
        .env("RUST_LOG", "warn");
    cmd
}

/// The versions in history and the numbers of the `t<i>` tables that hold their seed row, each
/// sorted and joined with commas.
fn history_and_schema(cluster: &PgCluster, db: &str) -> (String, String) {
    let history = cluster.psql_in(
        db,
        "SELECT coalesce(string_agg(version, ',' ORDER BY version::int), '') \
         FROM shipgate_migrations WHERE state = 'applied'",
    );
    let tables: Vec<String> = cluster
        .psql_in(
            db,
            "SELECT coalesce(string_agg(substr(tablename, 2), ',' ORDER BY substr(tablename, 2)::int), '') \
             FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'",
        )
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    // A table counts only with its seed row: its migration's effect, whole.
    let seeded: Vec<String> = tables
        .into_iter()
        .filter(|t| cluster.psql_in(db, &format!("SELECT count(*) FROM t{t}")) == "1")
        .collect();
    (history, seeded.join(","))
}

fn prefix(n: usize) -> String {
    (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

fn tables_seen(cluster: &PgCluster, db: &str) -> usize {
    cluster
        .psql_in(
            db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'",
        )
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_crash_during_a_fast_release_keeps_history_and_schema_in_step_and_loses_nothing_reported() {
    let mut cluster = PgCluster::start();
    cluster.psql("ALTER SYSTEM SET wal_writer_delay = '10s'");
    cluster.psql("SELECT pg_reload_conf()");
    cluster.psql("CREATE DATABASE app");
    cluster.psql("CREATE DATABASE done");
    let app = cluster.url("app", DB_PASSWORD);
    let done = cluster.url("done", DB_PASSWORD);
    let p = project();
    let mut tally = Tally::new(
        &format!("server crash during a release of {N} migrations (fast commits)"),
        "postgres",
    );

    // 1. Crashed a third of the way in: exit 1, then history and schema agree.
    let started = Instant::now();
    let child = spawn(&mut command(&p, &app, "release"));
    let seen = wait_for("a third of the release", Duration::from_secs(120), || {
        let n = tables_seen(&cluster, "app");
        (n >= N / 3).then_some(n)
    });
    cluster.down("immediate");
    let run = finish_within(child, started, Duration::from_secs(60));
    run.code(1).secret_free();
    cluster.up();
    let (history, schema) = history_and_schema(&cluster, "app");
    assert_eq!(
        history, schema,
        "every applied row has its table and seed row, and every table its row"
    );
    let applied = history.split(',').filter(|v| !v.is_empty()).count();
    assert_eq!(
        history,
        prefix(applied),
        "the rows are a prefix of the release"
    );
    assert!(
        applied < N,
        "the crash landed mid-release ({applied} of {N} applied)"
    );
    // The next release finishes it.
    Run::wait_within(command(&p, &app, "release"), Duration::from_secs(120))
        .code(0)
        .secret_free();
    assert_eq!(history_and_schema(&cluster, "app"), (prefix(N), prefix(N)));
    tally.trials += 1;
    tally.survived += 1;

    // 2. A run that reported success, then an immediate crash: nothing lost. `up` writes no run
    //    row after its migrations, so only the final synchronous commit stands between its last
    //    migrations and the crash.
    Run::wait_within(command(&p, &done, "up"), Duration::from_secs(120))
        .code(0)
        .secret_free();
    cluster.down("immediate");
    cluster.up();
    assert_eq!(
        history_and_schema(&cluster, "done"),
        (prefix(N), prefix(N)),
        "a release reported successful lost nothing to the crash"
    );
    tally.trials += 1;
    tally.survived += 1;
    tally.note = format!(
        "crash with {seen} tables visible: {applied} applied after recovery, history and schema in step; crash right after success: all {N} kept"
    );
    tally.finish();
}
