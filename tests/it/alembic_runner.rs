//! `runner = "alembic"`: the real binary releasing `examples/alembic` (a copy, with fixture
//! revisions added where a test needs one) into PostgreSQL through the real Alembic, installed
//! by `.ci/run` into a virtualenv whose `bin` goes first on `PATH` — the no-op without Python
//! or the lock, a half-applied database, five releases at once, a database ahead of the build,
//! a failing revision, one past `runner_timeout`, SIGTERM mid-revision, `exec`, the webhook,
//! `status` and `down --to`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    finish_within, spawn, terminate, wait_for, Db, Engine, Project, Receiver, Reply, Run, Service,
};

const BOUND: Duration = Duration::from_secs(60);

/// The revisions of `examples/alembic` in the order `alembic upgrade heads` applies them.
const ORDER: [&str; 6] = ["0001", "0003", "0002", "0004", "0005", "0006"];

/// The virtualenv's `bin`, where `alembic` and its Python are.
pub(crate) fn venv_bin() -> PathBuf {
    let alembic = std::env::var_os("SHIPGATE_TEST_ALEMBIC")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools-ci/alembic/bin/alembic")
        });
    assert!(
        alembic.is_file(),
        "{} is not installed: `bash .ci/run` installs Alembic into a virtualenv",
        alembic.display()
    );
    alembic.parent().expect("bin").to_owned()
}

/// A copy of `examples/alembic` in a fresh project, with `extra` revision files added.
pub(crate) fn example(extra: &[(&str, &str)]) -> Project {
    let p = Project::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/alembic");
    copy_dir(&from, p.root());
    for (name, text) in extra {
        std::fs::write(p.root().join("migrations/versions").join(name), text).expect("write");
    }
    p
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `shipgate <args>` against `db`, as [`with_alembic`] sets it up.
pub(crate) fn shipgate(p: &Project, db: &Db, args: &[&str], path_first: Option<&Path>) -> Command {
    with_alembic(p.command(Some(db), args), path_first)
}

/// `cmd` with `runner = "alembic"`, `PATH` = `path_first`, the venv, the system.
fn with_alembic(mut cmd: Command, path_first: Option<&Path>) -> Command {
    let mut dirs: Vec<PathBuf> = path_first.into_iter().map(Path::to_owned).collect();
    dirs.push(venv_bin());
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    cmd.env("SHIPGATE_RUNNER", "alembic")
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn release(p: &Project, db: &Db, extra: &[&str]) -> Run {
    let mut args = vec!["release"];
    args.extend_from_slice(extra);
    Run::wait(shipgate(p, db, &args, None))
}

/// The real `alembic ARGS` in the project against `db`, insisting it succeeded.
pub(crate) fn alembic(p: &Project, db: &Db, args: &[&str]) {
    let out = Command::new(venv_bin().join("alembic"))
        .args(args)
        .current_dir(p.root())
        .env("DATABASE_URL", db.url())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("alembic runs");
    assert!(
        out.status.success(),
        "alembic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn version_rows(db: &Db) -> Vec<String> {
    db.query("SELECT version_num FROM alembic_version ORDER BY 1")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect()
}

/// `(outcome, applied, error)` of every run row, oldest first.
fn runs(db: &Db) -> Vec<(String, i64, Option<String>)> {
    db.query("SELECT outcome, CAST(applied AS TEXT), error FROM shipgate_runs ORDER BY id")
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].as_deref().and_then(|a| a.parse().ok()).unwrap_or(-1),
                r[2].clone(),
            )
        })
        .collect()
}

fn advisory_locks(db: &Db) -> i64 {
    db.admin_int(&format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND d.datname = '{}'",
        db.pg_name()
    ))
}

/// shipgate's advisory lock key computed in SQL the way README's env.py snippet computes it.
const LOCK_KEY_SQL: &str = "WITH h AS (SELECT sha256(convert_to('shipgate:' || current_database() || ':' || current_schema() || ':shipgate_migrations', 'UTF8')) AS d) \
     SELECT pg_advisory_lock((get_byte(d,0) & 127) * 16777216 + get_byte(d,1) * 65536 + get_byte(d,2) * 256 + get_byte(d,3), \
                             (get_byte(d,4) & 127) * 16777216 + get_byte(d,5) * 65536 + get_byte(d,6) * 256 + get_byte(d,7)) FROM h";

/// A directory whose `alembic`, `python` and `python3` fail loudly: a release that starts
/// Python with it first on `PATH` cannot succeed.
fn no_python() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["alembic", "python", "python3"] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            "#!/bin/sh\necho \"PYTHON WAS STARTED\" >&2\nexit 9\n",
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

/// A fresh database: every revision applied in Alembic's order, the run row and the
/// `release.succeeded` webhook list them. The next release is the no-op: exit 0 with Python
/// replaced by a failing script and the migration lock held by another session — so neither
/// was touched — and a `nothing_to_do` row.
#[test]
fn a_fresh_database_gets_every_revision_and_the_next_release_starts_no_python_and_takes_no_lock() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    let hooks = Receiver::start(Reply::Accept);
    let mut cmd = shipgate(&p, &db, &["release"], None);
    cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    Run::wait(cmd).code(0).stderr_has(&[
        "applied revision 0006: index orders.created_at concurrently",
        "release succeeded: applied 6 alembic revision(s)",
        "now at revision 0006",
    ]);
    assert_eq!(version_rows(&db), ["0006"]);
    assert_eq!(runs(&db), [("succeeded".into(), 6, None)]);
    let succeeded = hooks.of_type("release.succeeded");
    assert_eq!(succeeded.len(), 1, "{:?}", hooks.deliveries());
    let data = &succeeded[0].json()["data"];
    assert_eq!(data["runner"], "alembic", "{data}");
    let applied: Vec<&str> = data["applied"]
        .as_array()
        .expect("applied is a list")
        .iter()
        .map(|a| a["revision"].as_str().expect("revision"))
        .collect();
    assert_eq!(applied, ORDER, "{data}");
    assert_eq!(data["applied"][0]["message"], "create users", "{data}");
    assert_eq!(
        data["applied"][0]["file"], "migrations/versions/0001_create_users.py",
        "{data}"
    );
    assert_eq!(data["current_revisions"][0], "0006", "{data}");

    let mut holder = db.session();
    holder.query(LOCK_KEY_SQL);
    let fake = no_python();
    let mut cmd = shipgate(&p, &db, &["release"], Some(fake.path()));
    cmd.env("SHIPGATE_LOCK_WAIT", "1s");
    let started = Instant::now();
    let run = Run::wait(cmd);
    run.code(0)
        .stderr_has(&["release succeeded: nothing to do, at revision 0006"]);
    assert!(!run.stderr.contains("PYTHON WAS STARTED"), "{run:?}");
    assert!(!run.stderr.contains("migration lock"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "{run:?}");
    assert_eq!(runs(&db)[1], ("nothing_to_do".into(), 0, None));
    // The same key is the lock a release with work waits for: it times out behind the holder.
    db.exec("DELETE FROM alembic_version");
    let mut cmd = shipgate(&p, &db, &["release"], None);
    cmd.env("SHIPGATE_LOCK_WAIT", "1s");
    Run::wait(cmd).code(4);
    drop(holder);
}

/// Half applied: the first two revisions' tables made and `alembic stamp 0002` run for real;
/// the release applies the other four, in order.
#[test]
fn a_half_applied_database_gets_the_rest() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    db.exec("CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text)");
    db.exec("INSERT INTO users (name) VALUES ('ada')");
    alembic(&p, &db, &["stamp", "0002"]);
    release(&p, &db, &[]).code(0).stderr_has(&[
        "pending=4 revisions=0003, 0004, 0005, 0006",
        "applied 4 alembic revision(s)",
    ]);
    assert_eq!(version_rows(&db), ["0006"]);
    assert_eq!(runs(&db), [("succeeded".into(), 4, None)]);
    // The data migration ran on the row that was there.
    assert_eq!(
        db.query("SELECT email FROM users")[0][0].as_deref(),
        Some("ada@example.invalid")
    );
}

/// Five releases at once on a fresh database: all exit 0, Alembic runs once (one run row with
/// the six revisions), the others find nothing to do once they hold the lock or before it.
#[test]
fn five_releases_at_once_apply_each_revision_once() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    let started = Instant::now();
    let children: Vec<_> = (0..5)
        .map(|_| spawn(&mut shipgate(&p, &db, &["release"], None)))
        .collect();
    for child in children {
        finish_within(child, started, BOUND).code(0);
    }
    assert_eq!(version_rows(&db), ["0006"]);
    let rows = runs(&db);
    assert_eq!(rows.len(), 5, "{rows:?}");
    let ran: Vec<_> = rows.iter().filter(|r| r.0 == "succeeded").collect();
    assert_eq!(ran, [&("succeeded".to_owned(), 6, None)], "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r.0 == "nothing_to_do").count(),
        4,
        "{rows:?}"
    );
    assert_eq!(advisory_locks(&db), 0);
}

/// A row the build does not know: the database is ahead. A warning and exit 0, Alembic not
/// run; `--strict` refuses with exit 5. `status` shows it.
#[test]
fn a_database_ahead_of_the_build_warns_and_strict_refuses() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    release(&p, &db, &[]).code(0);
    db.exec("UPDATE alembic_version SET version_num = 'f00d'");
    release(&p, &db, &[]).code(0).stderr_has(&[
        "a revision this build does not know",
        "f00d",
        "the database is ahead of this build",
    ]);
    let before = runs(&db);
    release(&p, &db, &["--strict"])
        .code(5)
        .stderr_has(&["the database is ahead of this build: f00d", "--strict"]);
    // Refused before the lock: no run row opened, no lock left.
    assert_eq!(runs(&db), before);
    assert_eq!(advisory_locks(&db), 0);
    let status = Run::wait(shipgate(&p, &db, &["status", "--json"], None));
    status.code(0);
    let json = status.json();
    assert_eq!(json["unknown"][0], "f00d", "{json}");
    assert_eq!(json["current_revisions"][0], "f00d", "{json}");
    assert_eq!(version_rows(&db), ["f00d"]);
}

/// A revision that raises: exit 1, the run row failed with Alembic's exit, the lock free.
#[test]
fn a_failing_revision_exits_1_and_records_the_run_as_failed() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[(
        "0007_fails.py",
        "\"\"\"fails\"\"\"\nfrom alembic import op\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    op.execute(\"CREATE TABLE doomed (id int)\")\n    raise RuntimeError(\"revision 0007 refuses\")\n",
    )]);
    release(&p, &db, &[])
        .code(1)
        .stderr_has(&["revision 0007 refuses", "release failed"]);
    let rows = runs(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "failed", "{rows:?}");
    assert!(
        rows[0]
            .2
            .as_deref()
            .is_some_and(|e| e.contains("exited with code 1")),
        "{rows:?}"
    );
    assert!(!db.table_exists("doomed"));
    assert_eq!(advisory_locks(&db), 0);
}

/// SIGTERM while a revision sleeps in the database: forwarded, exit 143, the revision's
/// transaction rolled back, none of Alembic's sessions left, the lock free, the run aborted.
#[test]
fn sigterm_mid_revision_rolls_it_back_and_frees_the_lock() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[(
        "0007_sleeps.py",
        "\"\"\"sleeps\"\"\"\nfrom alembic import op\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    op.execute(\"CREATE TABLE slept (id int)\")\n    op.execute(\"SELECT pg_sleep(60)\")\n",
    )]);
    let started = Instant::now();
    let child = spawn(&mut shipgate(&p, &db, &["release"], None));
    let sleeping = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep(60)%' AND application_name LIKE 'shipgate-%'",
        db.pg_name()
    );
    wait_for("revision 0007 to sleep", BOUND, || {
        (db.admin_int(&sleeping) == 1).then_some(())
    });
    terminate(child.id());
    let run = finish_within(child, started, Duration::from_secs(30));
    run.code(143).stderr_has(&["forwarding the signal"]);
    let sessions = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name LIKE 'shipgate-%'",
        db.pg_name()
    );
    assert_eq!(db.admin_int(&sessions), 0);
    assert!(!db.table_exists("slept"), "the revision's work rolled back");
    assert_eq!(advisory_locks(&db), 0);
    let rows = runs(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "aborted", "{rows:?}");
}

/// A revision still running at `runner_timeout`: Alembic's group is ended, exit 1, the run row
/// failed saying so, the revision rolled back, no session of the run left, the lock free.
#[test]
fn a_revision_past_runner_timeout_is_ended_and_the_release_fails() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    release(&p, &db, &[]).code(0);
    std::fs::write(
        p.root().join("migrations/versions/0007_slow.py"),
        "\"\"\"slow\"\"\"\nfrom alembic import op\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    op.execute(\"CREATE TABLE slow (id int)\")\n    op.execute(\"SELECT pg_sleep(60)\")\n",
    )
    .expect("write");
    let started = Instant::now();
    release(&p, &db, &["--runner-timeout", "3s", "--runner-grace", "1s"])
        .code(1)
        .stderr_has(&["did not finish within runner_timeout"]);
    assert!(started.elapsed() < Duration::from_secs(40), "bounded");
    let rows = runs(&db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].0, "failed", "{rows:?}");
    assert!(
        rows[1]
            .2
            .as_deref()
            .is_some_and(|e| e.contains("did not finish within runner_timeout (3s)")),
        "{rows:?}"
    );
    assert!(!db.table_exists("slow"), "the revision's work rolled back");
    assert_eq!(version_rows(&db), ["0006"]);
    let sessions = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name LIKE 'shipgate-%'",
        db.pg_name()
    );
    assert_eq!(db.admin_int(&sessions), 0);
    assert_eq!(advisory_locks(&db), 0);
}

/// `status` in text and JSON: current and head revisions, pending ones with their messages.
#[test]
fn status_lists_current_and_pending_revisions() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    let fresh = Run::wait(shipgate(&p, &db, &["status"], None));
    fresh.code(0).stdout_has(&[
        "current       none",
        "head          0006",
        "pending       6",
    ]);
    alembic(&p, &db, &["upgrade", "0004"]);
    let text = Run::wait(shipgate(&p, &db, &["status", "--exit-code"], None));
    text.code(10).stdout_has(&[
        "current       0004",
        "pending       2",
        "  pending     0005 backfill users.email, then require it",
        "  pending     0006 index orders.created_at concurrently",
    ]);
    let json = Run::wait(shipgate(&p, &db, &["status", "--json"], None));
    let json = json.code(0).json();
    assert_eq!(json["runner"], "alembic", "{json}");
    assert_eq!(json["current_revisions"][0], "0004", "{json}");
    assert_eq!(json["head_revisions"][0], "0006", "{json}");
    assert_eq!(json["pending"][0]["revision"], "0005", "{json}");
    assert_eq!(
        json["pending"][1]["file"], "migrations/versions/0006_index_orders_created_at.py",
        "{json}"
    );
    assert_eq!(json["applied"].as_array().map(Vec::len), Some(4), "{json}");
}

/// A revision file shipgate cannot read statically fails validation with exit 5, naming the
/// file and line, before anything connects.
#[test]
fn an_unreadable_revision_exits_5_naming_its_file_and_line() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[(
        "0007_dynamic.py",
        "\"\"\"dynamic\"\"\"\nrevision = \"0007\"\ndown_revision = PREVIOUS\n",
    )]);
    release(&p, &db, &[])
        .code(5)
        .stderr_has(&["0007_dynamic.py:3", "down_revision"]);
    assert!(!db.table_exists("shipgate_runs"));
}

/// `down --to REV` runs `alembic downgrade REV` under the lock: confirmed or `--yes` first, a
/// dry run and a revision the build does not know, or that is not applied, change nothing; the
/// revert is recorded as a `down` run and an audit row with the reason.
#[test]
fn down_to_a_revision_runs_alembic_downgrade_under_the_lock() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    release(&p, &db, &[]).code(0);
    assert_eq!(version_rows(&db), ["0006"]);
    let down = |args: &[&str]| {
        let mut all = vec!["down"];
        all.extend_from_slice(args);
        Run::wait(shipgate(&p, &db, &all, None))
    };
    down(&["--to", "0004", "--dry-run"]).code(0).stdout_has(&[
        "would revert 2 revision(s)",
        "0006",
        "0005",
    ]);
    assert_eq!(version_rows(&db), ["0006"], "a dry run changes nothing");
    down(&["--to", "0004"])
        .code(2)
        .stderr_has(&["without --yes", "0006", "0005"]);
    down(&["--to", "ffff", "--yes"])
        .code(5)
        .stderr_has(&["no revision of this build is ffff"]);
    down(&["--steps", "1", "--yes"])
        .code(2)
        .stderr_has(&["needs --to REVISION"]);
    assert_eq!(version_rows(&db), ["0006"]);

    down(&["--to", "0004", "--yes", "--reason", "bad index"])
        .code(0)
        .stdout_has(&["reverted 2 revision(s) with alembic downgrade 0004"]);
    assert_eq!(version_rows(&db), ["0004"]);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_created_at_idx'"),
        0,
        "0006's index is gone"
    );
    assert_eq!(advisory_locks(&db), 0, "the lock is free");
    // The release's `upgrade` row, then the revert's `down` row.
    let audit = db.query("SELECT action, reason, after FROM shipgate_audit WHERE action = 'down'");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0][0].as_deref(), Some("down"));
    assert_eq!(audit[0][1].as_deref(), Some("bad index"));
    assert!(
        audit[0][2]
            .as_deref()
            .is_some_and(|a| a.contains("0006") && a.contains("0005")),
        "{audit:?}"
    );
    let down_runs = db
        .int("SELECT count(*) FROM shipgate_runs WHERE command = 'down' AND outcome = 'succeeded'");
    assert_eq!(down_runs, 1);
    // Not applied any more: nothing to revert to there.
    down(&["--to", "0005", "--yes"])
        .code(5)
        .stderr_has(&["0005", "not applied"]);
    // And the next release applies them again.
    release(&p, &db, &[]).code(0);
    assert_eq!(version_rows(&db), ["0006"]);
}

/// `exec` releases through Alembic, then becomes the app; the next `exec` is the no-op (no
/// Python: it is replaced by a failing script on `PATH`) and still starts the app. A failing
/// revision stops `exec` with exit 1 and the app never starts.
#[test]
fn exec_releases_through_alembic_then_becomes_the_app() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    let app = ["exec", "--", "/bin/sh", "-c", "echo app started"];
    Run::wait(shipgate(&p, &db, &app, None))
        .code(0)
        .stdout_has(&["app started"]);
    assert_eq!(version_rows(&db), ["0006"]);
    let python = no_python();
    Run::wait(shipgate(&p, &db, &app, Some(python.path())))
        .code(0)
        .stdout_has(&["app started"]);
    let outcomes: Vec<String> = runs(&db).into_iter().map(|r| r.0).collect();
    assert_eq!(outcomes, ["succeeded", "nothing_to_do"]);

    let p = example(&[(
        "0007_fails.py",
        "\"\"\"fails\"\"\"\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    raise RuntimeError(\"revision 0007 refuses\")\n",
    )]);
    let run = Run::wait(shipgate(&p, &db, &app, None));
    run.code(1).stderr_has(&["revision 0007 refuses"]);
    assert!(!run.stdout.contains("app started"), "{run:?}");
    assert_eq!(advisory_locks(&db), 0);
}

/// `serve ARGS` with `runner = "alembic"` as a platform runs it, over real TCP.
fn serve(p: &Project, db: &Db, args: &[&str], env: &[(&str, &str)]) -> Service {
    let mut cmd = with_alembic(p.platform_command(db, args), None);
    cmd.envs(env.iter().copied());
    Service::start(cmd)
}

/// `reasons` of a 503 from `/health/ready`, joined.
fn reasons(body: &serde_json::Value) -> String {
    body["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// `serve` reads `alembic_version` with the refresher: 503 naming the pending revisions and
/// `/migrations/status` listing them with messages and files; `serve --migrate` answers 503
/// during the release (a revision that sleeps) and 200 after, the status then current.
#[test]
fn serve_reports_pending_revisions_and_turns_ready_after_the_release() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[(
        "0007_sleeps.py",
        "\"\"\"sleeps a little\"\"\"\nfrom alembic import op\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    op.execute(\"SELECT pg_sleep(3)\")\n",
    )]);
    let service = serve(&p, &db, &["serve"], &[]);
    let ready = service.poll("the first refresh", "/health/ready", BOUND, |r| {
        r.json()["reasons"].to_string().contains("pending")
    });
    assert_eq!(ready.status, 503);
    assert!(
        reasons(&ready.json()).contains("7 revision(s) pending"),
        "{ready:?}"
    );
    let status = service.get("/migrations/status").json();
    assert_eq!(status["runner"], "alembic", "{status}");
    assert_eq!(
        status["pending"].as_array().map(Vec::len),
        Some(7),
        "{status}"
    );
    assert_eq!(status["pending"][0]["revision"], "0001", "{status}");
    assert_eq!(
        status["pending"][6],
        serde_json::json!({"revision": "0007", "message": "sleeps a little", "file": "migrations/versions/0007_sleeps.py"}),
        "{status}"
    );
    assert_eq!(
        status["head_revisions"],
        serde_json::json!(["0007"]),
        "{status}"
    );
    assert_eq!(
        status["current_revisions"],
        serde_json::json!([]),
        "{status}"
    );
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);

    let service = serve(&p, &db, &["serve", "--migrate"], &[]);
    let during = service.get("/health/ready");
    assert_eq!(during.status, 503, "{during:?}");
    let ready = service.wait_ready(BOUND);
    assert_eq!(
        ready.json()["current_revisions"],
        serde_json::json!(["0007"]),
        "{ready:?}"
    );
    // A snapshot taken before the run row was closed may still be the latest: wait for one.
    let status = service
        .poll("the closed run", "/migrations/status", BOUND, |r| {
            r.json()["last_run"]["outcome"] == "succeeded"
        })
        .json();
    assert_eq!(status["pending"], serde_json::json!([]), "{status}");
    assert_eq!(
        status["applied"].as_array().map(Vec::len),
        Some(7),
        "{status}"
    );
    assert_eq!(status["last_run"]["applied"], 7, "{status}");
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);
}

/// A database ahead of the build (a row this build does not know) is ready, and not under
/// `strict`; an overlapping row is never ready.
#[test]
fn a_database_ahead_is_ready_unless_strict_and_overlapping_rows_are_not() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    release(&p, &db, &[]).code(0);
    db.exec("UPDATE alembic_version SET version_num = 'f00d'");
    let service = serve(&p, &db, &["serve"], &[]);
    service.wait_ready(BOUND);
    let status = service.get("/migrations/status").json();
    assert_eq!(status["unknown"], serde_json::json!(["f00d"]), "{status}");
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);

    let service = serve(&p, &db, &["serve"], &[("SHIPGATE_STRICT", "true")]);
    let refused = service.poll("strict readiness", "/health/ready", BOUND, |r| {
        reasons(&r.json()).contains("ahead of this build")
    });
    assert_eq!(refused.status, 503);
    assert!(reasons(&refused.json()).contains("f00d"), "{refused:?}");
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);

    db.exec("UPDATE alembic_version SET version_num = '0006'");
    db.exec("INSERT INTO alembic_version (version_num) VALUES ('0004')");
    let service = serve(&p, &db, &["serve"], &[]);
    let refused = service.poll("overlap readiness", "/health/ready", BOUND, |r| {
        reasons(&r.json()).contains("overlap")
    });
    assert_eq!(refused.status, 503);
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);
}

/// A project that cannot be read is not ready, saying why.
#[test]
fn serve_with_an_unreadable_project_is_not_ready_and_says_why() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[(
        "0007_bad.py",
        "revision = f'0007'\ndown_revision = '0006'\n",
    )]);
    let service = serve(&p, &db, &["serve"], &[]);
    let refused = service.poll("readiness", "/health/ready", BOUND, |r| {
        reasons(&r.json()).contains("cannot be read")
    });
    assert_eq!(refused.status, 503);
    assert!(
        reasons(&refused.json()).contains("0007_bad.py:1"),
        "{refused:?}"
    );
    service.terminate();
    service.wait(Duration::from_secs(20)).code(0);
}

/// `history` lists the applied revisions in upgrade order with message and file, and which
/// release applied each (a revision Alembic applied outside shipgate has no time); text and
/// JSON; an unknown row is listed as such.
#[test]
fn history_names_the_release_that_applied_each_revision() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    alembic(&p, &db, &["upgrade", "0001"]);
    let mut cmd = shipgate(&p, &db, &["release"], None);
    cmd.env("SHIPGATE_DEPLOY_ID", "deploy-42");
    Run::wait(cmd).code(0);
    let run_id = db.int("SELECT max(id) FROM shipgate_runs");
    let json = Run::wait(shipgate(&p, &db, &["history", "--json"], None))
        .code(0)
        .json();
    assert_eq!(json["runner"], "alembic", "{json}");
    let applied = json["applied"].as_array().expect("applied").clone();
    let ids: Vec<&str> = applied
        .iter()
        .filter_map(|a| a["revision"].as_str())
        .collect();
    assert_eq!(ids, ORDER, "{json}");
    assert_eq!(applied[0]["applied_at"], serde_json::Value::Null, "{json}");
    assert_eq!(applied[0]["run_id"], serde_json::Value::Null, "{json}");
    assert_eq!(
        applied[0]["file"], "migrations/versions/0001_create_users.py",
        "{json}"
    );
    for a in &applied[1..] {
        assert_eq!(a["run_id"], run_id, "{json}");
        assert_eq!(a["deploy_id"], "deploy-42", "{json}");
        assert!(
            a["applied_at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{json}"
        );
    }
    let text = Run::wait(shipgate(&p, &db, &["history"], None));
    text.code(0).stdout_has(&[
        "revision  message",
        "0006 ",
        "index orders.created_at concurrently",
        "applied outside a shipgate release",
    ]);
    // One plain line per revision (stdout is a pipe): the run and deploy beside it.
    let run_column = format!("  {run_id}  ");
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains(&run_column) && l.contains("deploy-42")),
        "{}",
        text.stdout
    );

    db.exec("UPDATE alembic_version SET version_num = 'f00d'");
    let json = Run::wait(shipgate(&p, &db, &["history", "--json"], None))
        .code(0)
        .json();
    assert_eq!(json["unknown"], serde_json::json!(["f00d"]), "{json}");
    Run::wait(shipgate(&p, &db, &["history"], None))
        .code(0)
        .stdout_has(&["f00d ", "unknown (in alembic_version, not in this build)"]);
}

/// On SQLite and MariaDB (no Alembic run there: the version table made by hand) `status`
/// reads the rows, and `serve`'s refresher reads them in its one statement once shipgate's
/// tables exist (a command release made them): 503 while revisions are pending, 200 after.
#[test]
fn status_and_readiness_read_alembic_version_on_sqlite_and_mariadb() {
    for engine in [Engine::Sqlite, Engine::Mariadb] {
        let db = Db::new(engine);
        let p = example(&[]);
        if engine == Engine::Sqlite {
            std::fs::File::create(db.sqlite_path()).expect("the database file");
        }
        db.exec("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)");
        db.exec("INSERT INTO alembic_version (version_num) VALUES ('0004')");
        let json = Run::wait(shipgate(&p, &db, &["status", "--json"], None))
            .code(0)
            .json();
        assert_eq!(
            json["current_revisions"],
            serde_json::json!(["0004"]),
            "{engine:?} {json}"
        );
        assert_eq!(
            json["pending"].as_array().map(Vec::len),
            Some(2),
            "{engine:?} {json}"
        );
        // shipgate's tables, made by a command release, so the refresher's statement is whole.
        let mut made = p.command(Some(&db), &["release"]);
        made.env("SHIPGATE_RUNNER", "command")
            .env("SHIPGATE_RUNNER_COMMAND", "true")
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        Run::wait(made).code(0);
        let service = serve(&p, &db, &["serve"], &[]);
        let pending = service.poll("pending revisions", "/health/ready", BOUND, |r| {
            reasons(&r.json()).contains("2 revision(s) pending")
        });
        assert_eq!(pending.status, 503);
        let status = service.get("/migrations/status").json();
        assert_eq!(
            status["pending"][0]["revision"], "0005",
            "{engine:?} {status}"
        );
        assert_eq!(
            status["last_run"]["outcome"], "succeeded",
            "{engine:?} {status}"
        );
        db.exec("UPDATE alembic_version SET version_num = '0006'");
        let ready = service.wait_ready(BOUND);
        assert_eq!(
            ready.json()["current_revisions"],
            serde_json::json!(["0006"]),
            "{engine:?}"
        );
        service.terminate();
        service.wait(Duration::from_secs(20)).code(0);
    }
}

/// A `DATABASE_URL` in SQLAlchemy's `dialect+driver` form, as a FastAPI app sets it: shipgate
/// connects with its own driver and hands Alembic the URL unchanged.
#[test]
fn a_sqlalchemy_url_with_its_driver_is_read_by_shipgate_and_handed_to_alembic_unchanged() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    let url = db
        .url()
        .replacen("postgres://", "postgresql+psycopg2://", 1);
    assert_ne!(url, db.url());
    let mut cmd = shipgate(&p, &db, &["release"], None);
    cmd.env("DATABASE_URL", &url);
    Run::wait(cmd).code(0);
    assert_eq!(version_rows(&db), ["0006"]);
    let mut cmd = shipgate(&p, &db, &["status", "--json"], None);
    cmd.env("DATABASE_URL", &url);
    let status = Run::wait(cmd);
    status.code(0);
    assert_eq!(status.json()["pending"].as_array().map(Vec::len), Some(0));
}
