//! A database that never answers: exit 3 after the configured wait, the password never shown.

use std::time::Duration;

use crate::support::{Db, Engine, Project, Run};

/// A database of `engine` that cannot be reached, as shipgate prints it, and the password in it.
/// SQLite has no server: its unreachable database is a file in a directory that does not exist
/// (a volume that is not mounted), and its URL has no password.
fn unreachable(engine: Engine) -> (&'static str, &'static str, Option<&'static str>) {
    match engine {
        Engine::Postgres => (
            "postgres://u:topsecret@127.0.0.1:1/db",
            "postgres://u:***@127.0.0.1:1/db",
            Some("topsecret"),
        ),
        Engine::Mariadb => (
            "mysql://u:topsecret@127.0.0.1:1/db",
            "mysql://u:***@127.0.0.1:1/db",
            Some("topsecret"),
        ),
        Engine::Sqlite => (
            "sqlite:///shipgate-it/no/such/directory/app.db",
            "sqlite:///shipgate-it/no/such/directory/app.db",
            None,
        ),
    }
}

on_every_engine!(an_unreachable_database_exits_3_after_the_wait_without_the_password);

fn an_unreachable_database_exits_3_after_the_wait_without_the_password(engine: Engine) {
    let (url, shown, secret) = unreachable(engine);
    let p = Project::new();
    p.write("1_a.up.sql", "SELECT 1;\n");
    for format in ["text", "json"] {
        let mut cmd = p.command(
            None,
            &["up", "--connect-timeout", "1s", "--log-format", format],
        );
        cmd.env("DATABASE_URL", url);
        let run = Run::wait(cmd);
        run.code(3)
            .stderr_has(&[&format!("database {shown} unreachable after")]);
        if let Some(secret) = secret {
            for output in [&run.stdout, &run.stderr] {
                assert!(!output.contains(secret), "password leaked: {run:?}");
            }
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
    for engine in [Engine::Postgres, Engine::Mariadb] {
        let (url, shown, _) = unreachable(engine);
        let mut cmd = p.command(None, &["status", "--connect-timeout", "1s"]);
        cmd.env("DATABASE_URL", url);
        let run = Run::wait(cmd);
        run.code(3).stderr_has(&[shown]);
        assert!(!format!("{run:?}").contains("topsecret"), "{run:?}");

        for sub in ["up", "check", "status"] {
            let mut cmd = p.command(None, &[sub, "--help"]);
            cmd.env("DATABASE_URL", url)
                .env("SHIPGATE_CHECK_DATABASE", url);
            let run = Run::wait(cmd);
            run.code(0);
            assert!(!run.stdout.contains("topsecret"), "{sub} --help: {run:?}");
        }
    }
}

#[test]
fn a_mariadb_url_reaches_the_mysql_backend() {
    let db = Db::new(Engine::Mariadb);
    let url = db.url().replacen("mysql://", "mariadb://", 1);
    assert!(url.starts_with("mariadb://"), "{url}");
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer PRIMARY KEY);\n");
    let mut cmd = p.command(None, &["up"]);
    cmd.env("DATABASE_URL", &url);
    Run::wait(cmd).code(0).stdout_has(&["applied 1 a"]);
    assert_eq!(db.versions(), [1]);
    let mut cmd = p.command(None, &["status", "--json"]);
    cmd.env("DATABASE_URL", &url);
    let status = Run::wait(cmd).code(0).json();
    assert_eq!(status["engine"], "mysql");
    assert_eq!(status["current_version"], 1);
}

/// A signal while shipgate is still waiting for the database ends the run at once (143) and
/// says that nothing was in progress: no "rolled back by the server" for a statement that never
/// ran.
#[test]
fn a_signal_during_the_connect_wait_says_nothing_was_in_progress() {
    let (url, ..) = unreachable(Engine::Postgres);
    let p = Project::new();
    p.write("1_a.up.sql", "SELECT 1;\n");
    let mut cmd = p.command(None, &["release", "--connect-timeout", "60s"]);
    cmd.env("DATABASE_URL", url);
    let started = std::time::Instant::now();
    let child = crate::support::spawn(&mut cmd);
    std::thread::sleep(Duration::from_millis(800));
    crate::support::terminate(child.id());
    let run = crate::support::finish_within(child, started, Duration::from_secs(10));
    run.code(143)
        .stderr_has(&["interrupted by SIGTERM", "nothing was in progress"]);
    assert!(!run.stderr.contains("rolled back by the server"), "{run:?}");
}
