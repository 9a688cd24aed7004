//! `shipgate status`: where the database stands against this build.

use serde_json::json;

use crate::cli;
use crate::config::{self, Config};
use crate::exit::{Exit, Failure};
use crate::migrate::apply;
use crate::migrate::backend::Backend;
use crate::migrate::schema::{Key, Keyed, Report};
use crate::migrate::{self, Interrupt};

use super::{connect, finish, json_out, load_set, out, version_text};

/// `shipgate status [--json] [--exit-code]`.
pub async fn status(
    args: &cli::Status,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    match config.runner.kind {
        config::RunnerKind::Alembic => return alembic_status(args, config, interrupt).await,
        config::RunnerKind::Command => return command_status(args, config, interrupt).await,
        config::RunnerKind::Sql => {}
    }
    let set = load_set(config)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let engine = backend.engine();
    let result = async {
        let (version, holder) = server_and_holder(&mut backend).await?;
        let (_, plan) = apply::plan(&mut backend, &set, &config.policy).await?;
        let key = plan.current.clone().map(Key::Version);
        let drift = drift_report(&mut backend, Keyed::Sql, key.as_ref(), config).await;
        let invalid = backend
            .invalid_indexes()
            .await
            .map_err(migrate::Error::db("reading INVALID indexes"))?;
        Ok::<_, migrate::Error>((version, plan, holder, drift, invalid))
    }
    .await;
    let (server_version, plan, lock_holder, drift, invalid_indexes) =
        finish(backend, result).await?;
    // A `running` row while the lock is held is a live run's migration in progress, not a
    // crash: it blocks nothing (the next run waits for the lock, then sees the outcome).
    let in_progress: Vec<_> = plan
        .dirty
        .iter()
        .filter(|d| lock_holder.is_some() && d.state == migrate::plan::State::Running)
        .collect();
    let blockers: Vec<_> = plan
        .blockers(&config.policy)
        .into_iter()
        .filter(|b| {
            !matches!(b, migrate::plan::Blocker::Dirty(d)
                if lock_holder.is_some() && d.state == migrate::plan::State::Running)
        })
        .collect();
    if args.json {
        json_out(&json!({
            "engine": engine,
            "server_version": server_version,
            "database": config.database.redacted(),
            "migrations_dir": config.migrations.display().to_string(),
            "layout": set.layout.key(),
            "current_version": plan.current,
            "head_version": plan.head,
            "applied": plan.applied,
            "pending": plan.pending,
            "pending_repeatables": plan.pending_repeatables,
            "modified": plan.modified,
            "missing": plan.missing,
            "out_of_order": plan.out_of_order,
            "dirty": plan.dirty,
            "lock_holder": lock_holder,
            "in_progress": in_progress,
            "problems": blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "drift": drift,
            "invalid_indexes": invalid_indexes,
        }));
    } else {
        out(format!(
            "database      {} ({engine} {server_version})",
            config.database.redacted()
        ));
        out(format!(
            "migrations    {} ({} layout)",
            config.migrations.display(),
            set.layout.key()
        ));
        out(format!(
            "current       {}",
            version_text(plan.current.as_ref())
        ));
        out(format!(
            "head          {}",
            version_text(plan.head.as_ref())
        ));
        out(format!("applied       {}", plan.applied.len()));
        out(format!("pending       {}", plan.pending.len()));
        for e in &plan.pending {
            out(format!("  pending     {} {}", e.version, e.name));
        }
        if !plan.pending_repeatables.is_empty() {
            out(format!(
                "repeatables   {} to run again",
                plan.pending_repeatables.len()
            ));
        }
        for r in &plan.pending_repeatables {
            let why = if r.recorded_checksum.is_some() {
                "changed since it last ran"
            } else {
                "never ran"
            };
            out(format!("  run again   {} ({why})", r.name));
        }
        let problems = [
            ("modified", plan.modified.len()),
            ("missing", plan.missing.len()),
            ("out of order", plan.out_of_order.len()),
            ("dirty", plan.dirty.len()),
        ];
        for (label, n) in problems {
            if n > 0 {
                out(format!("{label:<14}{n}"));
            }
        }
        for e in &plan.missing {
            out(format!(
                "  missing     {} {} (applied, no file in this build)",
                e.version, e.name
            ));
        }
        for d in &in_progress {
            out(format!(
                "  in progress {} {} (being applied by the lock holder)",
                d.version, d.name
            ));
        }
        for b in &blockers {
            out(format!("problem: {b}"));
        }
        print_drift(drift.as_ref());
        for i in &invalid_indexes {
            out(format!(
                "warning: INVALID index {i} (a failed or interrupted CREATE INDEX CONCURRENTLY; the next release of its file drops and rebuilds it)"
            ));
        }
    }
    if args.exit_code {
        if !blockers.is_empty() {
            return Ok(Exit::Invalid);
        }
        if plan.has_pending() {
            return Ok(Exit::Pending);
        }
    }
    Ok(Exit::Success)
}

/// The server's version and the migration lock's holder, for `status`.
async fn server_and_holder(
    backend: &mut Backend,
) -> Result<(String, Option<migrate::backend::LockHolder>), migrate::Error> {
    let version = backend
        .server_version()
        .await
        .map_err(migrate::Error::db("reading the server version"))?;
    let holder = backend
        .lock_holder()
        .await
        .map_err(migrate::Error::db("reading the lock holder"))?;
    Ok((version, holder))
}

/// `status` of an Alembic project: `alembic_version`'s rows against the revision graph.
async fn alembic_status(
    args: &cli::Status,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    use crate::runner::alembic::{load, read_rows, relative, revisions_text};
    let (project, sources) = load(config).map_err(Failure::from)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let engine = backend.engine();
    let result = async {
        let (version, holder) = server_and_holder(&mut backend).await?;
        let rows = read_rows(&mut backend, config).await;
        let drift = match &rows {
            Ok(rows) => {
                let key = Key::revisions(rows);
                let keyed = crate::runner::keyed(config);
                drift_report(&mut backend, keyed, key.as_ref(), config).await
            }
            Err(_) => None,
        };
        Ok::<_, migrate::Error>((version, rows, holder, drift))
    }
    .await;
    let (server_version, rows, lock_holder, drift) = finish(backend, result).await?;
    let rows = rows.map_err(Failure::from)?;
    let state = project.state(&rows);
    let mut problems = Vec::new();
    if !state.unknown.is_empty() {
        problems.push(format!(
            "the database is ahead of this build: {} not among its revisions",
            state.unknown.join(", ")
        ));
    }
    if !state.overlapping.is_empty() {
        problems.push(format!(
            "{} overlap with other rows of the version table (alembic upgrade refuses them)",
            state.overlapping.join(", ")
        ));
    }
    let pending: Vec<_> = state
        .pending
        .iter()
        .map(|s| json!({"revision": s.revision, "message": s.message, "file": relative(&s.file, &sources.cwd)}))
        .collect();
    if args.json {
        json_out(&json!({
            "engine": engine,
            "server_version": server_version,
            "database": config.database.redacted(),
            "runner": "alembic",
            "alembic_config": sources.ini.display().to_string(),
            "version_table": config.runner.alembic_version_table.1,
            "current_revisions": rows,
            "head_revisions": state.effective_heads,
            "applied": state.applied,
            "pending": pending,
            "unknown": state.unknown,
            "overlapping": state.overlapping,
            "lock_holder": lock_holder,
            "problems": problems,
            "drift": drift,
        }));
    } else {
        out(format!(
            "database      {} ({engine} {server_version})",
            config.database.redacted()
        ));
        out(format!(
            "alembic       {} ({} revisions)",
            sources.ini.display(),
            project.graph.revisions().len()
        ));
        out(format!("current       {}", revisions_text(&rows)));
        out(format!(
            "head          {}",
            revisions_text(&state.effective_heads)
        ));
        out(format!("applied       {}", state.applied.len()));
        out(format!("pending       {}", state.pending.len()));
        for s in &state.pending {
            out(format!("  pending     {} {}", s.revision, s.message));
        }
        for r in &state.unknown {
            out(format!(
                "  unknown     {r} (in the version table, not in this build)"
            ));
        }
        for p in &problems {
            out(format!("problem: {p}"));
        }
        print_drift(drift.as_ref());
    }
    if args.exit_code {
        if !problems.is_empty() {
            return Ok(Exit::Invalid);
        }
        if !state.pending.is_empty() {
            return Ok(Exit::Pending);
        }
    }
    Ok(Exit::Success)
}

/// How many of shipgate's runs `status` shows for a command runner.
const RECENT_RUNS: u32 = 5;

/// `status` with `runner = "command"`: shipgate cannot tell what a command will apply, and
/// does not read its migrations directory. What it can say, read only: another tool's history
/// table, when the database has one (what it records as applied, and failed, dirty or partial
/// entries as problems), and shipgate's last runs.
async fn command_status(
    args: &cli::Status,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let engine = backend.engine();
    let result = async {
        let (version, holder) = server_and_holder(&mut backend).await?;
        let foreign = backend.foreign_history().await.map_err(migrate::Error::db(
            "looking for another tool's migration history",
        ))?;
        let report = match &foreign {
            Some(f) => Some(migrate::adopt::report(&mut backend, f).await?),
            None => None,
        };
        let runs = backend
            .recent_runs(RECENT_RUNS)
            .await
            .map_err(migrate::Error::db("reading shipgate's runs"))?;
        let key = crate::migrate::schema::head(&mut backend, Keyed::Command)
            .await
            .map_err(migrate::Error::db("reading shipgate's runs"))?;
        let drift = drift_report(&mut backend, Keyed::Command, key.as_ref(), config).await;
        Ok::<_, migrate::Error>((version, holder, report, runs, drift))
    }
    .await;
    let (server_version, lock_holder, report, runs, drift) = finish(backend, result).await?;
    let problems: Vec<String> = report
        .iter()
        .flat_map(|r| r.problems.iter().map(|p| format!("{}: {p}", r.tool)))
        .collect();
    let command = config
        .runner
        .command
        .as_ref()
        .map_or_else(|| "(none configured)".to_owned(), |c| c.join(" "));
    if args.json {
        json_out(&json!({
            "engine": engine,
            "server_version": server_version,
            "database": config.database.redacted(),
            "runner": "command",
            "command": command,
            "history": report,
            "runs": runs,
            "lock_holder": lock_holder,
            "problems": problems,
            "drift": drift,
        }));
    } else {
        out(format!(
            "database      {} ({engine} {server_version})",
            config.database.redacted()
        ));
        out(format!("runner        command: {command}"));
        match &report {
            Some(r) => {
                out(format!("history       {}'s {} ({} row(s))", r.tool, r.table, r.rows));
                out(format!(
                    "applied       {}",
                    r.applied
                        .map_or_else(|| "unknown".to_owned(), |n| n.to_string())
                ));
                out(format!("latest        {}", r.latest.as_deref().unwrap_or("none")));
                for n in &r.notes {
                    out(format!("  note        {n}"));
                }
            }
            None => out(
                "history       no migration tool's history table here: shipgate cannot tell what the command will apply",
            ),
        }
        if runs.is_empty() {
            out("runs          none recorded");
        } else {
            out("runs");
            out(super::table(
                &["run", "command", "outcome", "started", "deploy", "error"],
                &["deploy", "error"],
                runs.iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.command.clone(),
                            r.outcome.as_deref().unwrap_or("running").to_owned(),
                            r.started_at.as_deref().unwrap_or("-").to_owned(),
                            r.deploy_id.as_deref().unwrap_or("-").to_owned(),
                            r.error.as_deref().unwrap_or("").to_owned(),
                        ]
                    })
                    .collect(),
            ));
        }
        for p in &problems {
            out(format!("problem: {p}"));
        }
        print_drift(drift.as_ref());
    }
    if args.exit_code && !problems.is_empty() {
        return Ok(Exit::Invalid);
    }
    Ok(Exit::Success)
}

/// The `drift` lines of `status`.
fn print_drift(drift: Option<&Report>) {
    if let Some(drift) = drift {
        out(format!("drift         {}", drift.summary()));
        for d in &drift.differences {
            out(format!("  drift       {d}"));
        }
    }
}

/// The drift check for `status` (text and the `--json` `drift` field): the live schema against
/// the snapshot of `key`, where the runner's record (`keyed`) says the database stands. A
/// failed read is logged and leaves the field null: status reports what it can.
async fn drift_report(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    key: Option<&Key>,
    config: &Config,
) -> Option<Report> {
    match crate::migrate::schema::compare(backend, keyed, key, &config.drift.ignore).await {
        Ok(report) => Some(report),
        Err(e) => {
            tracing::warn!(error = %e, "could not compare the live schema with its snapshot");
            None
        }
    }
}
