//! Crash anywhere: `shipgate release` on 100 migrations (transactional and no-transaction
//! files mixed, some inserting seed rows) is SIGKILLed at a random moment. After every kill:
//! history is a prefix of the files with at most one dirty row, which is the cut
//! no-transaction (or, on MariaDB, any) migration; the next release completes, or refuses
//! (exit 5) naming exactly that migration; after the operator undoes it by hand and runs
//! `repair --mark-rolled-back` the release completes. At the end the catalog equals that of an
//! uninterrupted run, every seed row exists exactly once, and no lock is held.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::state::{catalog, lock_held, wait_sessions_gone};
use super::Tally;
use crate::support::{spawn, Db, Engine, Project, Run};

const MIGRATIONS: i64 = 100;
const BOUND: Duration = Duration::from_secs(120);

/// What a migration does, by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Creates `seeds` (version 1).
    Seeds,
    /// `-- shipgate:no-transaction`: two tables, an index and seed rows, statement by statement.
    NoTransaction,
    /// Inserts `version / 7` seed rows: running it twice would duplicate them.
    Seed,
    /// Adds column `c<version>` to `seeds`.
    AddColumn,
    /// A table `t<version>` with an index and two rows.
    Table,
}

fn kind(v: i64) -> Kind {
    match v {
        1 => Kind::Seeds,
        _ if v % 10 == 3 => Kind::NoTransaction,
        _ if v % 7 == 0 => Kind::Seed,
        _ if v % 9 == 5 => Kind::AddColumn,
        _ => Kind::Table,
    }
}

fn up_sql(v: i64) -> String {
    match kind(v) {
        Kind::Seeds => {
            "CREATE TABLE seeds (migration integer NOT NULL, n integer NOT NULL);\n".into()
        }
        Kind::NoTransaction => format!(
            "-- shipgate:no-transaction\n\
             CREATE TABLE nt{v}_a (id integer PRIMARY KEY);\n\
             INSERT INTO seeds (migration, n) VALUES ({v}, 1), ({v}, 2);\n\
             CREATE TABLE nt{v}_b (id integer PRIMARY KEY, a_id integer);\n\
             CREATE INDEX nt{v}_b_a ON nt{v}_b (a_id);\n"
        ),
        Kind::Seed => {
            let rows: Vec<String> = (1..=v / 7).map(|n| format!("({v}, {n})")).collect();
            format!(
                "INSERT INTO seeds (migration, n) VALUES {};\n",
                rows.join(", ")
            )
        }
        Kind::AddColumn => format!("ALTER TABLE seeds ADD COLUMN c{v} integer;\n"),
        Kind::Table => format!(
            "CREATE TABLE t{v} (id integer PRIMARY KEY, name varchar(40) NOT NULL DEFAULT 'x');\n\
             CREATE INDEX t{v}_name ON t{v} (name);\n\
             INSERT INTO t{v} (id, name) VALUES (1, 'a'), (2, 'b');\n"
        ),
    }
}

/// What an operator runs to undo whatever part of migration `v` committed, before
/// `repair --mark-rolled-back v`. Idempotent: any prefix of the file may have run.
fn undo_sql(engine: Engine, v: i64) -> String {
    match kind(v) {
        Kind::Seeds => "DROP TABLE IF EXISTS seeds".into(),
        Kind::NoTransaction => format!(
            "DROP TABLE IF EXISTS nt{v}_b; DROP TABLE IF EXISTS nt{v}_a; \
             DELETE FROM seeds WHERE migration = {v}"
        ),
        Kind::Seed => format!("DELETE FROM seeds WHERE migration = {v}"),
        // Only MariaDB can be cut inside a transactional file; SQLite lacks IF EXISTS here.
        Kind::AddColumn => match engine {
            Engine::Sqlite => format!("ALTER TABLE seeds DROP COLUMN c{v}"),
            _ => format!("ALTER TABLE seeds DROP COLUMN IF EXISTS c{v}"),
        },
        Kind::Table => format!("DROP TABLE IF EXISTS t{v}"),
    }
}

/// A migration that can be left half-applied on `engine`: a no-transaction file anywhere, any
/// migration on MariaDB (DDL commits implicitly, so every file runs statement by statement).
fn can_be_dirty(engine: Engine, v: i64) -> bool {
    kind(v) == Kind::NoTransaction || !engine.atomic_ddl()
}

fn hundred() -> Project {
    let p = Project::new();
    for v in 1..=MIGRATIONS {
        p.write(&format!("{v}_step_{v}.up.sql"), &up_sql(v));
    }
    p
}

fn release(p: &Project, db: &Db) -> std::process::Command {
    let mut cmd = p.platform_command(db, &["release"]);
    cmd.env("SHIPGATE_LOCK_WAIT", "60s");
    cmd
}

/// Everything the invariants compare: the catalog and every seed row.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    catalog: Vec<String>,
    seeds: Vec<(i64, i64)>,
}

fn end_state(db: &Db) -> EndState {
    let seeds = db
        .query("SELECT migration, n FROM seeds ORDER BY migration, n")
        .into_iter()
        .map(|r| {
            let int = |i: usize| {
                r[i].as_deref()
                    .and_then(|s| s.parse().ok())
                    .expect("an integer")
            };
            (int(0), int(1))
        })
        .collect();
    // `shipgate_schema` (the drift snapshot) is created by the first store, after the last
    // migration; a kill between the two leaves a database whose next release has nothing to do
    // and stores none (documented: every check then says "no snapshot for version V"). Its
    // presence says nothing about the migrations, which is what this compares.
    EndState {
        catalog: catalog(db)
            .into_iter()
            .filter(|line| !line.contains("shipgate_schema"))
            .collect(),
        seeds,
    }
}

/// History right after a kill: versions, and the one dirty row if any.
struct AfterKill {
    applied: Vec<i64>,
    dirty: Option<(i64, String)>,
}

/// Checks history after a kill: a prefix 1..=k of the files, every row applied except possibly
/// the last, which must be a migration that can be half-applied on this engine.
fn after_kill(engine: Engine, db: &Db) -> Result<AfterKill, String> {
    if !db.table_exists("shipgate_migrations") {
        return Ok(AfterKill {
            applied: Vec::new(),
            dirty: None,
        });
    }
    let history = db.history();
    let versions: Vec<i64> = history.iter().map(|r| r.version).collect();
    let want: Vec<i64> = (1..=versions.len() as i64).collect();
    if versions != want {
        return Err(format!(
            "history is not a prefix of the files: {versions:?}"
        ));
    }
    let dirty: Vec<_> = history.iter().filter(|r| r.state != "applied").collect();
    match dirty.as_slice() {
        [] => Ok(AfterKill {
            applied: versions,
            dirty: None,
        }),
        [d] if Some(d.version) == versions.last().copied() && can_be_dirty(engine, d.version) => {
            Ok(AfterKill {
                applied: versions[..versions.len() - 1].to_vec(),
                dirty: Some((d.version, d.state.clone())),
            })
        }
        _ => Err(format!("unexpected dirty rows after a kill: {history:?}")),
    }
}

/// One trial on a fresh database: kill at `kill_after`, check, recover, compare with the
/// reference. Returns whether the kill landed mid-run and whether it left a dirty migration that
/// had to be repaired, or what broke.
fn trial(
    engine: Engine,
    p: &Project,
    reference: &EndState,
    kill_after: Duration,
    tally: &mut Tally,
) -> Result<(bool, bool), String> {
    let db = Db::new(engine);
    let started = Instant::now();
    let mut child = spawn(&mut release(p, &db));
    std::thread::sleep(kill_after);
    let alive = matches!(child.try_wait(), Ok(None));
    // SIGKILL: no handler runs, nothing is cleaned up by shipgate itself.
    let _ = child.kill();
    let killed = Run::finish(child, started);
    killed.secret_free();
    wait_sessions_gone(&db, Duration::from_secs(30));

    let state = after_kill(engine, &db)?;
    let mid_run = alive && (state.applied.len() as i64) < MIGRATIONS;

    let next = Run::wait_within(release(p, &db), BOUND);
    next.secret_free();
    match (next.code, &state.dirty) {
        (Some(0), None) => {}
        (Some(5), Some((v, _))) => {
            // Refused, naming exactly the cut migration and the way out.
            let named = next.stderr.contains(&format!("migration {v}"))
                && next.stderr.contains("dirty")
                && next.stderr.contains("shipgate repair");
            if !named {
                return Err(format!("the refusal does not name migration {v}: {next:?}"));
            }
            let history = db.history();
            let dirty: Vec<i64> = history
                .iter()
                .filter(|r| r.state != "applied")
                .map(|r| r.version)
                .collect();
            if dirty != [*v] {
                return Err(format!("dirty rows changed under the refusal: {history:?}"));
            }
            // The operator undoes what committed and tells shipgate so.
            db.exec(&undo_sql(engine, *v));
            let repair = Run::wait_within(
                p.platform_command(
                    &db,
                    &[
                        "repair",
                        "--mark-rolled-back",
                        &v.to_string(),
                        "--reason",
                        "undone by hand after a crash",
                    ],
                ),
                BOUND,
            );
            repair.secret_free();
            if repair.code != Some(0) {
                return Err(format!("repair failed: {repair:?}"));
            }
            let last = Run::wait_within(release(p, &db), BOUND);
            last.secret_free();
            if last.code != Some(0) {
                return Err(format!("the release after repair failed: {last:?}"));
            }
        }
        _ => {
            return Err(format!(
                "after a kill leaving dirty {:?}, the next release exited {:?}: {next:?}",
                state.dirty, next.code
            ))
        }
    }

    let history = db.history();
    let all_applied = history.len() as i64 == MIGRATIONS
        && history.iter().all(|r| r.state == "applied")
        && history.iter().map(|r| r.version).eq(1..=MIGRATIONS);
    let end = end_state(&db);
    let mut problems = Vec::new();
    if history.len() as i64 > MIGRATIONS || end.seeds.len() > reference.seeds.len() {
        tally.double_applies += 1;
        problems.push("a migration ran twice".to_owned());
    }
    if !all_applied || end.seeds.len() < reference.seeds.len() || end.catalog != reference.catalog {
        tally.data_lost += 1;
        let missing: Vec<_> = reference
            .catalog
            .iter()
            .filter(|l| !end.catalog.contains(l))
            .collect();
        let extra: Vec<_> = end
            .catalog
            .iter()
            .filter(|l| !reference.catalog.contains(l))
            .collect();
        problems.push(format!(
            "end state differs from an uninterrupted run: history {history:?}; \
             catalog missing {missing:?}, extra {extra:?}; {} seed rows, want {}",
            end.seeds.len(),
            reference.seeds.len()
        ));
    } else if end.seeds != reference.seeds {
        tally.data_lost += 1;
        problems.push("seed rows differ from an uninterrupted run".to_owned());
    }
    // The run a kill cut short is closed as aborted by the next release that takes the lock
    // (one that finds nothing to do takes none, and leaves it); the newest run, the one
    // `/migrations/status` shows, always has its outcome.
    let open = db.int("SELECT count(*) FROM shipgate_runs WHERE outcome IS NULL");
    let newest_open = db.int(
        "SELECT count(*) FROM shipgate_runs WHERE outcome IS NULL \
         AND id = (SELECT max(id) FROM shipgate_runs)",
    );
    let took_lock = (state.applied.len() as i64) < MIGRATIONS;
    if newest_open != 0 || (took_lock && open != 0) {
        problems.push(format!("{open} run row(s) left without an outcome"));
    }
    if lock_held(&db) {
        tally.locks_left += 1;
        problems.push("the migration lock is still held".to_owned());
    }
    if problems.is_empty() {
        Ok((mid_run, state.dirty.is_some()))
    } else {
        Err(problems.join("; "))
    }
}

/// Runs `trials` kills on `engine` and tallies them.
fn kill_repeatedly(engine: Engine, trials: usize) {
    let seed = super::seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let p = hundred();

    // The reference: an uninterrupted run, timed, on a database of its own.
    let reference_db = Db::new(engine);
    let run = Run::wait_within(release(&p, &reference_db), BOUND);
    run.code(0).secret_free();
    let full_run = run.elapsed;
    let reference = end_state(&reference_db);
    assert_eq!(reference_db.versions().len() as i64, MIGRATIONS);
    drop(reference_db);

    let mut tally = Tally::new(
        "SIGKILL during release (100 migrations)",
        super::label(engine),
    );
    let mut mid_run = 0;
    let mut repaired = 0;
    let started = Instant::now();
    for i in 0..trials {
        // Uniform over the uninterrupted run's duration: start-up, lock, any migration, exit.
        let kill_after = Duration::from_micros(rng.gen_range(0..=full_run.as_micros() as u64));
        tally.trials += 1;
        match trial(engine, &p, &reference, kill_after, &mut tally) {
            Ok((cut, dirty)) => {
                tally.survived += 1;
                mid_run += usize::from(cut);
                repaired += usize::from(dirty);
            }
            Err(e) => tally.failures.push(format!(
                "trial {i} (seed {seed}, kill after {kill_after:?}): {e}"
            )),
        }
    }
    tally.note = format!(
        "{mid_run} kills landed mid-run, {repaired} left a dirty migration (refused, repaired); uninterrupted run {} ms; {} s in all; seed {seed}",
        full_run.as_millis(),
        started.elapsed().as_secs()
    );
    tally.finish();
}

on_every_engine!(sigkill_at_a_random_moment_loses_nothing_and_applies_nothing_twice);

fn sigkill_at_a_random_moment_loses_nothing_and_applies_nothing_twice(engine: Engine) {
    let trials = match engine {
        Engine::Postgres => super::trials(5, 50),
        Engine::Sqlite | Engine::Mariadb => super::trials(5, 20),
    };
    kill_repeatedly(engine, trials);
}
