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
//! - [`runner`] is what applies a release's migrations under its lock (shipgate's SQL engine,
//!   Alembic, or any command); [`status`] caches what the database says, [`http`] serves it,
//!   [`notify`] sends the webhooks;
//! - [`lint`] is the migration safety lint (pure): sqlparser-based rules run by `check` in CI;
//!   [`gate`] is the release gate of `up`/`release`, which runs it against the live catalog
//!   and refuses only what endangers that database;
//!   [`gitref`] reads the files as they were at a git ref for `check --against-git`;
//! - [`commands`] has one module per command, the release flow (`commands::release`) and the
//!   service (`commands::serve`) among them; [`exit`] owns the exit codes and the one mapping
//!   from every error to them; [`app`] parses, loads the config and dispatches;
//! - [`telemetry`] sets up logs.

pub mod alembic;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod exit;
pub mod gate;
pub mod gitref;
pub mod http;
pub mod lint;
pub mod migrate;
pub mod notify;
pub mod pglock;
pub mod retry;
pub mod runner;
pub mod status;
pub mod telemetry;
pub mod version;
