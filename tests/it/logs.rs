//! Logs as a platform's log view reads them: with `--log-format json` every line a release
//! prints, on stdout and stderr, is one JSON object with a string `message` and a lowercase
//! `level`, and no secret appears in any of it, whether the release succeeds, fails, cannot
//! reach the database or is misconfigured.

use std::time::Duration;

use crate::support::{assert_secret_free, Db, Engine, Project, Receiver, Reply, Run, DB_PASSWORD};

/// Panics unless every line of stdout and stderr is a JSON log object; returns them.
#[track_caller]
fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{stream} line is not JSON ({e}): {line:?}\n{run:?}"));
            assert!(value["message"].is_string(), "no message: {line}");
            assert!(
                matches!(
                    value["level"].as_str(),
                    Some("trace" | "debug" | "info" | "warn" | "error")
                ),
                "level must be lowercase: {line}"
            );
            out.push(value);
        }
    }
    assert!(!out.is_empty(), "nothing logged: {run:?}");
    run.secret_free();
    out
}

#[test]
fn every_line_of_a_release_is_a_json_log_object_without_secrets() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let hooks = Receiver::start(Reply::Accept);
    let release = |extra: &[&str]| {
        let mut args = vec!["release"];
        args.extend_from_slice(extra);
        let mut cmd = p.platform_command(&db, &args);
        cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url)
            .env("RAILWAY_DEPLOYMENT_ID", "dep-logs");
        Run::wait(cmd)
    };

    // Success: a summary line with flat fields.
    let ok = release(&[]);
    ok.code(0);
    let lines = json_lines(&ok);
    let summary = lines.last().cloned().unwrap_or_default();
    assert_eq!(summary["level"], "info", "{ok:?}");
    let message = summary["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("applied 1 migration(s)") && message.contains("now at version 1"),
        "{ok:?}"
    );
    assert_eq!(summary["applied"], 1, "{ok:?}");
    assert!(summary["duration_ms"].is_u64(), "{ok:?}");
    assert!(
        lines
            .iter()
            .any(|l| l["migration_version"] == 1 && l["duration_ms"].is_u64()),
        "a flat migration_version field: {ok:?}"
    );
    assert!(
        lines.iter().any(|l| l["deploy_id"] == "dep-logs"),
        "the deploy id is logged: {ok:?}"
    );

    // Nothing to do.
    let again = release(&[]);
    again.code(0);
    json_lines(&again);

    // A failing migration: one last line that says what failed and what to do next.
    p.write(
        "2_broken.up.sql",
        "CREATE TABLE t2 (id bigint);\nSELECT * FROM no_such_table;\n",
    );
    let failed = release(&[]);
    failed.code(1);
    let lines = json_lines(&failed);
    let last = lines.last().cloned().unwrap_or_default();
    assert_eq!(last["level"], "error", "{failed:?}");
    assert_eq!(last["exit_code"], 1, "{failed:?}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("migration 2") && m.contains("no_such_table")),
        "{failed:?}"
    );
    assert!(last["next"].is_string(), "says what to do next: {failed:?}");

    for d in hooks.deliveries() {
        assert_secret_free("webhook body", &d.text());
    }
    assert_eq!(
        hooks.deliveries().len(),
        6,
        "three releases, two events each"
    );
}

#[test]
fn an_unreachable_database_and_a_bad_secret_are_reported_as_json_without_secrets() {
    let p = Project::with_users();

    // Nothing listens on port 9: the connect wait runs out.
    let mut cmd = p.command(
        None,
        &["release", "--log-format", "json", "--connect-timeout", "1s"],
    );
    cmd.env(
        "DATABASE_URL",
        format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:9/nowhere"),
    );
    let unreachable = Run::wait(cmd);
    unreachable.code(3);
    assert!(
        unreachable.elapsed < Duration::from_secs(10),
        "{unreachable:?}"
    );
    let lines = json_lines(&unreachable);
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("postgres://postgres:***@127.0.0.1:9/nowhere"))),
        "the URL is named, redacted: {unreachable:?}"
    );

    // A malformed webhook secret: a configuration error that must not echo the value.
    let db = Db::new(Engine::Postgres);
    let mut cmd = p.platform_command(&db, &["release"]);
    cmd.env(
        "SHIPGATE_WEBHOOK_SECRET",
        "whsec_%%shipgate-it-webhook-key%%",
    );
    let misconfigured = Run::wait(cmd);
    misconfigured.code(2);
    let lines = json_lines(&misconfigured);
    assert!(
        lines.iter().any(|l| {
            l["message"].as_str().is_some_and(|m| {
                m.contains("webhook_secret") && m.contains("SHIPGATE_WEBHOOK_SECRET")
            })
        }),
        "the key and its source are named: {misconfigured:?}"
    );
    assert!(
        !db.table_exists("shipgate_migrations"),
        "no connection was made"
    );
}

/// Runs `shipgate ARGS 2>` a pseudo-terminal (util-linux `script`), stdout into `out` — as a
/// person typing `shipgate status --json > out.json` would. Returns what reached the terminal.
fn on_a_terminal(p: &Project, db: &Db, args: &str, env: &[(&str, &str)]) -> String {
    let out = p.root().join("out");
    let line = format!(
        "{} {args} > {}",
        env!("CARGO_BIN_EXE_shipgate"),
        out.display()
    );
    in_a_terminal(p, db, &line, env)
}

/// Runs the shell command `line` in a pseudo-terminal (util-linux `script`) with the
/// project's environment; returns what reached the terminal.
fn in_a_terminal(p: &Project, db: &Db, line: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("DATABASE_URL", db.url())
        .env("SHIPGATE_MIGRATIONS", p.migrations())
        .current_dir(p.root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = cmd.output().expect("script runs");
    assert!(run.status.success(), "{run:?}");
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// The log format follows stderr, where logs go: on a terminal they are text even when stdout
/// is redirected (and stdout keeps only the command's output); in a pipe they are JSON. Colour
/// is on a terminal only, off with `NO_COLOR` or `--color never`, forced by `--color always`.
#[test]
fn the_log_format_and_colour_follow_stderr_no_color_and_the_color_flag() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let out = || std::fs::read_to_string(p.root().join("out")).expect("out");
    let terminal = on_a_terminal(&p, &db, "up", &[]);
    assert!(out().contains("applied 1 migration(s)"), "{}", out());
    assert!(!out().contains("INFO"), "logs on stdout: {}", out());
    assert!(
        terminal.contains("INFO"),
        "no text logs on the terminal: {terminal:?}"
    );
    assert!(
        !terminal.contains("{\"timestamp\""),
        "JSON on a terminal: {terminal}"
    );
    assert!(coloured(&terminal), "no colour on a terminal: {terminal:?}");
    let terminal = on_a_terminal(&p, &db, "status --json", &[("NO_COLOR", "1")]);
    assert!(
        !coloured(&terminal),
        "colour despite NO_COLOR: {terminal:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&out()).expect("stdout is the status document only");
    assert_eq!(json["applied"].as_array().map(Vec::len), Some(1), "{json}");
    p.write("2_orders.up.sql", "CREATE TABLE orders (id bigint);\n");
    let terminal = on_a_terminal(&p, &db, "up --color never -v", &[]);
    assert!(terminal.contains("DEBUG"), "{terminal:?}");
    assert!(
        !coloured(&terminal),
        "colour despite --color never: {terminal:?}"
    );

    // A pipe: JSON by default; text with colour only when forced.
    p.write("3_items.up.sql", "CREATE TABLE items (id bigint);\n");
    let mut piped = p.command(Some(&db), &["up"]);
    piped.env_remove("SHIPGATE_LOG_FORMAT");
    let run = Run::wait(piped);
    run.code(0);
    json_lines(&Run {
        stdout: String::new(),
        ..run
    });
    p.write("5_tags.up.sql", "CREATE TABLE tags (id bigint);\n");
    let run = p.run(&db, &["up", "--color", "always"]);
    run.code(0);
    assert!(run.stderr.contains('\u{1b}'), "{run:?}");
    p.write("6_more.up.sql", "CREATE TABLE more (id bigint);\n");
    let run = p.run(&db, &["up"]);
    run.code(0).stderr_has(&["applied 1/1 6 more in "]);
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
}

/// What a terminal shows at the end of `output`, line by line: escape sequences dropped and a
/// carriage return starting its line again (enough for the one-line progress display).
fn screen(output: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for raw in output.split('\n') {
        // The terminal ends lines with CR LF.
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let mut text = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\u{1b}' => {
                    if chars.peek() == Some(&'[') {
                        chars.next();
                        // Parameters, then the final byte (a letter).
                        for p in chars.by_ref() {
                            if p.is_ascii_alphabetic() {
                                break;
                            }
                        }
                    }
                }
                '\r' => text.clear(),
                c => text.push(c),
            }
        }
        lines.push(text);
    }
    lines
}

/// On a terminal the migration being applied is a progress display redrawn in place (with
/// its elapsed time), not start and heartbeat lines; every log line still reaches the
/// terminal whole, above it, and the display is gone when the run ends.
#[test]
fn on_a_terminal_progress_is_a_display_that_leaves_the_log_lines_whole() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write("2_slow.up.sql", "SELECT pg_sleep(6);\n");
    let terminal = on_a_terminal(&p, &db, "up --color never", &[]);
    assert!(
        terminal.contains("applying 2/2 2 slow"),
        "no progress display: {terminal:?}"
    );
    let shown = screen(&terminal);
    let logs: Vec<&String> = shown.iter().filter(|l| l.contains(" INFO ")).collect();
    assert!(
        logs.iter().any(|l| l.contains("applied 1/2 1 users in ")),
        "{shown:#?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("applied 2/2 2 slow in 6.")),
        "{shown:#?}"
    );
    for line in &logs {
        assert!(
            line.starts_with("20"),
            "a log line garbled: {line:?} in {shown:#?}"
        );
        assert!(!line.contains("applying "), "a start line: {shown:#?}");
        assert!(
            !line.contains("still applying"),
            "a heartbeat line: {shown:#?}"
        );
    }
    assert!(
        !shown.iter().any(|l| l.contains("applying")),
        "the display was left on the terminal: {shown:#?}"
    );
    let out = std::fs::read_to_string(p.root().join("out")).expect("out");
    assert!(out.contains("applied 2 migration(s) in "), "{out}");
}

/// Whether `text` sets a colour or style (an SGR sequence, `ESC [ … m`); the progress
/// display's cursor movements and line clearing are not colour.
fn coloured(text: &str) -> bool {
    text.split("\u{1b}[").skip(1).any(|rest| {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        rest[end..].starts_with('m')
    })
}

/// `history` on a terminal is a ruled table fitted to the terminal's width (a long name wraps
/// inside its column, a version or a time never does); in a pipe it is plain aligned columns, one line per migration.
#[test]
fn history_is_a_table_fitted_to_the_terminal_and_plain_columns_in_a_pipe() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let long = "backfill_the_customer_billing_addresses_from_the_legacy_table";
    p.write(&format!("2_{long}.up.sql"), "SELECT 1;\n");
    p.run(&db, &["up"]).code(0);

    let line = format!(
        "stty cols 100 rows 30; {} history -q --color never",
        env!("CARGO_BIN_EXE_shipgate")
    );
    let shown = screen(&in_a_terminal(&p, &db, &line, &[]));
    let table: Vec<&String> = shown.iter().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        table
            .iter()
            .any(|l| l.contains("version") && l.contains("name")),
        "no header: {shown:#?}"
    );
    assert!(
        table.iter().any(|l| l.contains('─')),
        "no rules: {shown:#?}"
    );
    for l in &table {
        assert!(
            l.chars().count() <= 100,
            "wider than the terminal: {l:?} in {shown:#?}"
        );
    }
    assert!(
        !shown.iter().any(|l| l.contains(long)) && shown.iter().any(|l| l.contains(" backfill_")),
        "the long name did not wrap inside its column: {shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.contains(" 2026-") && l.contains("Z ")),
        "a time was cut: {shown:#?}"
    );

    // A pipe: no rules, one line per migration with its whole name.
    let piped = p.run(&db, &["history"]);
    piped.code(0);
    assert!(!piped.stdout.contains('─'), "{piped:?}");
    let lines: Vec<&str> = piped.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{piped:?}");
    assert!(lines[0].starts_with("version  name"), "{piped:?}");
    assert!(lines[1].starts_with("1        users"), "{piped:?}");
    assert!(
        lines[2].contains(long) && lines[2].contains("applied"),
        "{piped:?}"
    );
}
