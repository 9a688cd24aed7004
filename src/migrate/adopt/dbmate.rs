//! dbmate's `schema_migrations` (dbmate 2.x, `pkg/driver/postgres/postgres.go`: `version
//! varchar primary key`; `pkg/driver/mysql/mysql.go` and `pkg/driver/sqlite/sqlite.go`:
//! `version varchar(128) primary key`). One row per applied migration and nothing else: dbmate
//! inserts the row in the migration's transaction and deletes it on rollback, so every row is
//! applied and there is no failed or dirty state to refuse. The version is the file name's
//! leading digits (`^(\d+).*\.sql$`, `pkg/dbmate/db.go`), stored as text.
//!
//! The table shares its name with golang-migrate's; `Backend::foreign_history` tells them apart
//! by golang-migrate's `dirty` column.

use super::{column, versions, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

pub(super) async fn read(
    backend: &mut Backend,
    _set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let texts = column(backend, foreign, "version").await?;
    let (versions, problems) = versions("dbmate", texts.iter().map(String::as_str));
    Ok(Taken {
        versions,
        problems,
        ..Taken::default()
    })
}
