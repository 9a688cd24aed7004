//! shipgate applies database migrations safely before every rollout.
//!
//! A tour, in reading order:
//! - [`engine`] names the database engines and [`version`] the migration versions, the types
//!   every layer shares;
//! - [`cli`] declares the command line; [`config`] layers flags, environment, the config file
//!   and defaults into one validated [`config::Config`];
//! - [`migrate`] is the engine: [`migrate::source`] reads migration files and
//!   [`migrate::plan`] compares them with history (both pure), [`migrate::backend`] talks to
//!   PostgreSQL or SQLite over one dedicated connection, and [`migrate::apply`],
//!   [`migrate::lock`] and [`migrate::repair`] drive a run;
//! - [`alembic`] reads an Alembic project's revision graph without Python (pure but for
//!   reading its files), so a runner can tell from `alembic_version` whether anything is pending;
//! - [`release`] is the pre-deploy flow and the service around it: [`status`] caches what the
//!   database says, [`http`] serves it, [`notify`] sends the webhooks; [`runner`] is what
//!   applies a release's migrations under its lock (shipgate's SQL engine, or a command);
//! - [`lint`] is the migration safety lint (pure): sqlparser-based rules run by `check` in CI;
//!   [`gate`] is the release gate of `up`/`release`, which runs it against the live catalog
//!   and refuses only what endangers that database;
//!   [`gitref`] reads the files as they were at a git ref for `check --against-git`;
//! - [`app`] has one function per command and maps every outcome to an exit code;
//! - [`telemetry`] sets up logs.

pub mod alembic;
pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod gate;
pub mod gitref;
pub mod http;
pub mod lint;
pub mod migrate;
pub mod notify;
pub mod release;
pub mod runner;
pub mod status;
pub mod telemetry;
pub mod version;
