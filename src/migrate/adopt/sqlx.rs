//! sqlx's `_sqlx_migrations` (sqlx 0.8: `sqlx-postgres/src/migrate.rs`, `…-sqlite`, `…-mysql`):
//! one row per applied migration with `success` and `checksum`, the SHA-384 of the migration
//! file's text as sqlx read it.

use sha2::{Digest, Sha384};

use super::{as_text, cell, file_bytes, file_of, rows, truthy, version, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

pub(super) async fn read(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let hex = match backend.engine() {
        crate::config::Engine::Postgres => "encode(checksum, 'hex')",
        _ => "hex(checksum)",
    };
    let sql = format!(
        "SELECT {}, {}, {} FROM {} ORDER BY version",
        as_text(backend, "version"),
        as_text(backend, "success"),
        as_text(backend, hex),
        foreign.sql_name
    );
    let mut taken = Taken::default();
    let mut problems = Vec::new();
    for r in rows(backend, foreign, &sql).await? {
        let stored = cell(&r, 2).unwrap_or_default().to_ascii_lowercase();
        let v = match version("sqlx", cell(&r, 0).unwrap_or_default()) {
            Ok(v) => v,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        if !truthy(cell(&r, 1)) {
            problems.push(format!(
                "version {v} is recorded as failed (success = false): finish or undo it and fix sqlx's row first"
            ));
        }
        if let Some(m) = set.and_then(|set| file_of(set, &v)) {
            let ours = hex::encode(Sha384::digest(file_bytes(m)?));
            if ours != stored {
                problems.push(format!(
                    "version {v} ({}) was edited since sqlx applied it (sqlx's checksum {stored}, the file's {ours})",
                    m.up.path.display()
                ));
            }
        }
        taken.versions.push(v);
    }
    taken.problems = problems;
    Ok(taken)
}
