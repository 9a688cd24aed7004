//! The status cache: one task reads the database at most once a second; HTTP handlers only
//! read the latest snapshot.
//!
//! Owns the [`Snapshot`] behind `/health/ready`, `/migrations/status` and the gauges of
//! `/metrics`. A burst of requests never reaches the database: the refresher runs on its own
//! clock, with one dedicated connection (reopened after an error), and each refresh is a single
//! statement (history, newest run and lock holder together). It never applies a migration.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::alembic::Project;
use crate::config::{Config, Engine};
use crate::migrate::apply;
use crate::migrate::backend::{Backend, LockHolder, RunRow, StatusRows};
use crate::migrate::plan::{self, Dirty, Entry, HistoryRow, Modified, PendingRepeatable};
use crate::migrate::schema::{self, Key};
use crate::migrate::source::{MigrationSet, Version};
use crate::migrate::Interrupt;
use crate::runner::alembic::relative;

/// How often the refresher reads the database.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How many of the most recently applied migrations a snapshot keeps for the status page.
pub const RECENT_HISTORY: usize = 30;
/// A snapshot older than this does not count as the database answering.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// How often the refresher compares the live schema with its stored snapshot (drift), and at
/// once when the applied version changes: a catalog read is far heavier than the one-second
/// status statement, and drift made by hand does not need second-by-second news.
pub const DRIFT_EVERY: Duration = Duration::from_secs(60);

/// What the service knows about the database, as of `refreshed_at`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The engine.
    pub engine: Engine,
    /// Server version, once connected.
    pub server_version: Option<String>,
    /// The database URL, redacted.
    pub database: String,
    /// Whether the last refresh reached the database.
    pub database_ok: bool,
    /// The last refresh's error.
    pub error: Option<String>,
    /// Why the migration files (runner `sql`) or the Alembic project (runner `alembic`) could
    /// not be read, if they could not.
    pub files_error: Option<String>,
    /// Where the database stands against this build, in the runner's own terms.
    #[serde(flatten)]
    pub build: BuildState,
    /// Who holds the migration lock.
    pub lock_holder: Option<LockHolder>,
    /// The newest `shipgate_runs` row, from any process.
    pub last_run: Option<RunRow>,
    /// PostgreSQL's INVALID indexes (`schema.name`): a failed or killed
    /// `CREATE INDEX CONCURRENTLY` left them; readiness warns about them without failing.
    pub invalid_indexes: Vec<String>,
    /// When this snapshot was taken (RFC 3339).
    pub refreshed_at: Option<String>,
    /// The last drift check (every runner, each against its own snapshot; every
    /// [`DRIFT_EVERY`]), `None` before the first or when it could not be read.
    pub drift: Option<crate::migrate::schema::Report>,
    /// The newest `shipgate_runs` rows, newest first (the status page; not in the JSON, whose
    /// fields stay those of SPEC §6).
    #[serde(skip)]
    pub recent_runs: Vec<RunRow>,
    /// The most recently applied migrations (at most [`RECENT_HISTORY`]), oldest first: the
    /// status page's history table and duration chart.
    #[serde(skip)]
    pub recent_history: Vec<HistoryRow>,
    #[serde(skip)]
    taken: Option<Instant>,
    /// This snapshot as JSON without its closing brace, encoded once per refresh so that a
    /// request only appends `in_progress`.
    #[serde(skip)]
    encoded: String,
}

impl Snapshot {
    /// The snapshot as a JSON object with `in_progress` (already JSON) added.
    pub fn to_json_with(&self, in_progress: &str) -> String {
        let mut out = String::with_capacity(self.encoded.len() + in_progress.len() + 20);
        if self.encoded.is_empty() {
            // Not refreshed yet: encode now.
            out.push_str(&serde_json::to_string(self).unwrap_or_else(|_| "{}".into()));
            out.pop();
        } else {
            out.push_str(&self.encoded);
        }
        out.push_str(",\"in_progress\":");
        out.push_str(in_progress);
        out.push('}');
        out
    }

    fn empty(config: &Config, build: BuildState) -> Snapshot {
        Snapshot {
            engine: config.database.engine().unwrap_or(Engine::Sqlite),
            server_version: None,
            database: config.database.redacted(),
            database_ok: false,
            error: Some("not read yet".into()),
            files_error: None,
            build,
            lock_holder: None,
            last_run: None,
            invalid_indexes: Vec::new(),
            refreshed_at: None,
            drift: None,
            recent_runs: Vec::new(),
            recent_history: Vec::new(),
            taken: None,
            encoded: String::new(),
        }
    }

    /// The applied version (runner `sql`) or revisions (`alembic`) for `/health/ready`.
    pub fn current(&self) -> (&'static str, serde_json::Value) {
        match &self.build {
            BuildState::Alembic(a) => ("current_revisions", serde_json::json!(a.current_revisions)),
            BuildState::Sql(s) => ("current_version", serde_json::json!(s.current_version)),
            BuildState::Command { .. } => ("current_version", serde_json::Value::Null),
        }
    }

    /// Why the service is not ready, from the database's side; empty when it is.
    pub fn not_ready_reasons(&self, policy: &plan::Policy) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(e) = &self.files_error {
            match self.build {
                BuildState::Alembic(_) => {
                    reasons.push(format!("the Alembic project cannot be read: {e}"));
                }
                _ => reasons.push(format!("migration files are invalid: {e}")),
            }
        }
        match (self.database_ok, self.taken) {
            (true, Some(t)) if t.elapsed() <= STALE_AFTER => {}
            (true, _) => reasons.push(format!(
                "database status is older than {}",
                crate::migrate::human(STALE_AFTER)
            )),
            (false, _) => reasons.push(format!(
                "database not answering: {}",
                self.error.as_deref().unwrap_or("unknown error")
            )),
        }
        let sql = match (&self.build, self.database_ok) {
            (BuildState::Sql(sql), true) => sql,
            (BuildState::Alembic(a), true) => {
                a.not_ready_reasons(policy.strict, &mut reasons);
                return reasons;
            }
            _ => return reasons,
        };
        {
            if !sql.pending.is_empty() {
                reasons.push(format!("{} migration(s) pending", sql.pending.len()));
            }
            if !sql.pending_repeatables.is_empty() {
                reasons.push(format!(
                    "{} repeatable migration(s) to run again",
                    sql.pending_repeatables.len()
                ));
            }
            for d in &sql.dirty {
                reasons.push(format!(
                    "migration {} is dirty (state {})",
                    d.version,
                    d.state.as_str()
                ));
            }
            for m in &sql.modified {
                reasons.push(format!(
                    "migration {} was edited after it was applied",
                    m.version
                ));
            }
            if !policy.allow_out_of_order {
                for e in &sql.out_of_order {
                    reasons.push(format!("migration {} is pending out of order", e.version));
                }
            }
            if policy.strict {
                for e in &sql.missing {
                    reasons.push(format!(
                        "migration {} is applied but not in this build",
                        e.version
                    ));
                }
            }
        }
        reasons
    }
}

/// Where the database stands, in the terms of the runner that migrates it. Serialised flat into
/// the snapshot: the `sql` runner's fields are those `/migrations/status` always had.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BuildState {
    /// shipgate's own engine: history against this build's migration files.
    Sql(SqlState),
    /// Alembic: `alembic_version`'s rows against the project's revision graph.
    Alembic(AlembicState),
    /// A command: shipgate cannot tell what it will apply.
    Command {
        /// Always `command`.
        runner: &'static str,
    },
}

/// The `sql` runner's state: history against this build's files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SqlState {
    /// Highest applied version.
    pub current_version: Option<Version>,
    /// Highest version in this build's files.
    pub head_version: Option<Version>,
    /// Applied migrations.
    pub applied: usize,
    /// Pending migrations.
    pub pending: Vec<Entry>,
    /// Repeatable migrations that would run again (new or changed since they last ran).
    pub pending_repeatables: Vec<PendingRepeatable>,
    /// Applied migrations whose files changed.
    pub modified: Vec<Modified>,
    /// Applied migrations this build does not have.
    pub missing: Vec<Entry>,
    /// Pending migrations older than the newest applied one.
    pub out_of_order: Vec<Entry>,
    /// Half-applied migrations.
    pub dirty: Vec<Dirty>,
}

/// The `alembic` runner's state, in the fields of `shipgate status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct AlembicState {
    /// Always `alembic`.
    pub runner: &'static str,
    /// The version table's name.
    pub version_table: String,
    /// `alembic_version`'s rows.
    pub current_revisions: Vec<String>,
    /// What the rows will be once `alembic upgrade heads` is done.
    pub head_revisions: Vec<String>,
    /// Applied revisions, in upgrade order.
    pub applied: Vec<String>,
    /// Pending revisions, in the order `alembic upgrade heads` runs them.
    pub pending: Vec<AlembicRevision>,
    /// Rows naming no revision of this build (the database is ahead of it).
    pub unknown: Vec<String>,
    /// Rows that are ancestors of other rows (`alembic upgrade` refuses them).
    pub overlapping: Vec<String>,
}

/// A revision as the status documents name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlembicRevision {
    /// The revision id.
    pub revision: String,
    /// The first paragraph of its docstring.
    pub message: String,
    /// Its file, relative to the project's directory.
    pub file: String,
}

/// What the refresher compares the database with, loaded once when the service starts.
#[derive(Debug)]
pub enum Build {
    /// This build's migration files (runner `sql`), or why they cannot be read.
    Sql(Result<MigrationSet, String>),
    /// The Alembic project (its graph and its directory, which files are named relative to),
    /// or why it cannot be read.
    Alembic(Result<(Project, PathBuf), String>),
    /// Nothing: a command's own state is its own (runner `command`).
    Command,
}

impl AlembicState {
    /// `rows` (the version table's) against `project`, files named relative to `dir`.
    pub fn of(project: &Project, dir: &Path, table: &str, rows: Vec<String>) -> AlembicState {
        let state = project.state(&rows);
        AlembicState {
            runner: "alembic",
            version_table: table.to_owned(),
            current_revisions: rows,
            head_revisions: state.effective_heads,
            applied: state.applied,
            pending: state
                .pending
                .iter()
                .map(|s| AlembicRevision {
                    revision: s.revision.clone(),
                    message: s.message.clone(),
                    file: relative(&s.file, dir),
                })
                .collect(),
            unknown: state.unknown,
            overlapping: state.overlapping,
        }
    }

    /// Nothing read yet.
    fn unread(table: &str) -> AlembicState {
        AlembicState {
            runner: "alembic",
            version_table: table.to_owned(),
            current_revisions: Vec::new(),
            head_revisions: Vec::new(),
            applied: Vec::new(),
            pending: Vec::new(),
            unknown: Vec::new(),
            overlapping: Vec::new(),
        }
    }

    /// Why a database in this state is not ready: pending or overlapping revisions, and rows
    /// this build does not know when `strict` (without it a database ahead is ready, as the
    /// release that finds one succeeds without running Alembic: the build that applied them
    /// is newer, and this one runs against their schema).
    pub fn not_ready_reasons(&self, strict: bool, reasons: &mut Vec<String>) {
        // With an unknown row, nothing is pending that this build could apply: the release
        // runs no Alembic (it cannot upgrade from a revision it does not know).
        if !self.pending.is_empty() && self.unknown.is_empty() {
            reasons.push(format!("{} revision(s) pending", self.pending.len()));
        }
        if !self.overlapping.is_empty() {
            reasons.push(format!(
                "{} overlap with other rows of {} (alembic upgrade refuses them)",
                self.overlapping.join(", "),
                self.version_table
            ));
        }
        if strict && !self.unknown.is_empty() {
            reasons.push(format!(
                "the database is ahead of this build: {} not among its revisions (strict)",
                self.unknown.join(", ")
            ));
        }
    }
}

/// The read side of the cache; cheap to clone.
#[derive(Debug, Clone)]
pub struct StatusCache(watch::Receiver<Arc<Snapshot>>);

impl StatusCache {
    /// The latest snapshot.
    pub fn get(&self) -> Arc<Snapshot> {
        self.0.borrow().clone()
    }

    /// Waits for the next refresh (used by `serve` right after a release).
    pub async fn changed(&mut self) {
        let _ = self.0.changed().await;
    }
}

/// Starts the refresher; it stops when `stop` fires. The caller owns the returned task.
pub fn spawn(
    config: Config,
    build: Build,
    stop: watch::Receiver<bool>,
) -> (StatusCache, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(
        &config,
        BuildState::Sql(SqlState::default()),
    )));
    let task = tokio::spawn(refresh_loop(config, build, tx, stop));
    (StatusCache(rx), task)
}

async fn refresh_loop(
    config: Config,
    build: Build,
    tx: watch::Sender<Arc<Snapshot>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backend: Option<Backend> = None;
    let mut server_version: Option<String> = None;
    let (schema, table) = &config.runner.alembic_version_table;
    // Alembic's rows ride in the refresher's one statement only when a project was read.
    let alembic = match &build {
        Build::Alembic(Ok(_)) => Some((schema.as_deref(), table.as_str())),
        _ => None,
    };
    let mut drift: Option<Drift> = None;
    loop {
        let mut snap = Snapshot::empty(&config, before_reading(&build, table));
        if let Build::Sql(Err(e)) | Build::Alembic(Err(e)) = &build {
            snap.files_error = Some(e.clone());
        }
        match refresh(&config, &mut backend, &mut server_version, alembic).await {
            Ok(rows) => {
                snap.recent_history = recent(rows.history.as_ref());
                set_run_gauges(&rows);
                snap.build = compare(&build, &config, rows.history, rows.alembic);
                snap.database_ok = true;
                snap.error = None;
                snap.lock_holder = rows.lock_holder;
                snap.last_run = rows.last_run;
                snap.invalid_indexes = rows.invalid_indexes;
                snap.recent_runs = rows.recent_runs;
            }
            Err(e) => {
                snap.error = Some(e);
                if let Some(b) = backend.take() {
                    b.close().await;
                }
            }
        }
        if snap.database_ok {
            let at = match (&snap.build, &build) {
                (BuildState::Sql(state), _) => {
                    Head::Known(state.current_version.clone().map(Key::Version))
                }
                (BuildState::Alembic(state), Build::Alembic(Ok(_))) => {
                    Head::Known(Key::revisions(&state.current_revisions))
                }
                // No project read, or a command: the key is read when the check is due.
                _ => Head::Unread(snap.last_run.as_ref().map(|r| (r.id, r.outcome.clone()))),
            };
            check_drift(&config, &mut backend, at, &mut drift).await;
            snap.drift = drift.as_ref().and_then(|d| d.report.clone());
        }
        snap.server_version = server_version.clone();
        snap.refreshed_at = Some(crate::migrate::now_rfc3339());
        snap.taken = Some(Instant::now());
        if snap.database_ok {
            set_state_gauges(&snap);
        }
        snap.encoded = serde_json::to_string(&snap).unwrap_or_else(|_| "{}".into());
        snap.encoded.pop();
        if tx.send(Arc::new(snap)).is_err() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(REFRESH_EVERY) => {}
            _ = stop.changed() => break,
        }
    }
    if let Some(b) = backend {
        b.close().await;
    }
}

/// The refresher's last drift check.
struct Drift {
    at: Instant,
    head: Head,
    report: Option<crate::migrate::schema::Report>,
}

/// Where the database stands for the refresher's drift check, as far as this refresh's one
/// statement tells.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Head {
    /// Read by it: history's applied version, or Alembic's rows.
    Known(Option<Key>),
    /// Not read by it (a command runner's last successful run, or Alembic's rows when the
    /// project could not be read): the check reads the key itself, and is due at once when
    /// the newest run (id, outcome) changes.
    Unread(Option<(i64, Option<String>)>),
}

/// Compares the live schema with its snapshot when [`DRIFT_EVERY`] has passed since the last
/// check or where the database stands moved. A failure is logged and kept (no retry before the
/// next period); a check that outlasts its bound drops the connection, which may be
/// mid-statement.
async fn check_drift(
    config: &Config,
    backend: &mut Option<Backend>,
    head: Head,
    last: &mut Option<Drift>,
) {
    const BOUND: Duration = Duration::from_secs(10);
    let due = last
        .as_ref()
        .is_none_or(|d| d.at.elapsed() >= DRIFT_EVERY || d.head != head);
    let Some(b) = backend.as_mut().filter(|_| due) else {
        return;
    };
    let keyed = crate::runner::keyed(config);
    let check = async {
        let key = match &head {
            Head::Known(key) => key.clone(),
            Head::Unread(_) => schema::head(b, keyed).await?,
        };
        schema::compare(b, keyed, key.as_ref(), &config.drift.ignore).await
    };
    let compared = tokio::time::timeout(BOUND, check).await;
    let report = match compared {
        Ok(Ok(report)) => Some(report),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status: could not compare the live schema with its snapshot");
            None
        }
        Err(_) => {
            tracing::warn!(
                "status: the drift check took longer than {}; dropped the connection",
                crate::migrate::human(BOUND)
            );
            if let Some(b) = backend.take() {
                b.close().await;
            }
            None
        }
    };
    *last = Some(Drift {
        at: Instant::now(),
        head,
        report,
    });
}

/// The [`RECENT_HISTORY`] most recently applied rows of `history`, oldest first (by
/// `applied_at`, then version; rows with no time first).
fn recent(history: Option<&plan::History>) -> Vec<HistoryRow> {
    let Some(history) = history else {
        return Vec::new();
    };
    let mut rows: Vec<&HistoryRow> = history.migrations.iter().collect();
    rows.sort_by(|a, b| {
        (a.applied_at.as_deref(), &a.version).cmp(&(b.applied_at.as_deref(), &b.version))
    });
    let skip = rows.len().saturating_sub(RECENT_HISTORY);
    rows.into_iter().skip(skip).cloned().collect()
}

/// What is known before the database answers: the head from the files (or the project).
fn before_reading(build: &Build, table: &str) -> BuildState {
    match build {
        Build::Sql(set) => BuildState::Sql(SqlState {
            head_version: set.as_ref().ok().and_then(MigrationSet::head),
            ..SqlState::default()
        }),
        Build::Alembic(Ok((project, _))) => BuildState::Alembic(AlembicState {
            head_revisions: project.graph.effective_heads(),
            ..AlembicState::unread(table)
        }),
        Build::Alembic(Err(_)) => BuildState::Alembic(AlembicState::unread(table)),
        Build::Command => BuildState::Command { runner: "command" },
    }
}

/// The database's rows against the build.
fn compare(
    build: &Build,
    config: &Config,
    history: Option<plan::History>,
    alembic: Option<Vec<String>>,
) -> BuildState {
    let table = &config.runner.alembic_version_table.1;
    match build {
        Build::Sql(set) => {
            let history = history.unwrap_or_default();
            match set {
                Ok(set) => {
                    let p = plan::compute(&history, set, &config.policy);
                    BuildState::Sql(SqlState {
                        current_version: p.current,
                        head_version: p.head,
                        applied: p.applied.len(),
                        pending: p.pending,
                        pending_repeatables: p.pending_repeatables,
                        modified: p.modified,
                        missing: p.missing,
                        out_of_order: p.out_of_order,
                        dirty: p.dirty,
                    })
                }
                Err(_) => BuildState::Sql(SqlState {
                    applied: history.migrations.len(),
                    current_version: history.migrations.iter().map(|r| &r.version).max().cloned(),
                    ..SqlState::default()
                }),
            }
        }
        Build::Alembic(Ok((project, dir))) => BuildState::Alembic(AlembicState::of(
            project,
            dir,
            table,
            alembic.unwrap_or_default(),
        )),
        Build::Alembic(Err(_)) => BuildState::Alembic(AlembicState {
            current_revisions: alembic.unwrap_or_default(),
            ..AlembicState::unread(table)
        }),
        Build::Command => BuildState::Command { runner: "command" },
    }
}

async fn refresh(
    config: &Config,
    backend: &mut Option<Backend>,
    server_version: &mut Option<String>,
    alembic: Option<(Option<&str>, &str)>,
) -> Result<StatusRows, String> {
    const BOUND: Duration = Duration::from_secs(5);
    let work = async {
        if backend.is_none() {
            // One attempt per refresh: the refresher's own clock is the backoff.
            let mut settings = config.engine.clone();
            settings.connect_timeout = BOUND;
            let (_tx, mut never) = Interrupt::channel();
            let mut b = apply::connect(
                &config.database,
                &settings,
                &status_deploy(config),
                &mut never,
            )
            .await
            .map_err(|e| e.to_string())?;
            *server_version = b.server_version().await.ok();
            *backend = Some(b);
        }
        let b = backend.as_mut().expect("connected just above");
        b.status_rows(alembic).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(BOUND * 2, work)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}",
                crate::migrate::human(BOUND * 2)
            ))
        })
}

fn status_deploy(config: &Config) -> crate::config::DeployInfo {
    let mut d = config.deploy.clone();
    d.deploy_id = Some(match &d.deploy_id {
        Some(id) => format!("serve {id}"),
        None => "serve".into(),
    });
    d
}

/// The gauges read from `shipgate_runs`: when the newest successful release and the newest
/// successful `down` ended, whichever process ran them. Absent until such a run exists.
fn set_run_gauges(rows: &StatusRows) {
    let ended = |run: &Option<RunRow>| {
        run.as_ref()
            .and_then(|r| r.finished_at.as_deref())
            .and_then(unix_seconds)
    };
    if let Some(at) = ended(&rows.last_success) {
        metrics::gauge!("shipgate_last_success_timestamp_seconds").set(at);
    }
    if let Some(at) = ended(&rows.last_down) {
        metrics::gauge!("shipgate_last_down_timestamp_seconds").set(at);
    }
}

/// The gauges of where the database stands against this build, and of the lock: pending,
/// dirty and modified counts, whether the migration lock is held and for how long its holder
/// has been at it (see [`LockHolder::since`]; 0 when free). Set only from a refresh that
/// reached the database, so a failed refresh leaves the last known values.
fn set_state_gauges(snap: &Snapshot) {
    let (pending, dirty, modified) = match &snap.build {
        BuildState::Sql(s) => (
            s.pending.len() + s.pending_repeatables.len(),
            s.dirty.len(),
            s.modified.len(),
        ),
        // Alembic keeps no per-revision state or checksum: nothing is dirty or modified.
        BuildState::Alembic(a) => (a.pending.len(), 0, 0),
        BuildState::Command { .. } => (0, 0, 0),
    };
    metrics::gauge!("shipgate_pending_migrations").set(pending as f64);
    metrics::gauge!("shipgate_dirty_migrations").set(dirty as f64);
    metrics::gauge!("shipgate_modified_migrations").set(modified as f64);
    let held = snap.lock_holder.as_ref();
    metrics::gauge!("shipgate_lock_held").set(if held.is_some() { 1.0 } else { 0.0 });
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
    let age = held
        .and_then(|h| h.since.as_deref())
        .and_then(unix_seconds)
        .map_or(0.0, |since| (now - since).max(0.0));
    metrics::gauge!("shipgate_lock_held_seconds").set(age);
}

fn unix_seconds(rfc3339: &str) -> Option<f64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}
