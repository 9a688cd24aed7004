//! Malformed migration directories: every class of problem exits 5 with a message naming the
//! file, before anything is written to the database.

use crate::support::{Db, Engine, Project};

const VALID: (&str, &[u8]) = ("1_valid.up.sql", b"CREATE TABLE valid (id integer);\n");

struct Case {
    what: &'static str,
    files: &'static [(&'static str, &'static [u8])],
    /// Fragments the error must contain (the file first).
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "duplicate version",
        files: &[
            VALID,
            ("2_first.up.sql", b"SELECT 1;\n"),
            ("2_second.up.sql", b"SELECT 2;\n"),
        ],
        expect: &["2_second.up.sql", "duplicate version 2", "2_first.up.sql"],
    },
    Case {
        what: "duplicate version across layouts",
        files: &[VALID, ("1_other.sql", b"SELECT 1;\n")],
        expect: &["1_valid.up.sql", "duplicate version 1", "1_other.sql"],
    },
    Case {
        what: "bad file name: no version",
        files: &[VALID, ("create-users.up.sql", b"SELECT 1;\n")],
        expect: &["create-users.up.sql", "bad migration file name"],
    },
    Case {
        what: "bad file name: version not a number",
        files: &[VALID, ("v2_users.up.sql", b"SELECT 1;\n")],
        expect: &["v2_users.up.sql", "bad migration file name", "v2"],
    },
    Case {
        what: "bad file name: version 0",
        files: &[VALID, ("0_zero.sql", b"SELECT 1;\n")],
        expect: &["0_zero.sql", "bad migration file name"],
    },
    Case {
        what: "down file without up",
        files: &[VALID, ("3_orphan.down.sql", b"DROP TABLE x;\n")],
        expect: &[
            "3_orphan.down.sql",
            "down file without an up file",
            "3_orphan.up.sql",
        ],
    },
    Case {
        what: "non-UTF-8 content",
        files: &[VALID, ("2_latin1.up.sql", b"SELECT 'caf\xe9';\n")],
        expect: &["2_latin1.up.sql", "not valid UTF-8", "offset 11"],
    },
    Case {
        what: "empty up file",
        files: &[VALID, ("2_empty.up.sql", b"-- nothing here yet\n\n")],
        expect: &["2_empty.up.sql", "no SQL statements"],
    },
    Case {
        what: "unknown directive",
        files: &[
            VALID,
            (
                "2_directive.up.sql",
                b"-- shipgate:no-transactions\nCREATE INDEX i ON valid (id);\n",
            ),
        ],
        expect: &[
            "2_directive.up.sql:1",
            "unknown directive",
            "no-transactions",
        ],
    },
];

on_every_engine!(each_malformed_directory_exits_5_and_writes_nothing);

fn each_malformed_directory_exits_5_and_writes_nothing(engine: Engine) {
    let db = Db::new(engine);
    for case in CASES {
        let p = Project::new();
        for (name, bytes) in case.files {
            p.write_bytes(name, bytes);
        }
        for command in [&["up"][..], &["status"], &["baseline", "--version", "1"]] {
            let run = p.run(&db, command);
            assert_eq!(run.code, Some(5), "{} ({command:?}): {run:?}", case.what);
            let error = run
                .stderr
                .lines()
                .find(|l| l.starts_with("shipgate: error:"))
                .unwrap_or_else(|| panic!("{}: no error line: {run:?}", case.what));
            assert!(error.contains("problem"), "{}: {run:?}", case.what);
            for f in case.expect {
                assert!(
                    run.stderr.contains(f),
                    "{} ({command:?}): stderr lacks {f:?}: {run:?}",
                    case.what
                );
            }
        }
        let check = p.run(&db, &["check"]);
        assert_eq!(check.code, Some(5), "{} (check): {check:?}", case.what);
        assert!(
            check.stdout.contains(case.expect[0]),
            "{} (check): {check:?}",
            case.what
        );
        assert!(
            !db.table_exists("shipgate_migrations"),
            "{}: shipgate wrote to the database",
            case.what
        );
        assert!(!db.table_exists("valid"), "{}: a migration ran", case.what);
    }

    // A directory that cannot be read.
    let p = Project::new();
    let run = p.run(&db, &["up", "--migrations", "does/not/exist"]);
    run.code(5)
        .stderr_has(&["cannot read migrations directory does/not/exist"]);
    p.run(&db, &["check", "--migrations", "does/not/exist"])
        .code(5)
        .stdout_has(&["does/not/exist"]);
    assert!(!db.table_exists("shipgate_migrations"));
}
