//! `runner = "command"`: a command line run by the real binary under the migration lock, as a
//! supervised child, against real databases — its environment, its exit code and the run row,
//! the timeout, a forwarded SIGTERM, the fence that ends sessions it left open before the
//! lock is released, INVALID indexes a failure leaves, output streamed as it comes, two
//! releases at once, webhooks, `exec` and `serve --migrate`. (`runner = "alembic"`, which
//! reuses this supervision, is tested in `alembic_runner.rs`.)

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{
    finish_within, spawn, terminate, wait_for, Db, Engine, Project, Receiver, Reply, Run, Service,
};

const BOUND: Duration = Duration::from_secs(30);

/// `shipgate <args…>` with `runner = "command"` running `command`, and a `PATH` for it.
fn with_command(p: &Project, db: &Db, command: &str, args: &[&str]) -> Command {
    runner_command(p.command(Some(db), args), command)
}

/// `cmd` with `runner = "command"` running `command`, and a `PATH` for it.
fn runner_command(mut cmd: Command, command: &str) -> Command {
    cmd.env("SHIPGATE_RUNNER", "command")
        .env("SHIPGATE_RUNNER_COMMAND", command)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// Two successful runs, and nothing else, in `shipgate_runs`.
#[track_caller]
fn two_succeeded(db: &Db) {
    assert_eq!(
        runs(db),
        [
            (Some("succeeded".into()), None),
            (Some("succeeded".into()), None)
        ]
    );
}

/// `release` running `command`.
fn release(p: &Project, db: &Db, command: &str, extra: &[&str]) -> Command {
    let mut args = vec!["release"];
    args.extend_from_slice(extra);
    with_command(p, db, command, &args)
}

/// A command that creates table `made` in `db` with the engine's own client, through the
/// environment shipgate gives it where the client reads one.
fn create_table_command(db: &Db) -> String {
    match db.engine() {
        Engine::Postgres => {
            r#"sh -c 'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "CREATE TABLE IF NOT EXISTS made (id int)"'"#
                .to_owned()
        }
        // The MariaDB client takes no URL and no application name from the environment.
        Engine::Mariadb => format!(
            r#"mariadb -h 127.0.0.1 -P 3306 -u root {} -e "CREATE TABLE IF NOT EXISTS made (id int)""#,
            db.name()
        ),
        Engine::Sqlite => {
            r#"sh -c 'sqlite3 "${DATABASE_URL#sqlite://}" "CREATE TABLE IF NOT EXISTS made (id int)"'"#
                .to_owned()
        }
    }
}

/// `(outcome, error)` of every run row, oldest first.
fn runs(db: &Db) -> Vec<(Option<String>, Option<String>)> {
    db.query("SELECT outcome, error FROM shipgate_runs ORDER BY id")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// Advisory locks held in `db` (PostgreSQL).
fn advisory_locks(db: &Db) -> i64 {
    db.admin_int(&format!(
        "SELECT CAST(count(*) AS TEXT) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = '{}')",
        db.pg_name()
    ))
}

/// A command that succeeds runs under the lock with the environment it was promised, its run
/// row says `succeeded`, and the next release runs it again (the command decides what is
/// pending; shipgate runs it on every release).
fn a_command_that_succeeds_is_recorded_and_runs_on_every_release(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let command = create_table_command(&db);
    let run = Run::wait(release(&p, &db, &command, &[]));
    run.code(0)
        .stderr_has(&["under the migration lock (pid ", "release succeeded"]);
    assert!(db.table_exists("made"), "{run:?}");
    assert_eq!(runs(&db), [(Some("succeeded".into()), None)], "{run:?}");

    let again = Run::wait(release(&p, &db, &command, &["--lock-wait", "2s"]));
    again.code(0);
    two_succeeded(&db);
    assert_eq!(
        db.int("SELECT count(*) FROM shipgate_migrations"),
        0,
        "a command run records no SQL migration"
    );
}

on_every_engine!(a_command_that_succeeds_is_recorded_and_runs_on_every_release);

/// The child's environment: `PGAPPNAME`, `PGOPTIONS` (lock_timeout and
/// client_connection_check_interval, as the server applies them), `SHIPGATE_LOCK_HELD`,
/// `SHIPGATE_RUN_ID` and the database URL, seen by a real libpq session.
#[test]
fn the_child_gets_the_promised_environment_and_libpq_applies_it() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    let command = r#"sh -c 'echo "held=$SHIPGATE_LOCK_HELD run=$SHIPGATE_RUN_ID"; psql "$DATABASE_URL" -Atc "SELECT current_setting(\$\$application_name\$\$) || \$\$ \$\$ || current_setting(\$\$lock_timeout\$\$) || \$\$ \$\$ || current_setting(\$\$client_connection_check_interval\$\$)"'"#;
    let run = Run::wait(release(&p, &db, command, &["--lock-timeout", "3s"]));
    run.code(0)
        .stderr_has(&["held=1 run=1", "shipgate-1 3s 1s"]);
}

/// A failing command: exit 1, run row `failed` with the command's exit code, its output in the
/// log, the lock free for the next release.
fn a_failing_command_exits_1_and_records_the_run_as_failed(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let run = Run::wait(release(
        &p,
        &db,
        "sh -c 'echo about to fail >&2; exit 3'",
        &[],
    ));
    run.code(1)
        .stderr_has(&["about to fail", "exited with code 3", "release failed"]);
    let rows = runs(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0.as_deref(), Some("failed"), "{rows:?}");
    assert!(
        rows[0]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("exited with code 3")),
        "{rows:?}"
    );
    // The lock is free: a release that may wait only a second gets it.
    Run::wait(release(&p, &db, "true", &["--lock-wait", "1s"])).code(0);
}

on_every_engine!(a_failing_command_exits_1_and_records_the_run_as_failed);

/// Whether process `pid` is gone (or a zombie waiting for its reaper: it runs no more).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// A command past `runner_timeout` that ignores SIGTERM: its whole process group is killed
/// after the grace period, the release fails with exit 1 within the bounds, and the lock is
/// free.
#[test]
fn a_command_past_the_timeout_has_its_process_group_killed() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    // SIGTERM ignored by the shell and the background sleep it starts (ignored signals are
    // inherited): only SIGKILL to the group ends both.
    let command = r#"sh -c 'trap "" TERM; sleep 300 & echo $! > sleeper.pid; wait'"#;
    let started = Instant::now();
    let run = Run::wait_within(
        release(
            &p,
            &db,
            command,
            &["--runner-timeout", "2s", "--runner-grace", "1s"],
        ),
        BOUND,
    );
    run.code(1).stderr_has(&[
        "did not finish within runner_timeout",
        "SIGKILL",
        "release failed",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}: {run:?}",
        started.elapsed()
    );
    let sleeper: u32 = std::fs::read_to_string(p.root().join("sleeper.pid"))
        .expect("the command wrote its sleeper's pid")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        process_gone(sleeper),
        "the background sleep survived: {run:?}"
    );
    let rows = runs(&db);
    assert_eq!(rows[0].0.as_deref(), Some("failed"), "{rows:?}");
    assert!(
        rows[0]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("did not finish within runner_timeout (2s)")),
        "{rows:?}"
    );
    assert_eq!(advisory_locks(&db), 0);
}

/// SIGTERM to shipgate while the command runs: forwarded to the command's group (the command's
/// own trap prints), exit 143, run row `aborted`, lock free.
#[test]
fn sigterm_mid_command_is_forwarded_and_the_run_is_aborted() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    let command = r#"sh -c 'trap "echo child got TERM; exit 7" TERM; while :; do sleep 0.1; done'"#;
    let started = Instant::now();
    let child = spawn(&mut release(&p, &db, command, &[]));
    wait_for("the command to run under the lock", BOUND, || {
        (db.table_exists("shipgate_runs")
            && db.int("SELECT count(*) FROM shipgate_runs WHERE finished_at IS NULL") == 1
            && advisory_locks(&db) == 1)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    terminate(child.id());
    let signalled = Instant::now();
    let run = finish_within(child, started, Duration::from_secs(20));
    run.code(143)
        .stderr_has(&["child got TERM", "forwarding the signal", "SIGTERM"]);
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "took {:?} after SIGTERM: {run:?}",
        signalled.elapsed()
    );
    let rows = runs(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0.as_deref(), Some("aborted"), "{rows:?}");
    assert!(
        rows[0]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("SIGTERM") && e.contains("exited with code 7")),
        "{rows:?}"
    );
    assert_eq!(advisory_locks(&db), 0);
}

/// The fence. The command is killed at its timeout, but a `psql` it started outside its
/// process group (`setsid`) keeps a session open inside a transaction that inserted a row.
/// shipgate must terminate that session before it releases the lock: watched from outside,
/// the lock is never free while the session lives; the row never commits; shipgate's own log
/// says it terminated the session before the lock was released.
#[test]
fn the_fence_terminates_a_killed_commands_open_transaction_before_the_unlock() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    db.exec("CREATE TABLE fenced (id int)");
    let command = r#"sh -c 'setsid psql "$DATABASE_URL" -qc "BEGIN; INSERT INTO fenced VALUES (1); SELECT pg_sleep(120); COMMIT;" >/dev/null 2>&1 & sleep 300'"#;
    let started = Instant::now();
    let mut cmd = release(
        &p,
        &db,
        command,
        &[
            "--runner-timeout",
            "3s",
            "--runner-grace",
            "1s",
            "--runner-fence-wait",
            "2s",
        ],
    );
    cmd.arg("-v");
    let mut child = spawn(&mut cmd);

    // Watch the lock and the command's sessions from outside, as often as the server answers.
    let mut watcher = db.session();
    let name = db.pg_name().to_owned();
    let probe = format!(
        "SELECT CAST((SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
           AND database = (SELECT oid FROM pg_database WHERE datname = '{name}')) AS TEXT), \
         CAST((SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' \
           AND application_name LIKE 'shipgate-%') AS TEXT)"
    );
    let mut samples = Vec::new();
    while child.try_wait().expect("polling shipgate").is_none() {
        assert!(started.elapsed() < BOUND, "shipgate still running");
        let row = watcher.query(&probe);
        let cell = |i: usize| -> i64 {
            row[0][i]
                .as_deref()
                .and_then(|v| v.parse().ok())
                .expect("a count")
        };
        samples.push((cell(0), cell(1)));
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = Run::finish(child, started);
    run.code(1).stderr_has(&[
        "fence: terminating a database session the runner command left open",
        "did not finish within runner_timeout",
    ]);
    assert!(
        samples.iter().any(|&(_, sessions)| sessions > 0),
        "the leftover session was never seen: {samples:?}"
    );
    for &(locks, sessions) in &samples {
        assert!(
            sessions == 0 || locks > 0,
            "the lock was free while the command's session lived: {samples:?}\n{run:?}"
        );
    }
    let terminated = run.stderr.find("fence: terminating").expect("logged above");
    let released = run
        .stderr
        .find("migration lock released")
        .unwrap_or_else(|| panic!("the unlock is logged at debug level: {run:?}"));
    assert!(terminated < released, "unlocked before the fence: {run:?}");
    assert_eq!(
        db.int("SELECT count(*) FROM fenced"),
        0,
        "the killed command's transaction committed"
    );
    assert_eq!(
        db.admin_int(&format!(
            "SELECT CAST(count(*) AS TEXT) FROM pg_stat_activity \
             WHERE datname = '{name}' AND application_name LIKE 'shipgate-%'"
        )),
        0
    );
    let rows = runs(&db);
    assert_eq!(rows[0].0.as_deref(), Some("failed"), "{rows:?}");
}

/// A failed `CREATE INDEX CONCURRENTLY` leaves an INVALID index: the log and the run row name
/// it.
#[test]
fn a_failure_reports_the_invalid_indexes_it_left() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    db.exec("CREATE TABLE d (v int); INSERT INTO d VALUES (1), (1)");
    let command = r#"sh -c 'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "CREATE UNIQUE INDEX CONCURRENTLY d_v_unique ON d (v)"'"#;
    let run = Run::wait(release(&p, &db, command, &[]));
    run.code(1).stderr_has(&[
        "could not create unique index",
        "INVALID index",
        "public.d_v_unique",
    ]);
    let rows = runs(&db);
    assert!(
        rows[0]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("INVALID index(es) behind: public.d_v_unique")),
        "{rows:?}"
    );
}

/// Output is streamed: a line the command prints before it sleeps is in shipgate's JSON log
/// while the command still runs, as one JSON object naming its stream.
#[test]
fn output_is_logged_as_it_comes_not_at_the_end() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::new();
    let mut cmd = release(
        &p,
        &db,
        "sh -c 'echo first-line; sleep 4; echo second-line'",
        &[],
    );
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    let started = Instant::now();
    let mut child = spawn(&mut cmd);
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first: serde_json::Value = loop {
        let line = rx
            .recv_timeout(BOUND)
            .expect("shipgate logs the command's first line");
        let json: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if json["message"] == "first-line" {
            break json;
        }
    };
    assert!(
        child.try_wait().expect("polling").is_none(),
        "the first line arrived only after shipgate exited"
    );
    let seen = started.elapsed();
    assert_eq!(first["stream"], "stdout", "{first}");
    assert_eq!(first["level"], "info", "{first}");
    let run = finish_within(child, started, BOUND);
    reader.join().expect("reader");
    run.code(0);
    assert!(
        run.elapsed >= seen + Duration::from_secs(3),
        "the first line came {seen:?} after start, the exit {:?}",
        run.elapsed
    );
}

/// Two releases at once: the second waits for the lock (and says who holds it), then runs its
/// command after the first's ended. Each records what the command saw in a table.
#[test]
fn two_releases_at_once_run_their_commands_one_after_the_other() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    db.exec("CREATE TABLE spans (app text, started timestamptz, ended timestamptz)");
    let command = r#"sh -c 'psql "$DATABASE_URL" -qc "INSERT INTO spans VALUES (current_setting(\$\$application_name\$\$), clock_timestamp(), NULL)" && sleep 2 && psql "$DATABASE_URL" -qc "UPDATE spans SET ended = clock_timestamp() WHERE app = current_setting(\$\$application_name\$\$)"'"#;
    let started = Instant::now();
    let first = spawn(&mut release(&p, &db, command, &[]));
    wait_for("the first command to start", BOUND, || {
        (db.int("SELECT count(*) FROM spans") == 1).then_some(())
    });
    let second = spawn(&mut release(&p, &db, command, &[]));
    let first = finish_within(first, started, BOUND);
    let second = finish_within(second, started, BOUND);
    first.code(0);
    second
        .code(0)
        .stderr_has(&["waiting for the migration lock held by another session"]);
    let spans = db.query(
        "SELECT app, CAST(ended <= (SELECT min(started) FROM spans s2 WHERE s2.app <> spans.app) AS TEXT) \
         FROM spans ORDER BY started",
    );
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(
        spans[0][1].as_deref(),
        Some("true"),
        "the second command started before the first ended: {spans:?}"
    );
    assert_ne!(spans[0][0], spans[1][0], "one application name per run");
    two_succeeded(&db);
}

/// Webhooks of command runs: `release.started` and `release.succeeded` (naming the runner and
/// run), then `release.failed` with exit code 1.
#[test]
fn command_runs_send_the_release_webhooks() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    let hooks = Receiver::start(Reply::Accept);
    let run_with = |command: &str| {
        let mut cmd = runner_command(p.platform_command(&db, &["release"]), command);
        cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
        let run = Run::wait(cmd);
        run.secret_free();
        run
    };
    run_with("true").code(0);
    run_with("false").code(1);
    assert_eq!(
        hooks.of_type("release.started").len(),
        2,
        "{:?}",
        hooks.deliveries()
    );
    let succeeded = hooks.of_type("release.succeeded");
    assert_eq!(succeeded.len(), 1, "{:?}", hooks.deliveries());
    let data = &succeeded[0].json()["data"];
    assert_eq!(data["runner"], "command", "{data}");
    assert_eq!(data["command"], "true", "{data}");
    assert_eq!(data["run_id"], 1, "{data}");
    let failed = hooks.of_type("release.failed");
    assert_eq!(failed.len(), 1, "{:?}", hooks.deliveries());
    let data = &failed[0].json()["data"];
    assert_eq!(data["exit_code"], 1, "{data}");
    assert_eq!(data["runner"], "command", "{data}");
    assert!(
        data["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with code 1")),
        "{data}"
    );
}

/// `exec` runs the command release, then becomes the app; `serve --migrate` runs it and turns
/// ready, with no migrations directory at all.
#[test]
fn exec_and_serve_migrate_run_the_command_first() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    std::fs::remove_dir(p.migrations()).expect("an empty migrations directory");
    let command = create_table_command(&db);
    let run = Run::wait(with_command(
        &p,
        &db,
        &command,
        &["exec", "--", "sh", "-c", "echo app started"],
    ));
    run.code(0).stdout_has(&["app started"]);
    assert!(db.table_exists("made"));

    let cmd = runner_command(p.platform_command(&db, &["serve", "--migrate"]), &command);
    let service = Service::start(cmd);
    service.wait_ready(BOUND);
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);
    two_succeeded(&db);
}

/// `runner = "alembic"` without an Alembic project fails validation (exit 5, naming the file)
/// in every command that releases, before anything is connected or written; a command that
/// cannot start is refused too.
#[test]
fn alembic_without_a_project_and_a_command_that_cannot_start_are_refused_before_anything_runs() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::new();
    for args in [
        &["--runner", "alembic", "release"][..],
        &["--runner", "alembic", "exec", "--", "true"],
        &["--runner", "alembic", "release", "--dry-run"],
    ] {
        Run::wait(p.command(Some(&db), args))
            .code(5)
            .stderr_has(&["alembic.ini: cannot read", "neither it nor"]);
    }
    Run::wait(release(&p, &db, "no-such-migrator up", &[]))
        .code(2)
        .stderr_has(&["cannot run no-such-migrator: not found in PATH"]);
    // A dry run says what would run, and connects to nothing.
    Run::wait(release(&p, &db, "sh -c 'echo hi'", &["--dry-run"]))
        .code(0)
        .stdout_has(&["dry run: would run the runner command", "sh -c echo hi"]);
    Run::wait(release(&p, &db, "true", &["--to", "3"]))
        .code(2)
        .stderr_has(&["does not know versions"]);
    assert!(!db.sqlite_path().exists(), "nothing was written");
}

/// `status` with `runner = "command"` reads another tool's history table, read only, without
/// a migrations directory: dbmate's count and newest version; Prisma's failed entry as a
/// problem (`--exit-code` 5); without such a table it says it cannot tell, and shows the runs.
#[test]
fn status_reports_another_tool_s_history_table_and_the_last_runs() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    std::fs::remove_dir(p.migrations()).expect("an empty migrations directory");
    let status = |args: &[&str]| Run::wait(with_command(&p, &db, "true", args));
    status(&["status"]).code(0).stdout_has(&[
        "runner        command: true",
        "shipgate cannot tell what the command will apply",
        "runs          none recorded",
    ]);
    Run::wait(with_command(&p, &db, "true", &["release"])).code(0);

    db.exec(crate::adopt::dbmate_table(Engine::Postgres));
    db.exec("INSERT INTO schema_migrations (version) VALUES ('20240101000000'), ('20240301000000'), ('20240201000000')");
    status(&["status", "--exit-code"]).code(0).stdout_has(&[
        "history       dbmate's schema_migrations (3 row(s))",
        "applied       3",
        "latest        20240301000000",
        "succeeded",
    ]);
    let json = status(&["status", "--json"]).code(0).json();
    assert_eq!(json["runner"], "command", "{json}");
    assert_eq!(json["history"]["tool"], "dbmate", "{json}");
    assert_eq!(json["history"]["applied"], 3, "{json}");
    assert_eq!(json["history"]["latest"], "20240301000000", "{json}");
    assert_eq!(json["runs"][0]["outcome"], "succeeded", "{json}");
    assert_eq!(json["problems"], serde_json::json!([]), "{json}");
    // Read only: dbmate's rows are as they were.
    assert_eq!(db.int("SELECT count(*) FROM schema_migrations"), 3);

    db.exec("DROP TABLE schema_migrations");
    db.exec(crate::adopt::prisma_table(Engine::Postgres));
    db.exec(
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, rolled_back_at) VALUES \
         ('a1', 'x', now(), '20240101000000_init', NULL), \
         ('a2', 'x', NULL, '20240201000000_plans', now()), \
         ('a3', 'x', NULL, '20240301000000_tags', NULL)",
    );
    status(&["status", "--exit-code"]).code(5).stdout_has(&[
        "history       Prisma's _prisma_migrations (3 row(s))",
        "applied       1",
        "latest        20240101000000",
        "problem: Prisma: migration 20240301000000_tags failed part-way",
    ]);
    let json = status(&["status", "--json"]).code(0).json();
    assert_eq!(json["history"]["applied"], 1, "{json}");
    assert!(
        json["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("prisma migrate resolve")),
        "{json}"
    );
}

/// While the command runs, a heartbeat every 5 s gives the elapsed time and, on PostgreSQL,
/// what a session of the command waits for, found by its application name: here a lock on
/// `held` that a session of the test holds for 8 s.
#[test]
fn a_heartbeat_names_what_the_commands_session_waits_for() {
    let db = Db::new(Engine::Postgres);
    db.exec("CREATE TABLE held (id int)");
    let p = Project::new();
    let mut session = db.session();
    session.exec("SET application_name = 'held-by-test'");
    let pid = session.query("SELECT CAST(pg_backend_pid() AS TEXT)")[0][0]
        .clone()
        .expect("a pid");
    session.exec("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE");
    let command =
        r#"sh -c 'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "SELECT count(*) FROM held"'"#;
    // The command's own lock_timeout (PGOPTIONS) outlasts the hold.
    let mut cmd = release(&p, &db, command, &["--lock-timeout", "30s"]);
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    let started = Instant::now();
    let child = spawn(&mut cmd);
    std::thread::sleep(Duration::from_secs(8));
    session.exec("COMMIT");
    let run = finish_within(child, started, BOUND);
    run.code(0);
    let beats: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("still running"))
        })
        .collect();
    let beat = beats
        .first()
        .unwrap_or_else(|| panic!("no heartbeat: {run:?}"));
    assert_eq!(beat["blocking_pid"].to_string(), pid, "{beat}");
    assert_eq!(beat["blocking_application"], "held-by-test", "{beat}");
    let message = beat["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is waiting for a lock on held held by pid"),
        "{message}"
    );
    assert!(
        beat["elapsed_ms"].as_u64().is_some_and(|ms| ms >= 4000),
        "{beat}"
    );
}
