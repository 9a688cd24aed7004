//! goose's `goose_db_version` (goose v3, `internal/dialects/{postgres,mysql,sqlite3}.go`:
//! `id` an identity/auto-increment key, `version_id bigint`, `is_applied boolean`, `tstamp`).
//!
//! goose appends a row per change: applying inserts `(version, true)`; rolling back deletes the
//! version's rows (older goose inserted `(version, false)` instead). A version is applied when
//! its newest row (highest `id`) says `is_applied`, the rule of goose's own
//! `EnsureDBVersionContext` (`migrate.go`), which walks the rows by descending id. Version 0 is
//! the row goose writes when it creates the table (`createVersionTable`), not a migration.
//! goose keeps no checksums and no failed state: a migration that fails leaves no row.

use std::collections::HashSet;

use super::{as_text, cell, rows, truthy, version, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

pub(super) async fn read(
    backend: &mut Backend,
    _set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let sql = format!(
        "SELECT {}, {} FROM {} ORDER BY id DESC",
        as_text(backend, "version_id"),
        as_text(backend, "is_applied"),
        foreign.sql_name
    );
    let rows = rows(backend, foreign, &sql).await?;
    let (applied, problems) = newest_rows(&rows);
    Ok(Taken {
        versions: applied,
        problems,
        ..Taken::default()
    })
}

/// The versions whose newest row (rows come newest first) is applied, and the rows that could
/// not be read. Pure, for the tests.
fn newest_rows(
    rows: &[Vec<Option<String>>],
) -> (Vec<crate::migrate::source::Version>, Vec<String>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut applied = Vec::new();
    let mut problems = Vec::new();
    for r in rows {
        let text = cell(r, 0).unwrap_or_default().trim();
        // Only the newest row of a version counts; goose's bootstrap row is not a migration.
        if !seen.insert(text) || text == "0" || !truthy(cell(r, 1)) {
            continue;
        }
        match version("goose", text) {
            Ok(v) => applied.push(v),
            Err(problem) => problems.push(problem),
        }
    }
    (applied, problems)
}

#[cfg(test)]
mod tests {
    use super::newest_rows;
    use crate::migrate::source::Version;

    fn texts(versions: &[Version]) -> Vec<String> {
        versions.iter().map(ToString::to_string).collect()
    }

    fn row(version: &str, applied: &str) -> Vec<Option<String>> {
        vec![Some(version.into()), Some(applied.into())]
    }

    #[test]
    fn the_newest_row_of_each_version_decides_and_zero_is_goose_s_own() {
        // Newest first, as read: 3 rolled back by an old goose, 2 re-applied after a rollback.
        let rows = [
            row("3", "false"),
            row("2", "t"),
            row("3", "true"),
            row("2", "0"),
            row("2", "1"),
            row("1", "true"),
            row("0", "true"),
        ];
        let (applied, problems) = newest_rows(&rows);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(texts(&applied), ["2", "1"]);
    }

    #[test]
    fn a_version_that_is_not_a_number_is_a_problem() {
        let (applied, problems) = newest_rows(&[row("x1", "true"), row("4", "true")]);
        assert_eq!(texts(&applied), ["4"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
