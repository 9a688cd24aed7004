//! The secret sweep: every command and endpoint, run with distinctive secrets in the database
//! URL (well-formed and in every malformed shape an operator can type), the config file (valid
//! and broken), the status token, the webhook secret and a webhook URL with a token in its path
//! and query, with debug logs in JSON and text. No secret may appear in any stdout, stderr or
//! HTTP body. Unreachable URLs use a 1 s connect wait so the sweep stays well under a minute.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::support::{Db, Engine, Project, Run, Service};

/// The password in the well-formed PostgreSQL URL (trust auth ignores it).
const PG_PASSWORD: &str = "SweepPgPw41";
/// The password in the config file's `database_url`.
const FILE_PASSWORD: &str = "SweepFilePw42";
/// The token in the config file.
const FILE_TOKEN: &str = "SweepFileTok43";
/// The `/migrations/status` bearer token.
const STATUS_TOKEN: &str = "SweepStatusTok44";
/// The webhook signing key, and the token a hook service put in the receiver's path and query.
const WEBHOOK_KEY: &str = "sweep-webhook-key-45-0123456789";
const HOOK_PATH_TOKEN: &str = "SweepHookPath46";
const HOOK_QUERY_TOKEN: &str = "SweepHookQuery47";

/// Malformed or unreachable database URLs, each with its own secret: what an operator can
/// type, and what the driver echoes.
fn malformed_urls() -> Vec<(&'static str, String)> {
    vec![
        // Unencoded `?`, `#` and `/` in the password.
        (
            "SweepQ1x",
            "postgres://postgres:SweepQ1x?a#b/c@127.0.0.1:5432/postgres".into(),
        ),
        // Digits then `/`: the URL parses, with the password's head as the port.
        (
            "SweepD2x",
            "postgres://postgres:4242/SweepD2x@127.0.0.1:5432/postgres".into(),
        ),
        // No `//`: the driver would send the password as the database name.
        (
            "SweepN3x",
            "postgres:postgres:SweepN3x@127.0.0.1/postgres".into(),
        ),
        // No scheme.
        ("SweepS4x", "postgres:SweepS4x@127.0.0.1:5432/db".into()),
        ("SweepS5x", "someone:SweepS5x@127.0.0.1:5432/db".into()),
        // Secret query parameters, logged by the driver as unrecognised.
        (
            "SweepP6x",
            "postgres://postgres@127.0.0.1:1/db?sslpassword=SweepP6x&sslmode=disable".into(),
        ),
        (
            "SweepP7x",
            "postgres://postgres@127.0.0.1:1/db?PASSWORD=SweepP7x".into(),
        ),
        // Unreachable, password percent-encoded (its decoded form must not appear either).
        (
            "SweepE8x@pw",
            "postgres://postgres:SweepE8x%40pw@127.0.0.1:1/db".into(),
        ),
        // MySQL shapes.
        (
            "SweepM9x",
            "mysql://root:SweepM9x?#@127.0.0.1:3306/db".into(),
        ),
        ("SweepM10x", "mysql:root:SweepM10x@127.0.0.1/db".into()),
        (
            "SweepM11x",
            "mariadb://root:SweepM11x@127.0.0.1:1/db".into(),
        ),
        (
            "SweepM12x",
            "mysql://root@127.0.0.1:1/db?password=SweepM12x".into(),
        ),
    ]
}

/// Config files that break in the line holding a secret.
fn broken_config_files() -> Vec<&'static str> {
    vec![
        "database_url = \"postgres://u:SweepFilePw42@h/db\nstatus_token = \"x\"\n",
        "status_token = SweepFileTok43\n",
        "status_token = 'SweepFileTok43\n",
        "status_token = \"SweepFileTok43\"\nstatus_token = \"SweepFileTok43\"\n",
        "webhook_url = [\"https://h/SweepHookPath46\"\n",
        "status_token = 918273645\nwebhook_secret = \"SweepFileTok43\"\n",
        "[SweepFileTok43\n",
    ]
}

/// Every secret of the sweep, in every form it could be printed in.
fn secrets() -> Vec<String> {
    let mut all: Vec<String> = vec![
        PG_PASSWORD,
        FILE_PASSWORD,
        FILE_TOKEN,
        STATUS_TOKEN,
        WEBHOOK_KEY,
        HOOK_PATH_TOKEN,
        HOOK_QUERY_TOKEN,
        "918273645",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    all.push(
        webhook_secret()
            .trim_start_matches("whsec_")
            .trim_end_matches('=')
            .to_owned(),
    );
    for (secret, _) in malformed_urls() {
        all.push(secret.to_owned());
        all.push(secret.replace('@', "%40"));
    }
    all
}

fn webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(WEBHOOK_KEY)
    )
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} prints the secret {secret:?}:\n{text}"
        );
    }
}

#[track_caller]
fn assert_run_clean(what: &str, run: &Run) {
    assert_clean(&format!("{what}: stdout"), &run.stdout);
    assert_clean(&format!("{what}: stderr"), &run.stderr);
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("a bound address").port()
}

/// `shipgate -v <args>` with the secrets in the environment, JSON logs, short waits.
fn command(p: &Project, url: &str, hook: &str, args: &[&str]) -> Command {
    let mut cmd = p.command(None, &["-v"]);
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env("SHIPGATE_LOG_FORMAT", "json")
        .env("SHIPGATE_CONNECT_TIMEOUT", "1s")
        .env("PORT", "0")
        .env("SHIPGATE_STATUS_TOKEN", STATUS_TOKEN)
        .env("SHIPGATE_WEBHOOK_SECRET", webhook_secret())
        .env("SHIPGATE_WEBHOOK_URL", hook)
        .env("SHIPGATE_WEBHOOK_TIMEOUT", "1s")
        .env("SHIPGATE_WEBHOOK_RETRIES", "0");
    cmd
}

#[track_caller]
fn sweep(what: &str, cmd: Command) -> Run {
    let run = Run::wait_within(cmd, Duration::from_secs(20));
    assert_run_clean(what, &run);
    run
}

#[test]
fn no_command_endpoint_or_malformed_input_prints_a_secret() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write("1_users.down.sql", "DROP TABLE users;\n");
    p.write(
        "2_items.up.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY);\n",
    );
    p.write("2_items.down.sql", "DROP TABLE items;\n");
    let url = db
        .url()
        .replacen("postgres@", &format!("postgres:{PG_PASSWORD}@"), 1);
    assert!(url.contains(PG_PASSWORD), "{url}");
    let hook = format!(
        "http://127.0.0.1:{}/hooks/{HOOK_PATH_TOKEN}?token={HOOK_QUERY_TOKEN}",
        closed_port()
    );

    // Every command against a live database, with the webhook failing.
    let commands: &[&[&str]] = &[
        &["up"],
        &["status"],
        &["status", "--json"],
        &["history"],
        &["history", "--json"],
        &["check"],
        &["check", "--database"],
        &[
            "check",
            "--database",
            "postgres:postgres:SweepN3x@127.0.0.1/postgres",
        ],
        &["release", "--dry-run"],
        &["down", "--steps", "1", "--yes"],
        &["release"],
        &["exec", "--", "true"],
        &["baseline", "--version", "1"],
        &["repair", "--accept-checksum", "1", "--reason", "sweep"],
    ];
    let mut release_logs = String::new();
    for args in commands {
        let run = sweep(&args.join(" "), command(&p, &url, &hook, args));
        if args == &["release"] {
            release_logs = run.stderr.clone();
        }
    }
    assert!(
        release_logs.contains("127.0.0.1"),
        "the failed webhook delivery is logged with its host: {release_logs}"
    );
    for args in [
        "up", "down", "status", "history", "new", "check", "baseline", "repair", "release",
        "serve", "exec",
    ] {
        sweep(
            &format!("{args} --help"),
            command(&p, &url, &hook, &[args, "--help"]),
        );
    }
    sweep("--help", command(&p, &url, &hook, &["--help"]));

    // The same settings from a config file, text logs.
    let file = p.write_root(
        "sweep.toml",
        &format!(
            "database_url = \"{}\"\nstatus_token = \"{FILE_TOKEN}\"\nwebhook_url = \"{hook}\"\n\
             webhook_secret = \"{}\"\nwebhook_retries = 0\nwebhook_timeout = \"1s\"\n",
            db.url()
                .replacen("postgres@", &format!("postgres:{FILE_PASSWORD}@"), 1),
            webhook_secret()
        ),
    );
    for args in [&["status"][..], &["release"], &["history"]] {
        let mut cmd = p.command(None, &["-v", "--config"]);
        cmd.arg(&file).args(args);
        sweep(&format!("config file, {}", args.join(" ")), cmd);
    }

    // Config files broken on a line holding a secret.
    for (i, text) in broken_config_files().into_iter().enumerate() {
        let file = p.write_root(&format!("broken{i}.toml"), text);
        let mut cmd = p.command(None, &["-v", "--config"]);
        cmd.arg(&file).arg("status");
        sweep(&format!("config file {text:?}"), cmd).code(2);
    }

    // Malformed and unreachable URLs, concurrently (each waits at most the 1 s connect wait).
    std::thread::scope(|scope| {
        for (secret, bad) in malformed_urls() {
            let (p, hook) = (&p, &hook);
            scope.spawn(move || {
                for args in [&["status"][..], &["release"], &["check", "--database"]] {
                    let run = sweep(
                        &format!("{bad} {}", args.join(" ")),
                        command(p, &bad, hook, args),
                    );
                    assert!(run.code != Some(0), "{secret}: {run:?}");
                }
            });
        }
    });

    // serve: every endpoint, the status endpoint with the right and a wrong token.
    let service = Service::start(command(&p, &url, &hook, &["serve"]));
    service.wait_ready(Duration::from_secs(10));
    let bearer = format!("Bearer {STATUS_TOKEN}");
    let wrong = format!("Bearer {STATUS_TOKEN}-not");
    let responses = [
        service.get_as("/health", None),
        service.get_as("/health/ready", None),
        service.get_as("/migrations/status", Some(&bearer)),
        service.get_as("/migrations/status", Some(&wrong)),
        service.get_as("/migrations/status", None),
        service.get_as("/metrics", None),
    ];
    assert_eq!(responses[2].status, 200, "{:?}", responses[2]);
    assert_eq!(responses[3].status, 401, "{:?}", responses[3]);
    for r in &responses {
        assert_clean("an HTTP response", &format!("{r:?}"));
    }
    service.terminate();
    let run = service.wait(Duration::from_secs(20));
    assert_run_clean("serve", &run);
}
