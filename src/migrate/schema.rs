//! `shipgate_schema`: the schema snapshot stored after each change, and the comparison of the
//! live schema with it (drift, without a shadow database).
//!
//! The I/O around the pure [`super::drift`]: which version a snapshot belongs to (the highest
//! applied one), storing it under the lock after a release, `baseline`, `adopt` or `drift
//! --accept`, and reading it back to compare. It decides no policy: whether drift refuses a
//! release is `crate::gate`'s business, what `status` and `drift` print is theirs.

use serde::Serialize;

use super::backend::{Backend, DbError};
use super::drift::{self, Difference, Ignore};
use super::plan::State;
use crate::version::Version;

/// The highest applied version in history, which a snapshot taken now belongs to; `None` when
/// nothing is applied (or shipgate has no tables yet).
pub async fn applied_head(backend: &mut Backend) -> Result<Option<Version>, DbError> {
    Ok(backend.read_history().await?.and_then(|rows| {
        rows.into_iter()
            .filter(|r| r.state == State::Applied)
            .map(|r| r.version)
            .max()
    }))
}

/// Reads the live schema and stores it as the snapshot of the applied head, taken by
/// `run_id`. Returns the version and how many objects it holds; `None` when nothing is
/// applied. Call under the lock.
pub async fn store(
    backend: &mut Backend,
    run_id: Option<i64>,
) -> Result<Option<(Version, usize)>, DbError> {
    let Some(version) = applied_head(backend).await? else {
        return Ok(None);
    };
    let snapshot = backend.schema_snapshot().await?;
    backend.store_snapshot(&version, run_id, &snapshot).await?;
    Ok(Some((version, snapshot.len())))
}

/// [`store`] after a change that succeeded, under its lock. A failure is logged as an error
/// and does not fail the run: its migrations are committed, and failing the deploy now would
/// roll the app back onto a schema that already moved on. It is not silent either: every
/// later drift check says that no snapshot exists for this version until one is stored.
pub async fn record(backend: &mut Backend, run_id: Option<i64>) {
    match store(backend, run_id).await {
        Ok(Some((version, objects))) => {
            tracing::info!(snapshot_version = %version, objects, "stored the schema snapshot for drift checks")
        }
        Ok(None) => {}
        Err(e) => tracing::error!(
            error = %e,
            "could not store the schema snapshot: what was applied stays applied, but drift is not checked until a later release (or `shipgate drift --accept`) stores one"
        ),
    }
}

/// What a drift check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing is applied: there is no schema shipgate is responsible for yet.
    NoHistory,
    /// No snapshot is stored for the applied head (a database migrated before snapshots
    /// existed, or a store that failed): nothing to compare against.
    NoSnapshot,
    /// The live schema matches the snapshot.
    Clean,
    /// The live schema differs from the snapshot.
    Drift,
    /// The live schema differs, but another run holds the migration lock (or history moved
    /// during the check): the differences may be its migrations, not yet in a snapshot, so
    /// they are not judged.
    Busy,
}

/// A drift check's result: the `--json` of `shipgate drift` and the `drift` field of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What it found.
    pub state: Verdict,
    /// The applied head the snapshot belongs to.
    pub version: Option<String>,
    /// When the snapshot was taken.
    pub taken_at: Option<String>,
    /// The run that took it.
    pub run_id: Option<i64>,
    /// Every difference not ignored, in a stable order.
    pub differences: Vec<Difference>,
}

impl Report {
    /// One line saying what was found.
    pub fn summary(&self) -> String {
        let version = self.version.as_deref().unwrap_or("-");
        let taken = self
            .taken_at
            .as_deref()
            .map(|t| format!(", taken {t}"))
            .unwrap_or_default();
        match self.state {
            Verdict::NoHistory => "no migration is applied yet: no schema to compare".to_owned(),
            Verdict::NoSnapshot => format!(
                "no schema snapshot is stored for version {version}: drift is not checked until a release that applies a migration stores one (`shipgate drift --accept` stores the live schema now)"
            ),
            Verdict::Clean => {
                format!("no drift: the live schema matches the snapshot of version {version}{taken}")
            }
            Verdict::Drift => format!(
                "schema drift: {} difference(s) from the snapshot of version {version}{taken}",
                self.differences.len()
            ),
            Verdict::Busy => format!(
                "{} difference(s) from the snapshot of version {version}{taken}, not judged: another run holds the migration lock or history changed during the check, so they may be its migrations in progress; check again when it has finished",
                self.differences.len()
            ),
        }
    }

    /// The summary and every difference, one per line, for an error message.
    pub fn refusal(&self) -> String {
        let mut text = self.summary();
        for d in &self.differences {
            text.push_str("\n  ");
            text.push_str(&d.message);
        }
        text
    }
}

/// Compares the live schema with the snapshot of `version` (the applied head, as the caller
/// read it), leaving out what `ignore` names. Two statements when a snapshot exists: the stored
/// row, and one catalog read. Differences found while another run holds the migration lock,
/// or while history moved past `version`, are [`Verdict::Busy`]: a release in progress changes
/// the schema before it stores the snapshot, and that is not drift.
pub async fn compare(
    backend: &mut Backend,
    version: Option<&Version>,
    ignore: &Ignore,
) -> Result<Report, DbError> {
    let mut report = compare_as_is(backend, version, ignore).await?;
    if report.state == Verdict::Drift {
        let busy = backend.lock_holder().await?.is_some()
            || applied_head(backend).await?.as_ref() != version;
        if busy {
            report.state = Verdict::Busy;
        }
    }
    Ok(report)
}

/// [`compare`] without the look at the lock: for a caller that holds it.
async fn compare_as_is(
    backend: &mut Backend,
    version: Option<&Version>,
    ignore: &Ignore,
) -> Result<Report, DbError> {
    let mut report = Report {
        state: Verdict::NoHistory,
        version: version.map(ToString::to_string),
        taken_at: None,
        run_id: None,
        differences: Vec::new(),
    };
    let Some(version) = version else {
        return Ok(report);
    };
    let Some(stored) = backend.read_snapshot(version).await? else {
        report.state = Verdict::NoSnapshot;
        return Ok(report);
    };
    let started = std::time::Instant::now();
    let live = backend.schema_snapshot().await?;
    let read = started.elapsed();
    report.differences = drift::diff(&live, &stored.snapshot, ignore);
    tracing::debug!(
        objects = live.len(),
        catalog_read_us = read.as_micros() as u64,
        compare_us = (started.elapsed() - read).as_micros() as u64,
        "drift check: the live catalog read and compared"
    );
    report.taken_at = stored.taken_at;
    report.run_id = stored.run_id;
    report.state = if report.differences.is_empty() {
        Verdict::Clean
    } else {
        Verdict::Drift
    };
    Ok(report)
}

/// What `shipgate drift --accept` did.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// The drift it accepted (state `no_snapshot` when there was nothing to compare with).
    pub before: Report,
    /// The version the live schema is now the snapshot of.
    pub version: String,
    /// How many objects that snapshot holds.
    pub objects: usize,
}

/// `shipgate drift --accept`: under the lock, stores the live schema as the snapshot of the
/// applied head, with an audit row naming what it accepted and why. The changes made by hand
/// become what later checks compare against.
pub async fn accept(
    backend: &mut Backend,
    ignore: &Ignore,
    reason: Option<&str>,
    settings: &crate::config::EngineSettings,
    deploy: &crate::config::DeployInfo,
    interrupt: &mut super::Interrupt,
) -> Result<Accepted, super::Error> {
    super::lock::acquire(backend, settings.lock_wait, interrupt).await?;
    let result = async {
        let version = applied_head(backend)
            .await
            .map_err(super::Error::db("reading migration history"))?
            .ok_or_else(|| {
                super::Error::Refused(
                    "drift --accept: no migration is applied yet, so there is no version to store a snapshot for; nothing was changed".into(),
                )
            })?;
        let before = compare_as_is(backend, Some(&version), ignore)
            .await
            .map_err(super::Error::db("reading the schema for the drift check"))?;
        backend
            .ensure_tables()
            .await
            .map_err(super::Error::db("creating shipgate's tables"))?;
        let snapshot = backend
            .schema_snapshot()
            .await
            .map_err(super::Error::db("reading the live schema"))?;
        backend
            .store_snapshot(&version, None, &snapshot)
            .await
            .map_err(super::Error::db("storing the schema snapshot"))?;
        let audit = super::backend::Audit {
            action: "drift-accept",
            version: Some(version.clone()),
            reason,
            before: Some(before.refusal()),
            after: Some(format!(
                "stored the live schema ({} objects, sha256 {}) as the snapshot of version {version}",
                snapshot.len(),
                &snapshot.hash()[..12]
            )),
            deploy,
        };
        backend
            .record_audit(&audit)
            .await
            .map_err(super::Error::db("recording the audit row"))?;
        Ok(Accepted {
            before,
            version: version.to_string(),
            objects: snapshot.len(),
        })
    }
    .await;
    if let Err(e @ super::Error::Interrupted(..)) = result {
        return Err(e);
    }
    super::lock::release(backend).await;
    result
}
