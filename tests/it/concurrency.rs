//! Many replicas deploying at once: eight `shipgate up` processes on one database all succeed
//! and every migration runs exactly once.

use std::time::Instant;

use crate::support::{spawn, Db, Engine, Project, Run};

const MIGRATIONS: i64 = 50;
const PROCESSES: usize = 8;

/// Fifty migrations: the first creates `seeds`; every fifth inserts `version / 5` rows into it
/// (a second run would duplicate them); the others create a table (a second run would fail).
fn fifty() -> Project {
    let p = Project::new();
    p.write(
        "1_seeds.up.sql",
        "CREATE TABLE seeds (migration integer NOT NULL, n integer NOT NULL);\n",
    );
    for v in 2..=MIGRATIONS {
        let sql = if v % 5 == 0 {
            let values: Vec<String> = (1..=v / 5).map(|n| format!("({v}, {n})")).collect();
            format!(
                "INSERT INTO seeds (migration, n) VALUES {};\n",
                values.join(", ")
            )
        } else {
            format!("CREATE TABLE t{v} (id integer PRIMARY KEY);\n")
        };
        p.write(&format!("{v}_step_{v}.up.sql"), &sql);
    }
    p
}

/// Starts eight `up` processes at once and checks they all exit 0, that the end state is
/// correct, and that migrations `first_pending..` were applied once between them.
fn race(db: &Db, p: &Project, first_pending: i64) {
    let mut cmds: Vec<_> = (0..PROCESSES)
        .map(|_| p.command(Some(db), &["up"]))
        .collect();
    let started = Instant::now();
    let children: Vec<_> = cmds.iter_mut().map(spawn).collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::finish(c, started))
        .collect();
    for run in &runs {
        run.code(0);
    }

    let history = db.history();
    let versions: Vec<i64> = history.iter().map(|r| r.version).collect();
    assert_eq!(versions, (1..=MIGRATIONS).collect::<Vec<_>>());
    assert!(history.iter().all(|r| r.state == "applied"), "{history:?}");
    let total = db.int("SELECT count(*) FROM shipgate_migrations");
    assert_eq!(total, MIGRATIONS, "exactly one history row per migration");

    let expected: i64 = (1..=MIGRATIONS).filter(|v| v % 5 == 0).map(|v| v / 5).sum();
    assert_eq!(db.int("SELECT count(*) FROM seeds"), expected);
    let per_migration = db.query(
        "SELECT migration AS m, count(*), count(DISTINCT n) \
         FROM seeds GROUP BY migration ORDER BY migration",
    );
    let want: Vec<Vec<Option<String>>> = (1..=MIGRATIONS)
        .filter(|v| v % 5 == 0)
        .map(|v| {
            let n = (v / 5).to_string();
            vec![Some(v.to_string()), Some(n.clone()), Some(n)]
        })
        .collect();
    assert_eq!(per_migration, want, "each seed migration ran exactly once");

    // Every pending migration was reported applied by exactly one of the processes.
    let mut reported: Vec<i64> = runs
        .iter()
        .flat_map(|run| run.stdout.lines())
        .filter_map(|line| {
            let mut words = line.strip_prefix("applied ")?.split(' ');
            let version = words.next()?.parse().ok()?;
            let name = words.next()?;
            (name == "seeds" || name.starts_with("step_")).then_some(version)
        })
        .collect();
    reported.sort_unstable();
    assert_eq!(
        reported,
        (first_pending..=MIGRATIONS).collect::<Vec<_>>(),
        "each pending migration reported once across all processes"
    );
}

on_every_engine!(
    eight_processes_apply_fifty_migrations_exactly_once,
    eight_processes_finish_a_half_applied_set_exactly_once,
);

fn eight_processes_apply_fifty_migrations_exactly_once(engine: Engine) {
    let db = Db::new(engine);
    let p = fifty();
    race(&db, &p, 1);
}

fn eight_processes_finish_a_half_applied_set_exactly_once(engine: Engine) {
    let db = Db::new(engine);
    let p = fifty();
    p.run(&db, &["up", "--to", "25"]).code(0);
    assert_eq!(db.versions(), (1..=25).collect::<Vec<_>>());
    race(&db, &p, 26);
}

/// While another process's run is live (its migration recorded `running`, the lock held),
/// `down` waits for the lock like `up` instead of calling the row dirty, then reverts what it
/// was asked to once the run has finished; `status --exit-code` does not call it dirty either.
fn down_waits_for_a_live_run_instead_of_calling_it_dirty(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let sleep = match engine {
        Engine::Postgres => "SELECT pg_sleep(4);",
        Engine::Mariadb => "SELECT SLEEP(4);",
        Engine::Sqlite => unreachable!("SQLite runs one writer; its lock test is in lock.rs"),
    };
    p.write(
        "1_base.up.sql",
        "CREATE TABLE base (id integer PRIMARY KEY);\n",
    )
    .write(
        "2_slow.up.sql",
        &format!("-- shipgate:no-transaction\nCREATE TABLE slow (id integer);\n{sleep}\n"),
    )
    .write("2_slow.down.sql", "DROP TABLE slow;\n");
    let mut up = p.command(Some(&db), &["up"]);
    let started = Instant::now();
    let up = spawn(&mut up);
    crate::support::wait_for(
        "migration 2 running",
        std::time::Duration::from_secs(20),
        || {
            (db.table_exists("shipgate_migrations")
            && db.int("SELECT count(*) FROM shipgate_migrations WHERE version = '2' AND state = 'running'") == 1)
            .then_some(())
        },
    );
    let status = p.run(&db, &["status", "--exit-code"]);
    assert_ne!(status.code, Some(5), "a live run is not dirty: {status:?}");
    status.stdout_has(&["in progress 2"]);
    let down = p.run(
        &db,
        &[
            "down",
            "--steps",
            "1",
            "--yes",
            "--reason",
            "undo the slow one",
        ],
    );
    Run::finish(up, started).code(0);
    down.code(0).stdout_has(&["reverted 2 slow"]);
    assert_eq!(db.versions(), [1]);
    assert!(!db.table_exists("slow"));
}

mod down_waits_for_a_live_run {
    use crate::support::Engine;
    #[test]
    fn postgres() {
        super::down_waits_for_a_live_run_instead_of_calling_it_dirty(Engine::Postgres)
    }
    #[test]
    fn mariadb() {
        super::down_waits_for_a_live_run_instead_of_calling_it_dirty(Engine::Mariadb)
    }
}
