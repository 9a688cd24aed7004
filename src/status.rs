//! The status cache: one task reads the database at most once a second; HTTP handlers only
//! read the latest snapshot.
//!
//! Owns the [`Snapshot`] behind `/health/ready`, `/migrations/status` and the gauges of
//! `/metrics`. A burst of requests never reaches the database: the refresher runs on its own
//! clock, with one dedicated connection (reopened after an error), and each refresh is a single
//! statement (history, newest run and lock holder together). It never applies a migration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::{Config, Engine};
use crate::migrate::apply;
use crate::migrate::backend::{Backend, LockHolder, RunRow, StatusRows};
use crate::migrate::plan::{self, Dirty, Entry, Modified, PendingRepeatable};
use crate::migrate::source::{MigrationSet, Version};
use crate::migrate::Interrupt;

/// How often the refresher reads the database.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A snapshot older than this does not count as the database answering.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

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
    /// Why the migration files could not be read, if they could not.
    pub files_error: Option<String>,
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
    /// Who holds the migration lock.
    pub lock_holder: Option<LockHolder>,
    /// The newest `shipgate_runs` row, from any process.
    pub last_run: Option<RunRow>,
    /// When this snapshot was taken (RFC 3339).
    pub refreshed_at: Option<String>,
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

    fn empty(config: &Config) -> Snapshot {
        Snapshot {
            engine: config.database.engine().unwrap_or(Engine::Sqlite),
            server_version: None,
            database: config.database.redacted(),
            database_ok: false,
            error: Some("not read yet".into()),
            files_error: None,
            current_version: None,
            head_version: None,
            applied: 0,
            pending: Vec::new(),
            pending_repeatables: Vec::new(),
            modified: Vec::new(),
            missing: Vec::new(),
            out_of_order: Vec::new(),
            dirty: Vec::new(),
            lock_holder: None,
            last_run: None,
            refreshed_at: None,
            taken: None,
            encoded: String::new(),
        }
    }

    /// Why the service is not ready, from the database's side; empty when it is.
    pub fn not_ready_reasons(&self, policy: &plan::Policy) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(e) = &self.files_error {
            reasons.push(format!("migration files are invalid: {e}"));
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
        if self.database_ok {
            if !self.pending.is_empty() {
                reasons.push(format!("{} migration(s) pending", self.pending.len()));
            }
            if !self.pending_repeatables.is_empty() {
                reasons.push(format!(
                    "{} repeatable migration(s) to run again",
                    self.pending_repeatables.len()
                ));
            }
            for d in &self.dirty {
                reasons.push(format!(
                    "migration {} is dirty (state {})",
                    d.version,
                    d.state.as_str()
                ));
            }
            for m in &self.modified {
                reasons.push(format!(
                    "migration {} was edited after it was applied",
                    m.version
                ));
            }
            if !policy.allow_out_of_order {
                for e in &self.out_of_order {
                    reasons.push(format!("migration {} is pending out of order", e.version));
                }
            }
            if policy.strict {
                for e in &self.missing {
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
    set: Result<MigrationSet, String>,
    stop: watch::Receiver<bool>,
) -> (StatusCache, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(&config)));
    let task = tokio::spawn(refresh_loop(config, set, tx, stop));
    (StatusCache(rx), task)
}

async fn refresh_loop(
    config: Config,
    set: Result<MigrationSet, String>,
    tx: watch::Sender<Arc<Snapshot>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backend: Option<Backend> = None;
    let mut server_version: Option<String> = None;
    let mut last_success: Option<f64> = None;
    loop {
        let mut snap = Snapshot::empty(&config);
        match &set {
            // The head comes from the files: known whether or not the database answers.
            Ok(set) => snap.head_version = set.head(),
            Err(e) => snap.files_error = Some(e.clone()),
        }
        match refresh(&config, &mut backend, &mut server_version).await {
            Ok(rows) => {
                let history = rows.history.unwrap_or_default();
                if let Ok(set) = &set {
                    let p = plan::compute(&history, set, &config.policy);
                    snap.current_version = p.current;
                    snap.head_version = p.head;
                    snap.applied = p.applied.len();
                    snap.pending = p.pending;
                    snap.pending_repeatables = p.pending_repeatables;
                    snap.modified = p.modified;
                    snap.missing = p.missing;
                    snap.out_of_order = p.out_of_order;
                    snap.dirty = p.dirty;
                } else {
                    snap.applied = history.migrations.len();
                    snap.current_version =
                        history.migrations.iter().map(|r| &r.version).max().cloned();
                }
                if let Some(run) = &rows.last_run {
                    let ok = matches!(run.outcome.as_deref(), Some("succeeded" | "nothing_to_do"));
                    if let (true, Some(at)) = (ok, run.finished_at.as_deref()) {
                        last_success = unix_seconds(at).or(last_success);
                    }
                }
                snap.database_ok = true;
                snap.error = None;
                snap.lock_holder = rows.lock_holder;
                snap.last_run = rows.last_run;
            }
            Err(e) => {
                snap.error = Some(e);
                if let Some(b) = backend.take() {
                    b.close().await;
                }
            }
        }
        snap.server_version = server_version.clone();
        snap.refreshed_at = Some(crate::migrate::now_rfc3339());
        snap.taken = Some(Instant::now());
        let pending = snap.pending.len() + snap.pending_repeatables.len();
        metrics::gauge!("shipgate_pending_migrations").set(pending as f64);
        if let Some(at) = last_success {
            metrics::gauge!("shipgate_last_success_timestamp_seconds").set(at);
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

async fn refresh(
    config: &Config,
    backend: &mut Option<Backend>,
    server_version: &mut Option<String>,
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
        b.status_rows().await.map_err(|e| e.to_string())
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

fn unix_seconds(rfc3339: &str) -> Option<f64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}
