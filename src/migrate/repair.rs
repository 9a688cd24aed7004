//! Changing history without running migrations: `baseline` and `repair`.
//!
//! Each operation takes the lock, re-reads history under it, checks that the change makes
//! sense (a repair only touches a dirty row, an accepted checksum must differ), writes the
//! change and its audit row in one transaction, and releases the lock.

use serde::Serialize;

use super::apply::plan;
use super::backend::{Audit, Backend, Record};
use super::plan::{HistoryRow, Policy, State};
use super::source::{MigrationSet, Version};
use super::{lock, Error, Interrupt};
use crate::config::{DeployInfo, EngineSettings};

/// What `repair` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A dirty migration was finished by hand: mark it applied.
    MarkApplied(Version),
    /// A dirty migration was undone by hand: forget it so it runs again.
    MarkRolledBack(Version),
    /// An applied file was edited on purpose: record its new checksum.
    AcceptChecksum(Version),
}

/// What a repair or baseline changed, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The audit action written.
    pub action: String,
    /// The migrations concerned.
    pub versions: Vec<Version>,
    /// One line saying what happened.
    pub summary: String,
}

async fn locked<T>(
    backend: &mut Backend,
    settings: &EngineSettings,
    interrupt: &mut Interrupt,
    work: impl AsyncFnOnce(&mut Backend) -> Result<T, Error>,
) -> Result<T, Error> {
    lock::acquire(backend, settings.lock_wait, interrupt).await?;
    let result = async {
        backend
            .ensure_tables()
            .await
            .map_err(Error::db("creating shipgate's tables"))?;
        work(backend).await
    }
    .await;
    lock::release(backend).await;
    result
}

/// History rows for `versions` of `set` (those it has), recorded as applied without running.
pub(super) fn records<'s>(
    set: &'s MigrationSet,
    versions: impl IntoIterator<Item = Version>,
    deploy: &'s DeployInfo,
) -> Vec<Record<'s>> {
    versions
        .into_iter()
        .filter_map(|v| set.get(&v))
        .map(|m| Record {
            version: &m.version,
            name: &m.name,
            checksum: &m.checksum,
            deploy,
        })
        .collect()
}

/// Records every migration up to and including `version` as applied without running it.
pub async fn baseline(
    backend: &mut Backend,
    set: &MigrationSet,
    version: Version,
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Change, Error> {
    if set.get(&version).is_none() {
        return Err(Error::Refused(format!(
            "baseline --version {version}: no migration with that version in {}",
            set.dir.display()
        )));
    }
    locked(backend, settings, interrupt, async |backend| {
        let (history, _) = plan(backend, set, &Policy::default()).await?;
        if let Some(d) = history.iter().find(|r| r.state != State::Applied) {
            return Err(Error::Refused(format!(
                "migration {} is dirty; repair it before a baseline",
                d.version
            )));
        }
        let known: std::collections::HashSet<&Version> =
            history.iter().map(|r| &r.version).collect();
        let records = records(
            set,
            set.migrations
                .iter()
                .map(|m| &m.version)
                .filter(|v| **v <= version && !known.contains(v))
                .cloned(),
            deploy,
        );
        let versions: Vec<Version> = records.iter().map(|r| r.version.clone()).collect();
        if records.is_empty() {
            return Ok(Change {
                action: "baseline".into(),
                versions,
                summary: format!(
                    "nothing to record: every migration up to {version} is already in history"
                ),
            });
        }
        let audit = Audit {
            action: "baseline",
            version: Some(version.clone()),
            reason,
            before: Some(format!("{} migration(s) in history", history.len())),
            after: Some(format!(
                "recorded {} migration(s) up to {version} as applied without running them",
                records.len()
            )),
            deploy,
        };
        backend
            .record_baseline(&records, &audit)
            .await
            .map_err(Error::db("recording the baseline"))?;
        // The schema a baseline adopts is the one drift is checked against from now on.
        super::schema::record(backend, None).await;
        Ok(Change {
            action: "baseline".into(),
            summary: format!(
                "recorded {} migration(s) up to {version} as applied without running them",
                versions.len()
            ),
            versions,
        })
    })
    .await
}

/// Resolves a dirty migration or accepts an edited checksum, with an audit row.
pub async fn repair(
    backend: &mut Backend,
    set: &MigrationSet,
    action: Action,
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Change, Error> {
    locked(backend, settings, interrupt, async |backend| {
        let (history, _) = plan(backend, set, &Policy::default()).await?;
        let row = |v: &Version| -> Result<&HistoryRow, Error> {
            history.iter().find(|r| r.version == *v).ok_or_else(|| {
                Error::Refused(format!(
                    "migration {v} has no history row; nothing to repair"
                ))
            })
        };
        let dirty = |r: &HistoryRow| -> Result<(), Error> {
            if r.state == State::Applied {
                Err(Error::Refused(format!(
                    "migration {} is not dirty (state applied); nothing to repair",
                    r.version
                )))
            } else {
                Ok(())
            }
        };
        let before = |r: &HistoryRow| {
            Some(format!(
                "state {}, {} statement(s) done, checksum {}",
                r.state.as_str(),
                r.statements_done,
                r.checksum
            ))
        };
        match action {
            Action::MarkApplied(v) => {
                let r = row(&v)?;
                dirty(r)?;
                let audit = Audit {
                    action: "mark-applied",
                    version: Some(v.clone()),
                    reason,
                    before: before(r),
                    after: Some("state applied".into()),
                    deploy,
                };
                backend
                    .mark_applied(&v, &audit)
                    .await
                    .map_err(Error::db(format!("marking migration {v} applied")))?;
                Ok(Change {
                    action: "mark-applied".into(),
                    versions: vec![v.clone()],
                    summary: format!("migration {v} marked applied"),
                })
            }
            Action::MarkRolledBack(v) => {
                let r = row(&v)?;
                dirty(r)?;
                let audit = Audit {
                    action: "mark-rolled-back",
                    version: Some(v.clone()),
                    reason,
                    before: before(r),
                    after: Some("removed from history; the next run applies it again".into()),
                    deploy,
                };
                backend
                    .forget(&v, &audit)
                    .await
                    .map_err(Error::db(format!("removing migration {v} from history")))?;
                Ok(Change {
                    action: "mark-rolled-back".into(),
                    versions: vec![v.clone()],
                    summary: format!(
                        "migration {v} removed from history; the next run applies it again"
                    ),
                })
            }
            Action::AcceptChecksum(v) => {
                let r = row(&v)?;
                let m = set.get(&v).ok_or_else(|| {
                    Error::Refused(format!(
                        "migration {v} has no file in {}; there is no checksum to accept",
                        set.dir.display()
                    ))
                })?;
                if r.checksum == m.checksum {
                    return Err(Error::Refused(format!(
                        "migration {v}: the file's checksum already matches history ({})",
                        m.checksum
                    )));
                }
                let audit = Audit {
                    action: "accept-checksum",
                    version: Some(v.clone()),
                    reason,
                    before: Some(r.checksum.clone()),
                    after: Some(m.checksum.clone()),
                    deploy,
                };
                backend
                    .accept_checksum(&v, &m.checksum, &audit)
                    .await
                    .map_err(Error::db(format!(
                        "accepting the checksum of migration {v}"
                    )))?;
                Ok(Change {
                    action: "accept-checksum".into(),
                    versions: vec![v.clone()],
                    summary: format!(
                        "migration {v}: accepted checksum {} (was {})",
                        m.checksum, r.checksum
                    ),
                })
            }
        }
    })
    .await
}
