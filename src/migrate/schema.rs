//! `shipgate_schema`: the schema snapshot stored after each change, and the comparison of the
//! live schema with it (drift, without a shadow database).
//!
//! The I/O around the pure [`super::drift`]: which version a snapshot belongs to (a [`Key`]:
//! the highest applied version, Alembic's head revisions, or a command runner's last
//! successful run — read as [`Keyed`] says), storing it under the lock after a release,
//! `baseline`, `adopt` or `drift --accept`, and reading it back to compare. It decides no
//! policy: whether drift refuses a release is `crate::gate`'s business, what `status` and
//! `drift` print is theirs.

use std::fmt;

use serde::Serialize;

use super::backend::{Backend, DbError};
use super::drift::{self, Difference, Ignore};
use super::plan::State;
use crate::version::Version;

/// What a snapshot is stored under: where the database stands in the terms of what changed it
/// last. Each runner knows its own: shipgate's history, Alembic's version table, or — for a
/// command whose own record shipgate cannot read — the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// shipgate's history (`runner = "sql"`, `up`, `down`, `baseline`, `adopt`): the highest
    /// applied version.
    Version(Version),
    /// `runner = "alembic"`: the revisions in Alembic's version table, sorted.
    Revisions(Vec<String>),
    /// `runner = "command"`: the newest `shipgate_runs` row that succeeded.
    Run(i64),
}

impl Key {
    /// The key of Alembic's version table holding `rows` (in any order); `None` when empty.
    pub fn revisions(rows: &[String]) -> Option<Key> {
        let mut rows = rows.to_vec();
        rows.sort();
        (!rows.is_empty()).then_some(Key::Revisions(rows))
    }

    /// `shipgate_schema.version`: a version as history stores it (`42`), `alembic:a1,b2`,
    /// `run:7`. The prefixes keep an Alembic revision such as `0001` apart from version 1.
    pub fn stored(&self) -> String {
        match self {
            Key::Version(v) => v.to_string(),
            Key::Revisions(revisions) => format!("alembic:{}", revisions.join(",")),
            Key::Run(id) => format!("run:{id}"),
        }
    }

    /// The version, for an audit row's `version` column (history's versions only).
    fn version(&self) -> Option<Version> {
        match self {
            Key::Version(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    /// `version 42`, `revision a1, b2`, `command run 7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Version(v) => write!(f, "version {v}"),
            Key::Revisions(revisions) => write!(f, "revision {}", revisions.join(", ")),
            Key::Run(id) => write!(f, "command run {id}"),
        }
    }
}

/// Where the [`Key`] of the database as it stands is read: the configured runner's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed<'a> {
    /// shipgate's history.
    Sql,
    /// Alembic's version table (`alembic_version_table`), itself left out of the snapshot.
    Alembic {
        /// Its schema; `None`: the connection's default.
        schema: Option<&'a str>,
        /// Its name.
        table: &'a str,
    },
    /// shipgate's runs.
    Command,
}

impl<'a> Keyed<'a> {
    /// A runner's own table that the snapshot leaves out (Alembic's under a name of its own;
    /// `alembic_version` is always left out).
    fn excluded(self) -> Option<&'a str> {
        match self {
            Keyed::Alembic { table, .. } => Some(table),
            Keyed::Sql | Keyed::Command => None,
        }
    }
}

/// The [`Key`] of the database as it stands, read where `keyed` says; `None` when nothing is
/// applied (no history, an empty version table, no run that succeeded).
pub async fn head(backend: &mut Backend, keyed: Keyed<'_>) -> Result<Option<Key>, DbError> {
    Ok(match keyed {
        Keyed::Sql => applied_head(backend).await?.map(Key::Version),
        Keyed::Alembic { schema, table } => {
            Key::revisions(&backend.alembic_rows(schema, table).await?)
        }
        Keyed::Command => backend.last_succeeded_run().await?.map(Key::Run),
    })
}

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

/// Reads the live schema and stores it as the snapshot of `key`, taken by `run_id`. Returns
/// how many objects it holds. Call under the lock.
pub async fn store(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    key: &Key,
    run_id: Option<i64>,
) -> Result<usize, DbError> {
    let snapshot = backend.schema_snapshot(keyed.excluded()).await?;
    backend
        .store_snapshot(&key.stored(), run_id, &snapshot)
        .await?;
    Ok(snapshot.len())
}

/// [`store`] after a change of shipgate's history that succeeded, under its lock, keyed by the
/// applied head (nothing stored when nothing is applied). A failure is logged as an error
/// and does not fail the run: its migrations are committed, and failing the deploy now would
/// roll the app back onto a schema that already moved on. It is not silent either: every
/// later drift check says that no snapshot exists for this version until one is stored.
pub async fn record(backend: &mut Backend, run_id: Option<i64>) {
    let key = match applied_head(backend).await {
        Ok(Some(version)) => Key::Version(version),
        Ok(None) => return,
        Err(e) => return not_stored(&e),
    };
    record_as(backend, Keyed::Sql, &key, run_id).await;
}

/// [`record`] under a key the caller read: a runner's, after its tool exited 0 under the lock.
pub async fn record_as(backend: &mut Backend, keyed: Keyed<'_>, key: &Key, run_id: Option<i64>) {
    match store(backend, keyed, key, run_id).await {
        Ok(objects) => {
            tracing::info!(snapshot = %key, objects, "stored the schema snapshot for drift checks")
        }
        Err(e) => not_stored(&e),
    }
}

fn not_stored(e: &DbError) {
    tracing::error!(
        error = %e,
        "could not store the schema snapshot: what was applied stays applied, but drift is not checked until a later release (or `shipgate drift --accept`) stores one"
    );
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
    /// The key the snapshot belongs to, as stored ([`Key::stored`]: the applied version,
    /// `alembic:REV[,REV]`, `run:ID`).
    pub version: Option<String>,
    /// That key, for the words of [`Report::summary`].
    #[serde(skip)]
    pub key: Option<Key>,
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
        let version = self
            .key
            .as_ref()
            .map_or_else(|| "version -".to_owned(), ToString::to_string);
        let taken = self
            .taken_at
            .as_deref()
            .map(|t| format!(", taken {t}"))
            .unwrap_or_default();
        match self.state {
            Verdict::NoHistory => "no migration is applied yet: no schema to compare".to_owned(),
            Verdict::NoSnapshot => format!(
                "no schema snapshot is stored for {version}: drift is not checked until {} stores one (`shipgate drift --accept` stores the live schema now)",
                match self.key {
                    Some(Key::Run(_)) => "the next release that runs the command",
                    _ => "a release that applies a migration",
                }
            ),
            Verdict::Clean => {
                format!("no drift: the live schema matches the snapshot of {version}{taken}")
            }
            Verdict::Drift => format!(
                "schema drift: {} difference(s) from the snapshot of {version}{taken}",
                self.differences.len()
            ),
            Verdict::Busy => format!(
                "{} difference(s) from the snapshot of {version}{taken}, not judged: another run holds the migration lock or history changed during the check, so they may be its migrations in progress; check again when it has finished",
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

/// Compares the live schema with the snapshot of `key` (where the database stands, as the
/// caller read it where `keyed` says), leaving out what `ignore` names. Two statements when a
/// snapshot exists: the stored row, and one catalog read. Differences found while another run
/// holds the migration lock, or while the key moved past `key` (history, Alembic's table, a
/// newer successful run), are [`Verdict::Busy`]: a release in progress changes the schema
/// before it stores the snapshot, and that is not drift.
pub async fn compare(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    key: Option<&Key>,
    ignore: &Ignore,
) -> Result<Report, DbError> {
    let mut report = compare_as_is(backend, keyed, key, ignore).await?;
    if report.state == Verdict::Drift {
        let busy =
            backend.lock_holder().await?.is_some() || head(backend, keyed).await?.as_ref() != key;
        if busy {
            report.state = Verdict::Busy;
        }
    }
    Ok(report)
}

/// [`compare`] without the look at the lock: for a caller that holds it.
async fn compare_as_is(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    key: Option<&Key>,
    ignore: &Ignore,
) -> Result<Report, DbError> {
    let mut report = Report {
        state: Verdict::NoHistory,
        version: key.map(Key::stored),
        key: key.cloned(),
        taken_at: None,
        run_id: None,
        differences: Vec::new(),
    };
    let Some(key) = key else {
        return Ok(report);
    };
    let Some(stored) = backend.read_snapshot(&key.stored()).await? else {
        report.state = Verdict::NoSnapshot;
        return Ok(report);
    };
    let started = std::time::Instant::now();
    let live = backend.schema_snapshot(keyed.excluded()).await?;
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
    /// The key the live schema is now the snapshot of, as stored ([`Key::stored`]).
    pub version: String,
    /// That key, for words.
    #[serde(skip)]
    pub key: Key,
    /// How many objects that snapshot holds.
    pub objects: usize,
}

/// `shipgate drift --accept`: under the lock, stores the live schema as the snapshot of where
/// the database stands (read where `keyed` says), with an audit row naming what it accepted
/// and why. The changes made by hand become what later checks compare against.
pub async fn accept(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    ignore: &Ignore,
    reason: Option<&str>,
    settings: &crate::config::EngineSettings,
    deploy: &crate::config::DeployInfo,
    interrupt: &mut super::Interrupt,
) -> Result<Accepted, super::Error> {
    super::lock::acquire(backend, settings.lock_wait, interrupt).await?;
    let result = async {
        let key = head(backend, keyed)
            .await
            .map_err(super::Error::db("reading migration history"))?
            .ok_or_else(|| {
                super::Error::Refused(
                    "drift --accept: no migration is applied yet, so there is no version to store a snapshot for; nothing was changed".into(),
                )
            })?;
        let before = compare_as_is(backend, keyed, Some(&key), ignore)
            .await
            .map_err(super::Error::db("reading the schema for the drift check"))?;
        backend
            .ensure_tables()
            .await
            .map_err(super::Error::db("creating shipgate's tables"))?;
        let snapshot = backend
            .schema_snapshot(keyed.excluded())
            .await
            .map_err(super::Error::db("reading the live schema"))?;
        backend
            .store_snapshot(&key.stored(), None, &snapshot)
            .await
            .map_err(super::Error::db("storing the schema snapshot"))?;
        let audit = super::backend::Audit {
            action: "drift-accept",
            version: key.version(),
            reason,
            before: Some(before.refusal()),
            after: Some(format!(
                "stored the live schema ({} objects, sha256 {}) as the snapshot of {key}",
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
            version: key.stored(),
            key,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runner_keys_its_snapshot_apart_from_the_others() {
        let v = |s: &str| s.parse::<Version>().expect("a version");
        let cases = [
            (Key::Version(v("001")), "1", "version 1"),
            (Key::Version(v("1.2.0")), "1.2", "version 1.2"),
            (
                Key::revisions(&["0001".into()]).expect("one row"),
                "alembic:0001",
                "revision 0001",
            ),
            (
                Key::revisions(&["b2".into(), "a1".into()]).expect("two rows"),
                "alembic:a1,b2",
                "revision a1, b2",
            ),
            (Key::Run(7), "run:7", "command run 7"),
        ];
        for (key, stored, words) in cases {
            assert_eq!(key.stored(), stored, "{key:?}");
            assert_eq!(key.to_string(), words, "{key:?}");
        }
        assert_eq!(
            Key::revisions(&[]),
            None,
            "an empty version table is no key"
        );
        assert_eq!(Key::Run(7).version(), None);
        assert_eq!(Key::Version(v("3")).version(), Some(v("3")));
    }

    #[test]
    fn only_alembic_leaves_a_table_of_its_own_out() {
        let alembic = Keyed::Alembic {
            schema: Some("ops"),
            table: "alembic_history",
        };
        assert_eq!(alembic.excluded(), Some("alembic_history"));
        assert_eq!(Keyed::Sql.excluded(), None);
        assert_eq!(Keyed::Command.excluded(), None);
    }

    #[test]
    fn a_report_names_the_key_in_the_runners_terms() {
        let report = |key: Key, state: Verdict| Report {
            state,
            version: Some(key.stored()),
            key: Some(key),
            taken_at: None,
            run_id: None,
            differences: Vec::new(),
        };
        assert_eq!(
            report(Key::Run(4), Verdict::Clean).summary(),
            "no drift: the live schema matches the snapshot of command run 4"
        );
        let none = report(Key::Run(4), Verdict::NoSnapshot).summary();
        assert!(
            none.starts_with("no schema snapshot is stored for command run 4: drift is not checked until the next release that runs the command stores one"),
            "{none}"
        );
        let none = report(Key::Version("2".parse().expect("2")), Verdict::NoSnapshot).summary();
        assert!(
            none.starts_with("no schema snapshot is stored for version 2: drift is not checked until a release that applies a migration stores one"),
            "{none}"
        );
        assert_eq!(
            report(
                Key::revisions(&["0006".into()]).expect("a row"),
                Verdict::Drift
            )
            .summary(),
            "schema drift: 0 difference(s) from the snapshot of revision 0006"
        );
    }
}
