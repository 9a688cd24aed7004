//! Migrations that fail: a transactional one leaves nothing behind and frees the lock; a
//! no-transaction one leaves a precise dirty row that blocks every run until `repair`.

use crate::support::{Db, Engine, Project};

const NT_FAILING: &str = "-- shipgate:no-transaction\n\
CREATE TABLE nt_first (id integer PRIMARY KEY);\n\
INSERT INTO no_such_table (id) VALUES (1);\n\
CREATE TABLE nt_third (id integer PRIMARY KEY);\n";

const NT_FIXED: &str = "-- shipgate:no-transaction\n\
CREATE TABLE nt_first (id integer PRIMARY KEY);\n\
CREATE TABLE nt_second (id integer PRIMARY KEY);\n\
CREATE TABLE nt_third (id integer PRIMARY KEY);\n";

on_both_engines!(
    a_failing_migration_leaves_nothing_and_frees_the_lock,
    a_failed_no_transaction_file_is_dirty_until_marked_rolled_back,
    a_failed_no_transaction_file_finished_by_hand_is_marked_applied,
);

fn a_failing_migration_leaves_nothing_and_frees_the_lock(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write("1_ok.up.sql", "CREATE TABLE t1 (id integer PRIMARY KEY);\n")
        .write(
            "2_broken.up.sql",
            "CREATE TABLE t2 (id integer PRIMARY KEY);\nINSERT INTO t1 (id) VALUES (7);\nSELECT * FROM no_such_table;\n",
        )
        .write("3_after.up.sql", "CREATE TABLE t3 (id integer PRIMARY KEY);\n");

    p.run(&db, &["up"]).code(1).stderr_has(&[
        "migration 2",
        "2_broken.up.sql",
        "no_such_table",
        "rolled back",
    ]);
    assert_eq!(
        db.versions(),
        [1],
        "no history row for the failed migration"
    );
    assert!(
        db.table_exists("t1"),
        "the migration before it stays applied"
    );
    assert!(!db.table_exists("t2"), "none of its effects remain");
    assert_eq!(db.int("SELECT CAST(count(*) AS TEXT) FROM t1"), 0);
    assert!(!db.table_exists("t3"), "nothing after it runs");

    // The lock is free: a second process takes it at once and fails on the same migration
    // (exit 1), not on the lock (exit 4).
    p.run(&db, &["up", "--lock-wait", "0s"])
        .code(1)
        .stderr_has(&["migration 2"]);
    assert_eq!(db.versions(), [1]);

    p.write(
        "2_broken.up.sql",
        "CREATE TABLE t2 (id integer PRIMARY KEY);\n",
    );
    p.run(&db, &["up", "--lock-wait", "0s"]).code(0);
    assert_eq!(db.versions(), [1, 2, 3]);
}

/// Applies `1_nt.up.sql` (failing at its second statement) and checks the dirty row.
fn fail_no_transaction(db: &Db, p: &Project) {
    p.write("1_nt.up.sql", NT_FAILING).write(
        "2_later.up.sql",
        "CREATE TABLE later (id integer PRIMARY KEY);\n",
    );
    p.run(db, &["up"]).code(1).stderr_has(&[
        "migration 1",
        "1_nt.up.sql",
        "at statement 2 of 3",
        "no_such_table",
        "shipgate repair --mark-rolled-back 1",
    ]);
    let history = db.history();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].version, 1);
    assert_eq!(history[0].state, "failed");
    assert_eq!(history[0].statements_done, 1);
    let error = db.query("SELECT error FROM shipgate_migrations WHERE version = 1");
    assert!(
        error[0][0]
            .as_deref()
            .is_some_and(|e| e.contains("statement 2") && e.contains("no_such_table")),
        "{error:?}"
    );
    assert!(db.table_exists("nt_first"), "the first statement committed");
    assert!(!db.table_exists("nt_third"));
    assert!(!db.table_exists("later"));

    // Every later run refuses and says how to get out.
    p.run(db, &["up"]).code(5).stderr_has(&[
        "migration 1",
        "dirty",
        "state failed",
        "1 statement(s) committed",
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
    p.run(&db, &["repair", "--mark-rolled-back", "2"]).code(5);

    // The operator undoes the committed statement by hand, then tells shipgate.
    db.exec("DROP TABLE nt_first");
    p.run(
        &db,
        &[
            "repair",
            "--mark-rolled-back",
            "1",
            "--reason",
            "dropped nt_first by hand",
        ],
    )
    .code(0)
    .stdout_has(&["migration 1 removed from history"]);
    assert!(db.versions().is_empty(), "{:?}", db.history());
    let audit = db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "mark-rolled-back");
    assert_eq!(audit[0].version, Some(1));
    assert_eq!(audit[0].reason.as_deref(), Some("dropped nt_first by hand"));
    assert!(
        audit[0]
            .before
            .as_deref()
            .is_some_and(|b| b.contains("state failed") && b.contains("1 statement(s) done")),
        "{audit:?}"
    );

    p.write("1_nt.up.sql", NT_FIXED);
    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 1 nt", "applied 2 later"]);
    let history = db.history();
    assert_eq!(db.versions(), [1, 2]);
    assert_eq!(history[0].state, "applied");
    assert_eq!(history[0].statements_done, 3);
    for t in ["nt_first", "nt_second", "nt_third", "later"] {
        assert!(db.table_exists(t), "{t}");
    }
}

fn a_failed_no_transaction_file_finished_by_hand_is_marked_applied(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    fail_no_transaction(&db, &p);

    // The operator finishes the migration by hand, then tells shipgate.
    db.exec("CREATE TABLE nt_third (id integer PRIMARY KEY)");
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
    p.run(&db, &["repair", "--mark-applied", "1"]).code(5);
    assert_eq!(db.audit().len(), 1);

    p.run(&db, &["up"])
        .code(0)
        .stdout_has(&["applied 2 later", "applied 1 migration(s)"]);
    assert_eq!(db.versions(), [1, 2]);
    assert!(db.table_exists("later"));
}
