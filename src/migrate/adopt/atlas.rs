//! Atlas's `atlas_schema_revisions` (ariga/atlas `cmd/atlas/internal/migrate/ent/schema/
//! revision.go`, created through ent: `version` (the file name's prefix up to its first `_`),
//! `description`, `type`, `applied`, `total`, `executed_at`, `execution_time`, `error`,
//! `error_stmt`, `hash`, `partial_hashes`, `operator_version`). On PostgreSQL Atlas keeps it in
//! a schema of its own, also named `atlas_schema_revisions`, unless its URL names a schema;
//! on MySQL in the connected database when the URL names one; on SQLite in the file
//! (`revisionSchemaName` in `cmd/atlas/internal/cmdapi/migrate.go`). `Backend::foreign_history`
//! looks in both places on PostgreSQL.
//!
//! `type` is a bit set (`sql/migrate/migrate.go`, `RevisionType`): 1 baseline (every file up to
//! its version counts as applied, as with `shipgate baseline`), 2 executed, 4 resolved by hand
//! (`atlas migrate set`). An executed revision is applied when all its statements ran
//! (`applied = total`) without an error; one that stopped part-way (`applied < total`, or an
//! `error`) is refused, naming the statement that failed (`error_stmt`), unless it was resolved
//! by hand since. The row `.atlas_cloud_identifier` is Atlas's own and not a revision. `hash`
//! is not compared: Atlas chains it over every file before this one (`atlas.sum`), so it says
//! nothing about one file on its own.

use super::{as_text, cell, rows, version, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::{MigrationSet, Version};
use crate::migrate::Error;

const BASELINE: u64 = 1;
const RESOLVED: u64 = 4;

/// Atlas's own row, not a revision (`revisionID` in `cmd/atlas/internal/migrate/migrate.go`).
const IDENTIFIER: &str = ".atlas_cloud_identifier";

pub(super) async fn read(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let columns = ["version", "type", "applied", "total", "error", "error_stmt"]
        .map(|c| as_text(backend, c))
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM {} ORDER BY version",
        foreign.sql_name
    );
    let mut taken = Taken::default();
    let mut problems = Vec::new();
    let mut baseline: Option<Version> = None;
    for r in rows(backend, foreign, &sql).await? {
        let text = cell(&r, 0).unwrap_or_default().trim();
        if text == IDENTIFIER {
            continue;
        }
        let v = match version("Atlas", text) {
            Ok(v) => v,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let number = |i: usize| cell(&r, i).and_then(|n| n.trim().parse::<u64>().ok());
        let kind = number(1).unwrap_or(0);
        if kind & BASELINE != 0 {
            if baseline.as_ref().is_none_or(|b| *b < v) {
                baseline = Some(v);
            }
            continue;
        }
        let (applied, total) = (number(2).unwrap_or(0), number(3).unwrap_or(0));
        let error = cell(&r, 4).map(str::trim).filter(|e| !e.is_empty());
        if kind & RESOLVED == 0 && (applied < total || error.is_some()) {
            let statement = cell(&r, 5).map(str::trim).unwrap_or("unknown");
            problems.push(format!(
                "version {v} stopped part-way ({applied} of {total} statement(s) ran; failed at `{statement}`{}): fix it and finish it with `atlas migrate apply`, or mark it done with `atlas migrate set {text}` once you have finished it by hand",
                error.map(|e| format!(": {e}")).unwrap_or_default()
            ));
            continue;
        }
        taken.versions.push(v);
    }
    taken.problems = problems;
    if let Some(b) = baseline {
        taken.baseline("Atlas", set, &b);
    }
    Ok(taken)
}
