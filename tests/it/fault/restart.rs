//! Database restarts, on a private PostgreSQL and a private MariaDB server the tests start and
//! stop: down when the release starts and back within the connect wait → the release completes;
//! down for longer → exit 3 after the wait; restarted in the middle of a migration → exit 1 and
//! then, on PostgreSQL, the migration rolled back and the next release completes; on MariaDB
//! (statement by statement) a precise dirty row, refused until `repair`, then completes.

use std::process::Command;
use std::time::{Duration, Instant};

use super::Tally;
use crate::support::mariadbserver::MariaServer;
use crate::support::pgcluster::PgCluster;
use crate::support::{finish_within, spawn, wait_for, Project, Run, DB_PASSWORD};

fn project() -> Project {
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n")
        .write(
            "2_slow.up.sql",
            "CREATE TABLE slow (id integer PRIMARY KEY);\nSELECT pg_sleep(5);\n\
             INSERT INTO slow (id) VALUES (1);\n",
        )
        .write("3_c.up.sql", "CREATE TABLE c (id integer PRIMARY KEY);\n");
    p
}

fn release(p: &Project, url: &str, connect_timeout: &str) -> Command {
    let mut cmd = p.command(None, &["release"]);
    cmd.env("DATABASE_URL", url)
        .env("SHIPGATE_LOG_FORMAT", "json")
        .env("SHIPGATE_CONNECT_TIMEOUT", connect_timeout);
    cmd
}

/// Starts a release while the database is down, brings it back 3 s later with `up`, and
/// requires the release to have waited and then succeeded.
fn release_while_down(p: &Project, url: &str, up: impl FnOnce()) {
    let started = Instant::now();
    let child = spawn(&mut release(p, url, "60s"));
    std::thread::sleep(Duration::from_secs(3));
    up();
    let run = finish_within(child, started, Duration::from_secs(60));
    run.code(0)
        .secret_free()
        .stderr_has(&["database not reachable yet", "release succeeded"]);
}

fn versions(cluster: &PgCluster, db: &str) -> String {
    cluster.psql_in(
        db,
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM shipgate_migrations",
    )
}

#[test]
fn database_down_then_back_restarted_mid_migration_or_down_too_long() {
    let mut cluster = PgCluster::start();
    cluster.psql("CREATE DATABASE app");
    let url = cluster.url("app", DB_PASSWORD);
    let p = project();
    let mut tally = Tally::new("database restarts (private server)", "postgres");

    // 1. Down when the release starts, back within the connect wait: the release completes.
    cluster.down("fast");
    release_while_down(&p, &url, || cluster.up());
    assert_eq!(versions(&cluster, "app"), "1,2,3");
    tally.trials += 1;
    tally.survived += 1;

    // 2. Restarted in the middle of migration 2 (fast shutdown ends every session): exit 1,
    //    the migration rolled back, and the next release, once the server is back, completes.
    cluster.psql_in(
        "app",
        "DROP TABLE a, slow, c; DELETE FROM shipgate_migrations",
    );
    let started = Instant::now();
    let child = spawn(&mut release(&p, &url, "60s"));
    wait_for("migration 2 to run", Duration::from_secs(30), || {
        (cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' \
             AND query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()",
        ) == "1")
            .then_some(())
    });
    cluster.down("fast");
    let run = finish_within(child, started, Duration::from_secs(30));
    run.code(1)
        .secret_free()
        .stderr_has(&["migration 2", "2_slow.up.sql"]);
    cluster.up();
    assert_eq!(versions(&cluster, "app"), "1", "migration 2 rolled back");
    assert_eq!(
        cluster.psql_in(
            "app",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'slow'"
        ),
        "0"
    );
    Run::wait_within(release(&p, &url, "30s"), Duration::from_secs(60))
        .code(0)
        .secret_free();
    assert_eq!(versions(&cluster, "app"), "1,2,3");
    assert_eq!(cluster.psql_in("app", "SELECT count(*) FROM slow"), "1");
    tally.trials += 1;
    tally.survived += 1;

    // 3. Down for longer than the connect wait: exit 3 at the bound, nothing else.
    cluster.down("immediate");
    let run = Run::wait_within(release(&p, &url, "3s"), Duration::from_secs(30));
    run.code(3)
        .secret_free()
        .stderr_has(&["unreachable after", "127.0.0.1"]);
    assert!(
        run.elapsed >= Duration::from_secs(3) && run.elapsed < Duration::from_secs(10),
        "{run:?}"
    );
    tally.trials += 1;
    tally.survived += 1;
    tally.note =
        "down at start and back after 3 s; restart mid-migration; down past a 3 s wait".into();
    tally.finish();
}

fn mariadb_project() -> Project {
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n")
        .write(
            "2_slow.up.sql",
            "CREATE TABLE slow (id integer PRIMARY KEY);\nSELECT SLEEP(5);\n\
             INSERT INTO slow (id) VALUES (1);\n",
        )
        .write("3_c.up.sql", "CREATE TABLE c (id integer PRIMARY KEY);\n");
    p
}

#[test]
fn mariadb_down_then_back_restarted_mid_migration_or_down_too_long() {
    let mut server = MariaServer::start();
    server.sql("", "CREATE DATABASE app");
    let url = server.url("app");
    let versions = |server: &MariaServer| {
        server.sql(
            "app",
            "SELECT COALESCE(GROUP_CONCAT(version ORDER BY version), '') FROM shipgate_migrations",
        )
    };
    let p = mariadb_project();
    let mut tally = Tally::new("database restarts (private server)", "mariadb");

    // 1. Down when the release starts, back within the connect wait: the release completes.
    server.down(false);
    release_while_down(&p, &url, || server.up());
    assert_eq!(versions(&server), "1,2,3");
    tally.trials += 1;
    tally.survived += 1;

    // 2. Restarted during migration 2's second statement: exit 1; statement 1 committed (DDL
    //    commits on MariaDB) and the row says so; refused until repaired, then it completes.
    server.sql(
        "app",
        "DROP TABLE a, slow, c; DELETE FROM shipgate_migrations",
    );
    let started = Instant::now();
    let child = spawn(&mut release(&p, &url, "60s"));
    wait_for("migration 2 to sleep", Duration::from_secs(30), || {
        (server.sql(
            "",
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(5)%'",
        ) == "1")
            .then_some(())
    });
    server.down(false);
    let run = finish_within(child, started, Duration::from_secs(30));
    run.code(1)
        .secret_free()
        .stderr_has(&["migration 2", "2_slow.up.sql"]);
    server.up();
    assert_eq!(versions(&server), "1,2", "{}", server.log());
    assert_eq!(
        server.sql(
            "app",
            "SELECT CONCAT(state, ' ', statements_done) FROM shipgate_migrations WHERE version = '2'"
        ),
        "running 1",
        "a restart mid-statement leaves the row as the crash left it"
    );
    Run::wait_within(release(&p, &url, "30s"), Duration::from_secs(60))
        .code(5)
        .secret_free()
        .stderr_has(&["migration 2", "dirty", "shipgate repair"]);
    server.sql("app", "DROP TABLE slow");
    let mut repair = p.command(
        None,
        &[
            "repair",
            "--mark-rolled-back",
            "2",
            "--reason",
            "undone by hand",
        ],
    );
    repair.env("DATABASE_URL", &url);
    Run::wait_within(repair, Duration::from_secs(60)).code(0);
    Run::wait_within(release(&p, &url, "30s"), Duration::from_secs(60))
        .code(0)
        .secret_free();
    assert_eq!(versions(&server), "1,2,3");
    assert_eq!(server.sql("app", "SELECT COUNT(*) FROM slow"), "1");
    tally.trials += 1;
    tally.survived += 1;

    // 3. Crashed and down for longer than the connect wait: exit 3 at the bound.
    server.down(true);
    let run = Run::wait_within(release(&p, &url, "3s"), Duration::from_secs(30));
    run.code(3)
        .secret_free()
        .stderr_has(&["unreachable after", "127.0.0.1"]);
    assert!(
        run.elapsed >= Duration::from_secs(3) && run.elapsed < Duration::from_secs(10),
        "{run:?}"
    );
    tally.trials += 1;
    tally.survived += 1;
    tally.note =
        "down at start and back after 3 s; restart mid-statement (dirty, repair); crash past a 3 s wait"
            .into();
    tally.finish();
}
