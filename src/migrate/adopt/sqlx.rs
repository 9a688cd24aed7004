//! sqlx's `_sqlx_migrations` (sqlx 0.8: `sqlx-postgres/src/migrate.rs`, `…-sqlite`, `…-mysql`):
//! one row per applied migration with `success` and `checksum`, the SHA-384 of the migration
//! file's text as sqlx read it.

use sha2::{Digest, Sha384};

use super::{as_text, require_files, Applied};
use crate::migrate::backend::Backend;
use crate::migrate::source::{MigrationSet, Version};
use crate::migrate::Error;

pub(super) async fn applied(backend: &mut Backend, set: &MigrationSet) -> Result<Applied, Error> {
    let hex = match backend.engine() {
        crate::config::Engine::Postgres => "encode(checksum, 'hex')",
        _ => "hex(checksum)",
    };
    let sql = format!(
        "SELECT {}, {}, {} FROM _sqlx_migrations ORDER BY version",
        as_text(backend, "version"),
        as_text(backend, "success"),
        as_text(backend, hex)
    );
    let rows = backend
        .rows(&sql)
        .await
        .map_err(Error::db("reading _sqlx_migrations"))?;
    let mut versions = Vec::new();
    let mut problems = Vec::new();
    for r in rows {
        let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let Ok(version) = get(0).parse::<Version>() else {
            problems.push(format!("a version that is not a number ({})", get(0)));
            continue;
        };
        if !matches!(get(1).as_str(), "true" | "1" | "t") {
            problems.push(format!(
                "version {version} is recorded as failed (success = false): finish or undo it and fix sqlx's row first"
            ));
        }
        if let Some(m) = set.get(&version) {
            let bytes = std::fs::read(&m.up.path).map_err(|e| {
                Error::Refused(format!("adopt: cannot read {}: {e}", m.up.path.display()))
            })?;
            let ours = hex::encode(Sha384::digest(&bytes));
            if !ours.eq_ignore_ascii_case(&get(2)) {
                problems.push(format!(
                    "version {version} ({}) was edited since sqlx applied it (sqlx's checksum {}, the file's {ours})",
                    m.up.path.display(),
                    get(2).to_ascii_lowercase()
                ));
            }
        }
        versions.push(version);
    }
    if !problems.is_empty() {
        return Err(Error::Refused(format!(
            "adopt: sqlx's history cannot be taken over as it is: {}; nothing was changed",
            problems.join("; ")
        )));
    }
    require_files("sqlx", set, &versions)?;
    Ok(versions)
}
