//! Drift with the `alembic` and `command` runners, on PostgreSQL: a release whose tool exited 0
//! stores the schema snapshot under the runner's own key (`alembic:REV`, `run:ID`); an index
//! made by hand is named by `drift` (exit 5), `status --json` and `/migrations/status`; the
//! next release with `drift = "error"` refuses before the lock (exit 5, the tool not started,
//! the run recorded as failed), with `"warn"` it logs and runs; Alembic's version table and
//! shipgate's tables are not part of the snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::alembic_runner::{example, shipgate};
use crate::support::{Db, Engine, Project, Run, Service};

/// The snapshot stored under `key`, as JSON text (`None`: none stored).
fn snapshot(db: &Db, key: &str) -> Option<String> {
    db.query(&format!(
        "SELECT snapshot FROM shipgate_schema WHERE version = '{key}'"
    ))
    .into_iter()
    .next()
    .and_then(|r| r[0].clone())
}

/// `(outcome, error)` of the newest run row.
fn last_run(db: &Db) -> (Option<String>, Option<String>) {
    db.query("SELECT outcome, error FROM shipgate_runs ORDER BY id DESC LIMIT 1")
        .into_iter()
        .next()
        .map(|r| (r[0].clone(), r[1].clone()))
        .unwrap_or_default()
}

/// `run` refused with exit 5 for drift naming `index`, before its tool started (`table`, which
/// the tool would create, is absent), and recorded a failed run saying why.
#[track_caller]
fn was_refused(run: &Run, db: &Db, index: &str, table: &str) {
    run.code(5)
        .stderr_has(&["schema drift", index, "drift --accept"]);
    assert!(!run.stderr.contains("TOOL WAS STARTED"), "{run:?}");
    assert!(!db.table_exists(table), "a refused release ran nothing");
    let (outcome, error) = last_run(db);
    assert_eq!(outcome.as_deref(), Some("failed"));
    assert!(
        error.as_deref().is_some_and(|e| e.contains(index)),
        "{error:?}"
    );
}

/// `/migrations/status` of `service` once its refresher has found drift: the JSON.
pub(crate) fn drift_on_status(service: &Service) -> serde_json::Value {
    service
        .poll(
            "the drift check",
            "/migrations/status",
            Duration::from_secs(15),
            |r| r.status == 200 && r.json()["drift"]["state"] == "drift",
        )
        .json()
}

/// A directory whose `alembic`, `python`, `python3` and `psql` fail loudly: a release that
/// starts one with it first on `PATH` cannot succeed.
fn no_tools() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["alembic", "python", "python3", "psql"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "#!/bin/sh\necho \"TOOL WAS STARTED\" >&2\nexit 9\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

fn alembic_run(p: &Project, db: &Db, args: &[&str], env: &[(&str, &str)]) -> Run {
    alembic_run_with(p, db, args, env, None)
}

fn alembic_run_with(
    p: &Project,
    db: &Db,
    args: &[&str],
    env: &[(&str, &str)],
    path_first: Option<&Path>,
) -> Run {
    let mut cmd = shipgate(p, db, args, path_first);
    cmd.envs(env.iter().copied());
    Run::wait(cmd)
}

const TEAMS: &str = "\"\"\"create teams\"\"\"\nfrom alembic import op\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    op.execute(\"CREATE TABLE teams (id int PRIMARY KEY)\")\n\n\ndef downgrade():\n    op.execute(\"DROP TABLE teams\")\n";

#[test]
fn alembic_runner_drift_is_named_and_refused_with_drift_error() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    alembic_run(&p, &db, &["release"], &[]).code(0);
    let stored = snapshot(&db, "alembic:0006").expect("the release stored a snapshot");
    assert!(stored.contains("users"), "{stored}");
    for left_out in ["alembic_version", "shipgate_runs", "shipgate_migrations"] {
        assert!(!stored.contains(left_out), "{left_out} in {stored}");
    }
    alembic_run(&p, &db, &["drift"], &[])
        .code(0)
        .stdout_has(&["no drift", "snapshot of revision 0006"]);

    db.exec("CREATE INDEX users_hand_idx ON users (name)");
    alembic_run(&p, &db, &["drift"], &[]).code(5).stdout_has(&[
        "schema drift: 1 difference(s) from the snapshot of revision 0006",
        "index users_hand_idx exists but no migration created it (CREATE INDEX users_hand_idx",
    ]);
    let json = alembic_run(&p, &db, &["drift", "--json"], &[])
        .code(5)
        .json();
    assert_eq!(json["state"], "drift", "{json}");
    assert_eq!(json["version"], "alembic:0006", "{json}");
    let status = alembic_run(&p, &db, &["status", "--json"], &[])
        .code(0)
        .json();
    assert_eq!(status["drift"]["state"], "drift", "{status}");
    alembic_run(&p, &db, &["status"], &[])
        .code(0)
        .stdout_has(&["schema drift: 1 difference(s)", "users_hand_idx"]);

    // With nothing pending the release is the no-op: no drift check, no Python.
    alembic_run(&p, &db, &["release"], &[("SHIPGATE_DRIFT", "error")])
        .code(0)
        .stderr_has(&["nothing to do, at revision 0006"]);

    // A revision pending: drift = error refuses before the lock and before Alembic starts.
    std::fs::write(
        p.root().join("migrations/versions/0007_create_teams.py"),
        TEAMS,
    )
    .expect("write 0007");
    alembic_run(
        &p,
        &db,
        &["release", "--dry-run"],
        &[("SHIPGATE_DRIFT", "error")],
    )
    .code(5)
    .stdout_has(&["release gate: schema drift", "users_hand_idx"]);
    let fake = no_tools();
    let refused = alembic_run_with(
        &p,
        &db,
        &["release"],
        &[("SHIPGATE_DRIFT", "error")],
        Some(fake.path()),
    );
    was_refused(&refused, &db, "users_hand_idx", "teams");

    // drift = warn (the default): logged, Alembic runs, the new revision's snapshot is stored.
    alembic_run(&p, &db, &["release"], &[])
        .code(0)
        .stderr_has(&["drift: index users_hand_idx exists but no migration created it"]);
    assert!(db.table_exists("teams"));
    assert!(snapshot(&db, "alembic:0007").is_some());
    alembic_run(&p, &db, &["drift"], &[])
        .code(0)
        .stdout_has(&["no drift", "revision 0007"]);

    // `down --to` stores the snapshot of the revision it reverted to.
    alembic_run(&p, &db, &["down", "--to", "0006", "--yes"], &[]).code(0);
    assert!(!db.table_exists("teams"));
    alembic_run(&p, &db, &["drift"], &[])
        .code(0)
        .stdout_has(&["no drift", "revision 0006"]);
}

/// `runner_command`: `psql -f` of one SQL file, as a shell runs it.
fn command(p: &Project, db: &Db, args: &[&str], env: &[(&str, &str)]) -> Command {
    with_runner(p.command(Some(db), args), p, env)
}

fn with_runner(mut cmd: Command, p: &Project, env: &[(&str, &str)]) -> Command {
    let file: PathBuf = p.root().join("schema.sql");
    cmd.env("SHIPGATE_RUNNER", "command")
        .env(
            "SHIPGATE_RUNNER_COMMAND",
            format!(
                "sh -c 'psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -q -f {}'",
                file.display()
            ),
        )
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied());
    cmd
}

fn command_run(p: &Project, db: &Db, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::wait(command(p, db, args, env))
}

#[test]
fn command_runner_drift_is_named_and_refused_with_drift_error() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write_root(
        "schema.sql",
        "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text);\n",
    );
    command_run(&p, &db, &["release"], &[]).code(0);
    let first = db.int("SELECT max(id) FROM shipgate_runs");
    let stored = snapshot(&db, &format!("run:{first}")).expect("the release stored a snapshot");
    assert!(stored.contains("items"), "{stored}");
    assert!(!stored.contains("shipgate_runs"), "{stored}");
    command_run(&p, &db, &["drift"], &[])
        .code(0)
        .stdout_has(&["no drift", &format!("snapshot of command run {first}")]);

    db.exec("CREATE INDEX items_hand_idx ON items (name)");
    command_run(&p, &db, &["drift"], &[]).code(5).stdout_has(&[
        &format!("schema drift: 1 difference(s) from the snapshot of command run {first}"),
        "index items_hand_idx exists but no migration created it (CREATE INDEX items_hand_idx",
    ]);
    let json = command_run(&p, &db, &["drift", "--json"], &[])
        .code(5)
        .json();
    assert_eq!(json["version"], format!("run:{first}"), "{json}");
    let status = command_run(&p, &db, &["status", "--json"], &[])
        .code(0)
        .json();
    assert_eq!(status["drift"]["state"], "drift", "{status}");

    // drift = error: refused before the lock, the command not started, the run failed.
    p.write_root(
        "schema.sql",
        "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text);\n\
         CREATE TABLE IF NOT EXISTS more (id int);\n",
    );
    let fake = no_tools();
    let mut cmd = command(&p, &db, &["release"], &[("SHIPGATE_DRIFT", "error")]);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            fake.path().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let refused = Run::wait(cmd);
    was_refused(&refused, &db, "items_hand_idx", "more");

    // drift = warn: logged, the command runs, its run's snapshot is the new baseline.
    command_run(&p, &db, &["release"], &[])
        .code(0)
        .stderr_has(&["drift: index items_hand_idx exists but no migration created it"]);
    assert!(db.table_exists("more"));
    let second = db.int("SELECT max(id) FROM shipgate_runs");
    assert!(snapshot(&db, &format!("run:{second}")).is_some());
    command_run(&p, &db, &["drift"], &[])
        .code(0)
        .stdout_has(&["no drift", &format!("command run {second}")]);

    // `/migrations/status` reports it from the refresher.
    db.exec("CREATE INDEX more_hand_idx ON more (id)");
    let service = Service::start(with_runner(p.platform_command(&db, &["serve"]), &p, &[]));
    let json = drift_on_status(&service);
    assert_eq!(json["drift"]["version"], format!("run:{second}"), "{json}");
    assert!(
        json["drift"]["differences"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("index more_hand_idx exists")),
        "{json}"
    );
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);

    // --accept stores the live schema under the same run.
    command_run(&p, &db, &["drift", "--accept", "--reason", "hot fix"], &[])
        .code(0)
        .stdout_has(&[&format!("snapshot of command run {second}")]);
    command_run(&p, &db, &["drift"], &[])
        .code(0)
        .stdout_has(&["no drift"]);
}

#[test]
fn alembic_runner_drift_shows_on_migrations_status() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    alembic_run(&p, &db, &["release"], &[]).code(0);
    db.exec("CREATE INDEX users_hand_idx ON users (name)");
    let mut cmd = p.platform_command(&db, &["serve"]);
    let shipgate_env = shipgate(&p, &db, &[], None);
    for (k, v) in shipgate_env.get_envs() {
        if k == "SHIPGATE_RUNNER" || k == "PATH" {
            cmd.env(k, v.unwrap_or_default());
        }
    }
    let service = Service::start(cmd);
    let json = drift_on_status(&service);
    assert_eq!(json["drift"]["version"], "alembic:0006", "{json}");
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);
}
