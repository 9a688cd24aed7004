//! The database engines shipgate speaks: the one type every layer shares (config reads it from
//! a URL, the engine drives it, the lint picks rules and a dialect by it), so it sits at the
//! bottom of the import graph and imports nothing of shipgate's.

use std::fmt;

use serde::Serialize;

/// The database engines shipgate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
    /// MySQL or MariaDB.
    Mysql,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
            Engine::Mysql => "mysql",
        })
    }
}
