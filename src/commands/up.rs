//! `shipgate up`: apply pending migrations (or print them, `--dry-run`).

use std::time::{Duration, Instant};

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::apply;
use crate::migrate::backend::Backend;
use crate::migrate::plan::{Plan, Policy};
use crate::migrate::source::{self, MigrationSet};
use crate::migrate::{self, Interrupt};
use crate::version::Version;

use super::{finish, load_and_connect, out, version_text};

/// `shipgate up [--to VERSION] [--dry-run]`.
pub async fn up(
    args: &cli::Up,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let started = Instant::now();
    let policy = Policy {
        target: args.to.clone(),
        ..config.policy
    };
    let (set, mut backend, history) = load_and_connect(config, &mut interrupt).await?;
    if let Err(e) = apply::check_target(&set, &policy) {
        return finish(backend, Err(e)).await;
    }
    if args.dry_run {
        // A dry run prints and lints what would run: every script read.
        let versions: Vec<Version> = set.migrations.iter().map(|m| m.version.clone()).collect();
        let rules = match backend.split_rules().await {
            Ok(rules) => rules,
            Err(e) => {
                let e = migrate::Error::db("reading the session's sql_mode")(e);
                return finish(backend, Err(e)).await;
            }
        };
        let names: Vec<String> = set.repeatables.iter().map(|r| r.name.clone()).collect();
        let set = match set.read(versions, names.iter().map(String::as_str), rules) {
            Ok(set) => set,
            Err(e) => return finish(backend, Err(migrate::Error::Source(e))).await,
        };
        let result = dry_run_plan(&mut backend, &set, history, &policy, config).await;
        let (plan, refusal) = finish(backend, result).await?;
        print_dry_run(&plan, &set, &policy);
        if let Some(e) = refusal {
            out(format!("release gate: {e}"));
            return Ok(Exit::Invalid);
        }
        return Ok(Exit::Success);
    }
    let result = apply::up(
        &mut backend,
        &set,
        history,
        &policy,
        &config.engine,
        &config.deploy,
        &mut interrupt,
        &apply::UpOptions {
            gate: Some(std::sync::Arc::new(crate::gate::ReleaseGate(
                config.lint.clone(),
            ))),
            auto_adopt: config.adopt == crate::config::AdoptMode::Auto,
            ..apply::UpOptions::default()
        },
    )
    .await;
    let report = finish(backend, result).await?;
    if let Some(adopted) = &report.adopted {
        out(format!("adopt = auto: {adopted}"));
    }
    if report.applied.is_empty() && report.repeatables.is_empty() {
        out(format!(
            "nothing to do: at version {} (head {}), {} applied",
            version_text(report.plan.current.as_ref()),
            version_text(report.plan.head.as_ref()),
            report.plan.applied.len()
        ));
    } else {
        // Each migration's end is a log line too: where both reach the same terminal, the
        // log line carries it, and stdout only the summary (each fact printed once).
        if !super::one_screen() {
            for a in &report.applied {
                out(format!(
                    "applied {} {} ({})",
                    a.version,
                    a.name,
                    migrate::human(Duration::from_millis(a.duration_ms))
                ));
            }
            for r in &report.repeatables {
                out(format!(
                    "ran repeatable {} ({})",
                    r.name,
                    migrate::human(Duration::from_millis(r.duration_ms))
                ));
            }
        }
        let reran = match report.repeatables.len() {
            0 => String::new(),
            n => format!(" and ran {n} repeatable migration(s)"),
        };
        out(format!(
            "applied {} migration(s){reran} in {}; now at version {}",
            report.applied.len(),
            migrate::human(started.elapsed()),
            version_text(report.plan.current.as_ref())
        ));
    }
    if !report.plan.beyond_target.is_empty() {
        out(format!(
            "{} migration(s) beyond --to left pending",
            report.plan.beyond_target.len()
        ));
    }
    Ok(Exit::Success)
}

/// The plan of a dry run from `history` (as `load_and_connect` read it), and the refusal the
/// release gate would answer with, if any.
pub(crate) async fn dry_run_plan(
    backend: &mut Backend,
    set: &MigrationSet,
    history: apply::PlanHistory,
    policy: &Policy,
    config: &Config,
) -> Result<(Plan, Option<migrate::Error>), migrate::Error> {
    let plan = migrate::plan::compute(&history.unwrap_or_default(), set, policy);
    if !plan.has_pending() {
        return Ok((plan, None));
    }
    match crate::gate::check(backend, set, &plan, &config.lint).await {
        Ok(()) => Ok((plan, None)),
        Err(e @ (migrate::Error::Gate(_) | migrate::Error::Contract(_))) => Ok((plan, Some(e))),
        Err(e) => Err(e),
    }
}

pub(crate) fn print_dry_run(plan: &Plan, set: &MigrationSet, policy: &Policy) {
    let blockers = plan.blockers(policy);
    for b in &blockers {
        out(format!("would refuse: {b}"));
    }
    if !plan.has_pending() {
        out(format!(
            "dry run: nothing to do: at version {}",
            version_text(plan.current.as_ref())
        ));
        return;
    }
    let repeatables = match plan.pending_repeatables.len() {
        0 => String::new(),
        n => format!(" and run {n} repeatable migration(s)"),
    };
    out(format!(
        "dry run: would apply {} migration(s){repeatables}; nothing was changed",
        plan.pending.len()
    ));
    let mode = |script: &source::Script| {
        if script.directives.no_transaction {
            "no transaction, statement by statement"
        } else {
            "one transaction"
        }
    };
    for e in &plan.pending {
        let Some(m) = set.get(&e.version) else {
            continue;
        };
        out(format!(
            "\n-- {} {} ({}; {})",
            m.version,
            m.name,
            m.up.path.display(),
            mode(&m.up)
        ));
        out(m.up.sql.trim_end());
    }
    for e in &plan.pending_repeatables {
        let Some(r) = set.repeatable(&e.name) else {
            continue;
        };
        let why = if e.recorded_checksum.is_some() {
            "changed since it last ran"
        } else {
            "never ran"
        };
        out(format!(
            "\n-- repeatable {} ({}; {why}; {})",
            r.name,
            r.script.path.display(),
            mode(&r.script)
        ));
        out(r.script.sql.trim_end());
    }
}
