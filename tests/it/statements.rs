//! Where statements end, by each engine's own lexical rules: what runs is what the file says,
//! transaction control is found where the server would see it, bodies of triggers and
//! routines stay whole, MySQL's executable comments are code, and MariaDB files of data
//! changes only are one transaction with their history row.

use std::time::Duration;

use crate::support::{Db, Engine, Project, Run};

on_every_engine!(
    a_carriage_return_inside_a_string_reaches_the_database,
    a_nul_byte_is_an_error_naming_the_file,
    trigger_bodies_apply_whole,
);

/// The checksum reads CRLF as LF, but the SQL that runs is the file's bytes: a CR inside a
/// string literal is data.
fn a_carriage_return_inside_a_string_reaches_the_database(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write_bytes(
        "1_cr.up.sql",
        b"CREATE TABLE crs (v varchar(10));\r\nINSERT INTO crs (v) VALUES ('a\rb');\r\n",
    );
    p.run(&db, &["up"]).code(0);
    let got = db.query("SELECT v FROM crs");
    assert_eq!(got, [[Some("a\rb".to_owned())]], "the CR is data");
}

/// A NUL byte is refused before anything runs, naming the file (SQLite used to spin forever).
fn a_nul_byte_is_an_error_naming_the_file(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    p.write_bytes(
        "1_nul.up.sql",
        b"CREATE TABLE nul_t (v integer);\nSELECT 1;\0\nSELECT 2;\n",
    );
    let run = Run::wait_within(p.command(Some(&db), &["up"]), Duration::from_secs(30));
    run.code(5)
        .stderr_has(&["1_nul.up.sql", "NUL byte", "line 2"]);
    assert!(!db.table_exists("nul_t"));
}

/// `CREATE TRIGGER … BEGIN …; …; END;` is one statement: neither refused as transaction control
/// nor cut at its inner semicolons, in a transaction or with `no-transaction`.
fn trigger_bodies_apply_whole(engine: Engine) {
    let trigger = match engine {
        Engine::Postgres => concat!(
            "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n",
            "  INSERT INTO audit_log (n) VALUES (NEW.id);\n",
            "  INSERT INTO audit_log (n) VALUES (NEW.id * 10);\n",
            "  RETURN NEW;\nEND $$;\n",
            "CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION bump();\n",
        ),
        Engine::Sqlite => concat!(
            "CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN\n",
            "  INSERT INTO audit_log (n) VALUES (NEW.id);\n",
            "  INSERT INTO audit_log (n) VALUES (NEW.id * 10);\n",
            "END;\n",
        ),
        Engine::Mariadb => concat!(
            "CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW BEGIN\n",
            "  IF NEW.id > 0 THEN\n",
            "    INSERT INTO audit_log (n) VALUES (NEW.id);\n",
            "  END IF;\n",
            "  INSERT INTO audit_log (n) VALUES (NEW.id * 10);\n",
            "END;\n",
        ),
    };
    for (version, header) in [(1, ""), (3, "-- shipgate:no-transaction\n")] {
        let db = Db::new(engine);
        let p = Project::new();
        p.write(
            &format!("{version}_trigger.up.sql"),
            &format!(
                "{header}CREATE TABLE items (id integer PRIMARY KEY);\n\
                 CREATE TABLE audit_log (n integer);\n{trigger}\
                 INSERT INTO items (id) VALUES (4);\n"
            ),
        );
        p.run(&db, &["up"]).code(0);
        assert_eq!(
            db.int("SELECT count(*) FROM audit_log"),
            2,
            "{header}: the trigger ran whole"
        );
        assert_eq!(db.int("SELECT sum(n) FROM audit_log"), 44);
        assert_eq!(db.versions(), [version]);
    }
}

/// `[it's]` is an identifier to SQLite, not the start of a string: the `COMMIT` after it ends
/// shipgate's transaction and is refused, before anything runs.
#[test]
fn sqlite_sees_a_commit_after_a_bracket_identifier() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::new();
    p.write(
        "1_seed.up.sql",
        "CREATE TABLE seed (v text);\n\
         INSERT INTO seed SELECT 'a' AS [it's];\n\
         COMMIT;\n\
         INSERT INTO seed VALUES ('b');\n",
    );
    p.run(&db, &["up"])
        .code(5)
        .stderr_has(&["1_seed.up.sql:3", "COMMIT"]);
    assert!(!db.table_exists("seed"), "nothing ran");
}

/// mysqldump's executable comments (`/*!…*/`, versioned or not, and MariaDB's `/*M!…*/`) are
/// code to the server, and so to shipgate.
#[test]
fn mariadb_runs_executable_comments() {
    let db = Db::new(Engine::Mariadb);
    let p = Project::new();
    p.write(
        "1_dump.up.sql",
        "/*!40101 CREATE TABLE b1 (y int) */;\n\
         /*! CREATE TABLE b2 (y int) */;\n\
         /*M!100100 CREATE TABLE b3 (y int) */;\n\
         /* a plain comment; CREATE TABLE b4 (y int) */\n\
         CREATE TABLE b5 (y int);\n",
    );
    p.run(&db, &["up"]).code(0);
    for t in ["b1", "b2", "b3", "b5"] {
        assert!(db.table_exists(t), "{t} created");
    }
    assert!(!db.table_exists("b4"), "a plain comment is not code");
}

/// A routine written with the client's `DELIMITER` and nested blocks, labels and `CASE`.
#[test]
fn mariadb_applies_routines_with_delimiter_and_nested_blocks() {
    let db = Db::new(Engine::Mariadb);
    let p = Project::new();
    p.write(
        "1_routine.up.sql",
        "CREATE TABLE counts (n int);\n\
         DELIMITER //\n\
         CREATE PROCEDURE fill(IN k int)\n\
         BEGIN\n\
           DECLARE i int DEFAULT 0;\n\
           fill_loop: LOOP\n\
             SET i = i + 1;\n\
             BEGIN\n\
               INSERT INTO counts (n) VALUES (CASE WHEN i > 1 THEN i ELSE 1 END);\n\
             END;\n\
             CASE WHEN i >= k THEN LEAVE fill_loop; ELSE ITERATE fill_loop; END CASE;\n\
           END LOOP fill_loop;\n\
         END//\n\
         DELIMITER ;\n\
         CALL fill(3);\n",
    );
    // The lint cannot read procedures (its verdict is not what this test is about).
    p.run(&db, &["up", "--lint-gate", "off"]).code(0);
    assert_eq!(db.int("SELECT sum(n) FROM counts"), 6);
}

/// A MariaDB file holding only data changes is one transaction with its history row: when its
/// third statement fails nothing of it remains and no row records it; the fixed file then
/// applies once.
#[test]
fn mariadb_data_only_file_is_atomic() {
    let db = Db::new(Engine::Mariadb);
    let p = Project::new();
    p.write(
        "1_table.up.sql",
        "CREATE TABLE seeds (id int PRIMARY KEY) ENGINE=InnoDB;\n",
    )
    .write(
        "2_seed.up.sql",
        "INSERT INTO seeds (id) VALUES (1);\n\
         UPDATE seeds SET id = 2 WHERE id = 1;\n\
         INSERT INTO no_such_table (id) VALUES (3);\n",
    );
    p.run(&db, &["up"]).code(1).stderr_has(&[
        "migration 2",
        "2_seed.up.sql",
        "no_such_table",
        "rolled back",
    ]);
    assert_eq!(
        db.int("SELECT count(*) FROM seeds"),
        0,
        "nothing of it remains"
    );
    assert_eq!(db.versions(), [1], "no history row for the failed file");

    p.write(
        "2_seed.up.sql",
        "INSERT INTO seeds (id) VALUES (1);\n\
         UPDATE seeds SET id = 2 WHERE id = 1;\n\
         INSERT INTO seeds (id) VALUES (3);\n",
    );
    p.run(&db, &["up"]).code(0);
    assert_eq!(db.versions(), [1, 2]);
    assert_eq!(db.int("SELECT count(*) FROM seeds"), 2);
    assert_eq!(db.int("SELECT sum(id) FROM seeds"), 5);
    p.run(&db, &["up"]).code(0);
    assert_eq!(db.int("SELECT count(*) FROM seeds"), 2, "applied once");
}
