//! The migration engine: files, plans, backends, the lock, and applying.
//!
//! `source` (with `foreign`, the layouts it refuses) and `plan` are pure; `backend` (with `postgres` and `sqlite`) is the only I/O
//! against the database; `lock`, `apply` and `repair` drive a backend through a run with every
//! wait bounded and the lock released on every path. [`Error`] is what callers branch on; the
//! mapping to exit codes lives in `app`, once.

pub mod adopt;
pub mod apply;
pub mod backend;
pub mod drift;
pub mod foreign;
pub mod heartbeat;
pub mod layout;
pub mod lock;
mod mysql;
pub mod plan;
mod postgres;
pub mod repair;
pub mod schema;
pub mod source;
pub mod split;
mod sqlite;

use std::fmt;
use std::time::Duration;

use backend::{DbError, LockHolder};
use plan::Blocker;
use source::{SourceErrors, Version};

/// A signal that interrupts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM (the platform stopping the process): exit 143.
    Terminate,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// Tells a run that the process was asked to stop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Interrupt(tokio::sync::watch::Receiver<Option<Signal>>);

impl Interrupt {
    /// An interrupt wired to a sender; the caller owns the signal handling.
    pub fn channel() -> (tokio::sync::watch::Sender<Option<Signal>>, Interrupt) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (tx, Interrupt(rx))
    }

    /// Waits until a signal arrives (forever, if the sender is gone without one).
    pub async fn wait(&mut self) -> Signal {
        loop {
            if let Some(s) = *self.0.borrow_and_update() {
                return s;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The signal, if one has arrived.
    pub fn raised(&self) -> Option<Signal> {
        *self.0.borrow()
    }
}

/// What a run was doing when a signal interrupted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting, waiting for the lock or between attempts: nothing ran on the server.
    Waiting,
    /// A statement (of a migration, a revert or shipgate's own bookkeeping) was running.
    Running,
}

/// Why a run did not succeed. Every message names the migration, file or URL concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The migration files are invalid.
    #[error(transparent)]
    Source(#[from] SourceErrors),
    /// History and files disagree in a way the policy refuses.
    #[error("{}", blockers_text(.0))]
    Blocked(Vec<Blocker>),
    /// The release gate refused the pending migrations; the text lists what it found.
    #[error("{0}")]
    Gate(String),
    /// The live schema drifted from the snapshot stored after the last release and the drift
    /// policy is `error`; the text lists each difference.
    #[error("{0}")]
    Drift(String),
    /// Pending migrations are marked `-- shipgate:contract` and contract migrations are not
    /// allowed in this run.
    #[error("refusing to run: {} pending migration(s) marked `-- shipgate:contract` (destructive): {}; apply them with --allow-contract (SHIPGATE_ALLOW_CONTRACT=true) once the previous app version has drained", .0.len(), .0.join(", "))]
    Contract(Vec<String>),
    /// A request that cannot be met (an unknown `--to` version, a down without down files…).
    #[error("{0}")]
    Refused(String),
    /// Bad URL or settings discovered while connecting.
    #[error("database {url}: {error}")]
    Config {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        error: DbError,
    },
    /// The database did not accept a connection within the wait.
    #[error("database {url} unreachable after {}: {error}", human(*.waited))]
    Unreachable {
        /// The URL, redacted.
        url: String,
        /// How long shipgate tried.
        waited: Duration,
        /// The last attempt's error.
        error: DbError,
    },
    /// The migration lock was not acquired within the wait.
    #[error("migration lock not acquired within {}{}", human(*.waited), .holder.as_ref().map(|h| format!("; held by {h}")).unwrap_or_default())]
    LockTimeout {
        /// How long shipgate waited.
        waited: Duration,
        /// Who held it at the end, if visible.
        holder: Option<LockHolder>,
    },
    /// A migration failed; its transaction rolled back (or, without one, it is left dirty).
    #[error("{}", failed_text(.version, .file, .error, *.statements))]
    Failed {
        /// Version.
        version: Version,
        /// The file that failed.
        file: String,
        /// The database's error.
        error: DbError,
        /// For a no-transaction file: statements committed before the failure, and the total.
        statements: Option<(usize, usize)>,
    },
    /// A repeatable migration failed. Its transaction rolled back, or (statement by statement)
    /// the statements before the failing one stayed committed; either way its recorded
    /// checksum is unchanged, so the whole file runs again on the next run.
    #[error("{}", repeatable_failed_text(.name, .file, .error, *.statements))]
    RepeatableFailed {
        /// The repeatable's name.
        name: String,
        /// The file that failed.
        file: String,
        /// The database's error (boxed: the variant would make every `Error` larger).
        error: Box<DbError>,
        /// Statement by statement: statements committed before the failure, and the total.
        statements: Option<(usize, usize)>,
    },
    /// A down script failed. Its transaction rolled back, or, statement by statement (a
    /// no-transaction down file, or MySQL), the statements before it stayed committed.
    #[error("reverting migration {version} ({file}) failed{}: {error}; {}", .statements.map(|(d, t)| format!(" at statement {} of {t}", d + 1)).unwrap_or_default(), .statements.map(|(d, _)| format!("{d} statement(s) of the down file before it had committed; the migration is recorded as failed (dirty) until you finish or undo the revert by hand and run `shipgate repair`")).unwrap_or_else(|| "its transaction was rolled back; the migration is still applied".into()))]
    RevertFailed {
        /// Version.
        version: Version,
        /// The down file.
        file: String,
        /// The database's error.
        error: DbError,
        /// For a statement-by-statement revert: statements committed before the failure, and the total.
        statements: Option<(usize, usize)>,
    },
    /// `transaction_mode = all`: a migration of the release failed, and the release's one
    /// transaction was rolled back with it: none of its migrations was applied.
    #[error("{failed}; with transaction_mode = all the whole release was that one transaction: none of its {of} pending migration(s) was applied")]
    ReleaseRolledBack {
        /// The migration's own failure.
        failed: Box<Error>,
        /// How many migrations the release held.
        of: usize,
    },
    /// The lock was lost mid-run.
    #[error("stopped before migration {version}: {error}")]
    LockLost {
        /// The migration that was about to run.
        version: Version,
        /// What the check found.
        error: DbError,
    },
    /// A session held a lock a migration statement needed, past `blocker_grace` or idle in
    /// transaction, and was still there when the lock wait ran out (the blocker check).
    #[error("migration {version} ({file}) not run{}: waited {} (lock_wait) for {blocker} to go; {}", .statements.map(|(d, t)| format!(" past statement {d} of {t}")).unwrap_or_default(), human(*.waited), .statements.map(|(d, _)| format!("{d} statement(s) had committed; the migration is recorded as failed (dirty) until you finish it by hand and run `shipgate repair`")).unwrap_or_else(|| "nothing of it ran; end that session (or turn the check off with blocker_check = false) and deploy again".into()))]
    BlockedBy {
        /// The migration that waited.
        version: Version,
        /// Its file.
        file: String,
        /// Who held what, in words.
        blocker: String,
        /// How long shipgate waited.
        waited: Duration,
        /// Statement by statement: statements committed before the wait, and the total.
        statements: Option<(usize, usize)>,
    },
    /// A database call outside a migration failed.
    #[error("{context}: {error}")]
    Database {
        /// What shipgate was doing.
        context: String,
        /// The database's error.
        error: DbError,
    },
    /// The process was asked to stop.
    #[error("interrupted by {signal}{}", match .1 {
        Stage::Waiting => "; no statement was running, nothing was in progress",
        Stage::Running => "; the statement in progress was rolled back by the server (a migration run statement by statement stays dirty)",
    }, signal = .0)]
    Interrupted(Signal, Stage),
}

fn failed_text(
    version: &Version,
    file: &str,
    error: &DbError,
    statements: Option<(usize, usize)>,
) -> String {
    failure_text(
        &format!("migration {version}"),
        file,
        error,
        statements,
        |done, lost| {
            match done {
        Some(d) => {
            let maybe = if lost {
                " (the connection was lost before the outcome of the next one was known: check whether it committed too)"
            } else {
                ""
            };
            format!("; {d} statement(s) before it had committed{maybe} and the migration is recorded as dirty: fix the cause, then run `shipgate repair --mark-rolled-back {version}` (after undoing them) or `--mark-applied {version}` (after finishing by hand)")
        }
        None if lost => "; the connection was lost before the outcome was known: the server either committed the migration together with its history row or rolled both back, never one without the other, and the next run sees which".into(),
        None => "; its transaction was rolled back and nothing of it remains".into(),
    }
        },
    )
}

fn repeatable_failed_text(
    name: &str,
    file: &str,
    error: &DbError,
    statements: Option<(usize, usize)>,
) -> String {
    let what = format!("repeatable migration {name}");
    failure_text(&what, file, error, statements, |done, lost| {
        match done {
        Some(d) => format!("; {d} statement(s) before it had committed{}; its recorded checksum is unchanged, so the whole file runs again on the next run (a repeatable migration must be safe to run again)", if lost { " (and perhaps the next one: the connection was lost before its outcome was known)" } else { "" }),
        None if lost => "; the connection was lost before the outcome was known: the server either committed the file together with its row or rolled both back, and the next run sees which".into(),
        None => "; its transaction was rolled back and nothing of it remains; it runs again on the next run".into(),
    }
    })
}

/// `<what> (<file>) failed[ at statement N of M]: <error><outcome>`, the outcome given the
/// statements that had committed (statement by statement) and whether the connection was lost.
fn failure_text(
    what: &str,
    file: &str,
    error: &DbError,
    statements: Option<(usize, usize)>,
    outcome: impl FnOnce(Option<usize>, bool) -> String,
) -> String {
    let at = statements
        .map(|(d, t)| format!(" at statement {} of {t}", d + 1))
        .unwrap_or_default();
    let lost = error.kind == backend::ErrorKind::Connection;
    let outcome = outcome(statements.map(|(d, _)| d), lost);
    format!("{what} ({file}) failed{at}: {error}{outcome}")
}

fn blockers_text(blockers: &[Blocker]) -> String {
    let mut out = format!(
        "refusing to run: {} problem(s) between history and files",
        blockers.len()
    );
    for b in blockers {
        out.push_str("\n  ");
        out.push_str(&b.to_string());
    }
    out
}

impl Error {
    /// Whether the run stopped because the database connection was lost or went silent: the
    /// run's own session cannot record anything any more.
    pub fn connection_lost(&self) -> bool {
        match self {
            Error::RepeatableFailed { error, .. } => error.kind == backend::ErrorKind::Connection,
            Error::ReleaseRolledBack { failed, .. } => failed.connection_lost(),
            Error::Failed { error, .. }
            | Error::RevertFailed { error, .. }
            | Error::Database { error, .. }
            | Error::LockLost { error, .. } => error.kind == backend::ErrorKind::Connection,
            _ => false,
        }
    }

    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(DbError) -> Error {
        let context = context.into();
        move |error| Error::Database { context, error }
    }
}

/// A duration for people, the one format of every human-facing message: `86ms` below a
/// second, `4.2s` (tenths, truncated; `30s` when whole) below a minute, `3m12s` below an hour,
/// `2h5m` beyond. JSON carries numbers (`*_ms` fields) instead.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    let (s, tenths) = (ms / 1000, ms % 1000 / 100);
    match s {
        0 => format!("{ms}ms"),
        1..60 if ms.is_multiple_of(1000) => format!("{s}s"),
        1..60 => format!("{s}.{tenths}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ if s % 3600 < 60 => format!("{}h", s / 3600),
        _ => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

/// The current UTC time as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_people_have_one_format() {
        let cases = [
            (0, "0ms"),
            (86, "86ms"),
            (999, "999ms"),
            (1000, "1s"),
            (4002, "4.0s"),
            (15_086, "15.0s"),
            (59_990, "59.9s"),
            (60_000, "1m"),
            (192_400, "3m12s"),
            (3_600_000, "1h"),
            (3_659_000, "1h"),
            (7_500_000, "2h5m"),
        ];
        for (ms, text) in cases {
            assert_eq!(human(Duration::from_millis(ms)), text, "{ms} ms");
        }
    }
}
