//! golang-migrate's `schema_migrations` (`database/postgres/postgres.go` and siblings): one row,
//! the version the database is at and whether the last migration stopped part-way (`dirty`).
//! golang-migrate applies in order, so every file up to that version is applied.

use super::{as_text, require_files, Applied};
use crate::migrate::backend::Backend;
use crate::migrate::source::{MigrationSet, Version};
use crate::migrate::Error;

pub(super) async fn applied(backend: &mut Backend, set: &MigrationSet) -> Result<Applied, Error> {
    let sql = format!(
        "SELECT {}, {} FROM schema_migrations",
        as_text(backend, "version"),
        as_text(backend, "dirty")
    );
    let rows = backend
        .rows(&sql)
        .await
        .map_err(Error::db("reading schema_migrations"))?;
    let Some(row) = rows.first() else {
        return Ok(Vec::new());
    };
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let current: Version = get(0).parse().map_err(|_| {
        Error::Refused(format!(
            "adopt: golang-migrate's version {:?} is not a number; nothing was changed",
            get(0)
        ))
    })?;
    if matches!(get(1).as_str(), "true" | "1" | "t") {
        return Err(Error::Refused(format!(
            "adopt: golang-migrate recorded version {current} as dirty (it stopped part-way): finish or undo it by hand and `migrate force` the version first; nothing was changed"
        )));
    }
    require_files("golang-migrate", set, std::slice::from_ref(&current))?;
    Ok(set
        .migrations
        .iter()
        .map(|m| &m.version)
        .filter(|v| **v <= current)
        .cloned()
        .collect())
}
