//! The release gate: the policy that decides, before the lock and before any change, whether
//! the pending migrations may run against the database in hand.
//!
//! It sits in the release flow, above both the engine (`migrate`, which runs it through
//! [`apply::Gate`] without knowing what it decides by) and the lint (which it calls with the
//! live [`Catalog`] and [`Verdict::Release`]). Pending contract files need `allow_contract`;
//! unacknowledged findings that endanger this database refuse the run (`lint_gate = "error"`)
//! or are logged (`"warn"`). `check --database` reads the catalog through [`catalog`] too, so
//! CI and the gate see the same database the same way.

use std::future::Future;
use std::pin::Pin;

use crate::config::{DriftMode, DriftSettings, GateMode, LintSettings};
use crate::lint::{self, Catalog, Finding, LintOptions, Only, TableStats, Threshold, Verdict};
use crate::migrate::apply;
use crate::migrate::backend::{Backend, CatalogObject, DbError};
use crate::migrate::plan::Plan;
use crate::migrate::schema::{self, Key, Keyed, Verdict as Drift};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

/// The release gate with its settings, handed to [`apply::up`].
#[derive(Debug, Clone)]
pub struct ReleaseGate(pub LintSettings);

impl apply::Gate for ReleaseGate {
    fn check<'a>(
        &'a self,
        backend: &'a mut Backend,
        set: &'a MigrationSet,
        plan: &'a Plan,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(check(backend, set, plan, &self.0))
    }
}

/// The drift check of a release (`drift = warn | error | off`), handed to [`apply::up`] as its
/// `drift` gate: the live schema against the snapshot of the applied head, before the lock
/// and before the pending migrations change it.
#[derive(Debug, Clone)]
pub struct DriftGate(pub DriftSettings);

impl apply::Gate for DriftGate {
    fn check<'a>(
        &'a self,
        backend: &'a mut Backend,
        _set: &'a MigrationSet,
        plan: &'a Plan,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(drift(backend, plan, &self.0))
    }
}

/// [`drift_at`] for shipgate's own history: the snapshot of `plan.current`.
pub async fn drift(
    backend: &mut Backend,
    plan: &Plan,
    settings: &DriftSettings,
) -> Result<(), Error> {
    let key = plan.current.clone().map(Key::Version);
    drift_at(backend, Keyed::Sql, key.as_ref(), settings).await
}

/// Compares the live schema with the snapshot of `key` (where the database stands, read where
/// `keyed` says: shipgate's history, or a runner's own record): `warn` logs each difference,
/// `error` refuses with [`Error::Drift`] naming each. No snapshot is a warning, never a
/// refusal: a database migrated before snapshots existed must still deploy (its first
/// release that applies something stores one). Every runner's release calls it before its
/// lock.
#[tracing::instrument(skip_all)]
pub async fn drift_at(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    key: Option<&Key>,
    settings: &DriftSettings,
) -> Result<(), Error> {
    if settings.mode == DriftMode::Off {
        return Ok(());
    }
    let report = schema::compare(backend, keyed, key, &settings.ignore)
        .await
        .map_err(Error::db("reading the schema for the drift check"))?;
    match report.state {
        Drift::NoHistory | Drift::Clean => {
            tracing::debug!("{}", report.summary());
            Ok(())
        }
        Drift::NoSnapshot | Drift::Busy => {
            tracing::warn!("{}", report.summary());
            Ok(())
        }
        Drift::Drift if settings.mode == DriftMode::Error => Err(Error::Drift(report.refusal())),
        Drift::Drift => {
            tracing::warn!("{}", report.summary());
            for d in &report.differences {
                tracing::warn!(kind = d.kind.word(), object = %d.name, "drift: {d}");
            }
            Ok(())
        }
    }
}

/// Runs the gate on the pending part of `plan` (versioned migrations and the repeatables that
/// run again): `Err(Error::Contract)` for held-back contract files, `Err(Error::Gate)` for
/// unacknowledged findings that refuse a release.
#[tracing::instrument(skip_all)]
pub async fn check(
    backend: &mut Backend,
    set: &MigrationSet,
    plan: &Plan,
    settings: &LintSettings,
) -> Result<(), Error> {
    let pending = pending(plan);
    if !settings.allow_contract {
        let versioned = pending
            .versions
            .iter()
            .filter_map(|v| set.get(v))
            .map(|m| &m.up);
        let repeatable = pending
            .repeatables
            .iter()
            .filter_map(|name| set.repeatable(name))
            .map(|r| &r.script);
        let held: Vec<String> = versioned
            .chain(repeatable)
            .filter(|s| s.directives.contract)
            .map(|s| s.path.display().to_string())
            .collect();
        if !held.is_empty() {
            return Err(Error::Contract(held));
        }
    }
    if settings.gate == GateMode::Off {
        return Ok(());
    }
    let catalog = catalog(backend, settings.threshold)
        .await
        .map_err(Error::db("reading the catalog for the release gate"))?;
    let options = LintOptions {
        engine: backend.engine(),
        severities: settings.severities.clone(),
        only: Some(pending),
        verdict: Verdict::Release,
    };
    let findings = lint::lint(set, &options, &catalog);
    for f in &findings {
        match &f.acknowledged {
            Some(reason) => {
                tracing::info!(rule = %f.rule, acknowledged = %reason, "lint finding acknowledged: {f}")
            }
            None => tracing::warn!(rule = %f.rule, "lint: {f}"),
        }
    }
    let blocking: Vec<&Finding> = findings.iter().filter(|f| f.blocks()).collect();
    if !blocking.is_empty() && settings.gate == GateMode::Error {
        return Err(Error::Gate(refusal(&blocking)));
    }
    Ok(())
}

/// The migrations `plan` runs: pending versions and the repeatables that run again.
pub fn pending(plan: &Plan) -> Only {
    Only {
        versions: plan.pending.iter().map(|e| e.version.clone()).collect(),
        repeatables: plan
            .pending_repeatables
            .iter()
            .map(|r| r.name.clone())
            .collect(),
    }
}

/// What the database holds before the run, as the lint needs it: tables and indexes with
/// their sizes, schemas, databases and columns (with their types). One catalog read for the
/// sizes and one for the rest.
pub async fn catalog(backend: &mut Backend, threshold: Threshold) -> Result<Catalog, DbError> {
    let relations = backend.relations().await?;
    let objects = backend.catalog_objects().await?;
    let stats = |r: &crate::migrate::backend::Relation| {
        (
            r.name.clone(),
            TableStats {
                rows: r.rows,
                bytes: r.bytes,
            },
        )
    };
    let mut catalog = Catalog::live(
        relations.iter().filter(|r| !r.index).map(stats),
        relations.iter().filter(|r| r.index).map(stats),
        threshold,
    );
    for o in objects {
        match o {
            CatalogObject::Schema(name) => catalog.add_schema(&name),
            CatalogObject::Database(name) => catalog.add_database(&name),
            CatalogObject::Column {
                table,
                column,
                data_type,
            } => catalog.add_column(&table, &column, &data_type),
        }
    }
    Ok(catalog)
}

fn refusal(findings: &[&Finding]) -> String {
    let mut out = format!(
        "refusing to run: {} unacknowledged lint error(s) in pending migrations endanger this database; no lock was taken and nothing was applied. Fix them, or acknowledge one with `-- shipgate:allow <rule> <reason>` in the comments above its statement",
        findings.len()
    );
    for f in findings {
        out.push_str(&format!("\n  {f}\n    instead: {}", f.instead));
    }
    out
}
