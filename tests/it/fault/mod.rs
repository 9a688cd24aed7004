//! The fault suite: shipgate's promise under crashes, network faults, database restarts,
//! concurrency, bad input and HTTP abuse — whatever happens, schema and history agree, nothing
//! is applied twice or half-applied without a dirty record, no lock stays held, and every
//! failure ends in a clear message and a documented exit code.
//!
//! `cargo test --test it fault` runs a bounded part (a few trials per fault, well under a
//! minute on two cores). `SHIPGATE_FAULT_FULL=1` runs the full counts (50 kills on
//! PostgreSQL, 20 on SQLite and MariaDB, 20 releases × 10 rounds of the soak); `bench/fault.sh`
//! does that and records the results. With `SHIPGATE_FAULT_RESULTS=<file>` every fault test
//! appends its tally (fault, engine, trials, survived, data lost, double applies, locks left)
//! as a tab-separated line to that file.

mod bad_input;
mod crash;
mod fastcommit;
mod http_abuse;
mod network;
mod restart;
mod soak;
mod state;

use std::io::Write;
use std::sync::Mutex;

use crate::support::Engine;

/// The engine's name in tallies: `postgres`, `sqlite`, `mariadb`.
pub fn label(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "postgres",
        Engine::Sqlite => "sqlite",
        Engine::Mariadb => "mariadb",
    }
}

/// Whether the full fault run was asked for (`SHIPGATE_FAULT_FULL=1`).
pub fn full() -> bool {
    std::env::var("SHIPGATE_FAULT_FULL").is_ok_and(|v| v.trim() == "1")
}

/// `bounded` trials in the default run, `full` with `SHIPGATE_FAULT_FULL=1`.
pub fn trials(bounded: usize, full: usize) -> usize {
    if self::full() {
        full
    } else {
        bounded
    }
}

/// A seed for a fault test's random choices: `SHIPGATE_FAULT_SEED`, or a fresh one. Failures
/// print it so that a run can be replayed.
pub fn seed() -> u64 {
    std::env::var("SHIPGATE_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(rand::random)
}

/// What one fault test counted: the row of the README's reliability table.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// The fault, e.g. `SIGKILL during release (100 migrations)`.
    pub fault: String,
    /// `postgres`, `sqlite`, `mariadb`.
    pub engine: String,
    /// Trials run.
    pub trials: usize,
    /// Trials after which every invariant held.
    pub survived: usize,
    /// Trials that lost data: an applied migration whose effects are missing, seed rows gone.
    pub data_lost: usize,
    /// Trials where a migration ran twice: duplicated seed rows or history rows.
    pub double_applies: usize,
    /// Trials that ended with the migration lock still held.
    pub locks_left: usize,
    /// Anything worth a note (how many kills landed mid-run, wall time).
    pub note: String,
    /// What went wrong in the trials that did not survive.
    pub failures: Vec<String>,
}

static RESULTS: Mutex<()> = Mutex::new(());

impl Tally {
    /// A tally for `fault` on `engine`.
    pub fn new(fault: &str, engine: &str) -> Tally {
        Tally {
            fault: fault.to_owned(),
            engine: engine.to_owned(),
            ..Tally::default()
        }
    }

    /// Records a fault test whose assertions all passed: `trials` trials, all survived.
    pub fn passed(fault: &str, engine: &str, trials: usize, note: &str) {
        Tally {
            trials,
            survived: trials,
            note: note.to_owned(),
            ..Tally::new(fault, engine)
        }
        .finish();
    }

    /// Appends the tally to `SHIPGATE_FAULT_RESULTS` (when set), prints it, and fails the test
    /// when any trial did not survive or any count that must be 0 is not.
    #[track_caller]
    pub fn finish(&self) {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.fault,
            self.engine,
            self.trials,
            self.survived,
            self.data_lost,
            self.double_applies,
            self.locks_left,
            self.note
        );
        eprintln!("fault tally: {line}");
        if let Ok(path) = std::env::var("SHIPGATE_FAULT_RESULTS") {
            let _guard = RESULTS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("opening {path}: {e}"));
            writeln!(file, "{line}").unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
        assert!(
            self.failures.is_empty()
                && self.survived == self.trials
                && self.data_lost == 0
                && self.double_applies == 0
                && self.locks_left == 0,
            "{}: {} of {} trials survived, data lost {}, double applies {}, locks left {}:\n{}",
            self.fault,
            self.survived,
            self.trials,
            self.data_lost,
            self.double_applies,
            self.locks_left,
            self.failures.join("\n\n")
        );
    }
}
