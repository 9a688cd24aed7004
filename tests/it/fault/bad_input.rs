//! Bad input, across migration files, directives, config files, environment variables, flags
//! and database URLs: each case has its documented exit code and a message that names the
//! problem; none panics, none prints a secret, and none writes anything to the database.
//! (Bad HTTP requests are in `http_abuse`.)

use std::process::Command;

use crate::support::{Db, Engine, Project, Run, DB_PASSWORD, WEBHOOK_SECRET};

/// One case: what to set up, how to run, and what must come out.
struct Case {
    name: &'static str,
    /// Migration files (name, bytes).
    files: Vec<(&'static str, Vec<u8>)>,
    /// A config file's text, written to `shipgate.toml` and passed with `--config`.
    config: Option<&'static str>,
    /// Environment variables.
    env: Vec<(&'static str, String)>,
    /// Arguments (the command and its flags).
    args: Vec<String>,
    /// Whether `DATABASE_URL` is set (to the test database, with a password).
    url: bool,
    /// The expected exit code.
    code: i32,
    /// Fragments the error output must contain.
    says: Vec<&'static str>,
}

fn case(name: &'static str, code: i32, says: &[&'static str]) -> Case {
    Case {
        name,
        files: vec![("1_ok.up.sql", b"CREATE TABLE ok (id integer);\n".to_vec())],
        config: None,
        env: Vec::new(),
        args: vec!["release".into()],
        url: true,
        code,
        says: says.to_vec(),
    }
}

impl Case {
    fn file(mut self, name: &'static str, text: &str) -> Case {
        self.files.push((name, text.as_bytes().to_vec()));
        self
    }
    fn only(mut self, name: &'static str, bytes: &[u8]) -> Case {
        self.files = vec![(name, bytes.to_vec())];
        self
    }
    fn config(mut self, text: &'static str) -> Case {
        self.config = Some(text);
        self
    }
    fn env(mut self, key: &'static str, value: impl Into<String>) -> Case {
        self.env.push((key, value.into()));
        self
    }
    fn no_url(mut self) -> Case {
        self.url = false;
        self
    }
    fn args(mut self, args: &[&str]) -> Case {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }
}

fn cases() -> Vec<Case> {
    let bad_utf8 = b"CREATE TABLE t (name text DEFAULT '\xff\xfe');\n";
    vec![
        // Migration files.
        case("two down files for one version", 5, &["1_undo.down.sql", "duplicate version 1"])
            .file("1_ok.down.sql", "DROP TABLE ok;\n")
            .file("1_undo.down.sql", "DROP TABLE ok;\n"),
        case("a version that is not a number", 5, &["x_bad.sql", "bad migration file name"])
            .file("x_bad.sql", "SELECT 1;"),
        case("version 0", 5, &["version 0 is not positive"]).file("0_zero.sql", "SELECT 1;"),
        case("a version past i64", 5, &["is larger than"])
            .file("99999999999999999999_big.sql", "SELECT 1;"),
        case("an empty name", 5, &["the name after the version is empty"])
            .file("2_.up.sql", "SELECT 1;"),
        case("no underscore", 5, &["no `_` between version and name"])
            .file("2nounderscore.sql", "SELECT 1;"),
        case("a duplicate version", 5, &["duplicate version 1"]).file("1_again.sql", "SELECT 1;"),
        case("a down file without its up file", 5, &["down file without an up file"])
            .file("2_gone.down.sql", "SELECT 1;"),
        case("a file that is not UTF-8", 5, &["not valid UTF-8", "offset"])
            .file("2_bytes.up.sql", "")
            .only("2_bytes.up.sql", bad_utf8),
        case("COMMIT inside shipgate's transaction", 5, &["`COMMIT` in a migration"])
            .file("2_commit.up.sql", "CREATE TABLE a (id integer);\nCOMMIT;\nCREATE TABLE b (id integer);\n"),
        case("a stray ROLLBACK", 5, &["`ROLLBACK` in a migration"])
            .file("2_rollback.up.sql", "CREATE TABLE a (id integer);\nROLLBACK;\n"),
        // Directives.
        case("a misspelt directive", 5, &["unknown directive `shipgate:no-transactoin`"])
            .file("2_typo.up.sql", "-- shipgate:no-transactoin\nSELECT 1;\n"),
        case("a directive with a bad duration", 5, &["shipgate:lock-timeout", "expected a duration"])
            .file("2_d.up.sql", "-- shipgate:lock-timeout soon\nSELECT 1;\n"),
        case("a duration no server accepts", 5, &["shipgate:statement-timeout", "at most 24d"])
            .file("2_d.up.sql", "-- shipgate:statement-timeout 100000000h\nSELECT 1;\n"),
        case("a directive after the SQL", 5, &["must stand in the comment block"])
            .file("2_late.up.sql", "SELECT 1;\n-- shipgate:no-transaction\n"),
        case("a flag directive with an argument", 5, &["takes no argument"])
            .file("2_c.up.sql", "-- shipgate:contract yes\nSELECT 1;\n"),
        case("allow without a reason", 5, &["needs a reason"])
            .file("2_a.up.sql", "-- shipgate:allow drop-table\nSELECT 1;\n"),
        // Directories.
        case("a missing migrations directory", 5, &["cannot read migrations directory", "nope"])
            .args(&["--migrations", "nope", "release"]),
        case("a migrations path that is a file", 5, &["cannot read migrations directory"])
            .args(&["--migrations", "shipgate.toml", "release"])
            .config(""),
        // Config files.
        case("a config file that does not exist", 2, &["config file", "missing.toml", "cannot read"])
            .args(&["--config", "missing.toml", "release"]),
        case("an unknown config key", 2, &["unknown key `lock_wiat` (line 1)"])
            .config("lock_wiat = \"1s\"\n"),
        case("config that is not TOML", 2, &["config file", "shipgate.toml"])
            .config("lock_wait = [\n"),
        case("a config value of the wrong type", 2, &["lock_retries", "expected a whole number"])
            .config("lock_retries = \"x\"\n"),
        case("a port out of range", 2, &["port", "from 0 to 65535"]).config("port = 70000\n"),
        case("a table prefix that is not an identifier", 2, &["table_prefix"])
            .config("table_prefix = \"Bad-Prefix\"\n"),
        case("a config URL of an unknown scheme", 2, &["unsupported scheme `mysql2`"])
            .config("database_url = \"mysql2://u:s3cret-pw@h/db\"\n")
            .no_url(),
        case("a webhook secret that is not whsec_", 2, &["webhook_secret", "whsec_"])
            .config("webhook_secret = \"s3cret-pw\"\n"),
        // Environment.
        case("a duration that is not one", 2, &["environment variable SHIPGATE_LOCK_WAIT"])
            .env("SHIPGATE_LOCK_WAIT", "forever"),
        case("a boolean that is not one", 2, &["strict", "true or false"])
            .env("SHIPGATE_STRICT", "perhaps"),
        case("a webhook URL that is not http", 2, &["webhook_url", "http:// or https://"])
            .env("SHIPGATE_WEBHOOK_URL", "ftp://hooks.example/x"),
        case("an unknown log format", 2, &["log_format", "text or json"])
            .env("SHIPGATE_LOG_FORMAT", "xml"),
        case("a negative port", 2, &["port", "PORT"]).env("PORT", "-1"),
        case("too many retries", 2, &["lock_retries", "from 0 to 1000"])
            .env("SHIPGATE_LOCK_RETRIES", "5000"),
        case("an io timeout that is not a duration", 2, &["io_timeout"])
            .env("SHIPGATE_IO_TIMEOUT", "abc"),
        // Flags.
        case("a lock timeout no server accepts", 2, &["lock_timeout", "flag --lock-timeout", "at most 24d"])
            .args(&["--lock-timeout", "1000000h", "release"]),
        case("a statement timeout no server accepts", 2, &["statement_timeout", "at most 24d"])
            .env("SHIPGATE_STATEMENT_TIMEOUT", "9999999999s"),
        case("a lock timeout in the file no server accepts", 2, &["lock_timeout", "shipgate.toml:1"])
            .config("lock_timeout = \"30d\"\n"),
        case("a negative duration", 2, &["statement_timeout", "expected a duration"])
            .env("SHIPGATE_STATEMENT_TIMEOUT", "-5s"),
        case("a negative duration flag", 2, &["unexpected argument '-5'"])
            .args(&["--statement-timeout", "-5s", "release"]),
        case("an io timeout of u64::MAX seconds reads fine", 0, &["pending"])
            .env("SHIPGATE_IO_TIMEOUT", "18446744073709551615s")
            .args(&["status"]),
        case("a server setting refused at connect", 2, &["lock_timeout", "22023"])
            .env("DATABASE_URL", format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:5432/postgres?options=-c%20lock_timeout%3Dfast")),
        case("an unknown flag", 2, &["--frobnicate"]).args(&["release", "--frobnicate"]),
        case("an unknown command", 2, &["deploy"]).args(&["deploy"]),
        case("repair without an action", 2, &["required"]).args(&["repair"]),
        case("accept-checksum without a reason", 2, &["--reason"])
            .args(&["repair", "--accept-checksum", "1"]),
        case("mark-rolled-back without a reason", 2, &["--mark-rolled-back needs --reason"])
            .args(&["repair", "--mark-rolled-back", "1"]),
        case("mark-applied with an empty reason", 2, &["--mark-applied needs --reason"])
            .args(&["repair", "--mark-applied", "1", "--reason", " "]),
        case("--to that is not a version", 2, &["notanumber"]).args(&["up", "--to", "notanumber"]),
        case("down without a range", 2, &["required"]).args(&["down", "--yes"]),
        case("--to a version that does not exist", 5, &["--to 7", "no migration with that version"])
            .args(&["release", "--to", "7"]),
        // Database URLs.
        case("a URL of an unknown scheme", 2, &["unsupported scheme `http`"])
            .env("DATABASE_URL", "http://db.example/x"),
        case("a URL that is not one", 2, &["not a URL"]).env("DATABASE_URL", "just words"),
        case("a PostgreSQL URL that does not parse", 2, &["does not parse (invalid port number)", "u:***@"])
            .env("DATABASE_URL", format!("postgres://u:{DB_PASSWORD}@127.0.0.1:notaport/db")),
        case("a MySQL URL that does not parse", 2, &["does not parse (invalid port number)", "u:***@"])
            .env("DATABASE_URL", format!("mysql://u:{DB_PASSWORD}@127.0.0.1:notaport/db")),
        case("a server nobody listens on", 3, &["unreachable after", "u:***@127.0.0.1:1/db"])
            .env("DATABASE_URL", format!("postgres://u:{DB_PASSWORD}@127.0.0.1:1/db"))
            .env("SHIPGATE_CONNECT_TIMEOUT", "1s"),
        // What the server refuses on every attempt fails at once (exit 2), not after the wait.
        case("a database that does not exist", 2, &["does not exist", "3D000", "no_such_db_x"])
            .env("DATABASE_URL", format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:5432/no_such_db_x")),
        case("a role that does not exist", 2, &["no_such_role_x", "does not exist", "28000"])
            .env("DATABASE_URL", format!("postgres://no_such_role_x:{DB_PASSWORD}@127.0.0.1:5432/postgres")),
        case("a wrong MySQL password", 2, &["Access denied", "1045", "root:***@"])
            .env("DATABASE_URL", format!("mysql://root:{DB_PASSWORD}@127.0.0.1:3306/test")),
        case("a MySQL database that does not exist", 2, &["Unknown database", "1049"])
            .env("DATABASE_URL", "mysql://root@127.0.0.1:3306/no_such_db_x"),
        case("TLS required by the URL, not offered by the server", 2, &["does not support TLS"])
            .env("DATABASE_URL", "mysql://root@127.0.0.1:3306/test?ssl-mode=REQUIRED"),
        case("a session_init that fails", 2, &["session_init failed"])
            .env("SHIPGATE_SESSION_INIT", "SELEKT 1"),
    ]
}

fn command(p: &Project, db: &Db, c: &Case) -> Command {
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    // As a platform runs it (JSON logs, a password in the URL), without the platform's other
    // variables, which would override the config file cases.
    let mut cmd = p.command(None, &[]);
    cmd.env("SHIPGATE_LOG_FORMAT", "json");
    if c.url {
        cmd.env("DATABASE_URL", db.url_with_password());
    }
    if c.config.is_some() && !c.args.iter().any(|a| a == "--config") {
        cmd.arg("--config").arg("shipgate.toml");
    }
    cmd.args(&args).env("SHIPGATE_CONNECT_TIMEOUT", "10s");
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn bad_input_is_refused_with_its_exit_code_and_a_message_and_writes_nothing() {
    let db = Db::new(Engine::Postgres);
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let p = Project::new();
        for (name, bytes) in &c.files {
            p.write_bytes(name, bytes);
        }
        if let Some(text) = c.config {
            p.write_root("shipgate.toml", text);
        }
        let run = Run::wait_within(command(&p, &db, c), std::time::Duration::from_secs(60));
        let output = format!("{}{}", run.stdout, run.stderr);
        let mut problems = Vec::new();
        if run.code != Some(c.code) {
            problems.push(format!("exit {:?}, want {}", run.code, c.code));
        }
        for s in &c.says {
            if !output.contains(s) {
                problems.push(format!("no {s:?}"));
            }
        }
        if output.contains("panicked") {
            problems.push("panicked".into());
        }
        let key = WEBHOOK_SECRET.trim_start_matches("whsec_");
        if output.contains(DB_PASSWORD) || output.contains(key) {
            problems.push("printed a secret".into());
        }
        let tables =
            db.int("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'");
        if tables != 0 {
            problems.push(format!("{tables} table(s) written"));
            db.exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n{run:?}", c.name, problems.join(", ")));
        }
    }
    let mut tally = super::Tally::new(
        "bad input: files, directives, config, env, flags, URLs",
        "postgres",
    );
    tally.trials = cases.len();
    tally.survived = cases.len() - failures.len();
    tally.note =
        "documented exit code and message; no panic, no secret printed, nothing written".into();
    tally.failures = failures;
    tally.finish();
}
