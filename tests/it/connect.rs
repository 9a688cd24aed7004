//! A database that never answers: exit 3 after the configured wait, the password never shown.

use std::time::Duration;

use crate::support::{Project, Run};

const URL: &str = "postgres://u:topsecret@127.0.0.1:1/db";
const REDACTED: &str = "postgres://u:***@127.0.0.1:1/db";

#[test]
fn an_unreachable_database_exits_3_after_the_wait_without_the_password() {
    let p = Project::new();
    p.write("1_a.up.sql", "SELECT 1;\n");
    for format in ["text", "json"] {
        let mut cmd = p.command(
            None,
            &["up", "--connect-timeout", "1s", "--log-format", format],
        );
        cmd.env("DATABASE_URL", URL);
        let run = Run::wait(cmd);
        run.code(3)
            .stderr_has(&[&format!("database {REDACTED} unreachable after")]);
        for output in [&run.stdout, &run.stderr] {
            assert!(!output.contains("topsecret"), "password leaked: {run:?}");
        }
        // It keeps trying for the whole wait (a database that comes up late still counts).
        assert!(
            run.elapsed >= Duration::from_millis(900),
            "gave up before the 1s connect timeout ({format}): {run:?}"
        );
        assert!(
            run.elapsed < Duration::from_secs(4),
            "took far longer than the 1s connect timeout ({format}): {run:?}"
        );
    }
}

#[test]
fn the_password_is_never_in_help_or_status_output() {
    let p = Project::new();
    p.write("1_a.up.sql", "SELECT 1;\n");
    let mut cmd = p.command(None, &["status", "--connect-timeout", "1s"]);
    cmd.env("DATABASE_URL", URL);
    let run = Run::wait(cmd);
    run.code(3).stderr_has(&[REDACTED]);
    assert!(!format!("{run:?}").contains("topsecret"), "{run:?}");

    for sub in ["up", "check", "status"] {
        let mut cmd = p.command(None, &[sub, "--help"]);
        cmd.env("DATABASE_URL", URL)
            .env("SHIPGATE_CHECK_DATABASE", URL);
        let run = Run::wait(cmd);
        run.code(0);
        assert!(!run.stdout.contains("topsecret"), "{sub} --help: {run:?}");
    }
}
