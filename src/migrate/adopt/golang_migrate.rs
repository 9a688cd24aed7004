//! golang-migrate's `schema_migrations` (`database/postgres/postgres.go` and siblings): one row,
//! the version the database is at and whether the last migration stopped part-way (`dirty`).
//! golang-migrate applies in order, so every file up to that version is applied.

use super::{as_text, cell, rows, truthy, up_to, version, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

pub(super) async fn read(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let sql = format!(
        "SELECT {}, {} FROM {}",
        as_text(backend, "version"),
        as_text(backend, "dirty"),
        foreign.sql_name
    );
    let rows = rows(backend, foreign, &sql).await?;
    let Some(row) = rows.first() else {
        return Ok(Taken::default());
    };
    let current =
        version("golang-migrate", cell(row, 0).unwrap_or_default()).map_err(Error::Refused)?;
    if truthy(cell(row, 1)) {
        return Err(Error::Refused(format!(
            "golang-migrate recorded version {current} as dirty (it stopped part-way): finish or undo it by hand and `migrate force` the version first"
        )));
    }
    // The version it is at must be a file here (checked by the caller); the rest are the
    // files below it.
    let mut taken = Taken::default();
    match set {
        Some(set) => taken.versions = up_to(set, &current),
        None => taken.notes.push(format!(
            "golang-migrate records only the version it is at ({current}): every migration up to it counts as applied"
        )),
    }
    taken.versions.push(current);
    Ok(taken)
}
