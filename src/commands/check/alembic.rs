//! `shipgate check` of an Alembic project (`runner = "alembic"`): the new revisions' SQL
//! rendered by Alembic's offline mode (`alembic upgrade START:END --sql`) and run through the
//! safety lint, for CI.
//!
//! Which revisions are new: with `--database`, the pending ones (`alembic_version` read once);
//! with `--against-git REF`, those whose file was added or changed since REF; with both, the
//! revisions in both; with neither, all. `crate::alembic::offline` chooses the ranges (one
//! Alembic run unless a revision cannot render) and cuts the output at Alembic's
//! `-- Running upgrade … -> REV` lines; each revision's SQL becomes scripts of one
//! `MigrationSet` — one per stretch that runs inside a transaction or outside one (an
//! `autocommit_block` renders as `COMMIT; … BEGIN;`), Alembic's own version-table statements
//! left out — linted in upgrade order. A finding names the revision file and says the line is
//! one of the rendered SQL: a `.py` line is never invented. A revision that reaches for a live
//! connection (`op.get_bind()`) is a warning and is not linted; a render that fails for any
//! other reason fails `check`.
//!
//! The child runs as `runner::command::capture` runs one: no lock, `runner_timeout`, its
//! process group ended on SIGINT/SIGTERM.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::json;

use super::{check_engine, database_url, finish, print, problem, Report};
use crate::alembic::offline::{self, Section};
use crate::alembic::Project;
use crate::cli;
use crate::config::{Config, Engine};
use crate::exit::{exit_for_release, Exit, Failure};
use crate::gitref;
use crate::lint::{self, Catalog, Finding, LintOptions, Severity};
use crate::migrate::layout::Layout;
use crate::migrate::source::{Directives, Migration, MigrationSet, Script, Version};
use crate::migrate::split::{self, Statement};
use crate::migrate::{self, Interrupt};
use crate::runner::alembic::{prepare, relative, Prepared};
use crate::runner::command::{self, Spawn};
use crate::runner::Error as RunnerError;

/// Rule id of a revision whose SQL cannot be rendered offline (a warning: not linted).
const OFFLINE: &str = "alembic-offline";
/// Rule id of a revision Alembic failed to render for another reason (an error).
const RENDER: &str = "alembic-render";

/// An `alembic-offline` warning about `file`.
fn offline_warning(file: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        ..problem(OFFLINE, Some(file.to_owned()), None, message)
    }
}

/// A stretch of a revision's rendered SQL that runs inside one transaction, or outside any.
#[derive(Debug, Default)]
struct Segment {
    transactional: bool,
    statements: Vec<Statement>,
}

/// `shipgate check` with `runner = "alembic"`.
pub(super) async fn check(
    args: &cli::Check,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let argv: Vec<String> = match config.runner.command.as_deref() {
        Some(argv) if !argv.is_empty() => argv.to_vec(),
        _ => crate::config::ALEMBIC_COMMAND
            .split(' ')
            .map(str::to_owned)
            .collect(),
    };
    let prepared = prepare(config, &argv).map_err(Failure::from)?;
    let project = &prepared.project;
    let engine = check_engine(args, config);
    let url = database_url(args, config);
    // Every revision, in the order `alembic upgrade heads` runs them from an empty database.
    let order: Vec<String> = project
        .state(&[])
        .pending
        .into_iter()
        .map(|s| s.revision)
        .collect();
    let mut findings: Vec<Finding> = Vec::new();
    let mut wanted: Vec<String> = order.clone();
    let mut catalog = Catalog::Assumed;
    let mut at: Option<String> = None;
    if let Some(reference) = &args.against_git {
        let changed = changed_revisions(project, reference)?;
        wanted.retain(|id| changed.contains(id));
    }
    if args.database.is_some() {
        if let Err(e) = url.engine() {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("check --database {}: {e}", url.redacted()),
            ));
        }
        let (schema, name) = &config.runner.alembic_version_table;
        let mut backend = super::connect(config, &url, &mut interrupt).await?;
        let result = async {
            let rows = backend
                .alembic_rows(schema.as_deref(), name)
                .await
                .map_err(migrate::Error::db(format!("reading {name}")))?;
            let live = crate::gate::catalog(&mut backend, config.lint.threshold)
                .await
                .map_err(migrate::Error::db("reading the catalog"))?;
            Ok((rows, live))
        }
        .await;
        let (rows, live) = finish(backend, result).await?;
        catalog = live;
        let state = project.state(&rows);
        if !state.unknown.is_empty() {
            findings.push(Finding {
                severity: Severity::Warning,
                ..problem(
                    "history",
                    None,
                    None,
                    format!(
                        "{name} holds revisions this build does not know ({}): the database is ahead of it",
                        state.unknown.join(", ")
                    ),
                )
            });
        }
        if !state.overlapping.is_empty() {
            findings.push(problem(
                "history",
                None,
                None,
                format!(
                    "{name} holds {} which another of its rows descends from (alembic upgrade refuses overlapping revisions); fix the table with `alembic stamp`",
                    state.overlapping.join(", ")
                ),
            ));
        }
        let pending: HashSet<String> = state.pending.into_iter().map(|s| s.revision).collect();
        wanted.retain(|id| pending.contains(id));
        if let [one] = rows.as_slice() {
            at = project.graph.get(one).map(|_| one.clone());
        }
    }

    let rendered = render(
        &prepared,
        &wanted,
        at.as_deref(),
        &url,
        engine,
        config,
        &mut findings,
        &mut interrupt,
    )
    .await?;

    // One set: each rendered revision's stretches as scripts, in upgrade order.
    let mut migrations = Vec::new();
    let mut only = lint::Only::default();
    let mut revision_of: HashMap<String, String> = HashMap::new();
    let wanted_set: HashSet<&String> = wanted.iter().collect();
    for (i, id) in order.iter().enumerate() {
        let Some(segments) = rendered.get(id) else {
            continue;
        };
        let file = project
            .graph
            .get(id)
            .map(|r| relative(&r.path, &prepared.dir))
            .unwrap_or_default();
        revision_of.insert(file.clone(), id.clone());
        for (j, segment) in segments.iter().enumerate() {
            let version = Version::from_parts(&[i as u64 + 1, j as u64 + 1]);
            if wanted_set.contains(id) {
                only.versions.insert(version.clone());
            }
            migrations.push(Migration {
                version,
                name: id.clone(),
                checksum: String::new(),
                up: Script {
                    path: PathBuf::from(&file),
                    sql: segment
                        .statements
                        .iter()
                        .map(|s| format!("{};\n", s.sql))
                        .collect(),
                    statements: segment.statements.clone(),
                    directives: Directives {
                        no_transaction: !segment.transactional,
                        ..Directives::default()
                    },
                    read: true,
                    statement_rules: None,
                },
                down: None,
            });
        }
    }
    let set = MigrationSet {
        dir: prepared.dir.clone(),
        layout: Layout::Native,
        migrations,
        requires: None,
        order_warning: None,
        repeatables: Vec::new(),
    };
    let options = LintOptions {
        engine,
        severities: config.lint.severities.clone(),
        only: Some(only),
        verdict: lint::Verdict::Check,
    };
    for mut f in lint::lint(&set, &options, &catalog) {
        if let Some(id) = f.file.as_ref().and_then(|file| revision_of.get(file)) {
            // The line is the rendered SQL's, not the revision file's.
            let at = f
                .line
                .map(|l| format!(", line {l} of its rendered SQL"))
                .unwrap_or_default();
            f.message = format!("revision {id}{at}: {}", f.message);
            f.line = None;
            f.column = None;
        }
        findings.push(f);
    }

    let linted: Vec<&String> = wanted
        .iter()
        .filter(|id| rendered.contains_key(*id))
        .collect();
    let not_linted: Vec<&String> = wanted
        .iter()
        .filter(|id| !rendered.contains_key(*id))
        .collect();
    let scope = match (args.database.is_some(), &args.against_git) {
        (true, Some(r)) => format!(" pending and changed since {r}"),
        (true, None) => " pending".to_owned(),
        (false, Some(r)) => format!(" changed since {r}"),
        (false, None) => String::new(),
    };
    let summary = format!(
        "{} of {}{scope} alembic revision(s) rendered and linted for {engine}",
        linted.len(),
        wanted.len(),
    );
    let notes = vec![format!(
        "{} revision(s) in {}",
        order.len(),
        relative(&prepared.config_file, &prepared.dir)
    )];
    let mut json = serde_json::Map::new();
    json.insert("runner".into(), json!("alembic"));
    json.insert("revisions".into(), json!(order.len()));
    json.insert("new".into(), json!(wanted));
    json.insert("linted".into(), json!(linted));
    json.insert("not_linted".into(), json!(not_linted));
    Ok(print(
        args,
        Report {
            findings,
            engine,
            ok: summary.clone(),
            failed: format!("; {summary}"),
            notes,
            last_notes: Vec::new(),
            json,
        },
    ))
}

/// The revisions whose file was added or changed since `reference` (untracked included).
fn changed_revisions(project: &Project, reference: &str) -> Result<HashSet<String>, Failure> {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let mut changed = HashSet::new();
    for location in &project.config.version_locations {
        let files = gitref::changed_files(location, reference).map_err(|e| {
            Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "check --against-git {reference}: {}: {e}",
                    location.display()
                ),
            )
        })?;
        changed.extend(files.iter().map(|f| canonical(f)));
    }
    Ok(project
        .graph
        .revisions()
        .iter()
        .filter(|r| changed.contains(&canonical(&r.path)))
        .map(|r| r.id.clone())
        .collect())
}

/// Renders `wanted` with as few Alembic runs as the graph allows and returns each rendered
/// revision's stretches (every revision a run rendered, wanted or not: the others inform the
/// lint). A revision that cannot render offline is a warning in `findings` and is skipped; one
/// that fails otherwise is an error in `findings`. Fails when Alembic cannot render at all.
#[allow(clippy::too_many_arguments)]
async fn render(
    prepared: &Prepared<'_>,
    wanted: &[String],
    at: Option<&str>,
    url: &crate::config::DatabaseUrl,
    engine: Engine,
    config: &Config,
    findings: &mut Vec<Finding>,
    interrupt: &mut Interrupt,
) -> Result<HashMap<String, Vec<Segment>>, Failure> {
    let project = &prepared.project;
    let file_of = |id: &str| {
        project
            .graph
            .get(id)
            .map(|r| relative(&r.path, &prepared.dir))
            .unwrap_or_default()
    };
    let wanted_set: HashSet<&String> = wanted.iter().collect();
    // Found in the text: never rendered (no Alembic run is spent on them).
    let mut skip: HashSet<String> = HashSet::new();
    for r in project.graph.revisions() {
        let text = std::fs::read_to_string(&r.path).unwrap_or_default();
        let lines = offline::bind_calls(&text);
        let Some(first) = lines.first() else { continue };
        skip.insert(r.id.clone());
        if wanted_set.contains(&r.id) {
            let file = relative(&r.path, &prepared.dir);
            let message = format!(
                "{file}:{first}: revision {} cannot be rendered offline: its upgrade() asks for a live connection (op.get_bind()), which offline mode replaces with a mock that returns no rows, so the SQL it would render is not what runs; its SQL was not linted — review it by hand",
                r.id
            );
            findings.push(Finding {
                line: Some(*first),
                ..offline_warning(&file, message)
            });
        }
    }
    let mut rendered: HashMap<String, Vec<Segment>> = HashMap::new();
    let mut given_up: HashSet<String> = HashSet::new();
    // Each pass renders everything left or gives up on at least one more revision.
    for _ in 0..=project.graph.revisions().len() {
        let todo: Vec<String> = wanted
            .iter()
            .filter(|id| {
                !rendered.contains_key(*id) && !skip.contains(*id) && !given_up.contains(*id)
            })
            .cloned()
            .collect();
        if todo.is_empty() {
            break;
        }
        let (ranges, unreachable) = offline::ranges(&project.graph, &todo, &skip, at);
        for u in unreachable {
            let file = file_of(&u.revision);
            let message = format!(
                "{file}: revision {} cannot be rendered offline: it descends from {}, which cannot be rendered, in branches no single `alembic upgrade START:END --sql` skips together; its SQL was not linted",
                u.revision,
                u.because.join(" and ")
            );
            findings.push(offline_warning(&file, message));
            given_up.insert(u.revision);
        }
        let mut failed_one = false;
        for range in ranges {
            if range
                .renders
                .iter()
                .all(|id| rendered.contains_key(id) || !todo.contains(id))
            {
                continue;
            }
            let argument = range.argument();
            let run = [
                argv_program(prepared),
                "upgrade".to_owned(),
                argument.clone(),
                "--sql".to_owned(),
            ];
            let spawn = Spawn {
                path: &prepared.path,
                argv: &run,
                env: vec![(
                    "ALEMBIC_CONFIG",
                    OsString::from(prepared.config_file.as_os_str()),
                )],
                dir: Some(&prepared.dir),
                runner: "alembic",
            };
            let captured = command::capture(&spawn, url, config, interrupt)
                .await
                .map_err(|e| match e {
                    RunnerError::Interrupted { .. } => Failure::new(exit_for_release(&e), e),
                    other => Failure::new(
                        Exit::Invalid,
                        anyhow::anyhow!("rendering the revisions' SQL (alembic upgrade {argument} --sql): {other}"),
                    ),
                })?;
            tracing::info!(range = %argument, ok = captured.success, "alembic rendered SQL offline");
            let (prefix, mut sections) = offline::sections(&captured.stdout);
            let broken = if captured.success {
                None
            } else {
                match sections.pop() {
                    Some(last) => Some(last.revision),
                    None => {
                        return Err(Failure::new(
                            Exit::Invalid,
                            anyhow::anyhow!(
                                "alembic upgrade {argument} --sql {} before rendering any revision: fix env.py (or what it imports) so that offline mode (context.is_offline_mode()) configures a URL (context.configure(url=…)) and runs context.run_migrations(); Alembic said:\n{}",
                                captured.exited,
                                tail(&captured.stderr)
                            ),
                        ))
                    }
                }
            };
            for (id, segments) in cut(
                &prefix,
                &sections,
                engine,
                &config.runner.alembic_version_table,
            ) {
                rendered.entry(id).or_insert(segments);
            }
            if let Some(id) = broken {
                let file = file_of(&id);
                let said = last_line(&captured.stderr);
                let offline_only = ["NoneType", "MockConnection", "NoInspectionAvailable"]
                    .iter()
                    .any(|m| said.contains(m));
                if wanted_set.contains(&id) {
                    findings.push(if offline_only {
                        offline_warning(
                            &file,
                            format!(
                                "{file}: revision {id} cannot be rendered offline: Alembic failed with `{said}` (offline, op.get_bind() is a mock connection that returns no rows); its SQL was not linted — review it by hand"
                            ),
                        )
                    } else {
                        problem(
                            RENDER,
                            Some(file.clone()),
                            None,
                            format!(
                                "{file}: Alembic failed to render revision {id} (alembic upgrade {argument} --sql): `{said}`; fix the revision"
                            ),
                        )
                    });
                } else if !offline_only {
                    // Not linted, but in the way of what is: said, never swallowed.
                    findings.push(problem(
                        RENDER,
                        Some(file.clone()),
                        None,
                        format!(
                            "{file}: Alembic failed to render revision {id} (alembic upgrade {argument} --sql), which the revisions being checked descend from: `{said}`"
                        ),
                    ));
                }
                skip.insert(id);
                failed_one = true;
                break;
            }
            let missing: Vec<&String> = range
                .renders
                .iter()
                .filter(|id| todo.contains(id) && !rendered.contains_key(*id))
                .collect();
            if !missing.is_empty() {
                return Err(Failure::new(
                    Exit::Invalid,
                    anyhow::anyhow!(
                        "alembic upgrade {argument} --sql printed no `-- Running upgrade … -> REV` line for {}: does env.py send offline SQL elsewhere (context.configure(output_buffer=…))? shipgate reads it from standard output",
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if !failed_one {
            break;
        }
    }
    Ok(rendered)
}

/// The program of `runner_command` (its first word), which `alembic` subcommands run with.
fn argv_program(prepared: &Prepared<'_>) -> String {
    prepared
        .argv
        .first()
        .cloned()
        .unwrap_or_else(|| "alembic".into())
}

/// The last non-empty line (the exception Python printed).
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error output")
        .to_owned()
}

/// The last 30 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Each section's statements (lines counted from its marker line), in stretches by whether
/// they run inside a transaction, Alembic's `BEGIN`/`COMMIT` and version-table statements
/// left out. The output's transaction state runs on from the text before the first section.
fn cut(
    prefix: &str,
    sections: &[Section],
    engine: Engine,
    table: &(Option<String>, String),
) -> Vec<(String, Vec<Segment>)> {
    let mut in_transaction = false;
    let step = |s: &Statement, in_transaction: &mut bool| -> bool {
        match transaction_control(code(&s.sql)) {
            Some(open) => {
                *in_transaction = open;
                false
            }
            None => !is_bookkeeping(code(&s.sql), table),
        }
    };
    for s in split::statements(prefix, engine) {
        step(&s, &mut in_transaction);
    }
    let mut out = Vec::new();
    for section in sections {
        let mut segments: Vec<Segment> = Vec::new();
        for s in split::statements(&section.text, engine) {
            if !step(&s, &mut in_transaction) {
                continue;
            }
            match segments.last_mut() {
                Some(seg) if seg.transactional == in_transaction => seg.statements.push(s),
                _ => segments.push(Segment {
                    transactional: in_transaction,
                    statements: vec![s],
                }),
            }
        }
        out.push((section.revision.clone(), segments));
    }
    out
}

/// A statement's SQL after its leading `--` comment lines.
fn code(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    while rest.starts_with("--") {
        rest = rest.find('\n').map_or("", |n| rest[n + 1..].trim_start());
    }
    rest
}

/// `Some(true)` for a statement that opens a transaction, `Some(false)` for one that ends it.
fn transaction_control(code: &str) -> Option<bool> {
    let words: Vec<String> = code
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["BEGIN"] | ["BEGIN", "TRANSACTION"] | ["START", "TRANSACTION"] => Some(true),
        ["COMMIT"] | ["COMMIT", "TRANSACTION"] => Some(false),
        _ => None,
    }
}

/// Whether a statement is Alembic's own record keeping in the version table: its creation and
/// the `version_num` row written after each revision.
fn is_bookkeeping(code: &str, (schema, name): &(Option<String>, String)) -> bool {
    let plain: String = code
        .chars()
        .filter(|c| !matches!(c, '"' | '`' | '[' | ']'))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let table = match schema {
        Some(s) => format!("{s}.{name}"),
        None => name.clone(),
    }
    .to_lowercase();
    [
        format!("create table {table} ("),
        format!("insert into {table} (version_num)"),
        format!("update {table} set version_num"),
        format!("delete from {table} where"),
    ]
    .iter()
    .any(|p| plain.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_autocommit_block_is_its_own_stretch_and_bookkeeping_is_left_out() {
        let out = "BEGIN;\n\nCREATE TABLE alembic_version (\n    version_num VARCHAR(32) NOT NULL\n);\n\n-- Running upgrade  -> 0001\n\nCREATE TABLE users (id int);\n\nINSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;\n\n-- Running upgrade 0001 -> 0002\n\nCOMMIT;\n\nCREATE INDEX CONCURRENTLY i ON users (id);\n\nBEGIN;\n\nUPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';\n\nCOMMIT;\n\n";
        let (prefix, sections) = offline::sections(out);
        let table = (None, "alembic_version".to_owned());
        let cut = cut(&prefix, &sections, Engine::Postgres, &table);
        assert_eq!(cut.len(), 2);
        let (id, first) = &cut[0];
        assert_eq!(id, "0001");
        assert_eq!(first.len(), 1);
        assert!(first[0].transactional);
        assert_eq!(first[0].statements.len(), 1);
        assert!(first[0].statements[0].sql.contains("CREATE TABLE users"));
        let (id, second) = &cut[1];
        assert_eq!(id, "0002");
        assert_eq!(second.len(), 1, "{second:?}");
        assert!(!second[0].transactional);
        assert_eq!(second[0].statements.len(), 1);
        assert!(second[0].statements[0].sql.contains("CONCURRENTLY"));
    }

    #[test]
    fn bookkeeping_follows_the_configured_table() {
        let table = (Some("app".to_owned()), "versions".to_owned());
        assert!(is_bookkeeping(
            "UPDATE app.versions SET version_num='b' WHERE app.versions.version_num = 'a'",
            &table
        ));
        assert!(!is_bookkeeping(
            "UPDATE alembic_version SET version_num='b'",
            &table
        ));
        assert!(!is_bookkeeping("UPDATE users SET email = 'x'", &table));
        assert_eq!(transaction_control("-- c\nCOMMIT"), None);
        assert_eq!(transaction_control(code("-- c\nCOMMIT")), Some(false));
    }
}
