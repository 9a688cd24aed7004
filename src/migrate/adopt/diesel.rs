//! diesel's `__diesel_schema_migrations` (diesel 2.x: `diesel/src/migration/
//! setup_migration_table.sql`, `version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT
//! NULL DEFAULT CURRENT_TIMESTAMP`, the same text on every engine).
//!
//! One row per applied migration: diesel inserts it in the migration's transaction and deletes
//! it on revert (`diesel_migrations/src/migration_harness.rs`), so every row is applied and there
//! is no failed state and no checksum. The version is the migration directory's name up to its
//! first `_` with every `-` removed (`migrations_internals::version_from_string`):
//! `2017-08-21-103021_create_users` is stored as `20170821103021`, `20240101120000_x` as
//! `20240101120000`. `diesel setup` on PostgreSQL also creates and runs
//! `00000000000000_diesel_initial_setup` (its `diesel_manage_updated_at` helpers), recorded as
//! version `00000000000000`: it is taken over when the files have a migration of that version,
//! and otherwise reported and left out (no file of shipgate's would run it again).

use super::{column, file_of, version, versions, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

/// The version diesel's own setup migration is recorded under.
const INITIAL_SETUP: &str = "00000000000000";

pub(super) async fn read(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let texts = column(backend, foreign, "version").await?;
    // The setup migration counts only where the files have it (without files: as recorded).
    let setup_here = set.is_none_or(|set| {
        version("diesel", INITIAL_SETUP).is_ok_and(|v| file_of(set, &v).is_some())
    });
    let mut notes = Vec::new();
    if !setup_here && texts.iter().any(|t| t == INITIAL_SETUP) {
        notes.push(format!(
            "diesel's initial setup migration ({INITIAL_SETUP}_diesel_initial_setup) has no file here and was not recorded"
        ));
    }
    let recorded = texts
        .iter()
        .map(String::as_str)
        .filter(|t| setup_here || *t != INITIAL_SETUP);
    let (versions, problems) = versions("diesel", recorded);
    Ok(Taken {
        versions,
        notes,
        problems,
    })
}
