//! Concurrency soak: 20 `shipgate release` processes start at once on one PostgreSQL database,
//! round after round, each round adding new migrations (a table, seed rows, a no-transaction
//! file). Every process exits 0, every migration is applied exactly once (one history row, its
//! seed rows once, reported applied by exactly one process), and the lock is free after every
//! round. The default run does 3 rounds; `SHIPGATE_FAULT_FULL=1` does 10.

use std::time::{Duration, Instant};

use super::state::lock_held;
use super::Tally;
use crate::support::{spawn, Db, Engine, Project, Run};

const PROCESSES: usize = 20;
const PER_ROUND: i64 = 5;

/// Adds round `r`'s migrations (versions `r*10+1 ..= r*10+5`).
fn add_round(p: &Project, r: i64) {
    for i in 1..=PER_ROUND {
        let v = r * 10 + i;
        let sql = match i {
            1 if r == 0 => {
                "CREATE TABLE seeds (migration integer NOT NULL, n integer NOT NULL);\n".to_owned()
            }
            2 => format!("INSERT INTO seeds (migration, n) VALUES ({v}, 1), ({v}, 2), ({v}, 3);\n"),
            3 => format!(
                "-- shipgate:no-transaction\nCREATE TABLE nt{v} (id integer PRIMARY KEY);\n\
                 CREATE INDEX CONCURRENTLY nt{v}_id ON nt{v} (id);\n\
                 INSERT INTO seeds (migration, n) VALUES ({v}, 1);\n"
            ),
            _ => format!("CREATE TABLE t{v} (id integer PRIMARY KEY);\n"),
        };
        p.write(&format!("{v}_round_{r}_{i}.up.sql"), &sql);
    }
}

fn seeds_per_round() -> i64 {
    4 // three from the seed file, one from the no-transaction file
}

#[test]
fn twenty_simultaneous_releases_round_after_round_apply_everything_exactly_once() {
    let rounds = super::trials(3, 10) as i64;
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    let mut tally = Tally::new(
        &format!("{PROCESSES} simultaneous releases × rounds with new migrations"),
        "postgres",
    );
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for r in 0..rounds {
        add_round(&p, r);
        let mut cmds: Vec<_> = (0..PROCESSES)
            .map(|_| {
                let mut cmd = p.platform_command(&db, &["release"]);
                cmd.env("SHIPGATE_LOCK_WAIT", "120s");
                cmd
            })
            .collect();
        let round_started = Instant::now();
        let children: Vec<_> = cmds.iter_mut().map(spawn).collect();
        let runs: Vec<Run> = children
            .into_iter()
            .map(|c| Run::finish(c, round_started))
            .collect();
        slowest = slowest.max(round_started.elapsed());
        tally.trials += 1;

        let mut problems = Vec::new();
        for run in &runs {
            run.secret_free();
            if run.code != Some(0) {
                problems.push(format!("a release exited {:?}: {run:?}", run.code));
            }
        }
        // Each new migration reported applied by exactly one process.
        let mut reported: Vec<i64> = runs
            .iter()
            .flat_map(Run::log_lines)
            .filter(|l| l["target"] == "shipgate::progress::end" && l["duration_ms"].is_u64())
            .filter_map(|l| l["migration_version"].as_i64())
            .collect();
        reported.sort_unstable();
        let want: Vec<i64> = (1..=PER_ROUND).map(|i| r * 10 + i).collect();
        if reported != want {
            tally.double_applies += usize::from(reported.len() > want.len());
            problems.push(format!("applied {reported:?}, want each of {want:?} once"));
        }
        let history = db.history();
        let expected_rows = (r + 1) * PER_ROUND;
        if history.len() as i64 != expected_rows || history.iter().any(|h| h.state != "applied") {
            problems.push(format!("history after round {r}: {history:?}"));
        }
        let seeds = db.int("SELECT count(*) FROM seeds");
        let distinct = db.int("SELECT count(*) FROM (SELECT DISTINCT migration, n FROM seeds) s");
        if seeds != distinct {
            tally.double_applies += 1;
            problems.push(format!("{seeds} seed rows, {distinct} distinct"));
        }
        if seeds != (r + 1) * seeds_per_round() {
            tally.data_lost += usize::from(seeds < (r + 1) * seeds_per_round());
            problems.push(format!("{seeds} seed rows after round {r}"));
        }
        if lock_held(&db) {
            tally.locks_left += 1;
            problems.push("the lock is held after the round".into());
        }
        if problems.is_empty() {
            tally.survived += 1;
        } else {
            tally
                .failures
                .push(format!("round {r}: {}", problems.join("; ")));
        }
    }
    tally.note = format!(
        "{} releases in {} rounds, {} migrations; wall time {} ms (slowest round {} ms)",
        PROCESSES as i64 * rounds,
        rounds,
        rounds * PER_ROUND,
        started.elapsed().as_millis(),
        slowest.as_millis()
    );
    tally.finish();
}
