//! `transaction_mode = all`: every pending migration and its history row in one transaction.
//! A release whose third pending migration fails leaves nothing of the others, the repeatable
//! included (no history
//! row, no table, no seed row), its run row and webhook say nothing was applied, and the error
//! names the failing file; a no-transaction file among the pending ones refuses the run before
//! anything runs; the fixed release records every row. MariaDB refuses the mode as a
//! configuration error (DDL commits implicitly there).

use crate::support::{Db, Engine, Project, Receiver, Reply, Run};

on_every_engine!(
    all_mode_rolls_back_the_whole_release_when_its_third_migration_fails,
    all_mode_refuses_a_no_transaction_file_before_anything_runs,
);

/// Migration 1 applied on its own first; then five pending, the third of which (`4_d`) fails
/// on its second line.
fn project() -> Project {
    let p = Project::new();
    p.write(
        "1_a.up.sql",
        "CREATE TABLE a (id integer PRIMARY KEY, what varchar(20));\n",
    );
    p
}

fn pending(p: &Project, fourth: &str) {
    p.write(
        "2_b.up.sql",
        "CREATE TABLE b (id integer);\nINSERT INTO a (id, what) VALUES (1, 'seed');\n",
    )
    .write("3_c.up.sql", "CREATE TABLE c (id integer);\n")
    .write("4_d.up.sql", fourth)
    .write("5_e.up.sql", "CREATE TABLE e (id integer);\n")
    .write(
        "6_f.up.sql",
        "CREATE TABLE f (id integer);\nUPDATE a SET what = 'changed' WHERE id = 1;\n",
    )
    // A repeatable goes in the same transaction, after the versioned ones.
    .write(
        "R__view.sql",
        "DROP VIEW IF EXISTS f_ids;\nCREATE VIEW f_ids AS SELECT id FROM f;\n",
    );
}

const FAILING: &str = "CREATE TABLE d (id integer);\nSELECT * FROM no_such_table;\n";
const FIXED: &str = "CREATE TABLE d (id integer);\nSELECT 1;\n";

fn release(p: &Project, db: &Db, hooks: Option<&Receiver>) -> Run {
    let mut cmd = p.platform_command(db, &["release"]);
    cmd.env("SHIPGATE_TRANSACTION_MODE", "all");
    if let Some(hooks) = hooks {
        cmd.env("SHIPGATE_WEBHOOK_URL", &hooks.url);
    }
    Run::wait(cmd)
}

fn all_mode_rolls_back_the_whole_release_when_its_third_migration_fails(engine: Engine) {
    let db = Db::new(engine);
    let p = project();
    p.run(&db, &["up"]).code(0);
    pending(&p, FAILING);

    if engine == Engine::Mariadb {
        // Refused before connecting, naming the key and why.
        release(&p, &db, None).code(2).secret_free().stderr_has(&[
            "transaction_mode",
            "SHIPGATE_TRANSACTION_MODE",
            "DDL commits implicitly",
        ]);
        assert_eq!(db.versions(), [1]);
        return;
    }

    let hooks = Receiver::start(Reply::Accept);
    let run = release(&p, &db, Some(&hooks));
    run.code(1).secret_free().stderr_has(&[
        "migration 4",
        "4_d.up.sql",
        "no_such_table",
        "none of its 6 pending migration(s) was applied",
    ]);
    if engine == Engine::Postgres {
        // The server's position, made relative to the file: line 2, column 15.
        run.stderr_has(&["4_d.up.sql:2:15"]);
    }
    // Per-migration progress lines still came, the first two ended before the failure.
    let lines = run.log_lines();
    let starts = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("applying "))
        })
        .count();
    assert_eq!(starts, 3, "{run:?}");

    // Nothing of the release remains: history, schema and data as before it.
    assert_eq!(db.versions(), [1], "{run:?}");
    for table in ["b", "c", "d", "e", "f"] {
        assert!(
            !db.table_exists(table),
            "table {table} rolled back: {run:?}"
        );
    }
    assert_eq!(
        db.int("SELECT count(*) FROM a"),
        0,
        "the seed row rolled back"
    );
    assert_eq!(db.int("SELECT count(*) FROM shipgate_repeatables"), 0);
    // The run row and the webhook say so.
    let row = db.query("SELECT outcome, applied FROM shipgate_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(row[0][0].as_deref(), Some("failed"), "{row:?}");
    assert_eq!(row[0][1].as_deref(), Some("0"), "{row:?}");
    let failed = hooks.of_type("release.failed");
    assert_eq!(failed.len(), 1, "{:?}", hooks.deliveries());
    let data = &failed[0].json()["data"];
    assert_eq!(data["applied"], 0, "{data}");
    assert_eq!(data["exit_code"], 1, "{data}");

    // Fixed: the same release commits all five with their rows.
    p.write("4_d.up.sql", FIXED);
    let run = release(&p, &db, None);
    run.code(0).secret_free().stderr_has(&[
        "committed the release's 6 migration(s) in one transaction",
        "release succeeded",
    ]);
    assert_eq!(db.versions(), [1, 2, 3, 4, 5, 6], "{run:?}");
    for table in ["b", "c", "d", "e", "f"] {
        assert!(db.table_exists(table), "table {table}: {run:?}");
    }
    assert_eq!(
        db.int("SELECT count(*) FROM a WHERE what = 'changed'"),
        1,
        "the seed row, changed by the last migration"
    );
    let history = db.history();
    assert!(history.iter().all(|r| r.state == "applied"), "{history:?}");
    let row = db.query("SELECT outcome, applied FROM shipgate_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(row[0][0].as_deref(), Some("succeeded"), "{row:?}");
    assert_eq!(row[0][1].as_deref(), Some("6"), "{row:?}");
    assert_eq!(db.int("SELECT count(*) FROM f_ids"), 0, "the view exists");
    assert_eq!(db.int("SELECT count(*) FROM shipgate_repeatables"), 1);
}

fn all_mode_refuses_a_no_transaction_file_before_anything_runs(engine: Engine) {
    let db = Db::new(engine);
    let p = project();
    p.run(&db, &["up"]).code(0);
    p.write("2_b.up.sql", "CREATE TABLE b (id integer);\n")
        .write(
            "3_idx.up.sql",
            "-- shipgate:no-transaction\nCREATE INDEX a_what ON a (what);\n",
        );
    if engine == Engine::Mariadb {
        release(&p, &db, None)
            .code(2)
            .stderr_has(&["transaction_mode"]);
        return;
    }
    let run = release(&p, &db, None);
    run.code(5).secret_free().stderr_has(&[
        "transaction_mode = all",
        "migration 3",
        "3_idx.up.sql",
        "no-transaction",
        "nothing was applied",
    ]);
    // Refused before anything ran: no migration started, nothing written but the run row.
    assert!(
        !run.stderr.contains("applying "),
        "no migration started: {run:?}"
    );
    assert_eq!(db.versions(), [1]);
    assert!(!db.table_exists("b"));
    let row = db.query("SELECT outcome FROM shipgate_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(row[0][0].as_deref(), Some("failed"), "{row:?}");
    // With the default mode the same files apply, each in its own way.
    Run::wait(p.command(Some(&db), &["up"])).code(0);
    assert_eq!(db.versions(), [1, 2, 3]);
}
