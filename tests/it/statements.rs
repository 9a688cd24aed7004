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

/// Property tests: shipgate's statement boundaries are the server's. Each generated file mixes
/// statements that log their index with noise in every lexical form the engine knows (strings
/// holding `;` and quotes, identifiers in every quoting, comments, trigger bodies). The file
/// runs whole, as the server splits it; then shipgate's statements run one at a time, each of
/// which must be exactly one of the server's statements (one log row with its own index, or
/// one trigger) and must match the generated text; both runs must leave the same rows.
mod boundaries {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use shipgate::config::Engine as Rules;
    use shipgate::migrate::split;

    use crate::support::{Db, Engine, Session};

    /// One generated statement: its text, and whether it logs (else it creates a trigger).
    #[derive(Debug, Clone)]
    struct Generated {
        sql: String,
        logs: bool,
    }

    fn pick(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        proptest::sample::select(options)
    }

    fn sqlite_statement(i: usize) -> impl Strategy<Value = Generated> {
        let strings = pick(&[
            "'a;b'",
            "'it''s; ok'",
            "'--;'",
            "'/*;'",
            "'[;'",
            "'\"; `'",
            "'END;'",
            "x'3b27'",
            "'line\nbreak;'",
        ]);
        let idents = pick(&[
            "[it's;]",
            "\"a;\"\"b\"",
            "`c;``d`",
            "v",
            "[end]",
            "\"trigger\"",
        ]);
        let lead = pick(&["", "-- c;'\n", "/* [ ; */ ", "/* /* */ "]);
        let trail = pick(&["", " /* ;' */", " -- x;\n"]);
        let temp = pick(&["", "TEMP ", "temporary "]);
        let end = pick(&["END", "end", "End"]);
        let inner = pick(&["", "/* c */ ", "-- c;\n"]);
        (
            any::<bool>(),
            strings,
            idents,
            lead,
            trail,
            temp,
            end,
            inner,
        )
            .prop_map(move |(logs, s, id, lead, trail, temp, end, inner)| {
                let sql = if logs {
                    format!("{lead}INSERT INTO log (k, v) SELECT {i}, {s} AS {id}{trail}")
                } else {
                    format!(
                        "{lead}CREATE {temp}TRIGGER tr_{i} AFTER INSERT ON log WHEN NEW.k = {i} \
                         BEGIN INSERT INTO fired VALUES ({i}, {s}); \
                         SELECT CASE WHEN 1 THEN 'x' {end} AS {id}; {inner}{end}"
                    )
                };
                Generated { sql, logs }
            })
    }

    fn mysql_statement(i: usize) -> impl Strategy<Value = Generated> {
        let strings = pick(&[
            "'a;b'",
            "'it\\'s; ok'",
            "'it''s'",
            "'back\\\\slash;'",
            "\"dq\\\";\"",
            "'#;'",
            "'-- ;'",
            "'/*!;*/'",
            "'END;'",
        ]);
        let idents = pick(&["`a;b`", "`it``s`", "v", "`begin`"]);
        let lead = pick(&["", "# c;'\n", "-- c;\n", "/* ; */ ", "--\tx;\n"]);
        let wrap = any::<bool>();
        let end = pick(&["END", "end"]);
        (any::<bool>(), strings, idents, lead, wrap, end).prop_map(
            move |(logs, s, id, lead, wrap, end)| {
                let sql = if logs {
                    let body = format!("INSERT INTO log (k, v) SELECT {i}, {s} AS {id}");
                    if wrap {
                        format!("{lead}/*!40101 {body} */")
                    } else {
                        format!("{lead}{body}")
                    }
                } else {
                    format!(
                        "{lead}CREATE TRIGGER tr_{i} AFTER INSERT ON log FOR EACH ROW BEGIN \
                         IF NEW.k = {i} THEN INSERT INTO fired VALUES ({i}, {s}); END IF; \
                         SET @x = CASE WHEN 1 THEN 'x' {end}; {end}"
                    )
                };
                Generated { sql, logs }
            },
        )
    }

    fn postgres_statement(i: usize) -> impl Strategy<Value = Generated> {
        let strings = pick(&[
            "'a;b'",
            "'it''s; ok'",
            "E'a\\';b'",
            "$$;'$$",
            "$q$ '; $$ $q$",
            "'--;'",
            "'/*;'",
            "'$a$;'",
            "U&'d\\0061t;a'",
        ]);
        let idents = pick(&["\"a;\"\"b\"", "é$a$", "v", "\"end\"", "x$1"]);
        let lead = pick(&["", "-- c;'\n", "/* /* nested; */ */ ", "/* ; $$ */ "]);
        let body = pick(&["plpgsql", "atomic"]);
        (any::<bool>(), strings, idents, lead, body).prop_map(move |(logs, s, id, lead, body)| {
            let sql = if logs {
                format!("{lead}INSERT INTO log (k, v) SELECT {i}, {s} AS {id}")
            } else if body == "plpgsql" {
                format!(
                    "{lead}CREATE FUNCTION f_{i}() RETURNS text LANGUAGE plpgsql AS $body$ \
                     BEGIN RETURN {s}; END $body$"
                )
            } else {
                format!(
                    "{lead}CREATE FUNCTION f_{i}() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                     SELECT {i}; SELECT CASE WHEN true THEN {i} END; END"
                )
            };
            Generated { sql, logs }
        })
    }

    fn file(
        statement: fn(usize) -> BoxedStrategy<Generated>,
        separators: &'static [&'static str],
    ) -> impl Strategy<Value = (Vec<Generated>, Vec<&'static str>)> {
        (1usize..7).prop_flat_map(move |n| {
            (
                (0..n).map(statement).collect::<Vec<_>>(),
                proptest::collection::vec(pick(separators), n),
            )
        })
    }

    /// The file: each statement, `;`, and a separator of white space or comments.
    fn text(statements: &[Generated], separators: &[&str]) -> String {
        statements
            .iter()
            .zip(separators)
            .map(|(s, sep)| format!("{};{sep}", s.sql))
            .collect()
    }

    struct Case<'a> {
        session: &'a mut Session,
        reset: &'a str,
        state: &'a str,
        triggers: &'a str,
    }

    impl Case<'_> {
        fn check(&mut self, rules: Rules, statements: &[Generated], separators: &[&str]) {
            let sql = text(statements, separators);
            let split: Vec<String> = split::statements(&sql, rules)
                .into_iter()
                .map(|s| s.sql)
                .collect();
            // A comment between two statements belongs to the one after it.
            let want: Vec<String> = statements
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let before = if i == 0 { "" } else { separators[i - 1] };
                    format!("{before}{}", s.sql).trim().to_owned()
                })
                .collect();
            assert_eq!(split, want, "shipgate's statements of:\n{sql}");

            self.session.exec(self.reset);
            self.session.exec(&sql);
            let whole = self.session.query(self.state);

            self.session.exec(self.reset);
            for (i, (piece, generated)) in split.iter().zip(statements).enumerate() {
                let logged = self.session.query("SELECT count(*) FROM log")[0][0].clone();
                let triggers = self.session.query(self.triggers)[0][0].clone();
                self.session.exec(piece);
                let count = |rows: Vec<Vec<Option<String>>>| -> i64 {
                    rows[0][0]
                        .as_deref()
                        .unwrap_or("0")
                        .parse()
                        .expect("a count")
                };
                let was = |v: Option<String>| -> i64 {
                    v.as_deref().unwrap_or("0").parse().expect("a count")
                };
                let logged_now = count(self.session.query("SELECT count(*) FROM log"));
                let triggers_now = count(self.session.query(self.triggers));
                let (rows, made) = if generated.logs { (1, 0) } else { (0, 1) };
                assert_eq!(
                    (logged_now - was(logged), triggers_now - was(triggers)),
                    (rows, made),
                    "statement {i} is one statement to the server: {piece}\nin:\n{sql}"
                );
                let last = self
                    .session
                    .query("SELECT CAST(max(k) AS CHAR) FROM log WHERE k IS NOT NULL");
                if generated.logs {
                    assert_eq!(
                        last[0][0].as_deref(),
                        Some(i.to_string().as_str()),
                        "{piece}"
                    );
                }
            }
            assert_eq!(
                self.session.query(self.state),
                whole,
                "one at a time as the whole file:\n{sql}"
            );
        }
    }

    fn runner(cases: u32) -> TestRunner {
        TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        })
    }

    /// SQLite's prepare-and-tail loop (sqlx's `raw_sql`) against `split::statements`.
    #[test]
    fn sqlite_boundaries_are_sqlites() {
        let db = Db::new(Engine::Sqlite);
        std::fs::File::create(db.sqlite_path()).expect("an empty database file");
        let mut session = db.session();
        let case = std::cell::RefCell::new(Case {
            session: &mut session,
            reset: "DROP TABLE IF EXISTS log; DROP TABLE IF EXISTS fired; \
                    CREATE TABLE log (k integer, v text); CREATE TABLE fired (k integer, v text);",
            state: "SELECT CAST(k AS TEXT), v FROM log UNION ALL SELECT 'fired ' || k, v FROM fired \
                    UNION ALL SELECT 'trigger', name FROM sqlite_master WHERE type = 'trigger' \
                    UNION ALL SELECT 'trigger', name FROM sqlite_temp_master WHERE type = 'trigger' \
                    ORDER BY 1, 2",
            triggers: "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'trigger') + \
                       (SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger')",
        });
        let strategy = file(
            |i| sqlite_statement(i).boxed(),
            &["\n", " ", "\n-- after;'\n", "/* ; */\n", "\r\n"],
        );
        runner(200)
            .run(&strategy, |(statements, separators)| {
                case.borrow_mut()
                    .check(Rules::Sqlite, &statements, &separators);
                Ok(())
            })
            .expect("shipgate splits as SQLite does");
    }

    /// PostgreSQL's own multi-statement parsing (the whole file in one simple-query message)
    /// against `split::statements`, which asks libpg_query.
    #[test]
    fn postgres_boundaries_are_postgresqls() {
        let db = Db::new(Engine::Postgres);
        let mut session = db.session();
        let functions = "SELECT count(*) FROM pg_proc \
                         WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'f\\_%'";
        let case = std::cell::RefCell::new(Case {
            session: &mut session,
            reset: "DROP TABLE IF EXISTS log; CREATE TABLE log (k int, v text); \
                    DO $$ DECLARE r record; BEGIN FOR r IN SELECT oid::regprocedure AS p FROM pg_proc \
                    WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'f\\_%' \
                    LOOP EXECUTE 'DROP FUNCTION ' || r.p; END LOOP; END $$",
            state: "SELECT CAST(k AS TEXT), v FROM log UNION ALL SELECT 'function', proname::text \
                    FROM pg_proc WHERE pronamespace = 'public'::regnamespace \
                    AND proname LIKE 'f\\_%' ORDER BY 1, 2",
            triggers: functions,
        });
        let strategy = file(
            |i| postgres_statement(i).boxed(),
            &["\n", " ", "\n-- after;'\n", "/* ; */\n", "\r\n"],
        );
        runner(64)
            .run(&strategy, |(statements, separators)| {
                case.borrow_mut()
                    .check(Rules::Postgres, &statements, &separators);
                Ok(())
            })
            .expect("shipgate splits as PostgreSQL does");
    }

    /// MariaDB's own multi-statement parsing (the whole file in one message) against
    /// `split::statements`.
    #[test]
    fn mariadb_boundaries_are_mariadbs() {
        let db = Db::new(Engine::Mariadb);
        let mut session = db.session();
        let case = std::cell::RefCell::new(Case {
            session: &mut session,
            reset: "DROP TABLE IF EXISTS log; DROP TABLE IF EXISTS fired; \
                    CREATE TABLE log (k int, v text); CREATE TABLE fired (k int, v text)",
            state: "SELECT CAST(k AS CHAR), v FROM log UNION ALL \
                    SELECT CONCAT('fired ', k), v FROM fired UNION ALL \
                    SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS \
                    WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1, 2",
            triggers: "SELECT count(*) FROM information_schema.TRIGGERS \
                       WHERE TRIGGER_SCHEMA = DATABASE()",
        });
        let strategy = file(
            |i| mysql_statement(i).boxed(),
            &["\n", " ", "\n# after;'\n", "/* ; */\n", "\r\n"],
        );
        runner(48)
            .run(&strategy, |(statements, separators)| {
                case.borrow_mut()
                    .check(Rules::Mysql, &statements, &separators);
                Ok(())
            })
            .expect("shipgate splits as MariaDB does");
    }
}

/// A MariaDB session with `NO_BACKSLASH_ESCAPES` (set by `session_init`, as a project that
/// relies on it does): `'x\'` is a whole string there, so the `COMMIT` after it is a statement
/// of its own, and shipgate must see it before anything runs.
#[test]
fn mariadb_statements_end_where_the_sessions_sql_mode_says() {
    let db = Db::new(Engine::Mariadb);
    let p = Project::new();
    p.write("1_t.up.sql", "CREATE TABLE t (v text);\n").write(
        "2_rows.up.sql",
        "INSERT INTO t (v) VALUES ('x\\');\nCOMMIT;\nINSERT INTO t (v) VALUES ('y');\n",
    );
    let mode = "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')";
    let mut cmd = p.command(Some(&db), &["up"]);
    cmd.env("SHIPGATE_SESSION_INIT", mode);
    Run::wait(cmd)
        .code(5)
        .stderr_has(&["2_rows.up.sql:2", "`COMMIT`"]);
    assert!(!db.table_exists("t"), "refused before anything ran");
    // Without the COMMIT the file runs, split as the session reads it: two rows, `x\` and `y`.
    p.write(
        "2_rows.up.sql",
        "INSERT INTO t (v) VALUES ('x\\');\nINSERT INTO t (v) VALUES ('y');\n",
    );
    let mut cmd = p.command(Some(&db), &["up"]);
    cmd.env("SHIPGATE_SESSION_INIT", mode);
    Run::wait(cmd).code(0);
    assert_eq!(
        db.query("SELECT v FROM t ORDER BY v"),
        [[Some("x\\".to_owned())], [Some("y".to_owned())]]
    );
}
