//! The command line itself: `--help` documents an environment variable for every flag,
//! configuration errors name the key and its source, `new` writes a migration pair, and
//! `check` validates a directory in every output format.

use std::time::Duration;

use crate::support::{keys, Project, Run};

/// The subcommands `shipgate --help` lists (without clap's `help`).
fn subcommands(p: &Project) -> Vec<String> {
    let run = p.run_offline(&["--help"]);
    run.code(0);
    let commands: Vec<String> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        // A command's line is indented by two spaces; a wrapped description by more.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect();
    assert!(commands.len() >= 8, "{run:?}");
    commands
}

/// Each long flag of a help text with the text that documents it (continuation lines joined).
fn flags(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_options = false;
    for line in help.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_options = line.ends_with("Options:") || line.starts_with("Global options: ");
            continue;
        }
        if !in_options {
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            let long = trimmed
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--"))
                .map(|w| {
                    w.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect::<String>()
                });
            if let Some(long) = long {
                out.push((long, trimmed.to_owned()));
                continue;
            }
        }
        if let Some((_, text)) = out.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    out
}

#[test]
fn every_flag_of_every_command_names_its_environment_variable() {
    let p = Project::new();
    let mut missing = Vec::new();
    let mut checked = 0;
    let mut commands = vec![String::new()];
    commands.extend(subcommands(&p));
    for command in &commands {
        let mut args: Vec<&str> = Vec::new();
        if !command.is_empty() {
            args.push(command);
        }
        args.push("--help");
        let run = p.run_offline(&args);
        run.code(0);
        let flags = flags(&run.stdout);
        assert!(
            flags.iter().any(|(f, _)| f == "database-url"),
            "{command}: help not parsed: {run:?}"
        );
        for (flag, text) in flags {
            if flag == "help" || flag == "version" {
                continue;
            }
            checked += 1;
            let env = text
                .split("[env: ")
                .nth(1)
                .and_then(|rest| rest.split([']', '=']).next())
                .map(str::trim);
            match env {
                // DATABASE_URL and PORT are the platforms' own variables (SPEC §2: `[::]:$PORT`).
                Some(var)
                    if var == "DATABASE_URL" || var == "PORT" || var.starts_with("SHIPGATE_") => {}
                _ => missing.push(format!("shipgate {command} --{flag}: {text}")),
            }
        }
    }
    assert!(checked > 100, "only {checked} flags found");
    assert!(
        missing.is_empty(),
        "flags without an [env: …] in --help:\n{}",
        missing.join("\n")
    );
}

/// `completions <shell>` prints a script generated from the command line itself: bash loads it
/// (`complete -p shipgate` then names its function) and it offers every subcommand and a recent
/// flag; zsh and fish scripts name the commands too. It reads no config (a broken environment
/// does not stop it) and an unknown shell is a usage error.
#[test]
fn completions_are_generated_for_each_shell_from_the_command_line() {
    let p = Project::new();
    let commands = subcommands(&p);
    let mut bash = p.command(None, &["completions", "bash"]);
    bash.env("SHIPGATE_LOCK_WAIT", "not a duration");
    let run = Run::wait(bash);
    run.code(0);
    for c in &commands {
        assert!(run.stdout.contains(c.as_str()), "bash script lacks {c}");
    }
    assert!(run.stdout.contains("--runner-timeout"), "{run:?}");
    let script = p.root().join("shipgate.bash");
    std::fs::write(&script, &run.stdout).expect("write script");
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source '{}'; complete -p shipgate",
            script.display()
        ))
        .output()
        .expect("bash runs");
    let said = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success() && said.contains("shipgate"),
        "bash did not load the script: {said} {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = p.run_offline(&["completions", shell]);
        run.code(0);
        assert!(
            run.stdout.contains("release") && run.stdout.contains("database-url"),
            "{shell}: {run:?}"
        );
    }
    p.run_offline(&["completions", "tcsh"])
        .code(2)
        .stderr_has(&["tcsh"]);
}

/// A command's `--help` shows its own flags first, under `Options:`, and the global ones after,
/// under `Global options: …` headings.
#[test]
fn help_lists_the_command_s_own_flags_before_the_global_ones() {
    let p = Project::new();
    let run = p.run_offline(&["up", "--help"]);
    run.code(0);
    let at = |needle: &str| {
        run.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing: {run:?}"))
    };
    assert!(at("--to <VERSION>") < at("Global options: database and files"));
    assert!(at("--dry-run") < at("Global options: "));
    assert!(at("Global options: database and files") < at("--database-url"));
    assert!(at("Global options: runner") < at("--runner-timeout"));
    assert!(at("Global options: output") < at("--color <WHEN>"));
}

#[test]
fn help_documents_the_exit_codes() {
    let p = Project::new();
    let mut helps = vec![vec!["--help".to_owned()]];
    helps.extend(
        subcommands(&p)
            .into_iter()
            .map(|sub| vec![sub, "--help".to_owned()]),
    );
    for args in helps {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = p.run_offline(&args);
        run.code(0);
        let section: Vec<&str> = run
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("Exit codes:"))
            .collect();
        for code in ["0", "1", "2", "3", "4", "5", "10", "127", "130", "143"] {
            assert!(
                section
                    .iter()
                    .any(|l| l.split(|c: char| !c.is_ascii_digit()).any(|w| w == code)),
                "exit code {code} missing from `shipgate {}`: {run:?}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn config_errors_exit_2_naming_the_key_and_source() {
    let p = Project::new();
    p.write("1_a.up.sql", "SELECT 1;\n");
    // An unreachable database with a long wait: a config error must come before any connect.
    let base = |args: &[&str]| {
        let mut cmd = p.command(None, args);
        cmd.env("DATABASE_URL", "postgres://u:pw@127.0.0.1:1/db")
            .env("SHIPGATE_CONNECT_TIMEOUT", "30s");
        cmd
    };
    let check = |run: Run, fragments: &[&str]| {
        run.code(2).stderr_has(fragments);
        assert!(
            run.elapsed < Duration::from_secs(5),
            "connected first? {run:?}"
        );
    };

    let mut cmd = base(&["up"]);
    cmd.env("SHIPGATE_LOCK_WAIT", "soon");
    check(
        Run::wait(cmd),
        &["lock_wait", "\"soon\"", "SHIPGATE_LOCK_WAIT", "duration"],
    );

    check(
        Run::wait(base(&["up", "--lock-wait", "soon"])),
        &["lock_wait", "flag --lock-wait"],
    );

    let file = p.write_root(
        "bad-retries.toml",
        "# shipgate settings\nlock_retries = \"x\"\n",
    );
    let file = file.to_str().expect("utf-8 path");
    check(
        Run::wait(base(&["--config", file, "up"])),
        &[
            "lock_retries",
            "\"x\"",
            &format!("{file}:2"),
            "whole number",
        ],
    );

    let file = p.write_root(
        "unknown-key.toml",
        "lock_wait = \"5s\"\n\nlock_wiat = \"5s\"\n",
    );
    let file = file.to_str().expect("utf-8 path");
    check(
        Run::wait(base(&["--config", file, "up"])),
        &[file, "unknown key", "lock_wiat", "line 3"],
    );

    check(
        Run::wait(base(&["--config", "no-such.toml", "up"])),
        &["no-such.toml"],
    );

    // Flag beats environment beats file: a valid flag hides a bad environment variable.
    let file = p.write_root("ok.toml", "lock_wait = \"nonsense\"\n");
    let mut cmd = base(&[
        "--config",
        file.to_str().expect("utf-8 path"),
        "--lock-wait",
        "2s",
        "--connect-timeout",
        "1s",
        "up",
    ]);
    cmd.env("SHIPGATE_LOCK_WAIT", "also nonsense");
    Run::wait(cmd).code(3);
    // … and a valid environment variable hides a bad file value.
    let mut cmd = base(&[
        "--config",
        file.to_str().expect("utf-8 path"),
        "--connect-timeout",
        "1s",
        "up",
    ]);
    cmd.env("SHIPGATE_LOCK_WAIT", "2s");
    Run::wait(cmd).code(3);
}

#[test]
fn new_creates_a_timestamped_snake_case_pair() {
    let p = Project::new();
    let stamp = || {
        let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
        time::OffsetDateTime::now_utc()
            .format(&format)
            .expect("formatting a timestamp")
            .parse::<i64>()
            .expect("digits")
    };
    let before = stamp();
    let run = p.run_offline(&["new", "Add users Email"]);
    let after = stamp();
    run.code(0);

    let files = p.files();
    assert_eq!(files.len(), 2, "{files:?}");
    let (version, rest) = files[0].split_once('_').expect("<version>_<name>");
    assert_eq!(version.len(), 14, "{files:?}");
    let version: i64 = version.parse().expect("numeric version");
    assert!(
        (before..=after).contains(&version),
        "{version} not in {before}..={after}"
    );
    assert_eq!(rest, "add_users_email.down.sql");
    assert_eq!(files[1], format!("{version}_add_users_email.up.sql"));
    run.stdout_has(&[&format!(
        "created migrations/{version}_add_users_email.up.sql"
    )]);

    // Only the up file with --no-down, and never the same version twice.
    p.run_offline(&["new", "--no-down", "DropLegacy-table"])
        .code(0);
    let files = p.files();
    assert_eq!(files.len(), 3, "{files:?}");
    let new: Vec<&String> = files
        .iter()
        .filter(|f| f.contains("drop_legacy_table"))
        .collect();
    assert_eq!(new.len(), 1, "{files:?}");
    assert!(new[0].ends_with("_drop_legacy_table.up.sql"), "{files:?}");
    let v2: i64 = new[0]
        .split_once('_')
        .and_then(|(v, _)| v.parse().ok())
        .expect("version");
    assert!(v2 > version, "{v2} must follow {version}");

    p.run_offline(&["new", "!!!"]).code(2);
    assert_eq!(p.files().len(), 3);
}

#[test]
fn check_validates_files_in_every_format() {
    let p = Project::new();
    p.write("1_a.up.sql", "CREATE TABLE a (id integer);\n")
        .write("1_a.down.sql", "DROP TABLE a;\n")
        .write("2_b.sql", "CREATE TABLE b (id integer);\n")
        .write("README.md", "not a migration\n");

    p.run_offline(&["check"])
        .code(0)
        .stdout_has(&["ok: 2 migration(s) in migrations are valid"]);
    let doc = p.run_offline(&["check", "--format", "json"]).code(0).json();
    assert_eq!(
        doc,
        serde_json::json!({"ok": true, "engine": "sqlite", "migrations": 2, "linted": 2, "findings": [], "acknowledged": []})
    );
    let github = p.run_offline(&["check", "--format", "github"]);
    github.code(0);
    assert!(!github.stdout.contains("::error"), "{github:?}");

    p.write(
        "3_c.up.sql",
        "-- shipgate:lock-timeout 10s\n-- shipgate:retry 3\nSELECT 1;\n",
    );
    p.run_offline(&["check"])
        .code(5)
        .stdout_has(&["error: migrations/3_c.up.sql:2: unknown directive `shipgate:retry`"]);

    let run = p.run_offline(&["check", "--format", "json"]);
    run.code(5);
    let doc = run.json();
    assert_eq!(
        keys(&doc),
        [
            "acknowledged",
            "engine",
            "findings",
            "linted",
            "migrations",
            "ok"
        ]
    );
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["migrations"], 0);
    let findings = doc["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{doc}");
    assert_eq!(
        keys(&findings[0]),
        [
            "acknowledged",
            "column",
            "file",
            "instead",
            "line",
            "message",
            "rule",
            "severity",
            "why"
        ]
    );
    assert_eq!(findings[0]["rule"], "invalid-file");
    assert_eq!(findings[0]["file"], "migrations/3_c.up.sql");
    assert_eq!(findings[0]["line"], 2);
    assert_eq!(findings[0]["severity"], "error");
    assert!(
        findings[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown directive `shipgate:retry`")),
        "{doc}"
    );

    p.run_offline(&["check", "--format", "github"])
        .code(5)
        .stdout_has(&[
            "::error file=migrations/3_c.up.sql,line=2::migrations/3_c.up.sql:2: unknown directive",
        ]);
}

/// With no `DATABASE_URL`, the main job runs against the embedded SQLite default and says so in
/// one log line, whichever command reaches the database.
#[test]
fn without_a_database_url_release_uses_the_embedded_default_and_says_so() {
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id integer PRIMARY KEY);\n",
    );
    let note = "no DATABASE_URL set; using the embedded default";
    for (args, code) in [
        (&["release", "--dry-run"][..], 0),
        (&["release"][..], 0),
        (&["status"][..], 0),
    ] {
        let run = p.run_offline(args);
        run.code(code).stderr_has(&[note, "sqlite://shipgate.db"]);
        assert_eq!(
            run.stderr.matches(note).count(),
            1,
            "one line, not one per connection: {run:?}"
        );
    }
    assert!(p.root().join("shipgate.db").is_file());
    // Commands that never connect do not mention it.
    let run = p.run_offline(&["check"]);
    run.code(0);
    assert!(!run.stderr.contains(note), "{run:?}");
}

/// Commands that only read leave a SQLite database that does not exist yet uncreated, and
/// report it as empty: everything pending.
#[test]
fn read_only_commands_do_not_create_a_sqlite_database() {
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id integer PRIMARY KEY);\n",
    );
    let db_file = p.root().join("shipgate.db");
    let status = p.run_offline(&["status", "--json"]);
    status
        .code(0)
        .stderr_has(&["does not exist yet: reading it as an empty database"]);
    assert_eq!(status.json()["pending"].as_array().map(Vec::len), Some(1));
    for args in [
        &["status", "--exit-code"][..],
        &["history"][..],
        &["up", "--dry-run"][..],
        &["release", "--dry-run"][..],
        &["down", "--to", "0", "--dry-run"][..],
    ] {
        let run = p.run_offline(args);
        assert!(
            matches!(run.code, Some(0 | 10)),
            "`shipgate {}`: {run:?}",
            args.join(" ")
        );
        assert!(
            !db_file.exists(),
            "`shipgate {}` created it",
            args.join(" ")
        );
    }
    // The first command that writes creates it.
    p.run_offline(&["up"]).code(0);
    assert!(db_file.is_file());
    p.run_offline(&["status", "--exit-code"]).code(0);
}
