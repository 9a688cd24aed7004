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
    let check = |args: &[&str]| {
        let mut cmd = p.command(None, args);
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
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
