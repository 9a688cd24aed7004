//! PostgreSQL guards before a migration statement (issue 15): a `CREATE INDEX CONCURRENTLY`
//! whose INVALID index an earlier attempt left is rebuilt by the next release, and a statement
//! that needs a strong lock waits for a session in its way (idle in transaction, or holding it
//! past `blocker_grace`) instead of queueing traffic behind it, naming that session.

use std::time::{Duration, Instant};

use crate::support::{
    email_pending, eventually, finish_within, spawn, terminate, wait_for, Db, Engine, Project, Run,
    Service,
};

/// Whether `schema.name`'s index is valid (`None`: no such index).
fn index_valid(db: &Db, schema: &str, name: &str) -> Option<bool> {
    db.query(&format!(
        "SELECT i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{schema}' AND c.relname = '{name}'"
    ))
    .first()
    .and_then(|r| r[0].as_deref().map(|v| v == "true"))
}

/// The oid of `schema.name`, to tell an index left alone from one built again.
fn oid(db: &Db, schema: &str, name: &str) -> String {
    db.query(&format!("SELECT to_regclass('{schema}.{name}')::oid::text"))[0][0]
        .clone()
        .expect("the relation exists")
}

/// A database and a project whose `1_users` creates `users (id, email)` with `values`.
fn users_with_emails(values: &str) -> (Db, Project) {
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        &format!(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
             INSERT INTO users VALUES {values};\n"
        ),
    );
    (Db::new(Engine::Postgres), p)
}

/// Writes `file`: a no-transaction file of one `CREATE <build> (email)` statement.
fn concurrent_build(p: &Project, file: &str, build: &str) {
    p.write(
        file,
        &format!("-- shipgate:no-transaction\nCREATE {build} (email);\n"),
    );
}

/// `public.users_email_idx` is valid, and `shipgate_audit` has a `drop-invalid-index` row for
/// migration `version`.
#[track_caller]
fn assert_rebuilt(db: &Db, version: i64) {
    assert_eq!(index_valid(db, "public", "users_email_idx"), Some(true));
    let audit = db.audit();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "drop-invalid-index" && a.version == Some(version)),
        "{audit:?}"
    );
}

/// A `CREATE UNIQUE INDEX CONCURRENTLY` over duplicate emails fails and leaves its index
/// INVALID, as a failed build does in production.
fn leave_invalid(db: &Db, table: &str, index: &str) {
    let mut s = db.session();
    let failed = s.try_query(&format!(
        "CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} (email)"
    ));
    assert!(failed.is_err(), "the build over duplicates must fail");
}

/// The classic: the release's concurrent build fails on duplicates and leaves an INVALID index
/// and a failed row; `status` reports the index; once the data is fixed and the row repaired,
/// the next release drops the INVALID index, builds it, and audits the drop.
#[test]
fn a_release_rebuilds_the_invalid_index_a_failed_concurrent_build_left() {
    let (db, p) = users_with_emails("(1, 'a@x'), (2, 'a@x')");
    concurrent_build(
        &p,
        "2_email_idx.up.sql",
        "UNIQUE INDEX CONCURRENTLY users_email_idx ON users",
    );
    p.run(&db, &["release"])
        .code(1)
        .stderr_has(&["2_email_idx.up.sql", "could not create unique index"]);
    assert_eq!(index_valid(&db, "public", "users_email_idx"), Some(false));

    // `status` names the INVALID index, in text and JSON.
    p.run(&db, &["status"])
        .stdout_has(&["warning: INVALID index public.users_email_idx"]);
    let status = p.run(&db, &["status", "--json"]).json();
    assert_eq!(
        status["invalid_indexes"],
        serde_json::json!(["public.users_email_idx"])
    );

    db.exec("DELETE FROM users WHERE id = 2");
    let repair = "repair --mark-rolled-back 2 --reason duplicates-removed";
    p.run(&db, &repair.split(' ').collect::<Vec<_>>()).code(0);
    let run = p.run(&db, &["release"]);
    run.code(0).stderr_has(&[
        "INVALID index public.users_email_idx",
        "dropping it concurrently",
    ]);
    assert_eq!(index_valid(&db, "public", "users_email_idx"), Some(true));
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.history().iter().all(|r| r.state == "applied"));
    let audit = db.audit();
    let drop = audit
        .iter()
        .find(|a| a.action == "drop-invalid-index")
        .unwrap_or_else(|| panic!("no audit row: {audit:?}"));
    assert_eq!(drop.version, Some(2));
    assert_eq!(
        drop.before.as_deref(),
        Some("public.users_email_idx INVALID")
    );
    let status = p.run(&db, &["status", "--json"]).json();
    assert_eq!(status["invalid_indexes"], serde_json::json!([]));
}

/// A build killed while it waits (`pg_terminate_backend` of shipgate's session, as an operator
/// or a failover does) leaves an INVALID index; `/migrations/status` and readiness report it as a
/// warning; after `repair`, the next release rebuilds it.
#[test]
fn a_killed_concurrent_build_is_reported_and_rebuilt_by_the_next_release() {
    let (db, p) = users_with_emails("(1, 'a@x'), (2, 'b@x')");
    p.run(&db, &["release"]).code(0);
    concurrent_build(
        &p,
        "2_email_idx.up.sql",
        "UNIQUE INDEX CONCURRENTLY users_email_idx ON users",
    );
    // A writer's open transaction: the build registers its index, then waits for it.
    let mut writer = db.session();
    writer.exec("BEGIN; INSERT INTO users VALUES (3, 'c@x')");
    let started = Instant::now();
    let child = spawn(&mut p.command(Some(&db), &["release"]));
    let building = "SELECT CAST(pid AS TEXT) FROM pg_stat_activity \
                    WHERE query LIKE '%CREATE UNIQUE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock' \
                    AND application_name LIKE 'shipgate%'";
    let pid = wait_for(
        "the build to wait for the writer",
        Duration::from_secs(15),
        || db.query(building).first().and_then(|r| r[0].clone()),
    );
    db.exec(&format!("SELECT pg_terminate_backend({pid})"));
    let run = finish_within(child, started, Duration::from_secs(30));
    run.code(1);
    writer.exec("ROLLBACK");
    assert_eq!(index_valid(&db, "public", "users_email_idx"), Some(false));

    let service = Service::start(p.platform_command(&db, &["serve"]));
    let status = service.poll(
        "/migrations/status to list the INVALID index",
        "/migrations/status",
        Duration::from_secs(15),
        |r| {
            r.status == 200
                && r.json()["invalid_indexes"] == serde_json::json!(["public.users_email_idx"])
        },
    );
    assert!(status.json()["dirty"]
        .as_array()
        .is_some_and(|d| d.len() == 1));
    let ready = service.get("/health/ready").json();
    assert!(
        ready["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("INVALID index public.users_email_idx")),
        "{ready}"
    );
    service.terminate();
    service.wait(Duration::from_secs(15));

    let repair = "repair --mark-rolled-back 2 --reason build-killed";
    p.run(&db, &repair.split(' ').collect::<Vec<_>>()).code(0);
    p.run(&db, &["release"]).code(0);
    assert_rebuilt(&db, 2);
    assert_eq!(db.versions(), [1, 2]);
}

/// A concurrent build that hits `lock_timeout` (waiting for a writer) leaves its own INVALID
/// index; the statement's retry drops it and builds again instead of failing on "already
/// exists".
#[test]
fn a_concurrent_build_retried_after_a_lock_timeout_drops_its_own_invalid_index() {
    let db = Db::new(Engine::Postgres);
    db.exec(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text); \
         INSERT INTO users VALUES (1, 'a@x')",
    );
    let p = Project::new();
    concurrent_build(
        &p,
        "1_email_idx.up.sql",
        "UNIQUE INDEX CONCURRENTLY users_email_idx ON users",
    );
    let mut writer = db.session();
    writer.exec("BEGIN; INSERT INTO users VALUES (2, 'b@x')");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2_500));
        writer.exec("COMMIT");
    });
    let cmd = p.command(
        Some(&db),
        &["release", "--lock-timeout", "1s", "--lock-retries", "5"],
    );
    let run = Run::wait_within(cmd, Duration::from_secs(30));
    release.join().expect("the writer");
    run.code(0).stderr_has(&[
        "statement hit the lock timeout; retrying it",
        "INVALID index public.users_email_idx",
    ]);
    assert_rebuilt(&db, 1);
}

/// `IF NOT EXISTS` would skip the build and keep the INVALID index for good: shipgate drops it
/// first, so the statement builds a valid one.
#[test]
fn if_not_exists_does_not_keep_an_invalid_index() {
    let db = Db::new(Engine::Postgres);
    db.exec(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text); \
         INSERT INTO users VALUES (1, 'a@x'), (2, 'a@x')",
    );
    leave_invalid(&db, "users", "users_email_idx");
    db.exec("DELETE FROM users WHERE id = 2");
    let p = Project::new();
    concurrent_build(
        &p,
        "1_email_idx.up.sql",
        "UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users",
    );
    p.run(&db, &["release"]).code(0);
    assert_rebuilt(&db, 1);
    // A duplicate now fails: the index is real.
    let mut s = db.session();
    assert!(s.try_query("INSERT INTO users VALUES (3, 'a@x')").is_err());
}

/// The INVALID index is looked for in the schema the statement's table resolves to: an
/// INVALID `app.users_email_idx` is rebuilt, a valid `public.users_email_idx` of the same name
/// is left alone.
#[test]
fn the_invalid_index_is_found_in_the_statements_schema_and_a_valid_one_is_untouched() {
    let db = Db::new(Engine::Postgres);
    db.exec(
        "CREATE SCHEMA app; \
         CREATE TABLE app.users (id bigint PRIMARY KEY, email text); \
         INSERT INTO app.users VALUES (1, 'a@x'), (2, 'a@x'); \
         CREATE TABLE users (id bigint PRIMARY KEY, email text); \
         CREATE UNIQUE INDEX users_email_idx ON users (email)",
    );
    leave_invalid(&db, "app.users", "users_email_idx");
    db.exec("DELETE FROM app.users WHERE id = 2");
    let public_before = oid(&db, "public", "users_email_idx");
    let p = Project::new();
    concurrent_build(
        &p,
        "1_app_email_idx.up.sql",
        "UNIQUE INDEX CONCURRENTLY users_email_idx ON app.users",
    );
    p.run(&db, &["release"])
        .code(0)
        .stderr_has(&["INVALID index app.users_email_idx"]);
    assert_eq!(index_valid(&db, "app", "users_email_idx"), Some(true));
    assert_eq!(oid(&db, "public", "users_email_idx"), public_before);
    assert_eq!(index_valid(&db, "public", "users_email_idx"), Some(true));

    // A valid index of the statement's name is not touched: the statement fails as it would.
    concurrent_build(
        &p,
        "2_again.up.sql",
        "INDEX CONCURRENTLY users_email_idx ON users",
    );
    p.run(&db, &["release"])
        .code(1)
        .stderr_has(&["already exists"]);
    assert_eq!(oid(&db, "public", "users_email_idx"), public_before);
}

/// Whether the run's log has a line naming blocker `pid` with the heartbeat's field names.
fn names_blocker(run: &Run, pid: i64) -> bool {
    run.log_lines().iter().any(|l| {
        l["blocking_pid"] == pid
            && l["blocking_application"] == "held-by-test"
            && l["blocking_state"] == "idle in transaction"
            && l["table"] == "users"
            && l["lock_wanted"] == "ACCESS EXCLUSIVE"
            && l["lock_held"] == "ACCESS SHARE"
    })
}

/// An idle-in-transaction reader of `users` is waited out before the `ALTER TABLE` asks for its
/// lock (so nothing queues behind the ALTER), named in the log; when it commits, the migration
/// goes ahead.
#[test]
fn a_blocker_idle_in_transaction_is_named_and_waited_out() {
    let (db, p) = email_pending(Engine::Postgres);
    let (mut session, pid) = db.idle_reader_of_users();
    let mut cmd = p.command(Some(&db), &["release"]);
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    let started = Instant::now();
    let child = spawn(&mut cmd);
    // While shipgate waits, nobody queues behind it: no session waits for a lock on users.
    std::thread::sleep(Duration::from_millis(2_000));
    let waiting =
        db.int("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'users'::regclass");
    assert_eq!(
        waiting, 0,
        "shipgate queued for the lock behind the blocker"
    );
    session.exec("COMMIT");
    let run = finish_within(child, started, Duration::from_secs(30));
    run.code(0);
    assert!(names_blocker(&run, pid), "{run:?}");
    assert!(run.stderr.contains("is gone; going ahead"), "{run:?}");
    assert!(run.elapsed >= Duration::from_secs(2), "{run:?}");
    assert_eq!(db.versions(), [1, 2]);
}

/// A blocker that stays past the lock wait fails the release with exit 4, naming it; nothing
/// of the migration ran and history says so.
#[test]
fn a_blocker_that_stays_fails_the_release_within_the_lock_wait_naming_it() {
    let (db, p) = email_pending(Engine::Postgres);
    let (_session, pid) = db.idle_reader_of_users();
    let mut cmd = p.command(Some(&db), &["release", "--lock-wait", "3s"]);
    cmd.env("SHIPGATE_LOG_FORMAT", "text");
    let run = Run::wait_within(cmd, Duration::from_secs(20));
    run.code(4).stderr_has(&[
        "migration 2",
        "2_email.up.sql",
        &format!("a lock on users held by pid {pid} (held-by-test, from 127.0.0.1, idle in transaction for "),
        "ACCESS SHARE, in the way of ACCESS EXCLUSIVE",
        "nothing of it ran",
    ]);
    assert!(run.elapsed >= Duration::from_secs(3), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(12), "{run:?}");
    assert_eq!(db.versions(), [1]);
    assert!(db.history().iter().all(|r| r.state == "applied"));

    // Turned off, the ALTER queues in the server as before and lock_timeout bounds it.
    p.run(
        &db,
        &[
            "up",
            "--blocker-check",
            "false",
            "--lock-timeout",
            "500ms",
            "--lock-retries",
            "0",
        ],
    )
    .code(1)
    .stderr_has(&["lock timeout"]);
}

/// `down` looks before locking too: a revert that needs the lock an idle reader is in the way
/// of waits for it and, when it stays, fails naming it with the migration still applied.
#[test]
fn a_revert_waits_for_the_blocker_too() {
    let (db, p) = email_pending(Engine::Postgres);
    p.write("2_email.down.sql", "ALTER TABLE users DROP COLUMN email;\n");
    p.run(&db, &["up"]).code(0);
    let (_session, pid) = db.idle_reader_of_users();
    let cmd = p.command(
        Some(&db),
        &["down", "--steps", "1", "--yes", "--lock-wait", "2s"],
    );
    Run::wait_within(cmd, Duration::from_secs(20))
        .code(4)
        .stderr_has(&[
            "2_email.down.sql",
            &format!("held by pid {pid} (held-by-test"),
            "nothing of it ran",
        ]);
    assert_eq!(db.versions(), [1, 2]);
}

/// A young, busy holder (within `blocker_grace`) is left to lock_timeout: no wait, no line.
#[test]
fn a_holder_within_the_grace_is_left_to_the_lock_timeout() {
    let (db, p) = email_pending(Engine::Postgres);
    // Busy (active, not idle) and young: a statement running for 1.5 s in a new transaction.
    let url = db.url().to_owned();
    let busy = std::thread::spawn(move || {
        let _ = std::process::Command::new("psql")
            .args([&url, "-c", "SELECT count(*), pg_sleep(1.5) FROM users"])
            .output();
    });
    wait_for("the busy reader", Duration::from_secs(10), || {
        (db.int("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1.5)%' AND state = 'active' AND pid <> pg_backend_pid()") == 1).then_some(())
    });
    let mut cmd = p.command(Some(&db), &["up", "--lock-timeout", "10s"]);
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    let run = Run::wait_within(cmd, Duration::from_secs(30));
    busy.join().expect("the busy reader");
    run.code(0);
    assert!(
        !run.log_lines()
            .iter()
            .any(|l| l["blocking_pid"].is_number()),
        "{run:?}"
    );
    assert_eq!(db.versions(), [1, 2]);
}

/// SIGTERM while waiting for a blocker: exit 143 at once, the migration lock freed, nothing of
/// the migration run.
#[test]
fn sigterm_while_waiting_for_a_blocker_exits_promptly_and_frees_the_lock() {
    let (db, p) = email_pending(Engine::Postgres);
    let (_session, _) = db.idle_reader_of_users();
    let started = Instant::now();
    let child = spawn(&mut p.command(Some(&db), &["release"]));
    let advisory = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = '{}')",
        db.pg_name()
    );
    wait_for("shipgate to take its lock", Duration::from_secs(15), || {
        (db.admin_int(&advisory) == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    terminate(child.id());
    let signalled = Instant::now();
    let run = finish_within(child, started, Duration::from_secs(10));
    run.code(143);
    assert!(signalled.elapsed() < Duration::from_secs(5), "{run:?}");
    eventually("the migration lock to go", Duration::from_secs(10), || {
        db.admin_int(&advisory) == 0
    });
    assert_eq!(db.versions(), [1]);
}
