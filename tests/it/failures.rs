//! Migrations that fail. On PostgreSQL and SQLite a migration is one transaction: a failing one
//! leaves nothing behind. On MariaDB DDL commits implicitly, so every migration runs statement
//! by statement and a failure leaves the statements before it committed and a precise dirty
//! row, as a no-transaction file does on every engine; a dirty row blocks every run until
//! `repair`. Either way the lock is freed.

use crate::support::{Db, Engine, Project};

/// A no-transaction file whose third statement fails.
const NT_FAILING: &str = "-- shipgate:no-transaction\n\
CREATE TABLE nt_first (id integer PRIMARY KEY);\n\
CREATE TABLE nt_second (id integer PRIMARY KEY);\n\
INSERT INTO no_such_table (id) VALUES (1);\n\
CREATE TABLE nt_fourth (id integer PRIMARY KEY);\n";

const NT_FIXED: &str = "-- shipgate:no-transaction\n\
CREATE TABLE nt_first (id integer PRIMARY KEY);\n\
CREATE TABLE nt_second (id integer PRIMARY KEY);\n\
CREATE TABLE nt_third (id integer PRIMARY KEY);\n\
CREATE TABLE nt_fourth (id integer PRIMARY KEY);\n";

on_every_engine!(
    a_failing_migration_is_undone_or_left_dirty_and_frees_the_lock,
    a_failed_no_transaction_file_is_dirty_until_marked_rolled_back,
    a_failed_no_transaction_file_finished_by_hand_is_marked_applied,
    a_revert_that_stops_part_way_leaves_the_migration_dirty,
);

fn a_failing_migration_is_undone_or_left_dirty_and_frees_the_lock(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_ok.up.sql", "CREATE TABLE t1 (id integer PRIMARY KEY);\n")
        .write(
            "2_broken.up.sql",
            "CREATE TABLE t2 (id integer PRIMARY KEY);\nINSERT INTO t1 (id) VALUES (7);\nSELECT * FROM no_such_table;\n",
        )
        .write("3_after.up.sql", "CREATE TABLE t3 (id integer PRIMARY KEY);\n");

    let run = p.run(&db, &["up"]);
    run.code(1)
        .stderr_has(&["migration 2", "2_broken.up.sql", "no_such_table"]);
    assert!(
        db.table_exists("t1"),
        "the migration before it stays applied"
    );
    assert!(!db.table_exists("t3"), "nothing after it runs");

    if engine.atomic_ddl() {
        // PostgreSQL, SQLite: the migration's transaction rolled back with its history row.
        run.stderr_has(&["rolled back"]);
        assert_eq!(
            db.versions(),
            [1],
            "no history row for the failed migration"
        );
        assert!(!db.table_exists("t2"), "none of its effects remain");
        assert_eq!(db.int("SELECT count(*) FROM t1"), 0);

        // The lock is free: a second process takes it at once and fails on the same migration
        // (exit 1), not on the lock (exit 4).
        p.run(&db, &["up", "--lock-wait", "0s"])
            .code(1)
            .stderr_has(&["migration 2"]);
        assert_eq!(db.versions(), [1]);
    } else {
        // MariaDB: the two statements before the failing one committed (DDL commits
        // implicitly); the migration is recorded dirty with its progress, and the output says
        // which statements committed and how to get out.
        run.stderr_has(&[
            "at statement 3 of 3",
            "2 statement(s) before it had committed",
            "shipgate repair --mark-rolled-back 2",
        ]);
        let history = db.history();
        assert_eq!(db.versions(), [1, 2], "{history:?}");
        assert_eq!(history[1].state, "failed");
        assert_eq!(history[1].statements_done, 2);
        let error = db.query("SELECT error FROM shipgate_migrations WHERE version = '2'");
        assert!(
            error[0][0]
                .as_deref()
                .is_some_and(|e| e.contains("statement 3") && e.contains("no_such_table")),
            "{error:?}"
        );
        assert!(db.table_exists("t2"), "statement 1 committed");
        assert_eq!(
            db.int("SELECT count(*) FROM t1"),
            1,
            "statement 2 committed"
        );

        // Every later run refuses, before taking the lock, and names `shipgate repair`.
        p.run(&db, &["up", "--lock-wait", "0s"])
            .code(5)
            .stderr_has(&[
                "migration 2",
                "dirty",
                "state failed",
                "2 statement(s) committed",
                "shipgate repair",
            ]);

        // The lock is free: repair takes it at once. The operator undoes the committed
        // statements by hand first.
        db.exec("DROP TABLE t2");
        db.exec("DELETE FROM t1");
        p.run(
            &db,
            &[
                "repair",
                "--mark-rolled-back",
                "2",
                "--lock-wait",
                "0s",
                "--reason",
                "undid t2 and the row by hand",
            ],
        )
        .code(0);
        assert_eq!(db.versions(), [1]);
    }

    p.write(
        "2_broken.up.sql",
        "CREATE TABLE t2 (id integer PRIMARY KEY);\n",
    );
    p.run(&db, &["up", "--lock-wait", "0s"]).code(0);
    assert_eq!(db.versions(), [1, 2, 3]);
    assert!(db.history().iter().all(|r| r.state == "applied"));
    assert!(db.table_exists("t2") && db.table_exists("t3"));
}

/// Applies `1_nt.up.sql` (failing at its third statement) and checks the dirty row: the same on
/// every engine.
fn fail_no_transaction(db: &Db, p: &Project) {
    p.write("1_nt.up.sql", NT_FAILING).write(
        "2_later.up.sql",
        "CREATE TABLE later (id integer PRIMARY KEY);\n",
    );
    p.run(db, &["up"]).code(1).stderr_has(&[
        "migration 1",
        "1_nt.up.sql",
        "at statement 3 of 4",
        "2 statement(s) before it had committed",
        "no_such_table",
        "shipgate repair --mark-rolled-back 1",
    ]);
    let history = db.history();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].version, 1);
    assert_eq!(history[0].state, "failed");
    assert_eq!(history[0].statements_done, 2);
    let error = db.query("SELECT error FROM shipgate_migrations WHERE version = '1'");
    assert!(
        error[0][0]
            .as_deref()
            .is_some_and(|e| e.contains("statement 3") && e.contains("no_such_table")),
        "{error:?}"
    );
    assert!(
        db.table_exists("nt_first") && db.table_exists("nt_second"),
        "statements 1 and 2 committed"
    );
    assert!(!db.table_exists("nt_fourth"));
    assert!(!db.table_exists("later"));

    // Every later run refuses and says how to get out.
    p.run(db, &["up"]).code(5).stderr_has(&[
        "migration 1",
        "dirty",
        "state failed",
        "2 statement(s) committed",
        "shipgate repair",
    ]);
    assert!(!db.table_exists("later"));
    assert_eq!(db.versions(), [1]);
}

fn a_failed_no_transaction_file_is_dirty_until_marked_rolled_back(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    fail_no_transaction(&db, &p);

    // Repair only touches dirty rows.
    p.run(
        &db,
        &[
            "repair",
            "--mark-rolled-back",
            "2",
            "--reason",
            "checked by hand",
        ],
    )
    .code(5);

    // The operator undoes the committed statements by hand, then tells shipgate.
    db.exec("DROP TABLE nt_first");
    db.exec("DROP TABLE nt_second");
    p.run(
        &db,
        &[
            "repair",
            "--mark-rolled-back",
            "1",
            "--reason",
            "dropped nt_first and nt_second by hand",
        ],
    )
    .code(0)
    .stdout_has(&["migration 1 removed from history"]);
    assert!(db.versions().is_empty(), "{:?}", db.history());
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "mark-rolled-back");
    assert_eq!(audit[0].version, Some(1));
    assert_eq!(
        audit[0].reason.as_deref(),
        Some("dropped nt_first and nt_second by hand")
    );
    assert!(
        audit[0]
            .before
            .as_deref()
            .is_some_and(|b| b.contains("state failed") && b.contains("2 statement(s) done")),
        "{audit:?}"
    );

    p.write("1_nt.up.sql", NT_FIXED);
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 1 nt", "applied 2 later"]);
    let history = db.history();
    assert_eq!(db.versions(), [1, 2]);
    assert_eq!(history[0].state, "applied");
    assert_eq!(history[0].statements_done, 4);
    for t in ["nt_first", "nt_second", "nt_third", "nt_fourth", "later"] {
        assert!(db.table_exists(t), "{t}");
    }
}

fn a_failed_no_transaction_file_finished_by_hand_is_marked_applied(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    fail_no_transaction(&db, &p);

    // The operator finishes the migration by hand, then tells shipgate.
    db.exec("CREATE TABLE nt_fourth (id integer PRIMARY KEY)");
    p.run(
        &db,
        &[
            "repair",
            "--mark-applied",
            "1",
            "--reason",
            "finished by hand",
        ],
    )
    .code(0)
    .stdout_has(&["migration 1 marked applied"]);
    let history = db.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, "applied");
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "mark-applied");
    assert_eq!(audit[0].version, Some(1));
    assert_eq!(audit[0].after.as_deref(), Some("state applied"));

    // A second repair of the same version is refused: it is no longer dirty.
    p.run(
        &db,
        &[
            "repair",
            "--mark-applied",
            "1",
            "--reason",
            "checked by hand",
        ],
    )
    .code(5);
    assert_eq!(db.audit().len(), 1);

    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 2 later", "applied 1 migration(s)"]);
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.table_exists("later"));
}

/// A down file that runs statement by statement (no-transaction; every file on MariaDB) and
/// fails part-way leaves its migration dirty — not looking applied — until an operator finishes
/// the revert by hand and marks it rolled back; then `up` applies it again.
fn a_revert_that_stops_part_way_leaves_the_migration_dirty(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_base.up.sql", "CREATE TABLE base (id integer PRIMARY KEY);\n")
        .write(
            "2_pair.up.sql",
            "CREATE TABLE pair_a (id integer PRIMARY KEY);\nCREATE TABLE pair_b (id integer PRIMARY KEY);\n",
        )
        .write(
            "2_pair.down.sql",
            "-- shipgate:no-transaction\nDROP TABLE pair_b;\nDROP TABLE no_such_table;\nDROP TABLE pair_a;\n",
        );
    p.run(&db, &["up"]).code(0);

    let run = p.run(&db, &["down", "--steps", "1", "--yes"]);
    run.code(1).stderr_has(&[
        "reverting migration 2",
        "at statement 2 of 3",
        "1 statement(s) of the down file before it had committed",
        "shipgate repair",
    ]);
    assert!(!db.table_exists("pair_b") && db.table_exists("pair_a"));
    let history = db.history();
    assert_eq!(db.versions(), [1, 2], "{history:?}");
    assert_eq!(history[1].state, "failed", "{history:?}");
    assert_eq!(history[1].statements_done, 1, "{history:?}");
    let error = db.query("SELECT error FROM shipgate_migrations WHERE version = '2'");
    let error = error[0][0].clone().unwrap_or_default();
    assert!(
        error.contains("revert stopped at statement 2") && error.contains("2_pair.down.sql"),
        "{error}"
    );

    let runs = db.query("SELECT command, outcome FROM shipgate_runs");
    assert_eq!(
        runs,
        [[Some("down".to_owned()), Some("failed".to_owned())]],
        "{runs:?}"
    );

    // Dirty: every run refuses until repaired.
    p.run(&db, &["up"])
        .code(5)
        .stderr_has(&["migration 2", "dirty", "shipgate repair"]);
    p.run(&db, &["down", "--steps", "1", "--yes"])
        .code(5)
        .stderr_has(&["migration 2 is dirty"]);

    // The operator finishes the revert by hand and says so; `up` then applies 2 again.
    db.exec("DROP TABLE pair_a");
    p.run(
        &db,
        &[
            "repair",
            "--mark-rolled-back",
            "2",
            "--reason",
            "checked by hand",
        ],
    )
    .code(0);
    assert_eq!(db.versions(), [1]);
    p.run(&db, &["up"]).code(0);
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.table_exists("pair_a") && db.table_exists("pair_b"));
}
