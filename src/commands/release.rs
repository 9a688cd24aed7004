//! `shipgate release`: the release flow, which `serve --migrate` and `exec` run too.
//!
//! `release` = validate files → wait for the database → lock → plan → apply → record the run
//! in `shipgate_runs` → unlock → notify → exit code, ending in one summary line (or one line
//! saying what failed and what to do next). `release --serve` runs the HTTP service
//! (`super::serve`) while the release runs, readiness answering 503. What applies the
//! migrations is the configured runner (`crate::runner`): this module owns, for every runner,
//! the webhooks, the summary line and the exit code.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli;
use crate::config::{Config, RunnerKind};
use crate::exit::{exit_for_release, Exit, Failure};
use crate::migrate::apply::{self, Progress};
use crate::migrate::backend::{Backend, RunOutcome};
use crate::migrate::plan::Policy;
use crate::migrate::{self, source, Interrupt};
use crate::notify::{Event, Notifier};
use crate::runner::{self, Runner};
use crate::version::Version;

const ABORT_BOUND: Duration = Duration::from_secs(5);

/// `shipgate release [--serve]`.
pub async fn command(
    args: &cli::Release,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if args.dry_run {
        match choose(config, args.to.as_ref())? {
            Runner::Sql => return dry_run(config, args.to.clone(), interrupt).await,
            Runner::Command(argv, _) => {
                super::out(format!(
                    "dry run: would run the runner command under the migration lock (within {}): {}; nothing was changed",
                    migrate::human(config.runner.timeout),
                    config.database.scrub(&argv.join(" "))
                ));
                return Ok(Exit::Success);
            }
            Runner::Alembic(prepared) => {
                return alembic_dry_run(&prepared, config, interrupt).await
            }
        }
    }
    if !args.serve {
        return run(config, args.to.clone(), interrupt, &Progress::default()).await;
    }
    let service = super::serve::Service::start(config, interrupt.clone()).await?;
    service.phase.migrating.store(true, Ordering::SeqCst);
    let exit = run(config, args.to.clone(), interrupt, &service.progress).await;
    service.phase.migrating.store(false, Ordering::SeqCst);
    service.stop().await;
    exit
}

/// The configured runner, or the failure that stops the release before it starts.
fn choose<'c>(config: &'c Config, to: Option<&Version>) -> Result<Runner<'c>, Failure> {
    runner::choose(config, to).map_err(Failure::from)
}

async fn dry_run(
    config: &Config,
    to: Option<Version>,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let set = source::load(&config.migrations, &config.layout, config.database_engine())
        .map_err(migrate::Error::Source)?;
    let policy = Policy {
        target: to,
        ..config.policy
    };
    apply::check_target(&set, &policy)?;
    let mut backend = apply::connect(
        &config.database,
        &config.engine,
        &config.deploy,
        &mut interrupt,
    )
    .await?;
    let result = match apply::read_plan_history(&mut backend).await {
        Ok(history) => {
            match super::up::dry_run_plan(&mut backend, &set, history, &policy, config).await {
                // What the release's drift check would say: `warn` logs, `error` refuses.
                Ok((plan, None)) if plan.has_pending() => {
                    match crate::gate::drift(&mut backend, &plan, &config.drift).await {
                        Ok(()) => Ok((plan, None)),
                        Err(e @ migrate::Error::Drift(_)) => Ok((plan, Some(e))),
                        Err(e) => Err(e),
                    }
                }
                other => other,
            }
        }
        Err(e) => Err(e),
    };
    let (plan, refusal) = super::finish(backend, result).await?;
    super::up::print_dry_run(&plan, &set, &policy);
    if let Some(e) = &refusal {
        super::out(format!("release gate: {e}"));
    }
    Ok(if plan.blockers(&policy).is_empty() && refusal.is_none() {
        Exit::Success
    } else {
        Exit::Invalid
    })
}

/// What an Alembic release would run, from the rows it reads; nothing is locked or written.
async fn alembic_dry_run(
    prepared: &runner::alembic::Prepared<'_>,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    use runner::alembic::{read_rows, relative, revisions_text};
    let mut backend = runner::command::connect(config, &mut interrupt)
        .await
        .map_err(Failure::from)?;
    let rows = match read_rows(&mut backend, config).await {
        Ok(rows) => rows,
        Err(e) => {
            backend.close().await;
            return Err(e.into());
        }
    };
    let state = prepared.project.state(&rows);
    // What the release's drift check would say when Alembic would run: `error` refuses.
    let refusal = if state.unknown.is_empty() && !state.pending.is_empty() {
        let key = crate::migrate::schema::Key::revisions(&rows);
        let keyed = runner::keyed(config);
        match crate::gate::drift_at(&mut backend, keyed, key.as_ref(), &config.drift).await {
            Ok(()) => None,
            Err(e @ migrate::Error::Drift(_)) => Some(e),
            Err(e) => {
                backend.close().await;
                return Err(e.into());
            }
        }
    } else {
        None
    };
    backend.close().await;
    let at = revisions_text(&rows);
    if !state.unknown.is_empty() {
        super::out(format!(
            "dry run: the database is ahead of this build ({} unknown); a release would run nothing",
            state.unknown.join(", ")
        ));
    } else if state.pending.is_empty() {
        super::out(format!("dry run: nothing to do, at revision {at}"));
    } else {
        super::out(format!(
            "dry run: at revision {at}; would run `{}` under the migration lock, applying {} revision(s):",
            prepared.argv.join(" "),
            state.pending.len()
        ));
        for s in &state.pending {
            super::out(format!(
                "  {} {} ({})",
                s.revision,
                s.message,
                relative(&s.file, &prepared.dir)
            ));
        }
    }
    if let Some(e) = &refusal {
        super::out(format!("release gate: {e}"));
        return Ok(Exit::Invalid);
    }
    Ok(Exit::Success)
}

/// The release flow. Reports its own outcome (one summary or failure line) and returns the exit
/// code; `Err` only for problems before the flow starts.
pub async fn run(
    config: &Config,
    to: Option<Version>,
    mut interrupt: Interrupt,
    progress: &Progress,
) -> Result<Exit, Failure> {
    let runner = choose(config, to.as_ref())?;
    let started = Instant::now();
    let notifier = Notifier::new(&config.webhooks).map_err(|e| Failure::new(Exit::Usage, e))?;
    let context = json!({
        "deploy_id": config.deploy.deploy_id,
        "app_version": config.deploy.app_version,
        "host": config.deploy.applied_by(),
        "database": config.database.redacted(),
    });
    // `release.started` goes out while the release proceeds; its task is joined below.
    let started_event = notifier.clone().map(|n| {
        let event = event("release.started", context.clone());
        tokio::spawn(async move { n.send(&event).await })
    });
    tracing::info!(deploy_id = config.deploy.deploy_id.as_deref().unwrap_or("-"), database = %config.database, "release started");

    let policy = Policy {
        target: to,
        ..config.policy
    };
    let result = runner::release(runner, config, &policy, &mut interrupt, progress).await;
    match &result {
        Err(runner::Error::Engine(e)) => match &**e {
            migrate::Error::Interrupted(signal, _) => {
                let why = format!("interrupted by {signal}");
                close_run(config, progress, RunOutcome::Aborted, &why).await;
            }
            // The run's own session is gone: record the failure from a fresh connection.
            e if e.connection_lost() => {
                close_run(config, progress, RunOutcome::Failed, &e.to_string()).await
            }
            _ => {}
        },
        // A runner that could not record its own outcome (the row is still published).
        Err(e @ runner::Error::Interrupted { .. }) => {
            close_run(config, progress, RunOutcome::Aborted, &e.to_string()).await
        }
        Err(e @ runner::Error::Command(_)) => {
            close_run(config, progress, RunOutcome::Failed, &e.to_string()).await
        }
        _ => {}
    }

    let elapsed = started.elapsed();
    let (kind, data, exit) = match &result {
        Ok(done) => {
            let mut data = context.clone();
            merge(&mut data, done.event_data(elapsed));
            ("release.succeeded", data, Exit::Success)
        }
        Err(e) => {
            let mut data = context.clone();
            merge(
                &mut data,
                json!({"error": e.to_string(), "exit_code": exit_for_release(e) as u8, "applied": progress.get().applied, "duration_ms": elapsed.as_millis() as u64}),
            );
            if config.runner.kind != RunnerKind::Sql {
                merge(&mut data, json!({"runner": config.runner.kind.as_str()}));
            }
            ("release.failed", data, exit_for_release(e))
        }
    };
    let mut notify_failed = false;
    // A signal that arrives while the receivers are being told: the platform is stopping us.
    let mut stopped_while_notifying = None;
    if let Some(n) = &notifier {
        let interrupted = matches!(exit, Exit::Interrupted | Exit::Terminated);
        // Both events share one deadline; after a signal, at most ABORT_BOUND more, so the
        // process never outlives the platform's grace period waiting on receivers.
        let bound = if interrupted { ABORT_BOUND } else { n.bound() };
        let deadline = tokio::time::Instant::now() + bound;
        let mut started_task = started_event;
        let finished = {
            // The outcome goes out now, alongside whatever is left of `release.started`
            // (a hanging receiver must not make the two wait one after the other).
            let final_event = event(kind, data);
            let deliver = async {
                let started = async {
                    match started_task.as_mut() {
                        Some(task) => task.await.unwrap_or_default(),
                        None => Vec::new(),
                    }
                };
                let (mut failures, more) = tokio::join!(started, n.send(&final_event));
                failures.extend(more);
                failures
            };
            tokio::pin!(deliver);
            tokio::select! {
                f = tokio::time::timeout_at(deadline, &mut deliver) => f.ok(),
                signal = interrupt.wait(), if !interrupted => {
                    stopped_while_notifying = Some(signal);
                    tracing::warn!(signal = %signal, bound_ms = ABORT_BOUND.as_millis() as u64, "signal received while sending notifications: giving them at most the abort bound");
                    let cut = deadline.min(tokio::time::Instant::now() + ABORT_BOUND);
                    tokio::time::timeout_at(cut, &mut deliver).await.ok()
                }
            }
        };
        if let Some(task) = started_task {
            task.abort();
        }
        match finished {
            Some(failures) => {
                for f in &failures {
                    tracing::error!(error = %f, "webhook notification failed");
                }
                notify_failed = !failures.is_empty();
            }
            None => {
                tracing::warn!(
                    event = kind,
                    "notifications did not finish in time; stopped sending"
                );
                notify_failed = true;
            }
        }
    }
    if let (Some(signal), Ok(done)) = (stopped_while_notifying, &result) {
        let exit = match signal {
            migrate::Signal::Interrupt => Exit::Interrupted,
            migrate::Signal::Terminate => Exit::Terminated,
        };
        tracing::error!(
            exit_code = exit as u8,
            applied = done.applied(),
            next = "the database is migrated; deploy again to finish the rollout",
            "release {}, then was stopped by {signal} while sending notifications",
            done.what()
        );
        return Ok(exit);
    }

    match result {
        Ok(done) => {
            if notify_failed && config.require_notify {
                tracing::error!(
                    exit_code = Exit::MigrationFailed as u8,
                    next = "check the webhook receivers; the database is migrated",
                    "release {}, but a required notification failed",
                    done.what_and_where()
                );
                return Ok(Exit::MigrationFailed);
            }
            tracing::info!(
                applied = done.applied(),
                duration_ms = elapsed.as_millis() as u64,
                current_version = done.current().map(Version::field),
                "release succeeded: {}",
                done.summary(elapsed)
            );
            Ok(Exit::Success)
        }
        Err(e) => {
            let next = next_step(&e);
            tracing::error!(exit_code = exit as u8, next, "release failed: {e}");
            Ok(exit)
        }
    }
}

/// Closes the run's `shipgate_runs` row from a fresh connection, when the run's own session was
/// ended (interrupted: its transaction rolled back and its lock went with it) or lost.
async fn close_run(config: &Config, progress: &Progress, outcome: RunOutcome, why: &str) {
    let state = progress.get();
    let Some(id) = state.run_id else { return };
    let work = async {
        let mut backend =
            Backend::connect(&config.database, &config.engine, &config.deploy).await?;
        let r = backend
            .finish_run(id, outcome, state.applied, Some(why))
            .await;
        backend.close().await;
        r
    };
    let outcome = outcome.as_str();
    match tokio::time::timeout(ABORT_BOUND, work).await {
        Ok(Ok(())) => tracing::info!(run_id = id, outcome, "run recorded"),
        Ok(Err(e)) => {
            tracing::warn!(run_id = id, outcome, error = %e, "could not record the run's outcome")
        }
        Err(_) => tracing::warn!(
            run_id = id,
            outcome,
            "could not record the run's outcome in time"
        ),
    }
}

fn next_step(e: &runner::Error) -> &'static str {
    use migrate::Error as E;
    let e = match e {
        runner::Error::Engine(e) => &**e,
        runner::Error::Refused(_) => {
            return "fix the runner settings named above; nothing was run"
        }
        runner::Error::Invalid(_) => {
            return "fix what is named above (the Alembic files, or alembic_version with `alembic stamp`), then deploy again; nothing was run"
        }
        runner::Error::Command(_) => {
            return "read the command's output above and the run's error, fix the cause and deploy again; the command must be safe to run again"
        }
        runner::Error::Interrupted { .. } => {
            return "the release was stopped; deploy again to run the command again"
        }
    };
    match e {
        E::Source(_) => "fix the migration files named above and deploy again; nothing was applied",
        E::Blocked(_) => "resolve the history problem named above (see `shipgate status`), then deploy again; nothing was applied",
        E::Refused(_) => "correct the request named above; nothing was applied",
        E::Gate(_) => "make the migrations named above safe, or acknowledge each finding with `-- shipgate:allow <rule> <reason>`, then deploy again; nothing was applied",
        E::Drift(_) => "write a migration for each change made by hand (or undo it), or accept the live schema with `shipgate drift --accept`, then deploy again; nothing was applied",
        E::Contract(_) => "release the contract migration with --allow-contract (SHIPGATE_ALLOW_CONTRACT=true) once the old app version has drained; nothing was applied",
        E::Config { .. } => "fix DATABASE_URL or the connection settings; nothing was applied",
        E::Unreachable { .. } => "check DATABASE_URL and that the database accepts connections from this service, then deploy again",
        E::LockTimeout { .. } => "another release holds the migration lock (holder above): let it finish or stop it, then deploy again",
        E::BlockedBy { statements: None, .. } => "end the session named above (or let it finish), then deploy again; nothing of that migration ran",
        E::BlockedBy { .. } => "end the session named above, then `shipgate repair` the dirty migration and deploy again",
        e if e.connection_lost() => "check the database and the network between it and this service, then deploy again; the next release sees what committed",
        E::Failed { statements: None, .. } => "fix the failing migration and deploy again; its transaction was rolled back",
        E::Failed { .. } => "inspect the database, then `shipgate repair` the dirty migration and deploy again",
        E::RepeatableFailed { .. } => "fix the failing repeatable migration and deploy again; it runs again whole, its recorded checksum unchanged",
        E::ReleaseRolledBack { .. } => "fix the failing migration and deploy again; the release's one transaction was rolled back, so nothing of it was applied",
        E::RevertFailed { .. } => "inspect the database: the down file stopped part-way; finish or undo it by hand",
        E::LockLost { .. } => "connect shipgate directly or through a session-mode pool, then deploy again",
        E::Database { .. } => "check the database's health and deploy again",
        E::Interrupted(..) => "the release was stopped; deploy again to finish it",
    }
}

fn event(kind: &'static str, data: serde_json::Value) -> Event {
    Event {
        kind,
        timestamp: migrate::now_rfc3339(),
        data,
    }
}

fn merge(into: &mut serde_json::Value, more: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), more) {
        a.extend(b);
    }
}
