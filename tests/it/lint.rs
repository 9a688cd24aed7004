//! The safety lint through the real binary: the release gate against a live PostgreSQL
//! database (a large `users` table blocks, an acknowledgement or a new/tiny table does not, all
//! before the lock) and against MariaDB's size estimates, contract files, `check --format github` against the workflow-command
//! syntax, and `check --against-git` in a temporary repository.

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::support::{block_on, Db, Engine, Project, Run};

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n";
const INDEX: &str = "CREATE INDEX users_email_idx ON users (email);\n";
const ACKNOWLEDGED: &str = "-- shipgate:allow index-not-concurrent users is read-mostly and the build takes seconds\nCREATE INDEX users_email_idx ON users (email);\n";

fn index_exists(db: &Db) -> bool {
    db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 'users_email_idx'") == 1
}

/// Holds shipgate's advisory lock for `db` (key as in `postgres::lock_key`) from a thread of
/// the test until the returned sender is dropped; returns once the lock is held, with the
/// backend pid that holds it.
fn hold_migration_lock(db: &Db) -> (mpsc::Sender<()>, i64, std::thread::JoinHandle<()>) {
    let ident = format!("shipgate:{}:public:shipgate_migrations", db.pg_name());
    let hash = Sha256::digest(ident.as_bytes());
    let half = |b: &[u8]| i32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    let (k1, k2) = (half(&hash[0..4]), half(&hash[4..8]));
    let url = db.url().to_owned();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        block_on(async move {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut c)
                .await
                .expect("pid");
            sqlx::query("SELECT pg_advisory_lock($1, $2)")
                .bind(k1)
                .bind(k2)
                .execute(&mut c)
                .await
                .expect("advisory lock");
            locked_tx.send(i64::from(pid)).expect("test waits");
            let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
            let _ = c.close().await;
        })
    });
    let pid = locked_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("lock taken");
    (release_tx, pid, thread)
}

/// The acceptance scenario: `users` with 50,000 rows blocks an unacknowledged index build with
/// exit 5 before the lock and before any change; the acknowledged file applies.
#[test]
fn the_release_gate_blocks_a_hazard_on_a_large_table_before_the_lock() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("1_users.up.sql", USERS);
    p.run(&db, &["up"]).code(0);
    db.exec("INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 50000) g");
    p.write("2_users_email.up.sql", INDEX);

    // Another session holds the migration lock: a run that reached the lock would wait the
    // whole --lock-wait and exit 4. The gate answers first.
    let (release, holder_pid, holder) = hold_migration_lock(&db);
    let status = p.run(&db, &["status", "--json"]);
    assert_eq!(
        status.code(0).json()["lock_holder"]["pid"],
        holder_pid,
        "{status:?}"
    );
    let run = p.run(&db, &["release", "--lock-wait", "30s"]);
    drop(release);
    holder.join().expect("lock holder thread");
    run.code(5).stderr_has(&[
        "unacknowledged lint error",
        "migrations/2_users_email.up.sql:1:1: error [index-not-concurrent]",
        "on users without CONCURRENTLY",
        "instead: use CREATE INDEX CONCURRENTLY",
    ]);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "waited for the lock: {run:?}"
    );
    assert!(!index_exists(&db), "the index was built");
    assert_eq!(db.versions(), [1]);
    let runs = db.query("SELECT outcome, error FROM shipgate_runs ORDER BY id");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0][0].as_deref(), Some("failed"));

    // `up` has the same gate; a dry run shows what it would refuse.
    p.run(&db, &["up"])
        .code(5)
        .stderr_has(&["[index-not-concurrent]"]);
    for command in ["up", "release"] {
        p.run(&db, &[command, "--dry-run"]).code(5).stdout_has(&[
            "dry run: would apply 1 migration(s)",
            "release gate: refusing to run: 1 unacknowledged lint error(s)",
        ]);
    }
    assert!(!index_exists(&db));

    // Acknowledged, the same statement applies.
    p.write("2_users_email.up.sql", ACKNOWLEDGED);
    p.run(&db, &["release"]).code(0);
    assert!(index_exists(&db));
    assert_eq!(db.versions(), [1, 2]);
}

/// The same unacknowledged file applies where `users` is new (created in the same pending
/// batch) or tiny.
#[test]
fn the_release_gate_lets_new_and_tiny_tables_through() {
    let fresh = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("1_users.up.sql", USERS)
        .write("2_users_email.up.sql", INDEX);
    p.run(&fresh, &["release"]).code(0);
    assert!(index_exists(&fresh));

    let tiny = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("1_users.up.sql", USERS);
    p.run(&tiny, &["up"]).code(0);
    tiny.exec("INSERT INTO users SELECT g, 'user' || g FROM generate_series(1, 10) g");
    p.write("2_users_email.up.sql", INDEX);
    p.run(&tiny, &["release"]).code(0);
    assert!(index_exists(&tiny));

    // The threshold is configurable: 5 rows make the same table large.
    let p2 = Project::new();
    p2.write("1_users.up.sql", USERS)
        .write("2_users_email.up.sql", INDEX)
        .write(
            "3_users_email_lower.up.sql",
            "CREATE INDEX users_lower_idx ON users (lower(email));\n",
        );
    p2.run(&tiny, &["up", "--large-table-rows", "5"])
        .code(5)
        .stderr_has(&["[index-not-concurrent]"]);
    p2.run(
        &tiny,
        &["up", "--lint-gate", "warn", "--large-table-rows", "5"],
    )
    .code(0)
    .stderr_has(&["lint: migrations/3_users_email_lower.up.sql:1:1: error [index-not-concurrent]"]);
}

#[test]
fn contract_files_apply_only_when_allowed() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("1_users.up.sql", USERS);
    p.run(&db, &["up"]).code(0);

    // A drop outside a contract file is a lint error even on a tiny table.
    p.write("2_drop.up.sql", "DROP TABLE users;\n");
    p.run(&db, &["release"])
        .code(5)
        .stderr_has(&["[drop-table] DROP TABLE users"]);

    p.write("2_drop.up.sql", "-- shipgate:contract\nDROP TABLE users;\n");
    p.run(&db, &["release"]).code(5).stderr_has(&[
        "marked `-- shipgate:contract`",
        "migrations/2_drop.up.sql",
        "--allow-contract",
    ]);
    assert!(db.table_exists("users"));
    let mut cmd = p.command(Some(&db), &["release"]);
    cmd.env("SHIPGATE_ALLOW_CONTRACT", "true");
    Run::wait(cmd).code(0);
    assert!(!db.table_exists("users"));
}

/// A workflow command as the runner parses it: `::name key=value,key=value::data`, with `%`,
/// CR and LF escaped everywhere and `:` and `,` escaped in property values.
fn parse_workflow_command(line: &str) -> (String, Vec<(String, String)>, String) {
    let rest = line
        .strip_prefix("::")
        .unwrap_or_else(|| panic!("not a command: {line}"));
    let (head, data) = rest
        .split_once("::")
        .unwrap_or_else(|| panic!("no data: {line}"));
    let (name, props) = head.split_once(' ').unwrap_or((head, ""));
    let unescape = |s: &str| {
        assert!(
            !s.contains('\n') && !s.contains('\r'),
            "raw newline in {line}"
        );
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                let code: String = chars.by_ref().take(2).collect();
                out.push(match code.as_str() {
                    "25" => '%',
                    "0D" => '\r',
                    "0A" => '\n',
                    "3A" => ':',
                    "2C" => ',',
                    other => panic!("bad escape %{other} in {line}"),
                });
            } else {
                out.push(c);
            }
        }
        out
    };
    let props = props
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("bad property {p} in {line}"));
            assert!(!v.contains(':'), "unescaped ':' in property {p}: {line}");
            (k.to_owned(), unescape(v))
        })
        .collect();
    (name.to_owned(), props, unescape(data))
}

#[test]
fn check_github_output_follows_the_workflow_command_syntax() {
    let p = Project::new();
    p.write("1_users.up.sql", USERS)
        .write("1_users.down.sql", "DROP TABLE users;\n")
        .write(
            "2_a,b: 100%.up.sql",
            "SELECT 1;\n  UPDATE users SET email = lower(email);\n",
        )
        .write("2_a,b: 100%.down.sql", "SELECT 1;\n")
        .write("3_c.up.sql", "ALTER TABLE users ADD COLUMN plan text;\n");

    let run = p.run_offline(&["check", "--format", "github"]);
    run.code(5);
    let commands: Vec<_> = run.stdout.lines().map(parse_workflow_command).collect();
    let find = |rule: &str| {
        commands
            .iter()
            .find(|(_, props, _)| {
                props
                    .iter()
                    .any(|(k, v)| k == "title" && v == &format!("shipgate [{rule}]"))
            })
            .unwrap_or_else(|| panic!("no annotation for {rule}: {run:?}"))
    };
    let (name, props, data) = find("update-without-where");
    assert_eq!(name, "error");
    let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["file", "line", "col", "title"]);
    assert_eq!(props[0].1, "migrations/2_a,b: 100%.up.sql");
    assert_eq!((props[1].1.as_str(), props[2].1.as_str()), ("2", "3"));
    assert!(data.starts_with("UPDATE users without WHERE"), "{data}");
    assert!(
        data.contains("\nwhy: ") && data.contains("\ninstead: "),
        "{data}"
    );
    let (name, ..) = find("missing-down");
    assert_eq!(name, "warning");
    assert!(
        run.stdout
            .contains("file=migrations/2_a%2Cb%3A 100%25.up.sql,line=2,col=3,"),
        "{run:?}"
    );

    // Human and JSON carry the same finding.
    p.run_offline(&["check"]).code(5).stdout_has(&[
        "migrations/2_a,b: 100%.up.sql:2:3: error [update-without-where] UPDATE users without WHERE",
        "    why: it rewrites every row",
        "    instead: add a WHERE clause",
        "migrations/3_c.up.sql:1:1: warning [missing-down]",
    ]);
    let doc = p.run_offline(&["check", "--format", "json"]).json();
    let rules: Vec<&str> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(rules, ["update-without-where", "missing-down"], "{doc}");
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.email=it@example.com",
            "-c",
            "user.name=it",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_against_git_lints_only_new_files_and_catches_edits() {
    let p = Project::new();
    // An old, already-applied file with a finding nobody wants to see again.
    p.write("1_users.sql", USERS)
        .write("2_old.sql", "UPDATE users SET email = lower(email);\n");
    git(p.root(), &["init", "-q"]);
    git(p.root(), &["add", "."]);
    git(p.root(), &["commit", "-q", "-m", "base"]);
    // A PostgreSQL project: the configured URL picks the dialect (`check` does not connect).
    let check = |args: &[&str]| {
        let mut cmd = p.command(None, args);
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", "postgres://ci@127.0.0.1:1/app");
        Run::wait(cmd)
    };

    check(&["check", "--against-git", "HEAD"])
        .code(0)
        .stdout_has(&["ok: 2 migration(s) in migrations are valid; 0 linted"]);
    // Without the ref the old finding is reported.
    p.run_offline(&["check"]).code(5);

    // A new, untracked file is linted; a line-ending-only change of an old one is not an edit.
    p.write("3_new.sql", INDEX);
    p.write("1_users.sql", &USERS.replace('\n', "\r\n"));
    let run = check(&["check", "--against-git", "HEAD"]);
    run.code(5)
        .stdout_has(&["migrations/3_new.sql:1:1: error [index-not-concurrent]"]);
    assert!(!run.stdout.contains("2_old.sql"), "{run:?}");
    assert!(!run.stdout.contains("1_users.sql"), "{run:?}");

    // An edit of a file that exists at the ref fails.
    p.write(
        "3_new.sql",
        "-- shipgate:no-transaction\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n",
    );
    p.write(
        "1_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    let run = check(&["check", "--against-git", "HEAD", "--format", "json"]);
    run.code(5);
    let doc = run.json();
    let findings = doc["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{doc}");
    assert_eq!(findings[0]["rule"], "edited-since-ref");
    assert_eq!(findings[0]["file"], "migrations/1_users.sql");

    check(&["check", "--against-git", "no-such-ref"])
        .code(2)
        .stderr_has(&["`no-such-ref` is not a commit"]);
}

/// The release gate on MySQL/MariaDB reads table sizes from `information_schema.TABLES`: a type
/// change on a large `users` is refused before the lock with nothing changed and the refusal
/// recorded; acknowledged it applies; on a fresh database the same file goes through.
#[test]
fn the_release_gate_reads_mysql_table_sizes() {
    const MY_USERS: &str =
        "CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(200) NOT NULL);\n";
    const WIDEN: &str = "ALTER TABLE users MODIFY email VARCHAR(400) NOT NULL;\n";
    let email_width = |db: &Db| {
        db.int(
            "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'email'",
        )
    };

    let db = Db::new(Engine::Mariadb);
    let p = Project::new();
    p.write("1_users.up.sql", MY_USERS);
    p.run(&db, &["up"]).code(0);
    // MariaDB's SEQUENCE engine; ANALYZE so the size estimate is current, not whenever InnoDB
    // gets round to it.
    db.exec(
        "INSERT INTO users SELECT seq, CONCAT('user', seq, '@example.com') FROM seq_1_to_20000",
    );
    db.exec("ANALYZE TABLE users");
    p.write("2_widen_email.up.sql", WIDEN);

    let run = p.run(&db, &["release"]);
    run.code(5).stderr_has(&[
        "unacknowledged lint error",
        "migrations/2_widen_email.up.sql:1:1: error [column-type-change]",
    ]);
    assert_eq!(email_width(&db), 200, "the column changed: {run:?}");
    assert_eq!(db.versions(), [1]);
    let runs = db.query("SELECT outcome FROM shipgate_runs ORDER BY id");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0][0].as_deref(), Some("failed"));

    // Acknowledged, it applies.
    p.write(
        "2_widen_email.up.sql",
        &format!("-- shipgate:allow column-type-change widening a VARCHAR is in place on InnoDB\n{WIDEN}"),
    );
    p.run(&db, &["release"]).code(0);
    assert_eq!(email_width(&db), 400);
    assert_eq!(db.versions(), [1, 2]);

    // Where `users` is created by the same release, there is nothing to protect.
    let fresh = Db::new(Engine::Mariadb);
    let p = Project::new();
    p.write("1_users.up.sql", MY_USERS)
        .write("2_widen_email.up.sql", WIDEN);
    p.run(&fresh, &["release"]).code(0);
    assert_eq!(email_width(&fresh), 400);
}

on_every_engine!(
    a_fresh_database_applies_a_real_history_with_no_refusal,
    against_a_large_table_exactly_the_expected_findings_refuse,
);

/// A history as real projects write them, on each engine: comment-only up files holding a
/// version, empty or comment-only down files (irreversible), `IF EXISTS` drops of what is not
/// there, a column added then dropped in the same batch, a binary-coercible type change, a
/// temporary table, literal seed rows, and (PostgreSQL) DO blocks and plpgsql functions,
/// (SQLite) the table rebuild. The first file creates `users`; the last one updates every row.
fn history(engine: Engine) -> Vec<(&'static str, &'static str)> {
    let mut files = match engine {
        Engine::Postgres => vec![
            ("1_init.up.sql", "CREATE SCHEMA app;\nCREATE TABLE users (id bigint PRIMARY KEY, email varchar(200) NOT NULL);\nCREATE TABLE app.settings (k text);\n"),
            ("1_init.down.sql", "DROP TABLE app.settings;\nDROP TABLE users;\nDROP SCHEMA app;\n"),
            ("2_fn.up.sql", "CREATE FUNCTION touch_settings() RETURNS trigger LANGUAGE plpgsql COST 100 SECURITY DEFINER SET search_path = app AS $$ BEGIN NEW.k = lower(NEW.k); RETURN NEW; END $$;\nDO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN CREATE TYPE mood AS ENUM ('ok', 'sad'); END IF; END $$;\n"),
            ("2_fn.down.sql", ""),
            ("3_widen.up.sql", "ALTER TABLE users ALTER COLUMN email TYPE varchar(500);\nALTER TABLE users ADD COLUMN nickname text;\n"),
            ("3_widen.down.sql", "-- irreversible: emails may be longer than 200 by now\n"),
            ("4_cleanup.up.sql", "DROP SCHEMA IF EXISTS legacy CASCADE;\nDROP TABLE IF EXISTS old_users;\nALTER TABLE users DROP COLUMN nickname;\nCREATE TEMP TABLE staging (id int);\nINSERT INTO staging VALUES (1);\nUPDATE staging SET id = 2;\n"),
            ("5_seed.up.sql", "CREATE TABLE plans (name text PRIMARY KEY);\nALTER TABLE users ADD COLUMN plan text;\nINSERT INTO plans (name) VALUES ('free'), ('pro');\n"),
        ],
        Engine::Mariadb => vec![
            ("1_init.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(200) NOT NULL);\n"),
            ("1_init.down.sql", "DROP TABLE users;\n"),
            ("2_more.up.sql", "ALTER TABLE users ADD COLUMN nickname varchar(50);\nCREATE TABLE plans (name varchar(20) PRIMARY KEY);\n"),
            ("2_more.down.sql", "-- irreversible\n"),
            ("3_cleanup.up.sql", "ALTER TABLE users DROP COLUMN nickname;\nDROP TABLE IF EXISTS old_users;\n"),
            ("4_seed.up.sql", "INSERT INTO plans (name) VALUES ('free'), ('pro');\n"),
        ],
        Engine::Sqlite => vec![
            ("1_init.up.sql", "CREATE TABLE users (id integer PRIMARY KEY, email text);\n"),
            ("1_init.down.sql", "DROP TABLE users;\n"),
            ("2_rebuild.up.sql", "CREATE TABLE users_new (id integer PRIMARY KEY, email text NOT NULL DEFAULT '');\nINSERT INTO users_new (id, email) SELECT id, coalesce(email, '') FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n"),
            ("2_rebuild.down.sql", "/* irreversible: NULL emails became '' */\n"),
            ("3_nickname.up.sql", "ALTER TABLE users ADD COLUMN nickname text;\n"),
            ("4_cleanup.up.sql", "ALTER TABLE users DROP COLUMN nickname;\nDROP TABLE IF EXISTS old_users;\nCREATE TEMP TABLE staging (id int);\nINSERT INTO staging VALUES (1);\n"),
        ],
    };
    files.push((
        "6_hold.up.sql",
        "-- holds version 6: the data fix ran by hand\n",
    ));
    files.push(("7_lower.up.sql", "UPDATE users SET email = lower(email);\n"));
    files
}

/// Rule ids of the `error [rule]` findings in a refusal.
fn refused_rules(run: &Run) -> std::collections::BTreeSet<String> {
    run.stderr
        .lines()
        .filter_map(|l| l.split_once(": error [")?.1.split_once(']'))
        .map(|(rule, _)| rule.to_owned())
        .collect()
}

fn a_fresh_database_applies_a_real_history_with_no_refusal(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    for (name, text) in history(engine) {
        p.write(name, text);
    }
    let run = p.run(&db, &["release"]);
    run.code(0);
    assert!(refused_rules(&run).is_empty(), "{run:?}");
    let last = history(engine).len() as i64;
    let expected: Vec<i64> = db.versions().into_iter().collect();
    assert_eq!(expected.last(), Some(&7), "{run:?}");
    assert!(
        expected.contains(&6),
        "the comment-only up file is recorded: {expected:?} ({last})"
    );

    // The empty and comment-only down files declare their migrations irreversible: `down`
    // refuses before changing anything, naming them.
    let irreversible = match engine {
        Engine::Postgres => "migrations/2_fn.down.sql",
        Engine::Mariadb => "migrations/2_more.down.sql",
        Engine::Sqlite => "migrations/2_rebuild.down.sql",
    };
    p.run(&db, &["down", "--to", "1", "--yes"])
        .code(5)
        .stderr_has(&[
            "is irreversible: its down file",
            irreversible,
            "nothing was reverted",
        ]);
    assert_eq!(db.versions(), expected);

    // `check` says the same as warnings, with the fix (and reports everything else about the
    // files, as CI should see them).
    p.run(&db, &["check"]).stdout_has(&[
        "warning [empty-down]",
        "declares version 2 irreversible",
        "warning [empty-up] 6_hold.up.sql holds no SQL statement",
    ]);
}

fn against_a_large_table_exactly_the_expected_findings_refuse(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let files = history(engine);
    p.write(files[0].0, files[0].1)
        .write(files[1].0, files[1].1);
    p.run(&db, &["up"]).code(0);
    db.exec(
        "INSERT INTO users (id, email) VALUES (1, 'A'), (2, 'B'), (3, 'C'), (4, 'D'), (5, 'E'), (6, 'F'), (7, 'G'), (8, 'H'), (9, 'I'), (10, 'J'), (11, 'K'), (12, 'L'), (13, 'M'), (14, 'N'), (15, 'O'), (16, 'P'), (17, 'Q'), (18, 'R'), (19, 'S'), (20, 'T')",
    );
    match engine {
        Engine::Postgres => db.exec("ANALYZE users"),
        Engine::Mariadb => db.exec("ANALYZE TABLE users"),
        Engine::Sqlite => {}
    }
    for (name, text) in &files[2..] {
        p.write(name, text);
    }
    let large = ["--large-table-rows", "10"];
    let run = p.run(&db, &[&["release"][..], &large].concat());
    run.code(5).stderr_has(&[
        "refusing to run: 1 unacknowledged lint error(s)",
        "migrations/7_lower.up.sql:1:1: error [update-without-where] UPDATE users without WHERE",
    ]);
    assert_eq!(
        refused_rules(&run).into_iter().collect::<Vec<_>>(),
        ["update-without-where"],
        "{run:?}"
    );
    assert_eq!(db.versions(), [1], "nothing was applied");

    // `check --database` reads the catalog the same way: what the database makes harmless
    // (a drop of what is missing or was added in the batch, a widening) is not reported, and
    // the refusal is among its errors.
    let doc = p
        .run(
            &db,
            &[&["check", "--database", "--format", "json"][..], &large].concat(),
        )
        .json();
    let findings = doc["findings"].as_array().expect("findings");
    let errors: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(errors.contains("update-without-where"), "{doc}");
    for rule in [
        "drop-schema",
        "drop-table",
        "drop-column",
        "column-type-change",
    ] {
        assert!(
            !findings.iter().any(|f| f["rule"] == rule),
            "{rule} in {doc}"
        );
    }

    // Made safe, the whole batch applies.
    p.write(
        "7_lower.up.sql",
        "UPDATE users SET email = lower(email) WHERE id BETWEEN 1 AND 1000;\n",
    );
    p.run(&db, &[&["release"][..], &large].concat()).code(0);
    assert_eq!(db.versions().last(), Some(&7));
}

/// PostgreSQL rewrites nothing for a binary-coercible type change (the table keeps its
/// relfilenode), and the gate lets it through on a large table; a real rewrite is refused.
#[test]
fn a_binary_coercible_type_change_passes_the_gate_and_rewrites_nothing() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(200) NOT NULL, score numeric(10,2));\n",
    );
    p.run(&db, &["up"]).code(0);
    db.exec("INSERT INTO users SELECT g, 'u' || g, g FROM generate_series(1, 50) g; ANALYZE users");
    let filenode = || db.int("SELECT pg_relation_filenode('users')");
    let before = filenode();
    p.write(
        "2_widen.up.sql",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(500);\nALTER TABLE users ALTER COLUMN score TYPE numeric;\n",
    )
    .write("3_text.up.sql", "ALTER TABLE users ALTER COLUMN email TYPE text;\n");
    p.run(&db, &["release", "--large-table-rows", "10"]).code(0);
    assert_eq!(filenode(), before, "PostgreSQL rewrote the table");

    p.write(
        "4_bigint.up.sql",
        "ALTER TABLE users ALTER COLUMN id TYPE bigint;\n",
    );
    p.run(&db, &["release", "--large-table-rows", "10"])
        .code(5)
        .stderr_has(&["error [column-type-change] users.id changed from integer to BIGINT"]);
    p.run(&db, &["release", "--lint-gate", "off"]).code(0);
    assert_ne!(filenode(), before, "a real rewrite gets a new relfilenode");
}

/// `check` without DATABASE_URL lints for the embedded SQLite default, and says so; a
/// configured URL picks the engine without connecting.
#[test]
fn check_lints_for_the_database_up_would_migrate() {
    let p = Project::new();
    p.write(
        "1_index.up.sql",
        "CREATE INDEX users_email ON users (email);\n",
    );
    p.run_offline(&["check"]).code(0).stdout_has(&[
        "1 linted for sqlite",
        "the embedded SQLite default; set DATABASE_URL to lint for PostgreSQL or MySQL",
    ]);
    let mut cmd = p.command(None, &["check"]);
    cmd.env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    Run::wait(cmd)
        .code(5)
        .stdout_has(&["error [index-not-concurrent]"]);
}
