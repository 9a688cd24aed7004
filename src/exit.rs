//! The documented exit codes and the one mapping from every error to them (SPEC §7).

use std::process::ExitCode;

use serde_json::json;

use crate::migrate::{self, Signal};

/// The documented exit codes (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Applied, or nothing to do.
    Success = 0,
    /// A migration failed.
    MigrationFailed = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// Database unreachable after the wait.
    Unreachable = 3,
    /// Lock not acquired in time.
    LockTimeout = 4,
    /// Validation failed.
    Invalid = 5,
    /// Pending migrations (`status --exit-code`).
    Pending = 10,
    /// SIGINT.
    Interrupted = 130,
    /// `exec` could not start its command.
    CannotExec = 127,
    /// SIGTERM.
    Terminated = 143,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A failed command: the error to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Documented exit code.
    pub exit: Exit,
    /// The error chain, printed with `{:#}`.
    pub error: anyhow::Error,
    /// Print as one JSON log line (logs are JSON) rather than text.
    pub json: bool,
}

impl Failure {
    pub(crate) fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit,
            error: error.into(),
            json: false,
        }
    }

    /// Prints the error on stderr in the log format: `shipgate: error: …` or one JSON object.
    pub fn report(&self) {
        if self.json {
            let line = json!({
                "timestamp": migrate::now_rfc3339(),
                "level": "error",
                "message": format!("{:#}", self.error),
                "exit_code": self.exit as u8,
                "target": "shipgate",
            });
            eprintln!("{line}");
        } else {
            eprintln!("shipgate: error: {:#}", self.error);
        }
    }
}

/// The exit code of every engine error, in one place.
pub fn exit_for(e: &migrate::Error) -> Exit {
    use migrate::Error as E;
    match e {
        E::Source(_) | E::Blocked(_) | E::Gate(_) | E::Drift(_) | E::Contract(_) => Exit::Invalid,
        E::Refused(_) => Exit::Invalid,
        E::Config { .. } => Exit::Usage,
        E::Unreachable { .. } => Exit::Unreachable,
        E::LockTimeout { .. } | E::BlockedBy { .. } => Exit::LockTimeout,
        E::Failed { .. }
        | E::RepeatableFailed { .. }
        | E::RevertFailed { .. }
        | E::ReleaseRolledBack { .. }
        | E::LockLost { .. }
        | E::Database { .. } => Exit::MigrationFailed,
        E::Interrupted(Signal::Interrupt, _) => Exit::Interrupted,
        E::Interrupted(Signal::Terminate, _) => Exit::Terminated,
    }
}

/// The exit code of every release error: the engine's as [`exit_for`] maps them; a runner
/// that is not available or a request it cannot meet is a configuration error (2); a command
/// that failed or timed out is a failed migration (1); a signal is 130/143.
pub fn exit_for_release(e: &crate::runner::Error) -> Exit {
    use crate::runner::Error as E;
    match e {
        E::Engine(e) => exit_for(e),
        E::Refused(_) => Exit::Usage,
        E::Invalid(_) => Exit::Invalid,
        E::Command(_) => Exit::MigrationFailed,
        E::Interrupted {
            signal: Signal::Interrupt,
            ..
        } => Exit::Interrupted,
        E::Interrupted {
            signal: Signal::Terminate,
            ..
        } => Exit::Terminated,
    }
}

impl From<crate::runner::Error> for Failure {
    fn from(e: crate::runner::Error) -> Failure {
        Failure::new(exit_for_release(&e), e)
    }
}

impl From<migrate::Error> for Failure {
    fn from(e: migrate::Error) -> Failure {
        Failure::new(exit_for(&e), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;
    use std::time::Duration;

    #[test]
    fn every_engine_error_has_its_documented_exit_code() {
        use crate::migrate::backend::{DbError, ErrorKind};
        let db = DbError {
            kind: ErrorKind::Query,
            message: "x".into(),
            code: None,
            position: None,
        };
        let cases = [
            (migrate::Error::Refused("x".into()), Exit::Invalid),
            (migrate::Error::Blocked(vec![]), Exit::Invalid),
            (
                migrate::Error::Unreachable {
                    url: "u".into(),
                    waited: Duration::ZERO,
                    error: db.clone(),
                },
                Exit::Unreachable,
            ),
            (
                migrate::Error::LockTimeout {
                    waited: Duration::ZERO,
                    holder: None,
                },
                Exit::LockTimeout,
            ),
            (
                migrate::Error::Failed {
                    version: Version::from_int(1),
                    file: "f".into(),
                    error: db.clone(),
                    statements: None,
                },
                Exit::MigrationFailed,
            ),
            (
                migrate::Error::ReleaseRolledBack {
                    failed: Box::new(migrate::Error::Failed {
                        version: Version::from_int(3),
                        file: "f".into(),
                        error: db.clone(),
                        statements: None,
                    }),
                    of: 5,
                },
                Exit::MigrationFailed,
            ),
            (
                migrate::Error::Config {
                    url: "u".into(),
                    error: db,
                },
                Exit::Usage,
            ),
            (
                migrate::Error::Interrupted(Signal::Terminate, migrate::Stage::Running),
                Exit::Terminated,
            ),
            (
                migrate::Error::Interrupted(Signal::Interrupt, migrate::Stage::Running),
                Exit::Interrupted,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(exit_for(&e), want, "{e}");
        }
    }
}
