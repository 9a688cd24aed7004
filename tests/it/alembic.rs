//! shipgate's static reading of Alembic projects (`shipgate::alembic`) against the real
//! Alembic, installed by `.ci/run` into a virtualenv (`SHIPGATE_TEST_ALEMBIC`, else
//! `../tools-ci/alembic/bin/alembic`). For each fixture under `tests/fixtures/alembic/` (our own
//! revision files: a chain, a branch and merge, dependencies, a branch label, literal forms,
//! CRLF and a BOM, nested directories, a legacy file name):
//! - `alembic heads` and `alembic history` print the heads, the order, the parents, the
//!   dependencies and the messages shipgate computes;
//! - from every partial state (`upgrade <rev>` on a fresh SQLite database, whose `env.py`
//!   prints `alembic_version` afterwards), shipgate's applied set is what Alembic recorded, and
//!   its pending list is exactly what `upgrade heads` then runs, in order; afterwards shipgate
//!   sees nothing pending (Alembic's command line driven in one Python process per fixture).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use shipgate::alembic::{Graph, Project};
use tempfile::TempDir;

/// The fixture directories and the `[alembic]` lines each needs besides its location.
const CASES: &[(&str, &str)] = &[
    ("linear", ""),
    ("branch_merge", ""),
    ("depends_on", ""),
    ("literals", ""),
    ("crlf_bom", ""),
    ("branch_label", ""),
    ("recursive", "recursive_version_locations = true\n"),
    ("legacy", ""),
];

/// The `env.py` of the scratch projects: migrate a SQLite database, log each step (Alembic's
/// "Running upgrade a -> b" lines), then print the version table's rows. The revisions'
/// `upgrade()` bodies are replaced by no-ops: the order is Alembic's whatever they do, and
/// other projects' migrations (written for PostgreSQL) can then be walked on SQLite too.
const ENV_PY: &str = r#"import logging
import sys

from alembic import context
from sqlalchemy import create_engine

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")


def upgrade():  # named as the revisions' own, which Alembic's log lines print
    pass


for script in context.script.walk_revisions():
    script.module.upgrade = upgrade
engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").fetchall()
    print("ROWS:" + " ".join(r[0] for r in rows), file=sys.stderr)
"#;

/// The installed `alembic` executable.
fn alembic() -> PathBuf {
    let path = std::env::var_os("SHIPGATE_TEST_ALEMBIC")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("tools-ci")
                .join("alembic/bin/alembic")
        });
    assert!(
        path.is_file(),
        "{} is not installed: `bash .ci/run` installs Alembic into a virtualenv (or set SHIPGATE_TEST_ALEMBIC)",
        path.display()
    );
    path
}

/// Runs `alembic -c ini ARGS`, insisting it succeeded; (stdout, stderr).
fn run(alembic: &Path, ini: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(alembic)
        .arg("-c")
        .arg(ini)
        .args(args)
        .current_dir(ini.parent().expect("ini has a directory"))
        // Never leave __pycache__ directories in the fixtures.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("alembic {args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "alembic -c {} {args:?}: {}\n{stdout}\n{stderr}",
        ini.display(),
        out.status
    );
    (stdout, stderr)
}

/// A scratch project: `alembic.ini` with the fixture as its version location, an `env.py`, and
/// a SQLite database file.
struct Scratch {
    _dir: TempDir,
    ini: PathBuf,
    db: PathBuf,
}

fn scratch(versions: &str, extra: &str) -> Scratch {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("env");
    std::fs::create_dir(&env).expect("mkdir env");
    std::fs::write(env.join("env.py"), ENV_PY).expect("write env.py");
    let db = dir.path().join("db.sqlite");
    let ini = dir.path().join("alembic.ini");
    std::fs::write(
        &ini,
        format!(
            "[alembic]\nscript_location = %(here)s/env\npath_separator = os\nversion_locations = {versions}\nsqlalchemy.url = sqlite:///{}\n{extra}",
            db.display()
        ),
    )
    .expect("write alembic.ini");
    Scratch { _dir: dir, ini, db }
}

/// `alembic heads`: one line per head in shipgate's order, `(effective head)` exactly on the
/// heads another revision depends on.
fn check_heads(out: &str, graph: &Graph, what: &str) {
    let effective: HashSet<String> = graph.effective_heads().into_iter().collect();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(ids, graph.heads(), "{what}: alembic heads printed\n{out}");
    for (line, id) in lines.iter().zip(&ids) {
        assert_eq!(
            line.ends_with("(effective head)"),
            !effective.contains(*id),
            "{what}: {line}"
        );
    }
}

/// `alembic history`: each revision newest first as `parents [(dependencies)] -> id
/// [(labels)] [(head)…], message`, in shipgate's order with shipgate's parents, dependencies and
/// message (which may span lines). Returns how many entries matched.
fn check_history(out: &str, graph: &Graph, what: &str) -> usize {
    let mut rest = out;
    let history = graph.history();
    for rev in &history {
        let parents = if rev.down_revisions.is_empty() {
            "<base>".to_owned()
        } else {
            rev.down_revisions.join(", ")
        };
        let prefix = if rev.depends_on.is_empty() {
            format!("{parents} -> {}", rev.id)
        } else {
            format!("{parents} ({}) -> {}", rev.depends_on.join(", "), rev.id)
        };
        assert!(
            rest.starts_with(&prefix),
            "{what}: expected `{prefix}` next in alembic history, found:\n{}",
            rest.lines().take(3).collect::<Vec<_>>().join("\n")
        );
        rest = &rest[prefix.len()..];
        // Branch labels and (head)/(branchpoint)/(mergepoint) markers.
        while let Some(group) = rest.strip_prefix(" (") {
            let close = group.find(')').expect("a closing parenthesis");
            rest = &group[close + 1..];
        }
        let message = format!(", {}\n", rev.message);
        assert!(
            rest.starts_with(&message),
            "{what}: {} expected message {:?}, found:\n{}",
            rev.id,
            rev.message,
            rest.lines().take(3).collect::<Vec<_>>().join("\n")
        );
        rest = &rest[message.len()..];
    }
    assert!(
        rest.trim().is_empty(),
        "{what}: alembic history has more: {rest}"
    );
    history.len()
}

/// The rows `env.py` printed, and the revisions Alembic ran, in order.
fn parse_upgrade(stderr: &str) -> (Vec<String>, Vec<String>) {
    let mut ran = Vec::new();
    let mut rows = None;
    for line in stderr.lines() {
        if let Some(step) = line.strip_prefix("Running upgrade ") {
            let (_, after) = step.split_once(" -> ").expect("`a -> b` in the step");
            let id = after.split(", ").next().unwrap_or(after);
            ran.push(id.to_owned());
        } else if let Some(r) = line.strip_prefix("ROWS:") {
            rows = Some(r.split_whitespace().map(str::to_owned).collect());
        }
    }
    (rows.expect("env.py printed the rows"), ran)
}

fn fixture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/alembic")
        .join(case)
}

/// Drives Alembic's own command line (`alembic.config.main`, what the `alembic` script runs)
/// in one Python process, so each case pays Python's start once: for each target, a fresh
/// database, `upgrade <target>` (none for `-`), a marker, `upgrade heads`.
const DRIVER_PY: &str = r#"import os
import sys

from alembic.config import main

ini, db = sys.argv[1], sys.argv[2]
for target in sys.argv[3:]:
    if os.path.exists(db):
        os.remove(db)
    print("TARGET:" + target, file=sys.stderr, flush=True)
    if target != "-":
        main(["-c", ini, "upgrade", target])
    print("THEN", file=sys.stderr, flush=True)
    main(["-c", ini, "upgrade", "heads"])
"#;

/// Partial states (an empty database, then `upgrade <rev>` for each of `partial`) upgraded to
/// heads by the real Alembic: shipgate's applied and pending lists are what Alembic did.
fn check_upgrades(alembic: &Path, s: &Scratch, project: &Project, case: &str, partial: &[String]) {
    let graph = &project.graph;
    let mut targets = vec!["-".to_owned()];
    targets.extend(partial.iter().cloned());
    let python = alembic.with_file_name("python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(DRIVER_PY)
        .arg(&s.ini)
        .arg(&s.db)
        .args(&targets)
        .current_dir(s.ini.parent().expect("ini has a directory"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case}: {}\n{stderr}", out.status);
    let segments: Vec<&str> = stderr.split("TARGET:").skip(1).collect();
    assert_eq!(segments.len(), targets.len(), "{case}: {stderr}");
    for (target, segment) in targets.iter().zip(segments) {
        let what = format!("{case} from {target}");
        let (before, after) = segment.split_once("THEN").expect("the marker");
        let rows = if target == "-" {
            Vec::new()
        } else {
            let (rows, _) = parse_upgrade(before);
            let applied: HashSet<String> = project.state(&rows).applied.into_iter().collect();
            assert_eq!(
                applied,
                graph.ancestors(std::slice::from_ref(target)),
                "{what}: rows {rows:?}"
            );
            rows
        };
        let state = project.state(&rows);
        assert!(
            state.unknown.is_empty() && state.overlapping.is_empty(),
            "{what}: {state:?}"
        );
        let pending: Vec<String> = state.pending.iter().map(|s| s.revision.clone()).collect();
        let (rows_after, ran) = parse_upgrade(after);
        assert_eq!(
            pending, ran,
            "{what}: shipgate's pending list is what alembic ran"
        );
        let after_set: HashSet<String> = rows_after.iter().cloned().collect();
        let effective: HashSet<String> = graph.effective_heads().into_iter().collect();
        assert_eq!(
            after_set, effective,
            "{what}: alembic_version after upgrade heads"
        );
        assert!(
            project.state(&rows_after).is_current(),
            "{what}: nothing pending after"
        );
    }
}

#[test]
fn shipgate_reads_every_fixture_as_the_real_alembic_does() {
    let alembic = alembic();
    std::thread::scope(|scope| {
        let handles: Vec<_> = CASES
            .iter()
            .map(|&(case, extra)| {
                let alembic = alembic.clone();
                scope.spawn(move || {
                    let s = scratch(&fixture(case).display().to_string(), extra);
                    let project = Project::load(&s.ini)
                        .unwrap_or_else(|e| panic!("{case}: shipgate cannot load it:\n{e}"));
                    assert!(
                        !project.graph.revisions().is_empty(),
                        "{case}: no revisions"
                    );
                    let (heads, _) = run(&alembic, &s.ini, &["heads"]);
                    check_heads(&heads, &project.graph, case);
                    let (history, _) = run(&alembic, &s.ini, &["history"]);
                    let n = check_history(&history, &project.graph, case);
                    assert_eq!(n, project.graph.revisions().len(), "{case}");
                    let every: Vec<String> = project
                        .graph
                        .revisions()
                        .iter()
                        .map(|r| r.id.clone())
                        .collect();
                    check_upgrades(&alembic, &s, &project, case, &every);
                })
            })
            .collect();
        for (h, (case, _)) in handles.into_iter().zip(CASES) {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(Box::new(format!("{case}: {panic:?}")));
            }
        }
    });
}

#[test]
fn a_database_ahead_of_the_build_is_not_current() {
    let s = scratch(&fixture("linear").display().to_string(), "");
    let project = Project::load(&s.ini).expect("load");
    let state = project.state(&["27c6a30d7c24".to_owned(), "ffffffffffff".to_owned()]);
    assert_eq!(state.unknown, ["ffffffffffff"]);
    assert!(!state.is_current());
}
