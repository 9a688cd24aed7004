//! Driving a backend through a run: connect with a bounded wait, plan, lock, apply, revert.
//!
//! Owns the shared shape of a run — the fast no-op path that reads history once and takes no
//! lock, re-planning under the lock, retries of a migration that hit a lock timeout, progress
//! of no-transaction files, and releasing the lock on every path. Engine differences stay in
//! `backend`. Nothing here prints; callers get reports and [`Error`]s.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backend::{
    Audit, Backend, BatchRow, DbError, ErrorKind, ForeignHistory, Location, Record,
    RepeatableRecord, RunOutcome, Timeouts,
};
use super::heartbeat::{self, Probe};
use super::layout::Options;
use super::plan::{self, Blocker, History, HistoryRow, Plan, Policy, State};
use super::source::{self, Migration, MigrationSet, Repeatable, Script, SourceErrors, Version};
use super::{adopt, lock, Error, Interrupt, Stage};
use crate::config::{DatabaseUrl, DeployInfo, EngineSettings, TransactionMode};
use crate::retry::Backoff;

mod guard;

const CONNECT_BACKOFF_START: Duration = Duration::from_millis(250);
const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_ATTEMPT_MAX: Duration = Duration::from_secs(10);
const RETRY_BACKOFF_START: Duration = Duration::from_secs(1);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Between connect attempts: 250 ms doubling to 5 s, jittered, within the connect timeout.
const CONNECT_BACKOFF: Backoff = Backoff::new(CONNECT_BACKOFF_START, CONNECT_BACKOFF_MAX);
/// After a lock timeout: 1 s doubling to 10 s, jittered, up to `lock_retries` times.
const LOCK_RETRY_BACKOFF: Backoff = Backoff::new(RETRY_BACKOFF_START, RETRY_BACKOFF_MAX);

/// Connects within `settings.connect_timeout`, backing off on [`CONNECT_BACKOFF`].
#[tracing::instrument(skip_all)]
pub async fn connect(
    url: &DatabaseUrl,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Backend, Error> {
    let started = Instant::now();
    let mut delays = CONNECT_BACKOFF.delays();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let remaining = settings.connect_timeout.saturating_sub(started.elapsed());
        let bound = remaining.clamp(Duration::from_millis(100), CONNECT_ATTEMPT_MAX);
        let result = tokio::select! {
            r = tokio::time::timeout(bound, Backend::connect(url, settings, deploy)) => r,
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, Stage::Waiting)),
        };
        let error = match result {
            Ok(Ok(backend)) => return Ok(backend),
            Ok(Err(e)) if e.kind == ErrorKind::Config => {
                return Err(Error::Config {
                    url: url.redacted(),
                    error: e,
                })
            }
            Ok(Err(e)) => e,
            Err(_) => DbError {
                kind: ErrorKind::Connection,
                message: format!("connect attempt timed out after {}", super::human(bound)),
                code: None,
                position: None,
            },
        };
        let elapsed = started.elapsed();
        let remaining = settings.connect_timeout.saturating_sub(elapsed);
        if remaining.is_zero() {
            return Err(Error::Unreachable {
                url: url.redacted(),
                waited: elapsed,
                error,
            });
        }
        // The last attempt lands on the bound rather than giving up early.
        let sleep = delays.next().unwrap_or(CONNECT_BACKOFF_MAX).min(remaining);
        tracing::warn!(attempt, database = %url, error = %error, retry_in_ms = sleep.as_millis() as u64, "database not reachable yet");
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, Stage::Waiting)),
        }
    }
}

/// History as the planning read found it; `None` when shipgate's tables do not exist yet.
pub type PlanHistory = Option<History>;

/// Reads and hashes the migration files on a blocking thread while the connection is made and
/// history is read, so on the every-deploy path the two costs overlap: the no-op run is
/// max(files, connect + one query), not their sum. A file problem is reported as soon as it is
/// known, without waiting for a slow connect. Only a SELECT has run when it fails.
pub async fn load_and_connect(
    dir: &Path,
    layout: &Options,
    url: &DatabaseUrl,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<(MigrationSet, Backend, PlanHistory), Error> {
    let dir = dir.to_owned();
    // A URL without an engine fails to connect, with the better message.
    let engine = url.engine().ok();
    let layout = layout.clone();
    // Read, validated and hashed, not split: statements are found only for what will run.
    // Files written for another engine (Prisma's provider) are refused here, before the lock.
    let mut loading = tokio::task::spawn_blocking(move || {
        let set = source::load_unread(&dir, layout)?;
        if let Some(engine) = engine {
            set.check_engine(engine)?;
        }
        Ok(set)
    });
    let joined = |r: Result<Result<MigrationSet, SourceErrors>, tokio::task::JoinError>| match r {
        Ok(Ok(set)) => Ok(set),
        Ok(Err(e)) => Err(Error::Source(e)),
        Err(e) => Err(Error::Refused(format!("reading the migration files: {e}"))),
    };
    let connecting = async {
        let mut backend = connect(url, settings, deploy, interrupt).await?;
        match read_plan_history(&mut backend).await {
            Ok(history) => Ok((backend, history)),
            Err(e) => {
                backend.close().await;
                Err(e)
            }
        }
    };
    tokio::pin!(connecting);
    tokio::select! {
        files = &mut loading => {
            let set = joined(files)?;
            let (backend, history) = connecting.await?;
            Ok((set, backend, history))
        }
        connected = &mut connecting => {
            let (backend, history) = connected?;
            match joined(loading.await) {
                Ok(set) => Ok((set, backend, history)),
                Err(e) => {
                    backend.close().await;
                    Err(e)
                }
            }
        }
    }
}

/// One applied migration.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// Wall time, including retries.
    pub duration_ms: u64,
    /// Retries after lock timeouts.
    pub retries: u32,
}

/// One repeatable migration run again.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedRepeatable {
    /// Name.
    pub name: String,
    /// Wall time, including retries.
    pub duration_ms: u64,
    /// Retries after lock timeouts.
    pub retries: u32,
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// Migrations applied, in order.
    pub applied: Vec<Applied>,
    /// Repeatable migrations run again, in order (after the versioned ones).
    pub repeatables: Vec<AppliedRepeatable>,
    /// The plan as it stood when the run ended (after the changes).
    pub plan: Plan,
    /// Time spent waiting for the lock (zero when no lock was needed).
    pub lock_wait_ms: u64,
    /// What `adopt = auto` took over from another tool's history before applying, if it did.
    pub adopted: Option<String>,
}

/// Reads history and plans. The no-op path is exactly this: one query. Returns the versioned
/// history rows with the plan.
pub async fn plan(
    backend: &mut Backend,
    set: &MigrationSet,
    policy: &Policy,
) -> Result<(Vec<HistoryRow>, Plan), Error> {
    let history = read_plan_history(backend).await?.unwrap_or_default();
    let plan = plan::compute(&history, set, policy);
    Ok((history.migrations, plan))
}

/// The history planning needs (the lean read), or `None` without shipgate's tables.
pub async fn read_plan_history(backend: &mut Backend) -> Result<PlanHistory, Error> {
    backend
        .read_history_for_plan()
        .await
        .map_err(Error::db("reading migration history"))
}

/// Checks a `--to` target against the files.
pub fn check_target(set: &MigrationSet, policy: &Policy) -> Result<(), Error> {
    match &policy.target {
        Some(v) if set.get(v).is_none() => Err(Error::Refused(format!(
            "--to {v}: no migration with that version in {}",
            set.dir.display()
        ))),
        _ => Ok(()),
    }
}

/// What a run in progress is doing, shared with the HTTP service of the same process.
#[derive(Debug, Clone, Default)]
pub struct Progress(std::sync::Arc<std::sync::Mutex<ProgressState>>);

/// A snapshot of [`Progress`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgressState {
    /// The `shipgate_runs` row of this run, once written.
    pub run_id: Option<i64>,
    /// The migration being applied now.
    pub current: Option<InProgress>,
    /// Migrations applied so far by this run.
    pub applied: usize,
}

/// The migration being applied.
#[derive(Debug, Clone, Serialize)]
pub struct InProgress {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Statements committed, for a no-transaction file.
    pub statements_done: Option<usize>,
    /// Statements in the file, for a no-transaction file.
    pub statements_total: Option<usize>,
    /// The statement running now, for a no-transaction file (the status page; not in the
    /// JSON of `/migrations/status`, whose fields stay those of SPEC §6).
    #[serde(skip)]
    pub statement: Option<CurrentStatement>,
    /// The whole file, for a file that runs as one transaction (one message: the server does
    /// not say which of its statements runs), cut like a statement (the status page only).
    #[serde(skip)]
    pub file_sql: Option<String>,
    /// What its statement waits for, as the last heartbeat found it (`a lock on users held by
    /// pid 4242 (app, idle in transaction for 3m12s)`).
    pub waiting_for: Option<String>,
}

/// The statement of a no-transaction file that is running now.
#[derive(Debug, Clone)]
pub struct CurrentStatement {
    /// Its position in the file, from 1.
    pub number: usize,
    /// The line it starts on.
    pub line: usize,
    /// Its text, cut at [`CurrentStatement::MAX_CHARS`] characters.
    pub sql: String,
}

impl CurrentStatement {
    /// How much of a statement's text is kept.
    pub const MAX_CHARS: usize = 2000;

    fn new(number: usize, line: usize, sql: &str) -> CurrentStatement {
        CurrentStatement {
            number,
            line,
            sql: Self::cut(sql),
        }
    }

    /// `sql` cut at [`CurrentStatement::MAX_CHARS`] characters, marked with `…` when cut.
    fn cut(sql: &str) -> String {
        match sql.char_indices().nth(Self::MAX_CHARS) {
            Some((cut, _)) => format!("{}…", &sql[..cut]),
            None => sql.to_owned(),
        }
    }
}

impl Progress {
    fn update(&self, f: impl FnOnce(&mut ProgressState)) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard);
    }

    /// Publishes the run's `shipgate_runs` row (`None` once its outcome is recorded, so that
    /// nobody records it again).
    pub fn set_run_id(&self, id: Option<i64>) {
        self.update(|p| p.run_id = id);
    }

    /// The state now.
    pub fn get(&self) -> ProgressState {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A check of the pending plan before the lock and before any change, supplied by the caller:
/// the release gate is policy of the release flow (`crate::gate`), above both the engine and
/// the lint, so the engine runs it without knowing what it decides by.
pub trait Gate: Send + Sync + std::fmt::Debug {
    /// `Ok` lets the run go on; an error refuses it (nothing has been written yet).
    fn check<'a>(
        &'a self,
        backend: &'a mut Backend,
        set: &'a MigrationSet,
        plan: &'a Plan,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>>;
}

/// How `up` records itself: plain (`up`) or as a release run with a `shipgate_runs` row.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Write a `shipgate_runs` row under this command name.
    pub record_run: Option<&'static str>,
    /// Where to publish what is being applied.
    pub progress: Progress,
    /// The release gate, run on the pending plan before the lock. `None` applies without it.
    pub gate: Option<std::sync::Arc<dyn Gate>>,
    /// `adopt = auto`: on a database another tool migrated and shipgate has not, take that
    /// tool's history over (as `shipgate adopt` does, under the same lock) and then apply what
    /// is pending, instead of refusing.
    pub auto_adopt: bool,
    /// The drift check, run like the gate (before the lock, only when something is pending),
    /// before it: the pending migrations change the schema, so it compares before they run.
    pub drift: Option<std::sync::Arc<dyn Gate>>,
}

/// Applies what is pending, planned from `history` (read by the caller, normally
/// [`load_and_connect`]). Without pending work it returns without another statement and
/// without taking the lock; with work it locks, re-reads history under the lock, and applies.
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn up(
    backend: &mut Backend,
    set: &MigrationSet,
    history: PlanHistory,
    policy: &Policy,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
    options: &UpOptions,
) -> Result<UpReport, Error> {
    check_target(set, policy)?;
    let tables_exist = history.is_some();
    let mut plan = plan::compute(&history.unwrap_or_default(), set, policy);
    // A `running` row seen without the lock may belong to a live run that holds it (every
    // MySQL migration, a long no-transaction file): only under the lock is it a crash. So
    // such rows send us to the lock, where the plan is made again and decides.
    let in_flight = plan.dirty.iter().any(|d| d.state == State::Running);
    let settled: Vec<_> = plan
        .blockers(policy)
        .into_iter()
        .filter(|b| !matches!(b, Blocker::Dirty(d) if d.state == State::Running))
        .collect();
    if !settled.is_empty() {
        let e = Error::Blocked(settled);
        if tables_exist {
            record_refusal(backend, options, deploy, &e).await;
        }
        return Err(e);
    }
    // A release on a database without shipgate's tables still takes the lock: it creates them.
    if !in_flight && !plan.has_pending() && (tables_exist || options.record_run.is_none()) {
        warn_missing(&plan);
        if let Some(command) = options.record_run {
            record_nothing_to_do(backend, command, deploy, settings.lock_retries, interrupt)
                .await?;
        }
        return Ok(UpReport {
            applied: Vec::new(),
            repeatables: Vec::new(),
            plan,
            lock_wait_ms: 0,
            adopted: None,
        });
    }
    if let Some(order) = &set.order_warning {
        tracing::warn!(layout = %set.layout, "{order}");
    }
    // A database another tool has been migrating: running shipgate's files from the start
    // would apply again what that tool applied (SPEC §4). Refused before anything is written,
    // unless `adopt = auto` takes that history over first.
    let mut adopting = None;
    if !tables_exist && plan.has_pending() {
        let foreign = backend
            .foreign_history()
            .await
            .map_err(Error::db("looking for another tool's migration history"))?;
        if let Some(f) = foreign {
            if !options.auto_adopt {
                return Err(adopt::refusal(backend, set, &f, plan.pending.len()).await);
            }
            // Read and checked now, without the lock, so that the gate and the blockers see
            // only what is really pending; read again under the lock before it is recorded.
            let taken = adopt::read(backend, set, &f)
                .await
                .map_err(|e| adopt::in_words(e, "adopt = auto", "nothing was applied"))?;
            plan = plan::compute(
                &plan::History {
                    migrations: adopt::as_history(set, &taken.versions),
                    repeatables: Vec::new(),
                },
                set,
                policy,
            );
            let blockers = plan.blockers(policy);
            if !blockers.is_empty() {
                return Err(Error::Blocked(blockers));
            }
            adopting = Some(f);
        }
    }
    // Only now are statements found, for the migrations not applied yet: the no-op path above
    // splits nothing.
    let rules = backend
        .split_rules()
        .await
        .map_err(Error::db("reading the session's sql_mode"))?;
    let set = &match read_unapplied(set, &plan, rules).and_then(|set| {
        // `transaction_mode = all`: a file that cannot run in the release's transaction
        // refuses the run now, before the gate, the lock and any change.
        if settings.transaction_mode == TransactionMode::All {
            refuse_outside_transaction(backend, &set, &plan)?;
        }
        Ok(set)
    }) {
        Ok(set) => set,
        Err(e) => {
            if tables_exist {
                record_refusal(backend, options, deploy, &e).await;
            }
            return Err(e);
        }
    };
    for gate in options.drift.iter().chain(options.gate.iter()) {
        if plan.has_pending() {
            // The gate only reads; on SQLite another process's write can keep even a read
            // waiting past busy_timeout: that changed nothing, so it is read again.
            let mut attempt = 0;
            let mut delays = LOCK_RETRY_BACKOFF.delays();
            loop {
                match gate.check(backend, set, &plan).await {
                    Ok(()) => break,
                    Err(Error::Database { error, .. })
                        if error.kind == ErrorKind::LockTimeout
                            && attempt < settings.lock_retries =>
                    {
                        let delay = delays.next().unwrap_or(RETRY_BACKOFF_MAX);
                        attempt += 1;
                        tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, error = %error, "reading the catalog for the release gate hit the lock timeout; reading it again");
                        wait_or_interrupt(delay, interrupt).await?;
                    }
                    Err(e) => {
                        if tables_exist {
                            record_refusal(backend, options, deploy, &e).await;
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
    let waited = lock::acquire(backend, settings.lock_wait, interrupt).await?;
    metrics::histogram!("shipgate_lock_wait_seconds").record(waited.as_secs_f64());
    let result = up_locked(
        backend,
        set,
        policy,
        settings,
        deploy,
        interrupt,
        options,
        adopting.as_ref(),
    )
    .await;
    if let Err(e @ Error::Interrupted(..)) = result {
        // The connection may be mid-statement; the caller aborts the session instead.
        return Err(e);
    }
    lock::release(backend).await;
    result.map(|(done, plan, adopted)| UpReport {
        applied: done.applied,
        repeatables: done.repeatables,
        plan,
        lock_wait_ms: waited.as_millis() as u64,
        adopted,
    })
}

/// `set` with the scripts of every migration `plan` does not list as applied, and of every
/// repeatable it runs again, read by `rules` (statements found, transaction control checked).
pub fn read_unapplied(
    set: &MigrationSet,
    plan: &Plan,
    rules: super::split::Rules,
) -> Result<MigrationSet, Error> {
    let applied: std::collections::HashSet<&Version> =
        plan.applied.iter().map(|e| &e.version).collect();
    let versions = set
        .migrations
        .iter()
        .map(|m| &m.version)
        .filter(|v| !applied.contains(v))
        .cloned();
    let repeatables = plan.pending_repeatables.iter().map(|r| r.name.as_str());
    set.read(versions, repeatables, rules)
        .map_err(Error::Source)
}

/// What a locked run did so far.
#[derive(Debug, Default)]
struct Done {
    applied: Vec<Applied>,
    repeatables: Vec<AppliedRepeatable>,
}

impl Done {
    /// Migrations of either kind that ran.
    fn count(&self) -> usize {
        self.applied.len() + self.repeatables.len()
    }
}

/// The no-op release's run row, written like every other write of shipgate's (a lock timeout,
/// or SQLite's busy database while another process writes, is retried). When it finds rows
/// left open by a run that was killed after its last migration (the no-op path otherwise never
/// takes the lock, so nothing would close them), it tries the lock once: held, the rows belong
/// to a live run and stay; free, they are closed as `aborted`.
pub(crate) async fn record_nothing_to_do(
    backend: &mut Backend,
    command: &str,
    deploy: &DeployInfo,
    lock_retries: u32,
    interrupt: &mut Interrupt,
) -> Result<(), Error> {
    let (open, _) = retrying(
        backend,
        lock_retries,
        interrupt,
        Attempt::OpeningRun,
        async |b: &mut Backend| {
            b.record_closed_run(command, deploy, RunOutcome::NothingToDo, None)
                .await
        },
    )
    .await?
    .map_err(Error::db("recording the run"))?;
    if open == 0 {
        return Ok(());
    }
    match backend.try_lock().await {
        Ok(true) => {
            let closed = retrying(
                backend,
                lock_retries,
                interrupt,
                Attempt::OpeningRun,
                async |b: &mut Backend| b.close_orphaned_runs().await,
            )
            .await;
            lock::release(backend).await;
            match closed? {
                Ok(_) => tracing::info!(
                    runs = open,
                    "closed run rows left open by a killed run as aborted"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not close run rows left open by a killed run")
                }
            }
        }
        Ok(false) => tracing::debug!("open run rows belong to a run that holds the lock"),
        Err(e) => tracing::warn!(error = %e, "could not check the run rows left open"),
    }
    Ok(())
}

/// A release refused before the lock still leaves a failed run row, so `serve` can say why.
async fn record_refusal(
    backend: &mut Backend,
    options: &UpOptions,
    deploy: &DeployInfo,
    e: &Error,
) {
    let Some(command) = options.record_run else {
        return;
    };
    let message = e.to_string();
    if let Err(e) = backend
        .record_closed_run(command, deploy, RunOutcome::Failed, Some(&message))
        .await
    {
        tracing::warn!(error = %e, "could not record the refused run");
    }
}

fn refuse_blockers(plan: &Plan, policy: &Policy) -> Result<(), Error> {
    let blockers = plan.blockers(policy);
    if !blockers.is_empty() {
        return Err(Error::Blocked(blockers));
    }
    warn_missing(plan);
    Ok(())
}

fn warn_missing(plan: &Plan) {
    for m in &plan.missing {
        tracing::warn!(migration_version = m.version.field(), name = %m.name, "applied migration has no file in this build: the database is ahead of it");
    }
}

/// Under the lock, before the first change: creates shipgate's tables if missing and, for a
/// command that records runs, closes the rows of killed runs as `aborted` and opens this run's
/// row. Retried as a whole on a lock timeout (on SQLite another writer locks every table).
pub(crate) async fn open_run(
    backend: &mut Backend,
    command: Option<&str>,
    deploy: &DeployInfo,
    lock_retries: u32,
    interrupt: &mut Interrupt,
) -> Result<Option<i64>, Error> {
    let opened = retrying(
        backend,
        lock_retries,
        interrupt,
        Attempt::OpeningRun,
        async |b: &mut Backend| {
            b.ensure_tables().await?;
            match command {
                Some(command) => {
                    b.close_orphaned_runs().await?;
                    b.start_run(command, deploy).await.map(Some)
                }
                None => Ok(None),
            }
        },
    )
    .await?
    .map_err(Error::db(
        "creating shipgate's tables and recording the run",
    ))?;
    Ok(opened.0)
}

#[allow(clippy::too_many_arguments)]
async fn up_locked(
    backend: &mut Backend,
    set: &MigrationSet,
    policy: &Policy,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
    options: &UpOptions,
    adopting: Option<&ForeignHistory>,
) -> Result<(Done, Plan, Option<String>), Error> {
    let adopted = match adopting {
        Some(foreign) => take_over(backend, set, foreign, options, deploy).await?,
        None => None,
    };
    let run_id = open_run(
        backend,
        options.record_run,
        deploy,
        settings.lock_retries,
        interrupt,
    )
    .await?;
    options.progress.update(|p| p.run_id = run_id);
    let mut done = Done::default();
    // PostgreSQL: each migration's transaction commits without waiting for its WAL flush, and
    // one synchronous commit after the last makes them all durable before anything reports
    // success (ARCHITECTURE.md, "Fast commits"). A crash in between loses only whole
    // migrations with their history rows, never one without the other.
    backend.fast_commits(true);
    let mut result = apply_pending(
        backend, set, policy, settings, deploy, interrupt, options, &mut done,
    )
    .await;
    backend.fast_commits(false);
    if !matches!(result, Err(Error::Interrupted(..))) {
        if let Err(e) = backend.flush_commits().await {
            match result {
                Ok(_) => {
                    result = Err(Error::Database {
                        context: format!(
                            "making the {} applied migration(s) durable (one synchronous commit after them)",
                            done.count()
                        ),
                        error: e,
                    })
                }
                Err(_) => {
                    tracing::warn!(error = %e, "could not make the migrations applied before the failure durable; a crash of the database now could undo them, with their history rows")
                }
            }
        }
    }
    if result.is_ok() && done.count() > 0 {
        // Under the lock, after the migrations (and their flush): the schema this release
        // leaves behind.
        super::schema::record(backend, run_id).await;
    }
    if let Some(id) = run_id {
        close_run(backend, id, &result, done.count()).await;
    }
    result.map(|plan| (done, plan, adopted))
}

/// `adopt = auto`, under the lock and before anything else is written: records what
/// `foreign`'s tool applied, as `shipgate adopt` would, with its audit row. Nothing to do when a
/// concurrent run took it over first (shipgate has history now). Returns the summary.
async fn take_over(
    backend: &mut Backend,
    set: &MigrationSet,
    foreign: &ForeignHistory,
    options: &UpOptions,
    deploy: &DeployInfo,
) -> Result<Option<String>, Error> {
    let own = read_plan_history(backend)
        .await?
        .map_or(0, |h| h.migrations.len());
    if own > 0 {
        tracing::info!(
            tool = foreign.tool,
            "another run took over the other tool's history first"
        );
        return Ok(None);
    }
    let reason = format!(
        "adopt = auto: {} took over {}'s history",
        options.record_run.unwrap_or("up"),
        foreign.tool
    );
    let change = adopt::take_over(backend, set, foreign, Some(&reason), deploy)
        .await
        .map_err(|e| adopt::in_words(e, "adopt = auto", "nothing was applied"))?;
    tracing::info!(
        tool = foreign.tool,
        adopted = change.versions.len(),
        "adopt = auto: {}",
        change.summary
    );
    Ok(Some(change.summary))
}

/// Closes run `id` with the outcome of `result`, which changed `count` migrations (none:
/// `nothing_to_do`). An interrupted run is left open: its session is about to be ended, and the
/// next locked run closes the row as `aborted`.
async fn close_run<T>(backend: &mut Backend, id: i64, result: &Result<T, Error>, count: usize) {
    let (outcome, error) = match result {
        Ok(_) if count == 0 => (RunOutcome::NothingToDo, None),
        Ok(_) => (RunOutcome::Succeeded, None),
        Err(Error::Interrupted(..)) => return,
        Err(e) => (RunOutcome::Failed, Some(e.to_string())),
    };
    if let Err(e) = backend
        .finish_run(id, outcome, count, error.as_deref())
        .await
    {
        tracing::warn!(error = %e, run_id = id, "could not record the run's outcome");
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_pending(
    backend: &mut Backend,
    set: &MigrationSet,
    policy: &Policy,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
    options: &UpOptions,
    done: &mut Done,
) -> Result<Plan, Error> {
    // Another process may have applied some or all of it while we waited (or reverted some:
    // what is pending now is read, if it was not already).
    let (_, plan) = plan(backend, set, policy).await?;
    refuse_blockers(&plan, policy)?;
    let rules = backend
        .split_rules()
        .await
        .map_err(Error::db("reading the session's sql_mode"))?;
    let set = &set.read(
        plan.pending.iter().map(|e| e.version.clone()),
        plan.pending_repeatables.iter().map(|r| r.name.as_str()),
        rules,
    )?;
    let probe = Probe::of(backend, settings, deploy);
    if settings.transaction_mode == TransactionMode::All && plan.has_pending() {
        apply_all(
            backend, set, &plan, &probe, settings, deploy, interrupt, options, done,
        )
        .await?;
        let (_, plan) = self::plan(backend, set, policy).await?;
        return Ok(plan);
    }
    let of = plan.pending.len() + plan.pending_repeatables.len();
    let applied = &mut done.applied;
    let pending: Vec<&Migration> = plan
        .pending
        .iter()
        .map(|entry| {
            set.get(&entry.version)
                .expect("the plan only lists versions from the set")
        })
        .collect();
    let mut ahead = guard::Ahead::start(
        backend,
        settings,
        pending
            .iter()
            .filter(|m| !untracked(backend, &m.up))
            .map(|m| &m.up),
    );
    for (i, &m) in pending.iter().enumerate() {
        let step = Step {
            verb: Verb::Apply,
            n: i + 1,
            of,
            version: Some(&m.version),
            name: &m.name,
            file: &m.up.path,
        };
        let started = Instant::now();
        let tracked = untracked(backend, &m.up);
        let total = backend.statements(&m.up).len();
        options.progress.update(|p| {
            p.current = Some(InProgress {
                version: m.version.clone(),
                name: m.name.clone(),
                started_at: super::now_rfc3339(),
                statements_done: tracked.then_some(0),
                statements_total: tracked.then_some(total),
                statement: None,
                file_sql: (!tracked).then(|| CurrentStatement::cut(m.up.sql.trim())),
                waiting_for: None,
            });
        });
        step.starting();
        let work = apply_one(
            backend,
            m,
            settings,
            deploy,
            interrupt,
            &options.progress,
            &mut ahead,
        );
        let result = heartbeat::watched(work, &probe, |beat| {
            step.beat(beat, Some(&options.progress))
        })
        .await;
        options.progress.update(|p| p.current = None);
        let (retries, duration_ms) = step.ended(measured(result, started))?;
        applied.push(Applied {
            version: m.version.clone(),
            name: m.name.clone(),
            duration_ms,
            retries,
        });
        options.progress.update(|p| p.applied = applied.len());
    }
    // Repeatables after every versioned migration, in name order: they may use what the
    // versioned ones created.
    for (i, entry) in plan.pending_repeatables.iter().enumerate() {
        let r = set
            .repeatable(&entry.name)
            .expect("the plan only lists repeatables from the set");
        let step = Step {
            verb: Verb::Apply,
            n: plan.pending.len() + i + 1,
            of,
            version: None,
            name: &r.name,
            file: &r.script.path,
        };
        let started = Instant::now();
        step.starting();
        let work = apply_repeatable(backend, r, settings, deploy, interrupt);
        let result = heartbeat::watched(work, &probe, |beat| {
            step.beat(beat, Some(&options.progress))
        })
        .await;
        let (retries, duration_ms) = step.ended(measured(result, started))?;
        done.repeatables.push(AppliedRepeatable {
            name: r.name.clone(),
            duration_ms,
            retries,
        });
        let count = done.count();
        options.progress.update(|p| p.applied = count);
    }
    let (_, plan) = self::plan(backend, set, policy).await?;
    Ok(plan)
}

/// `transaction_mode = all`: refuses, naming each, the pending files that cannot run inside
/// the release's one transaction (a no-transaction file, or one the engine runs statement by
/// statement). Called before anything runs, and again under the lock on the plan made there.
fn refuse_outside_transaction(
    backend: &Backend,
    set: &MigrationSet,
    plan: &Plan,
) -> Result<(), Error> {
    let why = |script: &Script| {
        if script.directives.no_transaction {
            Some("it runs outside a transaction (`-- shipgate:no-transaction` or its layout's marker)")
        } else if !backend.atomic(script) {
            Some("this engine runs it statement by statement (its DDL commits implicitly)")
        } else {
            None
        }
    };
    let versioned = plan
        .pending
        .iter()
        .filter_map(|e| set.get(&e.version))
        .filter_map(|m| {
            why(&m.up)
                .map(|why| format!("migration {} ({}): {why}", m.version, m.up.path.display()))
        });
    let repeatables = plan
        .pending_repeatables
        .iter()
        .filter_map(|e| set.repeatable(&e.name))
        .filter_map(|r| {
            why(&r.script).map(|why| {
                format!(
                    "repeatable migration {} ({}): {why}",
                    r.name,
                    r.script.path.display()
                )
            })
        });
    let outside: Vec<String> = versioned.chain(repeatables).collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "transaction_mode = all runs the whole release in one transaction, and {} pending file(s) cannot run inside one: {}; nothing was applied. Release such a file on its own with transaction_mode = file",
        outside.len(),
        outside.join("; ")
    )))
}

/// `transaction_mode = all`: every pending migration and repeatable, each with its history
/// row, in one transaction that commits at the end or not at all. Progress lines and
/// heartbeats stay per migration; a lock timeout rolls the whole release back and runs it
/// again (up to `lock_retries` times). `done` is filled only once the transaction committed.
#[allow(clippy::too_many_arguments)]
async fn apply_all(
    backend: &mut Backend,
    set: &MigrationSet,
    plan: &Plan,
    probe: &Probe,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
    options: &UpOptions,
    done: &mut Done,
) -> Result<(), Error> {
    // The plan made under the lock may differ from the one checked before it.
    refuse_outside_transaction(backend, set, plan)?;
    // Look before locking for every file before the one transaction begins: inside it, a wait
    // for a session in the way would hold every lock the earlier migrations took.
    for entry in &plan.pending {
        if let Some(m) = set.get(&entry.version) {
            let file = m.up.path.display().to_string();
            guard::before_file(
                backend,
                (&m.version, &file),
                &m.up,
                false,
                settings,
                interrupt,
            )
            .await?;
        }
    }
    let of = plan.pending.len() + plan.pending_repeatables.len();
    let mut attempt = 0;
    let mut delays = LOCK_RETRY_BACKOFF.delays();
    'release: loop {
        let mut applied = Vec::with_capacity(plan.pending.len());
        let mut reran = Vec::with_capacity(plan.pending_repeatables.len());
        let began = tokio::select! {
            r = backend.begin_batch() => r,
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, Stage::Running)),
        };
        began.map_err(Error::db(
            "beginning the release's transaction (transaction_mode = all)",
        ))?;
        let versioned = plan.pending.iter().filter_map(|e| set.get(&e.version));
        let repeatables = plan
            .pending_repeatables
            .iter()
            .filter_map(|e| set.repeatable(&e.name));
        let items = versioned
            .map(Item::Migration)
            .chain(repeatables.map(Item::Repeatable));
        for (i, item) in items.enumerate() {
            let script = item.script();
            let step = Step {
                verb: Verb::Apply,
                n: i + 1,
                of,
                version: item.version(),
                name: item.name(),
                file: &script.path,
            };
            if let Item::Migration(m) = item {
                options.progress.update(|p| {
                    p.current = Some(InProgress {
                        version: m.version.clone(),
                        name: m.name.clone(),
                        started_at: super::now_rfc3339(),
                        statements_done: None,
                        statements_total: None,
                        statement: None,
                        file_sql: Some(CurrentStatement::cut(m.up.sql.trim())),
                        waiting_for: None,
                    });
                });
            }
            let started = Instant::now();
            step.starting();
            let t = timeouts(script, settings);
            let work = async {
                tokio::select! {
                    r = item.apply_in_batch(backend, deploy, t) => Ok(r),
                    signal = interrupt.wait() => Err(Error::Interrupted(signal, Stage::Running)),
                }
            };
            let result =
                heartbeat::watched(work, probe, |beat| step.beat(beat, Some(&options.progress)))
                    .await;
            options.progress.update(|p| p.current = None);
            let error = match result? {
                Ok(()) => {
                    let ms = started.elapsed().as_millis() as u64;
                    step.ended(Ok((attempt, ms)))?;
                    match item {
                        Item::Migration(m) => applied.push(Applied {
                            version: m.version.clone(),
                            name: m.name.clone(),
                            duration_ms: ms,
                            retries: attempt,
                        }),
                        Item::Repeatable(r) => reran.push(AppliedRepeatable {
                            name: r.name.clone(),
                            duration_ms: ms,
                            retries: attempt,
                        }),
                    }
                    continue;
                }
                Err(error) => error,
            };
            backend.rollback_batch().await;
            if error.kind == ErrorKind::LockTimeout && attempt < settings.lock_retries {
                let delay = delays.next().unwrap_or(RETRY_BACKOFF_MAX);
                attempt += 1;
                tracing::warn!(migration_version = item.version().map(Version::field), file = %script.path.display(), attempt, of = settings.lock_retries, retry_in_ms = delay.as_millis() as u64, error = %error, "migration hit the lock timeout; the whole release rolled back (transaction_mode = all), retrying it");
                wait_or_interrupt(delay, interrupt).await?;
                continue 'release;
            }
            metrics::counter!("shipgate_migration_failures_total").increment(1);
            let file = located(
                &script.path.display().to_string(),
                error.at(&script.sql, FILE_START),
            );
            let failed = match item {
                Item::Migration(m) if error.kind == ErrorKind::LockLost => Error::LockLost {
                    version: m.version.clone(),
                    error,
                },
                Item::Migration(m) => Error::Failed {
                    version: m.version.clone(),
                    file,
                    error,
                    statements: None,
                },
                Item::Repeatable(r) => Error::RepeatableFailed {
                    name: r.name.clone(),
                    file,
                    error: Box::new(error),
                    statements: None,
                },
            };
            step.stopped(&failed);
            return Err(Error::ReleaseRolledBack {
                failed: Box::new(failed),
                of,
            });
        }
        let committed = tokio::select! {
            r = backend.commit_batch() => r,
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, Stage::Running)),
        };
        match committed {
            Ok(()) => {
                let total: u64 = applied.iter().map(|a| a.duration_ms).sum::<u64>()
                    + reran.iter().map(|r| r.duration_ms).sum::<u64>();
                for ms in applied
                    .iter()
                    .map(|a| a.duration_ms)
                    .chain(reran.iter().map(|r| r.duration_ms))
                {
                    metrics::histogram!("shipgate_migration_duration_seconds")
                        .record(Duration::from_millis(ms).as_secs_f64());
                }
                metrics::counter!("shipgate_migrations_applied_total").increment(of as u64);
                tracing::info!(
                    migrations = of,
                    duration_ms = total,
                    "committed the release's {of} migration(s) in one transaction (transaction_mode = all)"
                );
                done.applied = applied;
                done.repeatables = reran;
                let count = done.count();
                options.progress.update(|p| p.applied = count);
                return Ok(());
            }
            Err(error) => {
                backend.rollback_batch().await;
                if error.kind == ErrorKind::LockTimeout && attempt < settings.lock_retries {
                    let delay = delays.next().unwrap_or(RETRY_BACKOFF_MAX);
                    attempt += 1;
                    tracing::warn!(attempt, of = settings.lock_retries, retry_in_ms = delay.as_millis() as u64, error = %error, "committing the release hit the lock timeout; rolled back, retrying the whole release");
                    wait_or_interrupt(delay, interrupt).await?;
                    continue 'release;
                }
                let outcome = if error.kind == ErrorKind::Connection {
                    "the connection was lost before the outcome was known: all of them committed or none did, and the next run sees which"
                } else {
                    "it was rolled back and none of them was applied"
                };
                return Err(Error::Database {
                    context: format!(
                        "committing the release's transaction of {of} migration(s) (transaction_mode = all); {outcome}"
                    ),
                    error,
                });
            }
        }
    }
}

/// A migration of a `transaction_mode = all` release: versioned or repeatable.
#[derive(Clone, Copy)]
enum Item<'a> {
    Migration(&'a Migration),
    Repeatable(&'a Repeatable),
}

impl<'a> Item<'a> {
    fn script(self) -> &'a Script {
        match self {
            Item::Migration(m) => &m.up,
            Item::Repeatable(r) => &r.script,
        }
    }

    fn version(self) -> Option<&'a Version> {
        match self {
            Item::Migration(m) => Some(&m.version),
            Item::Repeatable(_) => None,
        }
    }

    fn name(self) -> &'a str {
        match self {
            Item::Migration(m) => &m.name,
            Item::Repeatable(r) => &r.name,
        }
    }

    /// Runs it with its row inside the release's open transaction.
    async fn apply_in_batch(
        self,
        backend: &mut Backend,
        deploy: &DeployInfo,
        t: Timeouts,
    ) -> Result<(), DbError> {
        match self {
            Item::Migration(m) => {
                let record = Record {
                    version: &m.version,
                    name: &m.name,
                    checksum: &m.checksum,
                    deploy,
                };
                let row = BatchRow::Migration(&record);
                backend.apply_in_batch(&m.up, row, t).await
            }
            Item::Repeatable(r) => {
                let record = RepeatableRecord {
                    name: &r.name,
                    checksum: &r.checksum,
                    deploy,
                };
                let row = BatchRow::Repeatable(&record);
                backend.apply_in_batch(&r.script, row, t).await
            }
        }
    }
}

/// One migration of a run, for its start, heartbeat and end lines: `n` of `of` (versioned
/// migrations first, then repeatables). The lines go to the `shipgate::progress` targets, which
/// the terminal display shows in place of the start and heartbeat lines.
struct Step<'a> {
    /// Applying or reverting.
    verb: Verb,
    n: usize,
    of: usize,
    /// `None` for a repeatable migration.
    version: Option<&'a Version>,
    name: &'a str,
    file: &'a Path,
}

/// What a run does to each migration, in its progress lines.
#[derive(Clone, Copy)]
enum Verb {
    Apply,
    Revert,
}

impl Verb {
    /// `applying`, `reverting`.
    fn doing(self) -> &'static str {
        match self {
            Verb::Apply => "applying",
            Verb::Revert => "reverting",
        }
    }

    /// `applied`, `reverted`.
    fn done(self) -> &'static str {
        match self {
            Verb::Apply => "applied",
            Verb::Revert => "reverted",
        }
    }
}

impl Step<'_> {
    /// `3/12 20240101 create_users`, or `13/13 repeatable views`.
    fn what(&self) -> String {
        match self.version {
            Some(v) => format!("{}/{} {v} {}", self.n, self.of, self.name),
            None => format!("{}/{} repeatable {}", self.n, self.of, self.name),
        }
    }

    fn version_field(&self) -> Option<Box<dyn tracing::Value + '_>> {
        self.version.map(Version::field)
    }

    fn starting(&self) {
        tracing::info!(
            target: "shipgate::progress::start",
            n = self.n,
            of = self.of,
            migration_version = self.version_field(),
            name = self.name,
            file = %self.file.display(),
            "{} {}",
            self.verb.doing(),
            self.what()
        );
    }

    /// A heartbeat: logged, and published for `/migrations/status`.
    fn beat(&self, beat: &heartbeat::Beat, progress: Option<&Progress>) {
        let waiting_for = beat.wait.as_ref().map(ToString::to_string);
        if let Some(progress) = progress {
            progress.update(|p| {
                if let Some(c) = p.current.as_mut() {
                    c.waiting_for.clone_from(&waiting_for);
                }
            });
        }
        let holder = beat.wait.as_ref().and_then(|w| w.holder.as_ref());
        let suffix = waiting_for
            .as_deref()
            .map(|w| format!(": waiting for {w}"))
            .unwrap_or_default();
        tracing::info!(
            target: "shipgate::progress::beat",
            n = self.n,
            of = self.of,
            migration_version = self.version_field(),
            name = self.name,
            elapsed_ms = beat.elapsed.as_millis() as u64,
            waiting_for,
            lock = beat.wait.as_ref().and_then(|w| w.lock.as_deref()),
            blocking_pid = holder.map(|h| h.pid),
            blocking_application = holder.and_then(|h| h.application.as_deref()),
            blocking_client = holder.and_then(|h| h.client.as_deref()),
            blocking_state = holder.and_then(|h| h.state.as_deref()),
            blocking_state_ms = holder.and_then(|h| h.state_ms),
            blocking_xact_ms = holder.and_then(|h| h.xact_ms),
            holder_source = beat.wait.as_ref().and_then(|w| w.via),
            "still {} {} ({}){suffix}",
            self.verb.doing(),
            self.what(),
            super::human(beat.elapsed)
        );
    }

    /// The end line, for success and failure alike; passes `result` on.
    fn ended(&self, result: Result<(u32, u64), Error>) -> Result<(u32, u64), Error> {
        match &result {
            Ok((retries, duration_ms)) => tracing::info!(
                target: "shipgate::progress::end",
                n = self.n,
                of = self.of,
                migration_version = self.version_field(),
                name = self.name,
                duration_ms,
                retries,
                "{} {} in {}",
                self.verb.done(),
                self.what(),
                super::human(Duration::from_millis(*duration_ms))
            ),
            Err(e) => self.stopped(e),
        }
        result
    }

    /// The end line of a migration that failed or was interrupted.
    fn stopped(&self, e: &Error) {
        let how = match e {
            Error::Interrupted(..) => "interrupted",
            _ => "failed",
        };
        tracing::info!(
            target: "shipgate::progress::end",
            n = self.n,
            of = self.of,
            migration_version = self.version_field(),
            name = self.name,
            outcome = how,
            "{how}: {}",
            self.what()
        );
    }
}

/// A migration's outcome (its lock-timeout retries) counted in the metrics, with its wall time
/// in milliseconds since `started`.
fn measured(result: Result<u32, Error>, started: Instant) -> Result<(u32, u64), Error> {
    match result {
        Ok(retries) => {
            let elapsed = started.elapsed();
            metrics::counter!("shipgate_migrations_applied_total").increment(1);
            metrics::histogram!("shipgate_migration_duration_seconds")
                .record(elapsed.as_secs_f64());
            Ok((retries, elapsed.as_millis() as u64))
        }
        Err(e) => {
            if !matches!(e, Error::Interrupted(..)) {
                metrics::counter!("shipgate_migration_failures_total").increment(1);
            }
            Err(e)
        }
    }
}

fn timeouts(script: &Script, settings: &EngineSettings) -> Timeouts {
    Timeouts {
        lock_timeout: script
            .directives
            .lock_timeout
            .unwrap_or(settings.lock_timeout),
        statement_timeout: match script.directives.statement_timeout {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => settings.statement_timeout,
        },
    }
}

/// Whether `script` runs statement by statement, each committed on its own (a no-transaction
/// file, or one the engine cannot run in a transaction).
fn untracked(backend: &Backend, script: &Script) -> bool {
    script.directives.no_transaction || !backend.atomic(script)
}

/// Applies one migration; returns the number of lock-timeout retries it took.
async fn apply_one(
    backend: &mut Backend,
    m: &Migration,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
    progress: &Progress,
    ahead: &mut guard::Ahead,
) -> Result<u32, Error> {
    let record = Record {
        version: &m.version,
        name: &m.name,
        checksum: &m.checksum,
        deploy,
    };
    let t = timeouts(&m.up, settings);
    let file = m.up.path.display().to_string();
    if untracked(backend, &m.up) {
        return apply_untracked(backend, m, &record, t, settings, interrupt, progress).await;
    }
    // Look before locking, in the migration's own message: a proper look (and a wait) only
    // when another session turns out to hold a lock on one of its tables.
    let locks = ahead.next(backend, settings, &m.up).await;
    backend.look_in_transaction(&locks);
    let result = loop {
        let result = retrying(
            backend,
            settings.lock_retries,
            interrupt,
            Attempt::Whole(What::Migration(&m.version)),
            async |b: &mut Backend| b.apply_in_transaction(&m.up, &record, t).await,
        )
        .await;
        // The look goes with the first attempt only (a retry was looked at already).
        backend.look_in_transaction(&[]);
        if !matches!(&result, Ok(Err(e)) if e.is_look()) {
            break result;
        }
        if let Err(blocked) =
            guard::clear(backend, &locks, settings, interrupt, Stage::Waiting).await?
        {
            return Err(blocked.error(&m.version, &file, None));
        }
    };
    match result? {
        Ok(((), retries)) => Ok(retries),
        Err(error) if error.kind == ErrorKind::LockLost => Err(Error::LockLost {
            version: m.version.clone(),
            error,
        }),
        Err(error) => Err(Error::Failed {
            version: m.version.clone(),
            file: located(&file, error.at(&m.up.sql, FILE_START)),
            error,
            statements: None,
        }),
    }
}

/// The start of a file, for [`DbError::at`].
const FILE_START: Location = Location {
    line: 1,
    column: Some(1),
};

/// `file` with where in it the server found the error: `path:3:15` (line and column), or
/// `path:3` (the failing statement's line), or `path` alone.
fn located(file: &str, at: Option<Location>) -> String {
    match at {
        Some(at) => format!("{file}:{at}"),
        None => file.to_owned(),
    }
}

/// Where statement `s` of a file run statement by statement failed with `error`: the server's
/// position within it, or the statement's own line.
fn statement_location(s: &super::split::Statement, error: &DbError) -> Location {
    let start = Location {
        line: s.line,
        column: Some(s.column),
    };
    error.at(&s.sql, start).unwrap_or(Location {
        line: s.line,
        column: None,
    })
}

/// Runs one repeatable migration and records its run; returns the number of lock-timeout
/// retries it took. In one transaction with its row, retried whole after a lock timeout; or,
/// when it cannot be (a no-transaction file, MySQL DDL), statement by statement with each
/// statement retried, and its row written after the last one: nothing marks it dirty, since its
/// recorded checksum is unchanged until it completes and a repeatable runs whole again.
async fn apply_repeatable(
    backend: &mut Backend,
    r: &Repeatable,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<u32, Error> {
    let record = RepeatableRecord {
        name: &r.name,
        checksum: &r.checksum,
        deploy,
    };
    let t = timeouts(&r.script, settings);
    let file = r.script.path.display().to_string();
    let failed = |error: DbError, statements, at| Error::RepeatableFailed {
        name: r.name.clone(),
        file: located(&file, at),
        error: Box::new(error),
        statements,
    };
    let lock_lost = |error| Error::Database {
        context: format!("stopped before repeatable migration {}", r.name),
        error,
    };
    if !r.script.directives.no_transaction && backend.atomic(&r.script) {
        let result = retrying(
            backend,
            settings.lock_retries,
            interrupt,
            Attempt::Whole(What::Repeatable(&r.name)),
            async |b: &mut Backend| {
                b.apply_repeatable_in_transaction(&r.script, &record, t)
                    .await
            },
        )
        .await?;
        return match result {
            Ok(((), retries)) => Ok(retries),
            Err(error) if error.kind == ErrorKind::LockLost => Err(lock_lost(error)),
            Err(error) => {
                let at = error.at(&r.script.sql, FILE_START);
                Err(failed(error, None, at))
            }
        };
    }
    backend.verify_lock().await.map_err(lock_lost)?;
    backend
        .set_session_timeouts(t)
        .await
        .map_err(Error::db("setting the migration's timeouts"))?;
    let started = Instant::now();
    let statements = backend.statements(&r.script).to_vec();
    let total = statements.len();
    let mut retries = 0;
    for (i, statement) in statements.iter().enumerate() {
        let step = retrying(
            backend,
            settings.lock_retries,
            interrupt,
            Attempt::Statement(What::Repeatable(&r.name), i),
            async |b: &mut Backend| b.exec_statement(&statement.sql, t).await,
        )
        .await?;
        match step {
            Ok(((), attempts)) => retries += attempts,
            Err(error) => {
                let _ = backend.reset_session_timeouts().await;
                let at = statement_location(statement, &error);
                return Err(failed(error, Some((i, total)), Some(at)));
            }
        }
        tracing::info!(repeatable = %r.name, statement = i + 1, of = total, line = statement.line, "statement committed");
    }
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let recorded = backend.record_repeatable(&record, ms).await;
    let context = format!("recording repeatable migration {}", r.name);
    completed(backend, recorded, context).await?;
    Ok(retries)
}

/// The end of a file run statement by statement: its completion `recorded` (or the error doing
/// so, reported with `context`), then the session's default timeouts restored.
async fn completed(
    backend: &mut Backend,
    recorded: Result<(), DbError>,
    context: String,
) -> Result<(), Error> {
    recorded.map_err(Error::db(context))?;
    backend
        .reset_session_timeouts()
        .await
        .map_err(Error::db("restoring the session's timeouts"))
}

async fn wait_or_interrupt(d: Duration, interrupt: &mut Interrupt) -> Result<(), Error> {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        signal = interrupt.wait() => Err(Error::Interrupted(signal, Stage::Waiting)),
    }
}

/// A no-transaction migration: `running` row, statements one at a time with progress, then
/// `applied`. A failure leaves a `failed` row; a crash leaves `running`. Both are dirty.
async fn apply_untracked(
    backend: &mut Backend,
    m: &Migration,
    record: &Record<'_>,
    t: Timeouts,
    settings: &EngineSettings,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<u32, Error> {
    let lock_retries = settings.lock_retries;
    let file = m.up.path.display().to_string();
    guard::before_file(
        backend,
        (&m.version, &file),
        &m.up,
        true,
        settings,
        interrupt,
    )
    .await?;
    backend
        .verify_lock()
        .await
        .map_err(|error| Error::LockLost {
            version: m.version.clone(),
            error,
        })?;
    let (_, mut retries) = retrying(
        backend,
        lock_retries,
        interrupt,
        Attempt::Bookkeeping(&m.version),
        async |b: &mut Backend| b.start_untracked(record).await,
    )
    .await?
    .map_err(Error::db(format!(
        "recording migration {} as running",
        m.version
    )))?;
    backend
        .set_session_timeouts(t)
        .await
        .map_err(Error::db("setting the migration's timeouts"))?;
    let started = Instant::now();
    let statements = backend.statements(&m.up).to_vec();
    let total = statements.len();
    for (i, statement) in statements.iter().enumerate() {
        progress.update(|p| {
            if let Some(c) = p.current.as_mut() {
                c.statement = Some(CurrentStatement::new(i + 1, statement.line, &statement.sql));
            }
        });
        guard::before_statement(
            backend,
            (&m.version, &file),
            statement,
            (i, total),
            settings,
            interrupt,
        )
        .await?;
        let build = guard::concurrent_build(backend, &statement.sql);
        match exec_step(
            backend,
            (&m.version, i),
            &statement.sql,
            t,
            lock_retries,
            interrupt,
            build.as_ref().map(|b| (b, record.deploy)),
        )
        .await?
        {
            Ok(attempts) => retries += attempts,
            Err(error) => {
                let message = format!("statement {} (line {}): {error}", i + 1, statement.line);
                record_stop(backend, &m.version, &message).await;
                return Err(Error::Failed {
                    version: m.version.clone(),
                    file: located(&file, Some(statement_location(statement, &error))),
                    error,
                    statements: Some((i, total)),
                });
            }
        }
        progress.update(|p| {
            if let Some(c) = p.current.as_mut() {
                c.statements_done = Some(i + 1);
            }
        });
        // Progress of a long no-transaction file is news; of every MySQL statement, detail.
        if m.up.directives.no_transaction {
            tracing::info!(
                migration_version = m.version.field(),
                statement = i + 1,
                of = total,
                line = statement.line,
                "statement committed"
            );
        } else {
            tracing::debug!(
                migration_version = m.version.field(),
                statement = i + 1,
                of = total,
                line = statement.line,
                "statement committed"
            );
        }
    }
    let ms = started.elapsed().as_millis() as i64;
    let recorded = backend.finish_untracked(&m.version, ms).await;
    let context = format!("recording migration {} as applied", m.version);
    completed(backend, recorded, context).await?;
    Ok(retries)
}

/// Runs statement `index` (zero-based) of migration `version`'s file, retrying it after a lock
/// timeout (see [`retrying`]), and records in history that it committed.
/// `Ok(Ok(retries))` when it committed, `Ok(Err(_))` with the database's error when it failed,
/// `Err` when a signal interrupted it or the progress could not be recorded.
#[allow(clippy::too_many_arguments)]
async fn exec_step(
    backend: &mut Backend,
    (version, index): (&Version, usize),
    sql: &str,
    t: Timeouts,
    lock_retries: u32,
    interrupt: &mut Interrupt,
    build: Option<(&crate::pglock::ConcurrentIndex, &DeployInfo)>,
) -> Result<Result<u32, DbError>, Error> {
    let done = retrying(
        backend,
        lock_retries,
        interrupt,
        Attempt::Statement(What::Migration(version), index),
        async |b: &mut Backend| {
            // In every attempt: one that hit the lock timeout leaves its own INVALID index.
            if let Some((build, deploy)) = build {
                guard::drop_invalid_in_the_way(b, build, (version, index), t, deploy).await?;
            }
            b.exec_statement(sql, t).await
        },
    )
    .await?;
    if done.is_ok() {
        backend
            .record_progress(version, index + 1)
            .await
            .map_err(Error::db(format!(
                "recording progress of migration {version}"
            )))?;
    }
    Ok(done.map(|((), retries)| retries))
}

/// Which migration a retry belongs to.
#[derive(Clone, Copy)]
enum What<'a> {
    /// A versioned migration.
    Migration(&'a Version),
    /// A repeatable migration, by name.
    Repeatable(&'a str),
}

/// What a lock-timeout retry repeats, for its log line.
#[derive(Clone, Copy)]
enum Attempt<'a> {
    /// A whole migration in its transaction, rolled back by the timeout.
    Whole(What<'a>),
    /// The statement at this zero-based position of this migration's file.
    Statement(What<'a>, usize),
    /// shipgate's own write before the migration file's first statement (on SQLite another
    /// writer locks the whole database, shipgate's tables included).
    Bookkeeping(&'a Version),
    /// Creating shipgate's tables and opening the run's `shipgate_runs` row.
    OpeningRun,
}

/// Runs `op`, and again after a lock timeout up to `lock_retries` times with backoff: an
/// operation that timed out waiting for a lock changed nothing. `Ok(Ok((value, retries)))` when
/// it went through, `Ok(Err(_))` with the database's error otherwise, `Err` on a signal.
async fn retrying<T>(
    backend: &mut Backend,
    lock_retries: u32,
    interrupt: &mut Interrupt,
    attempt_of: Attempt<'_>,
    mut op: impl AsyncFnMut(&mut Backend) -> Result<T, DbError>,
) -> Result<Result<(T, u32), DbError>, Error> {
    let mut attempt = 0;
    let mut delays = LOCK_RETRY_BACKOFF.delays();
    loop {
        let result = tokio::select! {
            r = op(backend) => r,
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, Stage::Running)),
        };
        match result {
            Ok(value) => return Ok(Ok((value, attempt))),
            Err(e) if e.kind == ErrorKind::LockTimeout && attempt < lock_retries => {
                let delay = delays.next().unwrap_or(RETRY_BACKOFF_MAX);
                attempt += 1;
                let retry_in_ms = delay.as_millis() as u64;
                match attempt_of {
                    Attempt::Whole(What::Migration(version)) => {
                        tracing::warn!(migration_version = version.field(), attempt, of = lock_retries, retry_in_ms, error = %e, "migration hit the lock timeout; rolled back, retrying")
                    }
                    Attempt::Whole(What::Repeatable(name)) => {
                        tracing::warn!(repeatable = name, attempt, of = lock_retries, retry_in_ms, error = %e, "repeatable migration hit the lock timeout; rolled back, retrying")
                    }
                    Attempt::Statement(What::Migration(version), i) => {
                        tracing::warn!(migration_version = version.field(), statement = i + 1, attempt, retry_in_ms, error = %e, "statement hit the lock timeout; retrying it")
                    }
                    Attempt::Statement(What::Repeatable(name), i) => {
                        tracing::warn!(repeatable = name, statement = i + 1, attempt, retry_in_ms, error = %e, "statement hit the lock timeout; retrying it")
                    }
                    Attempt::Bookkeeping(version) => {
                        tracing::warn!(migration_version = version.field(), attempt, retry_in_ms, error = %e, "recording the migration's start hit the lock timeout; retrying it")
                    }
                    Attempt::OpeningRun => {
                        tracing::warn!(attempt, retry_in_ms, error = %e, "recording the run hit the lock timeout; retrying it")
                    }
                }
                wait_or_interrupt(delay, interrupt).await?;
            }
            Err(error) => return Ok(Err(error)),
        }
    }
}

/// A statement-by-statement file stopped at a failing statement: its row becomes `failed`
/// with `message` (if even that fails, it stays `running`, which is dirty too) and the session
/// gets its default timeouts back.
async fn record_stop(backend: &mut Backend, version: &Version, message: &str) {
    if let Err(e) = backend.fail_untracked(version, message).await {
        tracing::error!(migration_version = version.field(), error = %e, "could not record the failure; the row stays `running`, which is dirty too");
    }
    let _ = backend.reset_session_timeouts().await;
}

/// Which applied migrations `down` reverts, newest first.
#[derive(Debug, Clone)]
pub enum DownRange {
    /// Everything newer than this version.
    To(Version),
    /// The newest N.
    Steps(u32),
}

/// One reverted migration.
#[derive(Debug, Clone, Serialize)]
pub struct Reverted {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// Wall time.
    pub duration_ms: u64,
}

/// Whether history was read under the migration lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Without the lock: a `running` row may be a live run's migration (it holds the lock and
    /// will finish it), so it counts as applied for choosing what to revert.
    Unlocked,
    /// Under the lock: every `running` or `failed` row is dirty.
    Locked,
}

/// The versions `range` selects from history, newest first, each with its down script.
/// Refuses, before anything changes, when a migration is dirty, when `--to` names a version
/// that is not applied (0 reverts everything), when `--steps` asks for more than is applied,
/// or when a selected migration has no down file or an empty one (irreversible).
pub fn select_down<'s>(
    history: &[HistoryRow],
    set: &'s MigrationSet,
    range: &DownRange,
    seen: Seen,
) -> Result<Vec<&'s Migration>, Error> {
    let dirty = |r: &&HistoryRow| match seen {
        Seen::Locked => r.state != State::Applied,
        Seen::Unlocked => r.state == State::Failed,
    };
    if let Some(d) = history.iter().find(dirty) {
        return Err(Error::Refused(format!(
            "migration {} is dirty (state {}); resolve it with `shipgate repair` before reverting; nothing was reverted",
            d.version,
            d.state.as_str()
        )));
    }
    let mut applied: Vec<&HistoryRow> = history.iter().collect();
    applied.sort_by(|a, b| b.version.cmp(&a.version));
    let newest: Vec<String> = applied
        .iter()
        .take(5)
        .map(|r| r.version.to_string())
        .collect();
    let listed = if newest.is_empty() {
        "none is applied".to_owned()
    } else {
        format!("{} applied, newest {}", applied.len(), newest.join(", "))
    };
    let chosen: Vec<&HistoryRow> = match range {
        DownRange::To(v) if !v.is_zero() && !applied.iter().any(|r| r.version == *v) => {
            return Err(Error::Refused(format!(
                "down --to {v}: version {v} is not applied ({listed}); --to names the applied version to stay at (0 reverts everything); nothing was reverted"
            )))
        }
        DownRange::To(v) => applied.into_iter().take_while(|r| r.version > *v).collect(),
        DownRange::Steps(0) => {
            return Err(Error::Refused(
                "down --steps 0: give at least 1; nothing was reverted".into(),
            ))
        }
        DownRange::Steps(n) if applied.is_empty() => {
            return Err(Error::Refused(format!(
                "down --steps {n}: no migration is applied; nothing was reverted"
            )))
        }
        DownRange::Steps(n) if *n as usize > applied.len() => {
            return Err(Error::Refused(format!(
                "down --steps {n}: only {} migration(s) are applied ({listed}); nothing was reverted",
                applied.len()
            )))
        }
        DownRange::Steps(n) => applied.into_iter().take(*n as usize).collect(),
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for r in chosen {
        match set.get(&r.version) {
            Some(m) => match &m.down {
                Some(down) if !down.is_empty() => out.push(m),
                // An empty or comment-only down file declares the migration irreversible.
                Some(down) => problems.push(format!(
                    "migration {} ({}) is irreversible: its down file {} holds no SQL",
                    r.version,
                    m.up.path.display(),
                    down.path.display()
                )),
                None => problems.push(format!(
                    "migration {} ({}) has no down file{}",
                    r.version,
                    m.up.path.display(),
                    set.layout
                        .checks()
                        .and_then(|c| c.no_downs)
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default()
                )),
            },
            None => problems.push(format!(
                "migration {} ({}) has no files in this build",
                r.version, r.name
            )),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused(format!(
            "cannot revert: {}; nothing was reverted",
            problems.join("; ")
        )));
    }
    Ok(out)
}

/// Reverts the migrations `range` selects, newest first, each in its own transaction (a
/// no-transaction down file runs statement by statement, then its row is removed).
///
/// `expected` is what the caller showed (and the operator confirmed) from history read
/// without the lock; a live run may hold the lock, so this waits for it like `up`, chooses
/// again under it, and refuses if the choice changed meanwhile.
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn down(
    backend: &mut Backend,
    set: &MigrationSet,
    range: DownRange,
    expected: &[Version],
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Vec<Reverted>, Error> {
    if expected.is_empty() {
        return Ok(Vec::new());
    }
    lock::acquire(backend, settings.lock_wait, interrupt).await?;
    let result = down_locked(
        backend, set, range, expected, reason, settings, deploy, interrupt,
    )
    .await;
    if let Err(e @ Error::Interrupted(..)) = result {
        return Err(e);
    }
    lock::release(backend).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn down_locked(
    backend: &mut Backend,
    set: &MigrationSet,
    range: DownRange,
    expected: &[Version],
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Vec<Reverted>, Error> {
    let (history, _) = plan(backend, set, &Policy::default()).await?;
    let targets = select_down(&history, set, &range, Seen::Locked)?;
    let chosen: Vec<Version> = targets.iter().map(|m| m.version.clone()).collect();
    if chosen != expected {
        let list = |v: &[Version]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::Refused(format!(
            "history changed while waiting for the migration lock: the revert was to undo {} and would now undo {}; nothing was reverted, run down again",
            list(expected),
            list(&chosen)
        )));
    }
    let run_id = open_run(
        backend,
        Some("down"),
        deploy,
        settings.lock_retries,
        interrupt,
    )
    .await?
    .expect("a command was given");
    let mut reverted = Vec::new();
    let result = revert_each(
        backend,
        &targets,
        reason,
        settings,
        deploy,
        interrupt,
        &mut reverted,
    )
    .await;
    if result.is_ok() && !reverted.is_empty() {
        // The version now applied gets the schema the revert left (replacing an older one).
        super::schema::record(backend, Some(run_id)).await;
    }
    close_run(backend, run_id, &result, reverted.len()).await;
    result.map(|()| reverted)
}

/// Reverts `targets` in order, pushing each one done onto `reverted`; each with its progress
/// lines (`reverting 1/3 …`, heartbeats, `reverted 1/3 … in 4.2s`), as `up` has.
async fn revert_each(
    backend: &mut Backend,
    targets: &[&Migration],
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
    reverted: &mut Vec<Reverted>,
) -> Result<(), Error> {
    let probe = Probe::of(backend, settings, deploy);
    for (i, m) in targets.iter().copied().enumerate() {
        let script = m
            .down
            .as_ref()
            .expect("select_down keeps only migrations with a down file");
        let step = Step {
            verb: Verb::Revert,
            n: i + 1,
            of: targets.len(),
            version: Some(&m.version),
            name: &m.name,
            file: &script.path,
        };
        let started = Instant::now();
        step.starting();
        let work = revert_one(backend, m, script, reason, settings, deploy, interrupt);
        let result = heartbeat::watched(work, &probe, |beat| step.beat(beat, None))
            .await
            .map(|()| (0, started.elapsed().as_millis() as u64));
        let (_, duration_ms) = step.ended(result)?;
        reverted.push(Reverted {
            version: m.version.clone(),
            name: m.name.clone(),
            duration_ms,
        });
    }
    Ok(())
}

/// Reverts one migration with its down `script`: in one transaction with its history row, or
/// statement by statement with the row marked first.
async fn revert_one(
    backend: &mut Backend,
    m: &Migration,
    script: &Script,
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<(), Error> {
    let file = script.path.display().to_string();
    let t = timeouts(script, settings);
    let audit = Audit {
        action: "down",
        version: Some(m.version.clone()),
        reason,
        before: Some(format!("applied {}", m.checksum)),
        after: Some("reverted".into()),
        deploy,
    };
    let untracked = untracked(backend, script);
    guard::before_file(
        backend,
        (&m.version, &file),
        script,
        untracked,
        settings,
        interrupt,
    )
    .await?;
    if untracked {
        backend
            .verify_lock()
            .await
            .map_err(|error| Error::LockLost {
                version: m.version.clone(),
                error,
            })?;
        retrying(
            backend,
            settings.lock_retries,
            interrupt,
            Attempt::Bookkeeping(&m.version),
            async |b: &mut Backend| b.start_untracked_revert(&m.version).await,
        )
        .await?
        .map_err(Error::db(format!(
            "recording migration {} as being reverted",
            m.version
        )))?;
        backend
            .set_session_timeouts(t)
            .await
            .map_err(Error::db("setting the revert's timeouts"))?;
        let statements = backend.statements(script).to_vec();
        let total = statements.len();
        for (i, statement) in statements.iter().enumerate() {
            let at = (i, total);
            guard::before_statement(
                backend,
                (&m.version, &file),
                statement,
                at,
                settings,
                interrupt,
            )
            .await?;
            let build = guard::concurrent_build(backend, &statement.sql);
            let step = exec_step(
                backend,
                (&m.version, i),
                &statement.sql,
                t,
                settings.lock_retries,
                interrupt,
                build.as_ref().map(|b| (b, deploy)),
            );
            if let Err(error) = step.await? {
                let message = format!(
                    "revert stopped at statement {} (line {}) of {file}: {error}; {i} statement(s) before it had committed",
                    i + 1,
                    statement.line
                );
                record_stop(backend, &m.version, &message).await;
                return Err(Error::RevertFailed {
                    version: m.version.clone(),
                    file,
                    error,
                    statements: Some((i, total)),
                });
            }
        }
        backend
            .reset_session_timeouts()
            .await
            .map_err(Error::db("restoring the session's timeouts"))?;
        backend
            .forget(&m.version, &audit)
            .await
            .map_err(Error::db(format!(
                "removing migration {} from history",
                m.version
            )))?;
    } else {
        let result = tokio::select! {
            r = backend.revert_in_transaction(script, &m.version, &audit, t) => r,
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, Stage::Running)),
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::LockLost => {
                return Err(Error::LockLost {
                    version: m.version.clone(),
                    error: e,
                })
            }
            Err(error) => {
                return Err(Error::RevertFailed {
                    version: m.version.clone(),
                    file,
                    error,
                    statements: None,
                })
            }
        }
    }
    Ok(())
}
