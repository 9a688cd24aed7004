//! `shipgate check`: files, history and the safety lint, for CI. `alembic.rs` is the same for
//! an Alembic project (`runner = "alembic"`): its revisions rendered offline and linted.

mod alembic;

use serde_json::json;

use crate::cli::{self, Format};
use crate::config::{Config, DatabaseUrl, Engine, RunnerKind};
use crate::exit::{Exit, Failure};
use crate::gitref;
use crate::lint::{self, Catalog, Finding, LintOptions, Severity};
use crate::migrate::apply;
use crate::migrate::layout::Layout;
use crate::migrate::source::{self, SourceError};
use crate::migrate::{self, Interrupt};

use super::{connect, finish, json_out, out};

/// A file or history problem as a `check` finding (not a lint rule: no why/instead).
fn problem(rule: &str, file: Option<String>, line: Option<usize>, message: String) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        file,
        line,
        column: None,
        message,
        why: String::new(),
        instead: String::new(),
        acknowledged: None,
    }
}

fn source_finding(e: &SourceError) -> Finding {
    let (file, line) = match e {
        SourceError::UnreadableDir { dir, .. } => (Some(dir), None),
        SourceError::UnreadableFile { file, .. }
        | SourceError::BadFileName { file, .. }
        | SourceError::DuplicateVersion { file, .. }
        | SourceError::DuplicateRepeatable { file, .. }
        | SourceError::DownWithoutUp { file, .. }
        | SourceError::NotUtf8 { file, .. }
        | SourceError::NotRegularFile { file, .. }
        | SourceError::DanglingLink { file, .. }
        | SourceError::TooLarge { file, .. }
        | SourceError::Layout { file, .. }
        | SourceError::DownNotPaired { file, .. } => (Some(file), None),
        SourceError::ForeignMarker { file, line, .. }
        | SourceError::LayoutFile { file, line, .. }
        | SourceError::NulByte { file, line, .. }
        | SourceError::UnknownDirective { file, line, .. }
        | SourceError::BadDirective { file, line, .. }
        | SourceError::TransactionControl { file, line, .. } => (Some(file), Some(*line)),
    };
    problem(
        "invalid-file",
        file.map(|f| f.display().to_string()),
        line,
        e.to_string(),
    )
}

/// The engine whose dialect and hazards `check` applies: the `--database` URL's, else the
/// configured URL's — the embedded SQLite default included, which is the database `up` would
/// migrate (a CI job for another engine names its URL; `check` does not connect without
/// `--database`).
fn check_engine(args: &cli::Check, config: &Config) -> Engine {
    database_url(args, config)
        .engine()
        .unwrap_or(Engine::Postgres)
}

/// The `--database` URL (alone: the configured one), else the configured URL.
fn database_url(args: &cli::Check, config: &Config) -> DatabaseUrl {
    match args.database.as_deref() {
        Some("") | None => config.database.clone(),
        Some(url) => DatabaseUrl::new(url),
    }
}

/// What a check found and how its summary line reads, for [`print`].
struct Report {
    findings: Vec<Finding>,
    engine: Engine,
    /// After `ok: ` when nothing blocks.
    ok: String,
    /// After `failed: N error(s)` when something does (may be empty).
    failed: String,
    /// In parentheses after either: before the warning count…
    notes: Vec<String>,
    /// …and after it.
    last_notes: Vec<String>,
    /// The JSON object's keys beyond `ok`, `engine`, `findings` and `acknowledged`.
    json: serde_json::Map<String, serde_json::Value>,
}

/// `shipgate check`: every finding printed in the chosen format; exit 5 when one blocks.
pub async fn check(
    args: &cli::Check,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if config.runner.kind == RunnerKind::Alembic {
        return alembic::check(args, config, interrupt).await;
    }
    let mut findings: Vec<Finding> = Vec::new();
    let mut count = 0;
    let mut linted = 0;
    let mut layout = None;
    let engine = check_engine(args, config);
    let mut catalog = Catalog::Assumed;
    match source::load(&config.migrations, &config.layout, engine) {
        Err(errors) => findings.extend(errors.0.iter().map(source_finding)),
        Ok(set) => {
            count = set.migrations.len() + set.repeatables.len();
            layout = Some(set.layout);
            if let Some(order) = &set.order_warning {
                findings.push(Finding {
                    severity: Severity::Warning,
                    ..problem("layout-order", None, None, order.clone())
                });
            }
            let mut only: Option<lint::Only> = None;
            if let Some(reference) = &args.against_git {
                let changes = gitref::changes(&config.migrations, reference).map_err(|e| {
                    Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!("check --against-git {reference}: {e}"),
                    )
                })?;
                let (changed, edits) = gitref::compare(&set, &changes);
                findings.extend(edits);
                only = Some(changed);
            }
            if args.database.is_some() {
                let url = database_url(args, config);
                if let Err(e) = url.engine() {
                    return Err(Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!("check --database {}: {e}", url.redacted()),
                    ));
                }
                let mut backend = connect(config, &url, &mut interrupt).await?;
                let result = match apply::plan(&mut backend, &set, &config.policy).await {
                    // The catalog exactly as the release gate reads it.
                    Ok((_, plan)) => crate::gate::catalog(&mut backend, config.lint.threshold)
                        .await
                        .map(|c| (plan, c))
                        .map_err(migrate::Error::db("reading the catalog")),
                    Err(e) => Err(e),
                };
                let (plan, live) = finish(backend, result).await?;
                catalog = live;
                for b in plan.blockers(&config.policy) {
                    let file = match &b {
                        migrate::plan::Blocker::Modified(m) => Some(m.file.clone()),
                        _ => None,
                    };
                    findings.push(problem("history", file, None, b.to_string()));
                }
                // Applied files are history: lint what is still to come.
                let pending = crate::gate::pending(&plan);
                only = Some(match only {
                    Some(o) => o.intersection(&pending),
                    None => pending,
                });
            }
            linted = only.as_ref().map_or(count, lint::Only::len);
            let options = LintOptions {
                engine,
                severities: config.lint.severities.clone(),
                only,
                verdict: lint::Verdict::Check,
            };
            findings.extend(lint::lint(&set, &options, &catalog));
        }
    }
    let mut notes = Vec::new();
    // Another tool's layout, detected or forced, is named: what was read is said.
    if let Some(layout) = layout.filter(|l| *l != Layout::Native) {
        notes.push(format!("read as {layout}"));
    }
    let mut last_notes = Vec::new();
    if config.database_is_default && args.database.is_none() {
        last_notes.push(
            "the embedded SQLite default; set DATABASE_URL to lint for PostgreSQL or MySQL"
                .to_owned(),
        );
    }
    let against = if args.database.is_some() {
        " and consistent with history"
    } else {
        ""
    };
    let mut json = serde_json::Map::new();
    json.insert("migrations".into(), json!(count));
    json.insert("linted".into(), json!(linted));
    Ok(print(
        args,
        Report {
            findings,
            engine,
            ok: format!(
                "{count} migration(s) in {} are valid{against}; {linted} linted for {engine}",
                config.migrations.display()
            ),
            failed: String::new(),
            notes,
            last_notes,
            json,
        },
    ))
}

/// Prints a check's findings and summary in the chosen format; exit 5 when one blocks.
fn print(args: &cli::Check, report: Report) -> Exit {
    let Report {
        findings,
        engine,
        ok,
        failed: failed_text,
        mut notes,
        last_notes,
        json: extra,
    } = report;
    let (acknowledged, findings): (Vec<Finding>, Vec<Finding>) =
        findings.into_iter().partition(|f| f.acknowledged.is_some());
    let failed = findings.iter().any(Finding::blocks);
    let warnings = findings.iter().filter(|f| !f.blocks()).count();
    match args.format {
        Format::Human => {
            for f in &findings {
                if f.why.is_empty() {
                    out(format!("{}: {}", f.severity, f.message));
                } else {
                    out(format!(
                        "{f}\n    why: {}\n    instead: {}",
                        f.why, f.instead
                    ));
                }
            }
            for f in &acknowledged {
                tracing::info!(rule = %f.rule, "acknowledged: {f} ({})", f.acknowledged.as_deref().unwrap_or_default());
            }
            if warnings > 0 {
                notes.push(format!("{warnings} warning(s)"));
            }
            if !acknowledged.is_empty() {
                notes.push(format!("{} acknowledged finding(s)", acknowledged.len()));
            }
            notes.extend(last_notes);
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            if !failed {
                out(format!("ok: {ok}{notes}"));
            } else {
                let errors = findings.iter().filter(|f| f.blocks()).count();
                out(format!("failed: {errors} error(s){failed_text}{notes}"));
            }
        }
        Format::Json => {
            let finding = |f: &Finding| {
                json!({
                    "rule": f.rule,
                    "severity": f.severity,
                    "file": f.file,
                    "line": f.line,
                    "column": f.column,
                    "message": f.message,
                    "why": (!f.why.is_empty()).then_some(&f.why),
                    "instead": (!f.instead.is_empty()).then_some(&f.instead),
                    "acknowledged": f.acknowledged,
                })
            };
            let mut value = serde_json::Map::new();
            value.insert("ok".into(), json!(!failed));
            value.insert("engine".into(), json!(engine));
            value.extend(extra);
            value.insert(
                "findings".into(),
                json!(findings.iter().map(finding).collect::<Vec<_>>()),
            );
            value.insert(
                "acknowledged".into(),
                json!(acknowledged.iter().map(finding).collect::<Vec<_>>()),
            );
            json_out(&serde_json::Value::Object(value))
        }
        Format::Github => {
            for f in &findings {
                out(github_annotation(f));
            }
        }
    }
    if failed {
        Exit::Invalid
    } else {
        Exit::Success
    }
}

/// One GitHub Actions workflow command (`::error file=…,line=…,col=…,title=…::message`), with
/// properties and data escaped as the runner expects.
fn github_annotation(f: &Finding) -> String {
    let command = if f.severity == Severity::Error {
        "error"
    } else {
        "warning"
    };
    let mut props = Vec::new();
    if let Some(file) = &f.file {
        props.push(format!("file={}", gh_escape_property(file)));
    }
    if let Some(line) = f.line {
        props.push(format!("line={line}"));
    }
    if let Some(column) = f.column {
        props.push(format!("col={column}"));
    }
    let mut message = f.message.clone();
    if !f.why.is_empty() {
        props.push(format!(
            "title={}",
            gh_escape_property(&format!("shipgate [{}]", f.rule))
        ));
        message = format!("{message}\nwhy: {}\ninstead: {}", f.why, f.instead);
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{command}{props}::{}", gh_escape_data(&message))
}

fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_escape_property(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
