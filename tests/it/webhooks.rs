//! Webhook delivery as receivers see it: retries keep one `webhook-id`, a hanging receiver is
//! cut at `--webhook-timeout`, and an undelivered notification changes the exit code only with
//! `--require-notify`.

use std::time::Duration;

use crate::support::{
    assert_secret_free, Db, Delivery, Engine, Project, Receiver, Reply, Run, WEBHOOK_SECRET,
};

/// `release` against `db` with `hooks` as the receiver and extra arguments.
fn release(p: &Project, db: &Db, hooks: &Receiver, extra: &[&str]) -> Run {
    let mut args = vec!["release"];
    args.extend_from_slice(extra);
    let mut cmd = p.platform_command(db, &args);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    let run = Run::wait(cmd);
    run.secret_free();
    for d in hooks.deliveries() {
        assert_secret_free("webhook body", &d.text());
        assert_secret_free("webhook headers", &format!("{:?}", d.headers));
    }
    run
}

/// The log lines of `run` whose message contains `fragment`.
fn logged(run: &Run, fragment: &str) -> Vec<serde_json::Value> {
    run.log_lines()
        .into_iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains(fragment)))
        .collect()
}

/// Every attempt at one event: same id, same body, each validly signed.
#[track_caller]
fn one_message(kind: &str, attempts: &[Delivery]) -> String {
    let first = attempts
        .first()
        .unwrap_or_else(|| panic!("no {kind} delivered"));
    for a in attempts {
        assert_eq!(
            a.id(),
            first.id(),
            "{kind}: retries must keep the webhook-id"
        );
        assert_eq!(
            a.body, first.body,
            "{kind}: retries must resend the same body"
        );
        assert!(
            a.signature_valid(WEBHOOK_SECRET),
            "{kind}: bad signature {a:?}"
        );
        assert!(a.timestamp_fresh(), "{kind}: {a:?}");
        assert_eq!(a.header("content-type"), "application/json", "{a:?}");
    }
    assert!(first.id().starts_with("msg_"), "{first:?}");
    first.id().to_owned()
}

#[test]
fn a_receiver_failing_twice_gets_three_attempts_per_event_under_one_id() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let hooks = Receiver::start(Reply::FailFirst(2));

    let run = release(&p, &db, &hooks, &[]);
    run.code(0);
    assert_eq!(db.versions(), [1]);

    let started = hooks.of_type("release.started");
    let succeeded = hooks.of_type("release.succeeded");
    assert_eq!(started.len(), 3, "{:?}", hooks.deliveries());
    assert_eq!(succeeded.len(), 3, "{:?}", hooks.deliveries());
    assert_eq!(hooks.deliveries().len(), 6, "nothing else was sent");
    let a = one_message("release.started", &started);
    let b = one_message("release.succeeded", &succeeded);
    assert_ne!(a, b, "each event is its own message");
    // Retries back off instead of hammering the receiver.
    for attempts in [&started, &succeeded] {
        for pair in attempts.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= Duration::from_millis(200), "retried after {gap:?}");
        }
    }

    let payload = succeeded[0].json();
    assert_eq!(payload["type"], "release.succeeded");
    assert!(payload["timestamp"].is_string(), "{payload}");
    assert_eq!(payload["data"]["current_version"], 1, "{payload}");
    assert_eq!(payload["data"]["applied"][0]["version"], 1, "{payload}");

    // Each failed attempt is logged; the deliveries succeeded, so no failure is reported.
    assert_eq!(logged(&run, "webhook attempt failed").len(), 4, "{run:?}");
    assert!(logged(&run, "notification failed").is_empty(), "{run:?}");
}

#[test]
fn a_hanging_receiver_is_cut_at_the_webhook_timeout_and_the_release_succeeds() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let hooks = Receiver::start(Reply::Hang);

    let run = release(
        &p,
        &db,
        &hooks,
        &["--webhook-timeout", "500ms", "--webhook-retries", "1"],
    );
    run.code(0);
    assert_eq!(db.versions(), [1]);
    // Two events, one after the other, each two attempts of at most 500 ms and one backoff
    // (at most 500 ms): about 3 s. Without the timeout each attempt would hang for a minute.
    assert!(
        run.elapsed < Duration::from_secs(8),
        "the timeout did not cut the hanging receiver: {run:?}"
    );

    for kind in ["release.started", "release.succeeded"] {
        let attempts = hooks.of_type(kind);
        assert_eq!(attempts.len(), 2, "{kind}: {:?}", hooks.deliveries());
        one_message(kind, &attempts);
        let gap = attempts[1].at - attempts[0].at;
        assert!(
            gap >= Duration::from_millis(500),
            "{kind}: the second attempt came {gap:?} after the first, before the 500ms timeout"
        );
    }
    let failures = logged(&run, "webhook notification failed");
    assert_eq!(failures.len(), 2, "{run:?}");
    for f in &failures {
        assert_eq!(f["level"], "error", "{f}");
        let error = f["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("2 attempt(s)") && error.contains("no answer within"),
            "{f}"
        );
    }
}

#[test]
fn an_undelivered_webhook_fails_the_release_only_with_require_notify() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let hooks = Receiver::start(Reply::AlwaysFail);

    let run = release(&p, &db, &hooks, &["--webhook-retries", "0"]);
    run.code(0);
    assert_eq!(db.versions(), [1]);
    assert_eq!(
        logged(&run, "webhook notification failed").len(),
        2,
        "the failures are logged: {run:?}"
    );
    assert_eq!(
        hooks.of_type("release.started").len(),
        1,
        "no retries with 0"
    );
    assert_eq!(hooks.of_type("release.succeeded").len(), 1);

    p.write(
        "2_plans.up.sql",
        "CREATE TABLE plans (id bigint PRIMARY KEY);\n",
    );
    let run = release(
        &p,
        &db,
        &hooks,
        &["--webhook-retries", "0", "--require-notify"],
    );
    run.code(1);
    // The database is migrated all the same; the exit code tells the platform to stop.
    assert_eq!(db.versions(), [1, 2]);
    assert!(
        !logged(&run, "required notification failed").is_empty(),
        "{run:?}"
    );
}

/// SIGTERM while the receivers hang: the platform is stopping the process, so delivery gets at
/// most 5 s more and the exit code says it was stopped (143), although the migrations applied.
/// Without a signal, both events share one bound (they are not waited for one after the other).
#[test]
fn a_signal_while_a_receiver_hangs_ends_the_release_within_the_abort_bound() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let hooks = Receiver::start(Reply::Hang);
    let mut cmd = p.platform_command(&db, &["release", "--webhook-timeout", "60s"]);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    let started = std::time::Instant::now();
    let child = crate::support::spawn(&mut cmd);
    crate::support::wait_for("the release to apply", Duration::from_secs(20), || {
        (db.table_exists("shipgate_migrations") && db.versions() == [1]).then_some(())
    });
    crate::support::wait_for(
        "both events to reach the receiver",
        Duration::from_secs(20),
        || (hooks.of_type("release.succeeded").len() == 1).then_some(()),
    );
    let signalled = std::time::Instant::now();
    crate::support::terminate(child.id());
    let run = crate::support::finish_within(child, started, Duration::from_secs(15));
    let after = signalled.elapsed();
    run.code(143)
        .stderr_has(&["stopped by SIGTERM while sending notifications"])
        .secret_free();
    assert!(
        after < Duration::from_secs(7),
        "exited {after:?} after SIGTERM, past the 5 s abort bound: {run:?}"
    );
    assert_eq!(db.versions(), [1], "the release itself completed");

    // No signal: one shared bound for both events (2 attempts of 500 ms, a backoff ≤ 500 ms).
    let p = Project::with_users();
    let db = Db::new(Engine::Postgres);
    let hooks = Receiver::start(Reply::Hang);
    let run = release(
        &p,
        &db,
        &hooks,
        &["--webhook-timeout", "500ms", "--webhook-retries", "1"],
    );
    run.code(0);
    assert!(
        run.elapsed < Duration::from_millis(3500),
        "the two events were bounded one after the other: {run:?}"
    );
}
