//! Taking over another tool's history (`shipgate adopt`): one module per foreign history table,
//! each turning that table into the versions it says are applied, checked against the files.
//!
//! Adopting takes the lock, refuses when shipgate already has history here, reads the other
//! tool's table (never writing to it), refuses a failed or dirty entry and a recorded version
//! without a file (and, where the tool kept checksums, a file edited since), then records
//! exactly the applied versions in shipgate's history with an audit row, in one transaction.

mod golang_migrate;
mod sqlx;

use super::apply::{plan, release};
use super::backend::{Audit, Backend, ForeignHistory};
use super::plan::Policy;
use super::repair::Change;
use super::source::{MigrationSet, Version};
use super::{lock, Error, Interrupt};
use crate::config::{DeployInfo, EngineSettings};

/// Versions another tool recorded as applied, in ascending order.
type Applied = Vec<Version>;

/// What the other tool's table says, read by its module.
async fn applied_by(
    backend: &mut Backend,
    set: &MigrationSet,
    foreign: &ForeignHistory,
) -> Result<Applied, Error> {
    match foreign.tool {
        "sqlx" => sqlx::applied(backend, set).await,
        "golang-migrate" => golang_migrate::applied(backend, set).await,
        tool => Err(Error::Refused(format!(
            "adopting {tool}'s history ({}) is not built yet: record what {tool} applied with `shipgate baseline --version V --reason \"switching from {tool}\"`; nothing was changed",
            foreign.table
        ))),
    }
}

/// `shipgate adopt [--from TOOL] [--dry-run]`: records in shipgate's history exactly what the
/// other tool applied. With `dry_run`, reads and checks everything and changes nothing.
#[allow(clippy::too_many_arguments)]
pub async fn adopt(
    backend: &mut Backend,
    set: &MigrationSet,
    from: Option<&str>,
    dry_run: bool,
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Change, Error> {
    let foreign = backend
        .foreign_history()
        .await
        .map_err(Error::db("looking for another tool's migration history"))?
        .ok_or_else(|| {
            Error::Refused(
                "adopt: this database has no other tool's migration history table; nothing was changed".into(),
            )
        })?;
    if let Some(from) = from {
        if !from.eq_ignore_ascii_case(foreign.tool) {
            return Err(Error::Refused(format!(
                "adopt --from {from}: this database holds {}'s history ({}), not {from}'s; nothing was changed",
                foreign.tool, foreign.table
            )));
        }
    }
    if dry_run {
        let (history, _) = plan(backend, set, &Policy::default()).await?;
        refuse_own_history(history.len())?;
        let versions = applied_by(backend, set, &foreign).await?;
        return Ok(Change {
            action: "adopt".into(),
            summary: format!(
                "dry run: would record {} migration(s) {} applied as applied ({}); nothing was changed",
                versions.len(),
                foreign.tool,
                list(&versions)
            ),
            versions,
        });
    }
    lock::acquire(backend, settings.lock_wait, interrupt).await?;
    let result = async {
        let (history, _) = plan(backend, set, &Policy::default()).await?;
        refuse_own_history(history.len())?;
        let versions = applied_by(backend, set, &foreign).await?;
        backend
            .ensure_tables()
            .await
            .map_err(Error::db("creating shipgate's tables"))?;
        let records = super::repair::records(set, versions.iter().cloned(), deploy);
        let after = format!(
            "recorded {} migration(s) {} applied: {}",
            records.len(),
            foreign.tool,
            list(&versions)
        );
        let audit = Audit {
            action: "adopt",
            version: versions.last().cloned(),
            reason,
            before: Some(format!(
                "{}'s {} with {} row(s); no shipgate history",
                foreign.tool, foreign.table, foreign.count
            )),
            after: Some(after.clone()),
            deploy,
        };
        backend
            .record_baseline(&records, &audit)
            .await
            .map_err(Error::db("recording the adopted history"))?;
        Ok(Change {
            action: "adopt".into(),
            summary: format!(
                "{after}; {}'s table {} was left as it is",
                foreign.tool, foreign.table
            ),
            versions,
        })
    }
    .await;
    release(backend).await;
    result
}

fn refuse_own_history(rows: usize) -> Result<(), Error> {
    if rows > 0 {
        return Err(Error::Refused(format!(
            "adopt: shipgate already has {rows} migration(s) in its history here; adopt only takes over a database shipgate has not managed; nothing was changed"
        )));
    }
    Ok(())
}

fn list(versions: &[Version]) -> String {
    match versions {
        [] => "none".into(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

/// `column` read back as text on `backend`'s engine.
fn as_text(backend: &Backend, column: &str) -> String {
    match backend.engine() {
        crate::config::Engine::Mysql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS TEXT)"),
    }
}

/// Every version must have its file: a recorded migration that this build does not have cannot
/// be taken over (its checksum and name would be unknown).
fn require_files(tool: &str, set: &MigrationSet, versions: &[Version]) -> Result<(), Error> {
    let missing: Vec<String> = versions
        .iter()
        .filter(|v| set.get(v).is_none())
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "adopt: {tool} recorded version(s) {} that have no file in {}; nothing was changed",
        missing.join(", "),
        set.dir.display()
    )))
}
