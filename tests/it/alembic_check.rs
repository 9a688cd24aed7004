//! `check --runner alembic`: the real binary rendering revisions with the real Alembic's
//! offline mode (`alembic upgrade A:B --sql`) and linting the SQL — `examples/alembic`, and
//! `tests/fixtures/alembic_check/hazards` (a NOT NULL column without default, a dropped
//! column, a plain index, a revision that needs a live connection, an UPDATE after it).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::alembic_runner::{alembic, copy_dir, example, shipgate};
use crate::support::{Db, Engine, Project, Run};

/// A copy of the hazards fixture, with `extra` revision files added.
fn hazards(extra: &[(&str, &str)]) -> Project {
    let p = Project::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alembic_check/hazards");
    copy_dir(&from, p.root());
    for (name, text) in extra {
        std::fs::write(p.root().join("migrations/versions").join(name), text).expect("write");
    }
    p
}

fn check(p: &Project, db: &Db, args: &[&str]) -> Run {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    Run::wait(shipgate(p, db, &all, None))
}

/// `(rule, file)` of every finding of a `--format json` run.
fn rules(json: &serde_json::Value) -> BTreeSet<(String, String)> {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["file"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(r, f)| ((*r).to_owned(), format!("migrations/versions/{f}")))
        .collect()
}

#[test]
fn the_example_shows_only_what_its_revisions_deserve() {
    let db = Db::new(Engine::Postgres);
    let p = example(&[]);
    // Without a database every table a revision did not create counts as existing and large:
    // 0005's SET NOT NULL on users is the one hazard. 0006's CONCURRENTLY runs in Alembic's
    // autocommit_block (COMMIT before, BEGIN after): not in a transaction.
    let run = check(&p, &db, &["--format", "json"]);
    run.code(5);
    let json = run.json();
    assert_eq!(
        rules(&json),
        pairs(&[("set-not-null", "0005_backfill_user_email.py")]),
        "{run:?}"
    );
    assert_eq!(json["runner"], "alembic");
    assert_eq!(json["engine"], "postgres");
    assert_eq!(json["linted"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        json["findings"][0]["message"],
        "revision 0005, line 5 of its rendered SQL: SET NOT NULL on users.email scans the table under an exclusive lock"
    );
    assert!(
        json["findings"][0]["line"].is_null(),
        "no .py line is invented"
    );
    // One Alembic run renders them all.
    assert_eq!(
        run.stderr.matches("alembic rendered SQL offline").count(),
        1,
        "{run:?}"
    );
    // Against an empty database every table is new in the batch: nothing to fear.
    check(&p, &db, &["--database"])
        .code(0)
        .stdout_has(&["ok: 6 of 6 pending alembic revision(s) rendered and linted for postgres"]);
    // Once applied, nothing is pending and nothing is rendered.
    alembic(&p, &db, &["upgrade", "heads"]);
    let run = check(&p, &db, &["--database"]);
    run.code(0)
        .stdout_has(&["ok: 0 of 0 pending alembic revision(s) rendered and linted"]);
    assert!(
        !run.stderr.contains("alembic rendered SQL offline"),
        "{run:?}"
    );
}

#[test]
fn hazards_name_their_revision_files_and_a_bind_revision_is_a_warning() {
    let db = Db::new(Engine::Postgres);
    // env.py renders with sqlalchemy.url from alembic.ini (port 1: never connected).
    let p = hazards(&[]);
    let run = check(&p, &db, &["--format", "json"]);
    run.code(5);
    let json = run.json();
    assert_eq!(
        rules(&json),
        pairs(&[
            ("add-column-not-null-no-default", "0002_plan_not_null.py"),
            ("drop-column", "0003_drop_name.py"),
            ("index-not-concurrent", "0004_plan_index.py"),
            ("alembic-offline", "0005_count_accounts.py"),
            ("update-without-where", "0006_reset_plans.py"),
        ]),
        "{run:?}"
    );
    let warning = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "alembic-offline")
        .expect("the offline warning");
    assert_eq!(warning["severity"], "warning");
    assert_eq!(
        warning["line"], 10,
        "the line of op.get_bind() in the revision file"
    );
    assert!(
        warning["message"]
            .as_str()
            .is_some_and(|m| m.contains("op.get_bind()") && m.contains("its SQL was not linted")),
        "{warning}"
    );
    assert_eq!(json["not_linted"], serde_json::json!(["0005"]));
    assert_eq!(
        json["linted"],
        serde_json::json!(["0001", "0002", "0003", "0004", "0006"])
    );
    // Two runs around the revision that cannot render: up to 0004, then from after 0005.
    run.stderr_has(&["base:0004", "0005:heads"]);
    assert_eq!(
        run.stderr.matches("alembic rendered SQL offline").count(),
        2,
        "{run:?}"
    );

    let run = check(&p, &db, &["--format", "github"]);
    run.code(5);
    assert!(
        run.stdout.lines().any(|l| l.starts_with(
            "::error file=migrations/versions/0003_drop_name.py,title=shipgate [drop-column]::revision 0003, line 3 of its rendered SQL: column accounts.name dropped"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with(
            "::warning file=migrations/versions/0005_count_accounts.py,line=10::migrations/versions/0005_count_accounts.py:10: revision 0005 cannot be rendered offline"
        )),
        "{run:?}"
    );
    let run = check(&p, &db, &[]);
    run.code(5).stdout_has(&[
        "migrations/versions/0004_plan_index.py: error [index-not-concurrent] revision 0004, line 3 of its rendered SQL",
        "failed: 4 error(s); 5 of 6 alembic revision(s) rendered and linted for postgres (6 revision(s) in alembic.ini, 1 warning(s))",
    ]);
}

#[test]
fn a_revision_that_fails_offline_through_a_helper_is_a_warning_found_by_running_it() {
    let db = Db::new(Engine::Postgres);
    // Not in upgrade()'s text: found when Alembic fails on the mock connection's result.
    let p = hazards(&[(
        "0007_helper.py",
        "\"\"\"reads through a helper\"\"\"\nfrom alembic import op\nimport sqlalchemy as sa\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef _count():\n    return op.get_bind().execute(sa.text(\"SELECT 1\")).scalar()\n\n\ndef upgrade():\n    _count()\n\n\ndef downgrade():\n    pass\n",
    ), (
        "0008_after.py",
        "\"\"\"after it\"\"\"\nfrom alembic import op\n\nrevision = \"0008\"\ndown_revision = \"0007\"\n\n\ndef upgrade():\n    op.drop_table(\"accounts\")\n\n\ndef downgrade():\n    pass\n",
    )]);
    let run = check(&p, &db, &["--format", "json"]);
    run.code(5);
    let json = run.json();
    let found = rules(&json);
    assert!(
        found.contains(&(
            "alembic-offline".to_owned(),
            "migrations/versions/0007_helper.py".to_owned()
        )),
        "{run:?}"
    );
    assert!(
        found.contains(&(
            "drop-table".to_owned(),
            "migrations/versions/0008_after.py".to_owned()
        )),
        "{run:?}"
    );
    let message = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["file"] == "migrations/versions/0007_helper.py")
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("'NoneType' object has no attribute 'scalar'"),
        "{message}"
    );
    assert_eq!(json["not_linted"], serde_json::json!(["0005", "0007"]));
}

#[test]
fn with_a_database_only_pending_revisions_are_linted() {
    let db = Db::new(Engine::Postgres);
    let p = hazards(&[]);
    alembic(&p, &db, &["upgrade", "0003"]);
    // A table past the lint's size threshold (10,000 rows by the planner's estimate).
    db.exec("INSERT INTO accounts (id, plan) SELECT g, 'free' FROM generate_series(1, 20000) g");
    db.exec("ANALYZE accounts");
    let run = check(&p, &db, &["--database", "--format", "json"]);
    run.code(5);
    let json = run.json();
    assert_eq!(json["new"], serde_json::json!(["0004", "0005", "0006"]));
    assert_eq!(json["linted"], serde_json::json!(["0004", "0006"]));
    // Applied revisions (0002's NOT NULL column, 0003's drop) are history: not linted.
    assert_eq!(
        rules(&json),
        pairs(&[
            ("index-not-concurrent", "0004_plan_index.py"),
            ("alembic-offline", "0005_count_accounts.py"),
            ("update-without-where", "0006_reset_plans.py"),
        ]),
        "{run:?}"
    );
    // The range starts at the database's revision.
    run.stderr_has(&["0003:0004", "0005:heads"]);
}

#[test]
fn against_git_lints_the_revisions_changed_since_the_ref() {
    let db = Db::new(Engine::Postgres);
    let p = hazards(&[]);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(p.root())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "base"]);
    // 0003 is edited, 0007 is new (untracked).
    let edited = p.root().join("migrations/versions/0003_drop_name.py");
    let text = std::fs::read_to_string(&edited).expect("read");
    std::fs::write(
        &edited,
        text.replace("drop accounts.name", "drop accounts.name, really"),
    )
    .expect("write");
    std::fs::write(
        p.root().join("migrations/versions/0007_new.py"),
        "\"\"\"new\"\"\"\nfrom alembic import op\n\nrevision = \"0007\"\ndown_revision = \"0006\"\n\n\ndef upgrade():\n    op.execute(\"DELETE FROM accounts\")\n\n\ndef downgrade():\n    pass\n",
    )
    .expect("write");
    let run = check(&p, &db, &["--against-git", "HEAD", "--format", "json"]);
    run.code(5);
    let json = run.json();
    assert_eq!(json["new"], serde_json::json!(["0003", "0007"]));
    assert_eq!(
        rules(&json),
        pairs(&[
            ("drop-column", "0003_drop_name.py"),
            ("delete-without-where", "0007_new.py"),
        ]),
        "{run:?}"
    );
}

#[test]
fn an_env_py_that_fails_fails_check_with_alembics_words_and_no_password() {
    let db = Db::new(Engine::Postgres);
    let p = hazards(&[]);
    std::fs::write(
        p.root().join("migrations/env.py"),
        "import os\nraise RuntimeError('env.py is broken on purpose: ' + os.environ['DATABASE_URL'])\n",
    )
    .expect("write");
    let mut cmd = shipgate(&p, &db, &["check"], None);
    cmd.env(
        "DATABASE_URL",
        "postgresql://app:s3cret-pw@127.0.0.1:5432/never",
    );
    let run = Run::wait(cmd);
    run.code(5).stderr_has(&[
        "before rendering any revision: fix env.py",
        "RuntimeError: env.py is broken on purpose",
    ]);
    assert!(
        !run.stderr.contains("s3cret-pw") && !run.stdout.contains("s3cret-pw"),
        "{run:?}"
    );
}
