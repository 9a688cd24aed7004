//! Runners: what applies a release's migrations, behind the release flow.
//!
//! `commands::release::run` owns what every release does whatever applies it — the
//! `release.started` and outcome webhooks, the summary line and the exit code. A runner owns
//! "what is pending" and "apply it", under the lock and inside the run's `shipgate_runs` row:
//! - `sql` is shipgate's own engine (`migrate::apply::up`), unchanged: it plans before the lock
//!   so the every-deploy no-op takes none, gates before the lock, and takes the lock and opens
//!   the run row itself, re-planning under it.
//! - `command` runs a command line as a supervised child process. It knows nothing of what is
//!   pending, so every release takes the lock, opens the row and runs the command.
//! - `alembic` reads the Alembic project's revision graph (`crate::alembic`) and the
//!   `alembic_version` rows before the lock, so the every-deploy no-op takes no lock and starts
//!   no Python; with revisions pending it runs `alembic upgrade heads` as the `command` runner
//!   runs its child (its pieces, reused), and records which revisions it applied.
//!
//! Adding a runner is one module here and one arm in [`choose`] and [`release`]. Nothing here
//! prints or picks an exit code: errors go to `exit::exit_for_release`.

pub mod alembic;
pub mod command;
pub mod sql;

use std::time::Duration;

use serde_json::json;

use crate::config::{Config, RunnerKind};
use crate::migrate::apply::{Progress, UpReport};
use crate::migrate::plan::Policy;
use crate::migrate::schema::Keyed;
use crate::migrate::{self, Interrupt, Signal};
use crate::version::Version;

/// The runner of one release, chosen from the config.
#[derive(Debug, Clone)]
pub enum Runner<'c> {
    /// shipgate's own engine.
    Sql,
    /// This program and its arguments, and the file the program was found at.
    Command(&'c [String], std::path::PathBuf),
    /// An Alembic project, read, and the command that upgrades it.
    Alembic(Box<alembic::Prepared<'c>>),
}

/// The runner `config` names, or why this build cannot run it (`--to` included: only the `sql`
/// runner knows versions).
pub fn choose<'c>(config: &'c Config, to: Option<&Version>) -> Result<Runner<'c>, Error> {
    let runner = match (config.runner.kind, config.runner.command.as_deref()) {
        (RunnerKind::Sql, _) => return Ok(Runner::Sql),
        (RunnerKind::Alembic, Some(argv)) if !argv.is_empty() => {
            Runner::Alembic(Box::new(alembic::prepare(config, argv)?))
        }
        (RunnerKind::Alembic, _) => {
            return Err(Error::Refused(
                "runner = \"alembic\" needs a runner_command".into(),
            ))
        }
        (RunnerKind::Command, Some(argv)) if !argv.is_empty() => {
            // A command that cannot start is a configuration error: found before anything.
            let program = &argv[0];
            let path = command::executable(program).map_err(|why| {
                Error::Refused(format!(
                    "runner_command: cannot run {program}: {why}; nothing was run"
                ))
            })?;
            Runner::Command(argv, path)
        }
        (RunnerKind::Command, _) => {
            return Err(Error::Refused(
                "runner = \"command\" needs runner_command".into(),
            ))
        }
    };
    if let Some(v) = to {
        return Err(Error::Refused(format!(
            "--to {v}: the {} runner does not know versions; only runner = \"sql\" stops at one",
            config.runner.kind.as_str()
        )));
    }
    Ok(runner)
}

/// Where the configured runner's record says the database stands, which its drift snapshot is
/// keyed by: shipgate's history (`sql`), Alembic's version table (`alembic`), shipgate's runs
/// (`command`, which keeps no record shipgate can read).
pub fn keyed(config: &Config) -> Keyed<'_> {
    match config.runner.kind {
        RunnerKind::Sql => Keyed::Sql,
        RunnerKind::Alembic => {
            let (schema, table) = &config.runner.alembic_version_table;
            Keyed::Alembic {
                schema: schema.as_deref(),
                table,
            }
        }
        RunnerKind::Command => Keyed::Command,
    }
}

/// Applies what is pending with `runner`, under the lock, recording the run.
pub async fn release(
    runner: Runner<'_>,
    config: &Config,
    policy: &Policy,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<Done, Error> {
    match runner {
        Runner::Sql => Ok(Done::Sql(Box::new(
            sql::release(config, policy, interrupt, progress).await?,
        ))),
        Runner::Command(argv, path) => Ok(Done::Command(
            command::release(argv, &path, config, interrupt, progress).await?,
        )),
        Runner::Alembic(prepared) => Ok(Done::Alembic(
            alembic::release(&prepared, config, interrupt, progress).await?,
        )),
    }
}

/// What a release that succeeded did.
#[derive(Debug)]
pub enum Done {
    /// The SQL engine's report.
    Sql(Box<UpReport>),
    /// The command's.
    Command(command::Done),
    /// Alembic's: the revisions it applied.
    Alembic(alembic::Done),
}

impl Done {
    /// Migrations applied, as far as shipgate knows (a command's are not counted).
    pub fn applied(&self) -> usize {
        match self {
            Done::Sql(r) => r.applied.len() + r.repeatables.len(),
            Done::Command(_) => 0,
            Done::Alembic(done) => done.applied.len(),
        }
    }

    /// The fields of the `release.succeeded` webhook beyond the release's context.
    pub fn event_data(&self, elapsed: Duration) -> serde_json::Value {
        let duration_ms = elapsed.as_millis() as u64;
        match self {
            Done::Sql(report) => {
                let applied: Vec<_> = report
                    .applied
                    .iter()
                    .map(|a| {
                        json!({"version": a.version, "name": a.name, "duration_ms": a.duration_ms})
                    })
                    .collect();
                let repeatables: Vec<_> = report
                    .repeatables
                    .iter()
                    .map(|r| json!({"name": r.name, "duration_ms": r.duration_ms}))
                    .collect();
                json!({"applied": applied, "repeatables": repeatables, "current_version": report.plan.current, "head_version": report.plan.head, "duration_ms": duration_ms})
            }
            Done::Command(done) => json!({
                "runner": "command",
                "run_id": done.run_id,
                "command": done.program,
                "command_duration_ms": done.duration.as_millis() as u64,
                "duration_ms": duration_ms,
            }),
            Done::Alembic(done) => {
                let mut data = done.event_data();
                data["duration_ms"] = json!(duration_ms);
                data
            }
        }
    }

    /// The version the database is at after the release, when shipgate knows it.
    pub fn current(&self) -> Option<&Version> {
        match self {
            Done::Sql(report) => report.plan.current.as_ref(),
            Done::Command(_) | Done::Alembic(_) => None,
        }
    }

    /// Where an Alembic release left the database (`a1, b2`, `none`); empty for other runners.
    fn revisions(&self) -> String {
        match self {
            Done::Alembic(done) => done.at(),
            _ => String::new(),
        }
    }

    /// What it did, in a few words: `applied 3 migration(s)`, `ran runner command alembic`.
    pub fn what(&self) -> String {
        match self {
            Done::Sql(r) => format!("applied {} migration(s)", r.applied.len()),
            Done::Command(done) => format!("ran runner command {}", done.program),
            Done::Alembic(done) => format!("applied {} alembic revision(s)", done.applied.len()),
        }
    }

    /// [`Done::what`], and where the database stands when shipgate knows it.
    pub fn what_and_where(&self) -> String {
        match self.current() {
            Some(v) => format!("{}, now at version {v}", self.what()),
            None if matches!(self, Done::Sql(_)) => format!("{}, now at version none", self.what()),
            None if matches!(self, Done::Alembic(_)) => {
                format!("{}, now at revision {}", self.what(), self.revisions())
            }
            None => self.what(),
        }
    }

    /// The end of the summary line: what was done, and where the database stands.
    pub fn summary(&self, elapsed: Duration) -> String {
        let current = || {
            self.current()
                .map_or_else(|| "none".into(), Version::to_string)
        };
        match self {
            Done::Sql(report) if report.applied.is_empty() && report.repeatables.is_empty() => {
                format!("nothing to do, at version {}", current())
            }
            Done::Sql(report) => {
                let reran = match report.repeatables.len() {
                    0 => String::new(),
                    n => format!(" and ran {n} repeatable migration(s)"),
                };
                format!(
                    "applied {} migration(s){reran} in {}, now at version {}",
                    report.applied.len(),
                    migrate::human(elapsed),
                    current()
                )
            }
            Done::Command(done) => format!(
                "runner command {} finished in {} (run {})",
                done.program,
                migrate::human(done.duration),
                done.run_id
            ),
            Done::Alembic(done) => match &done.ran {
                None if done.unknown.is_empty() => {
                    format!("nothing to do, at revision {}", done.at())
                }
                None => format!(
                    "nothing run: the database is ahead of this build, at revision {}",
                    done.at()
                ),
                Some(ran) => format!(
                    "applied {} alembic revision(s) in {} (run {}), now at revision {}",
                    done.applied.len(),
                    migrate::human(elapsed),
                    ran.run_id,
                    done.at()
                ),
            },
        }
    }
}

/// Why a release did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine's error: the SQL runner's, or the wait, lock and run row around a command.
    #[error(transparent)]
    Engine(Box<migrate::Error>),
    /// A request this runner cannot meet; nothing was done.
    #[error("{0}")]
    Refused(String),
    /// The project's files or the database's state fail validation; nothing was run.
    #[error("{0}")]
    Invalid(String),
    /// The command failed, timed out or lost the lock; the run is recorded as failed.
    #[error(transparent)]
    Command(#[from] command::Failed),
    /// A signal stopped the command; forwarded to it, recorded as aborted.
    #[error("interrupted by {signal}: {detail}")]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// What became of the command and its sessions.
        detail: String,
    },
}

impl From<migrate::Error> for Error {
    fn from(e: migrate::Error) -> Error {
        Error::Engine(Box::new(e))
    }
}

impl Error {
    /// The engine's error, when it is one.
    pub fn engine(&self) -> Option<&migrate::Error> {
        match self {
            Error::Engine(e) => Some(e),
            _ => None,
        }
    }
}
