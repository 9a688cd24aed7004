//! The platform, simulated end to end: the test runs the release command and requires exit 0,
//! starts `shipgate serve`, and counts the rollout as done only once `/health/ready` answers
//! 200. A failing release is refused (non-zero exit), announced by a signed `release.failed`,
//! and a service started on that database stays unready while staying alive.

use std::time::Duration;

use crate::support::{
    assert_secret_free, Db, Engine, Project, Receiver, Reply, Run, Service, WEBHOOK_SECRET,
};

/// How long the platform waits for a new service to turn ready (Railway's healthcheckTimeout
/// is minutes; a healthy service here is ready within one refresh).
const READY_BOUND: Duration = Duration::from_secs(15);
/// How long a service may take to exit after SIGTERM.
const STOP_BOUND: Duration = Duration::from_secs(10);

#[test]
fn a_successful_release_rolls_out_once_the_service_is_ready() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_plans.up.sql",
        "CREATE TABLE plans (id bigint PRIMARY KEY);\n",
    );

    // The pre-deploy command.
    let release = Run::wait(p.platform_command(&db, &["release"]));
    release.code(0).secret_free();
    assert_eq!(db.versions(), [1, 2]);

    // The new service: traffic moves only when readiness says so.
    let service = Service::start(p.platform_command(&db, &["serve"]));
    let ready = service.wait_ready(READY_BOUND);
    assert_eq!(
        ready.header("content-type"),
        Some("application/health+json"),
        "{ready:?}"
    );
    let body = ready.json();
    assert_eq!(body["status"], "pass", "{ready:?}");
    assert_eq!(body["current_version"], 2, "{ready:?}");
    let live = service.get("/health");
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(live.json()["status"], "pass", "{live:?}");

    service.terminate();
    service.wait(STOP_BOUND).code(0).secret_free();
}

#[test]
fn a_failing_release_is_refused_announced_and_keeps_readiness_at_503() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_broken.up.sql",
        "CREATE TABLE half_done (id bigint);\nSELECT * FROM no_such_table;\n",
    );
    let hooks = Receiver::start(Reply::Accept);

    let mut cmd = p.platform_command(&db, &["release"]);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url)
        .env("RAILWAY_DEPLOYMENT_ID", "dep-failing-42");
    let release = Run::wait(cmd);
    // The platform only looks at zero versus non-zero: this deploy must not roll out.
    release.code(1).secret_free();
    assert_eq!(
        db.versions(),
        [1],
        "the failed migration left no history row"
    );
    assert!(!db.table_exists("half_done"), "its transaction rolled back");
    let outcome = db.query("SELECT outcome, error FROM shipgate_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(outcome[0][0].as_deref(), Some("failed"), "{outcome:?}");

    // The receiver heard about it, signed. The release waits for its notifications, so they
    // have arrived by the time it exits.
    let failed = hooks.of_type("release.failed");
    assert_eq!(failed.len(), 1, "{:?}", hooks.deliveries());
    let failed = &failed[0];
    assert!(
        failed.signature_valid(WEBHOOK_SECRET),
        "invalid signature: {failed:?}"
    );
    assert!(failed.timestamp_fresh(), "{failed:?}");
    // The check can fail: the same headers do not sign another body.
    let mut tampered = failed.clone();
    tampered.body = failed
        .text()
        .replace("no_such_table", "other_table")
        .into_bytes();
    assert!(!tampered.signature_valid(WEBHOOK_SECRET));
    assert!(!failed.signature_valid("whsec_b3RoZXIta2V5"));

    let payload = failed.json();
    assert!(payload["timestamp"].is_string(), "{payload}");
    let data = &payload["data"];
    assert_eq!(data["exit_code"], 1, "{payload}");
    assert_eq!(data["deploy_id"], "dep-failing-42", "{payload}");
    assert_eq!(data["applied"], 1, "{payload}");
    let error = data["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("migration 2") && error.contains("no_such_table"),
        "the payload names the failing migration and the cause: {payload}"
    );
    let started = hooks.of_type("release.started");
    assert_eq!(started.len(), 1, "{:?}", hooks.deliveries());
    assert!(started[0].signature_valid(WEBHOOK_SECRET));
    assert!(hooks.of_type("release.succeeded").is_empty());
    for d in hooks.deliveries() {
        assert_secret_free("webhook body", &d.text());
    }

    // A service started on that database answers (liveness) but refuses traffic (readiness),
    // saying why.
    let service = Service::start(p.platform_command(&db, &["serve"]));
    let not_ready = service.poll(
        "/health/ready to name the pending migration",
        "/health/ready",
        READY_BOUND,
        |r| {
            assert_ne!(r.status, 200, "ready with a migration pending: {r:?}");
            r.body.contains("pending")
        },
    );
    assert_eq!(not_ready.status, 503, "{not_ready:?}");
    let body = not_ready.json();
    assert_eq!(body["status"], "fail", "{not_ready:?}");
    let reasons: Vec<&str> = body["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("1 migration") && r.contains("pending")),
        "the reason names the pending migration: {not_ready:?}"
    );
    assert_eq!(body["current_version"], 1, "{not_ready:?}");
    let live = service.get("/health");
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(live.json()["status"], "pass", "{live:?}");
    // Still refused a moment later: nothing changes until a release succeeds.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(service.get("/health/ready").status, 503);

    service.terminate();
    service.wait(STOP_BOUND).code(0).secret_free();
}

#[test]
fn a_dry_run_prints_the_plan_and_the_sql_and_changes_nothing() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let hooks = Receiver::start(Reply::Accept);

    let mut cmd = p.platform_command(&db, &["release", "--dry-run"]);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    let run = Run::wait(cmd);
    run.code(0)
        .secret_free()
        .stdout_has(&["would apply 1 migration(s)", "CREATE TABLE users"]);
    for table in ["users", "shipgate_migrations", "shipgate_runs"] {
        assert!(!db.table_exists(table), "a dry run created {table}");
    }
    assert!(
        hooks.deliveries().is_empty(),
        "a dry run announced a release: {:?}",
        hooks.deliveries()
    );
}

#[test]
fn exec_runs_the_release_then_becomes_the_command() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let script = "echo \"pid=$$ marker=$SHIPGATE_IT_MARKER args=$0,$1\"; exit 7";

    // The same process (pid), environment and arguments; the command's exit code.
    let mut cmd = p.platform_command(
        &db,
        &["exec", "--", "/bin/sh", "-c", script, "first", "--second"],
    );
    cmd.env("SHIPGATE_IT_MARKER", "kept");
    let run = Run::wait(cmd);
    run.code(7);
    assert_eq!(
        run.stdout.trim(),
        format!("pid={} marker=kept args=first,--second", run.pid),
        "{run:?}"
    );
    assert_eq!(db.versions(), [1], "the release ran first");
    run.secret_free();

    // A failing release never starts the command.
    p.write("2_broken.up.sql", "SELECT * FROM no_such_table;\n");
    let run = Run::wait(p.platform_command(&db, &["exec", "--", "/bin/sh", "-c", "echo started"]));
    run.code(1).secret_free();
    assert!(!run.stdout.contains("started"), "{run:?}");
}

#[test]
fn exec_of_a_command_that_cannot_start_releases_nothing() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write_root("not-executable.sh", "echo hi\n");
    for (command, says) in [
        ("/nonexistent/cmd", "no such file"),
        ("no-such-command-shipgate-it", "not found in PATH"),
        ("./not-executable.sh", "not an executable file"),
        ("/tmp", "not an executable file"),
    ] {
        let run = Run::wait(p.platform_command(&db, &["exec", "--", command, "arg"]));
        run.code(127)
            .stderr_has(&["cannot exec", command, says, "nothing was released"])
            .secret_free();
        assert!(
            !db.table_exists("shipgate_migrations"),
            "{command}: the release ran"
        );
    }
    // A name found in PATH starts (after the release).
    let mut cmd = p.platform_command(&db, &["exec", "--", "true"]);
    cmd.env("PATH", "/usr/bin:/bin");
    Run::wait(cmd).code(0);
    assert_eq!(db.versions(), [1]);
}
