//! SIGTERM, as a platform sends it: a serving process turns unready, lets in-flight requests
//! finish and exits 0; a release inside a long migration cancels it, rolls back, frees the
//! lock, records the run as aborted and exits 143, all within a few seconds.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::{
    connect, eventually, finish_within, http_get, read_response, send_signal, spawn, terminate,
    wait_for, Db, Engine, Project, Receiver, Reply, Run, Service, WEBHOOK_SECRET,
};

const BOUND: Duration = Duration::from_secs(15);

/// A project whose release has been applied, and a ready service on it.
fn ready_service(db: &Db, p: &Project) -> Service {
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    Run::wait(p.platform_command(db, &["release"]))
        .code(0)
        .secret_free();
    let service = Service::start(p.platform_command(db, &["serve", "--shutdown-timeout", "5s"]));
    service.wait_ready(BOUND);
    service
}

/// Opens a request to `path` and sends all of it but the blank line that ends its headers:
/// the server has accepted the connection and is reading a request it cannot answer yet.
fn half_sent_request(port: u16, path: &str) -> std::net::TcpStream {
    let mut stream = connect(port).expect("connecting to the service");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    )
    .expect("sending the request line");
    stream.flush().expect("flushing");
    stream
}

#[test]
fn sigterm_while_serving_lets_the_in_flight_request_finish_then_exits_0() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    let mut service = ready_service(&db, &p);

    let mut in_flight = half_sent_request(service.port, "/health/ready");
    std::thread::sleep(Duration::from_millis(200));
    service.terminate();
    let signalled = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        service.running(),
        "exited with a request in flight: {}",
        service.stderr()
    );

    // The request completes after the signal, and answers as readiness now does.
    in_flight.write_all(b"\r\n").expect("finishing the request");
    let response = read_response(&mut in_flight).expect("the in-flight request is answered");
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.body.contains("shutting down"), "{response:?}");

    let run = service.wait(Duration::from_secs(5));
    run.code(0).secret_free();
    assert!(
        signalled.elapsed() < Duration::from_secs(6),
        "exit {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(
        !run.stderr.contains("still in flight were cut"),
        "the in-flight request was cut: {run:?}"
    );
}

#[test]
fn readiness_probes_get_503_during_the_drain() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    let service = ready_service(&db, &p);

    // A slow client keeps the drain going while the platform probes readiness anew, as its
    // health checker does: on a fresh connection, right after the signal.
    let mut in_flight = half_sent_request(service.port, "/health");
    std::thread::sleep(Duration::from_millis(200));
    service.terminate();
    std::thread::sleep(Duration::from_millis(300));
    let probe = http_get(service.port, "/health/ready", &[]);
    in_flight.write_all(b"\r\n").expect("finishing the request");
    let finished = read_response(&mut in_flight);
    let run = service.wait(Duration::from_secs(6));
    run.code(0).secret_free();
    match probe {
        Ok(r) => {
            assert_eq!(r.status, 503, "{r:?}");
            assert!(r.body.contains("shutting down"), "{r:?}");
        }
        Err(e) => panic!(
            "a readiness probe during the drain got no HTTP answer ({e}): the listener closed \
             at the signal instead of readiness turning 503 first\n{run:?}"
        ),
    }
    let finished = finished.expect("the in-flight request is answered");
    assert_eq!(finished.status, 200, "{finished:?}");
}

/// The PostgreSQL backends of `db` running `pg_sleep` right now.
fn sleeping_backends(db: &Db) -> i64 {
    db.admin_int(&format!(
        "SELECT CAST(count(*) AS TEXT) FROM pg_stat_activity \
         WHERE datname = '{}' AND state = 'active' AND query LIKE '%pg_sleep%' \
         AND pid <> pg_backend_pid()",
        db.pg_name()
    ))
}

/// Advisory locks held in `db`.
fn advisory_locks(db: &Db) -> i64 {
    db.admin_int(&format!(
        "SELECT CAST(count(*) AS TEXT) FROM pg_locks \
         WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = '{}')",
        db.pg_name()
    ))
}

#[test]
fn sigterm_during_a_long_migration_rolls_back_frees_the_lock_and_exits_143() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_long.up.sql",
        "CREATE TABLE made_before_the_sleep (id bigint);\nSELECT pg_sleep(30);\n",
    );
    let hooks = Receiver::start(Reply::Accept);

    let mut cmd = p.platform_command(&db, &["release"]);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    let started = Instant::now();
    let child = spawn(&mut cmd);
    let pid = child.id();
    wait_for("the long migration to run", BOUND, || {
        (sleeping_backends(&db) == 1 && advisory_locks(&db) == 1).then_some(())
    });

    terminate(pid);
    let signalled = Instant::now();
    let run = finish_within(child, started, Duration::from_secs(10));
    let took = signalled.elapsed();
    run.code(143).secret_free();
    assert!(
        took < Duration::from_secs(5),
        "exit 143 only {took:?} after SIGTERM: {run:?}"
    );

    // The statement was cancelled and its transaction rolled back; the lock went with it.
    eventually(
        "the sleeping statement to end",
        Duration::from_secs(3),
        || sleeping_backends(&db) == 0,
    );
    eventually(
        "the advisory lock to be released",
        Duration::from_secs(3),
        || advisory_locks(&db) == 0,
    );
    assert!(!db.table_exists("made_before_the_sleep"), "rolled back");
    assert!(db.table_exists("users"), "the finished migration stays");
    assert_eq!(db.versions(), [1]);
    let rows = db.query(
        "SELECT outcome, CAST(applied AS TEXT), error, CAST(finished_at IS NOT NULL AS TEXT) \
         FROM shipgate_runs ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(rows[0][0].as_deref(), Some("aborted"), "{rows:?}");
    assert_eq!(rows[0][1].as_deref(), Some("1"), "{rows:?}");
    assert!(
        rows[0][2].as_deref().is_some_and(|e| e.contains("SIGTERM")),
        "{rows:?}"
    );
    assert_eq!(rows[0][3].as_deref(), Some("true"), "{rows:?}");

    // The platform hears about it too, and the last log line says what happened.
    let failed = hooks.of_type("release.failed");
    assert_eq!(failed.len(), 1, "{:?}", hooks.deliveries());
    assert!(failed[0].signature_valid(WEBHOOK_SECRET));
    assert_eq!(failed[0].json()["data"]["exit_code"], 143);
    let last = run.log_lines().pop().unwrap_or_default();
    assert_eq!(last["level"], "error", "{run:?}");
    assert_eq!(last["exit_code"], 143, "{run:?}");

    // The next deploy finishes the job (no dirty state, no stale lock).
    p.write(
        "2_long.up.sql",
        "CREATE TABLE made_before_the_sleep (id bigint);\n",
    );
    Run::wait(p.platform_command(&db, &["release", "--lock-wait", "1s"]))
        .code(0)
        .secret_free();
    assert_eq!(db.versions(), [1, 2]);
}

/// Ctrl-C (SIGINT) during `up` inside a long migration: the same clean stop as SIGTERM, with
/// the shell's code for an interrupt, 130.
#[test]
fn sigint_during_up_rolls_back_frees_the_lock_and_exits_130() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write(
        "1_long.up.sql",
        "CREATE TABLE made_before_the_sleep (id bigint);\nSELECT pg_sleep(30);\n",
    );
    let started = Instant::now();
    let child = spawn(&mut p.command(Some(&db), &["up"]));
    let pid = child.id();
    wait_for("the long migration to run", BOUND, || {
        (sleeping_backends(&db) == 1 && advisory_locks(&db) == 1).then_some(())
    });

    send_signal(pid, "INT");
    let signalled = Instant::now();
    let run = finish_within(child, started, Duration::from_secs(10));
    run.code(130).stderr_has(&["SIGINT"]);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exit 130 only {:?} after SIGINT: {run:?}",
        signalled.elapsed()
    );
    eventually(
        "the advisory lock to be released",
        Duration::from_secs(3),
        || advisory_locks(&db) == 0 && sleeping_backends(&db) == 0,
    );
    assert!(!db.table_exists("made_before_the_sleep"), "rolled back");
    assert!(db.versions().is_empty());
}
