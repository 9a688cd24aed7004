//! `runner = "alembic"`: the real binary releasing `examples/alembic` (a copy, with fixture
//! revisions added where a test needs one) into PostgreSQL through the real Alembic, installed
//! by `.ci/run` into a virtualenv whose `bin` goes first on `PATH` — the no-op without Python
//! or the lock, a half-applied database, five releases at once, a database ahead of the build,
//! a failing revision, SIGTERM mid-revision, the webhook and `status`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    finish_within, spawn, terminate, wait_for, Db, Engine, Project, Receiver, Reply, Run,
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

/// `shipgate <args>` with `runner = "alembic"`, `PATH` = `path_first`, the venv, the system.
pub(crate) fn shipgate(p: &Project, db: &Db, args: &[&str], path_first: Option<&Path>) -> Command {
    let mut cmd = p.command(Some(db), args);
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
    let audit = db.query("SELECT action, reason, after FROM shipgate_audit");
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
