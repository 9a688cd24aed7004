//! Malformed migration directories: every class of problem exits 5 with a message naming the
//! file, before anything is written to the database. That includes a directory that mixes
//! layouts and files that are not regular files; upper-case extensions are read.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{checksum, Db, Engine, Project, Run};

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
        what: "down file beside an irreversible file",
        files: &[
            VALID,
            ("2_Irrev.v2.SQL", b"SELECT 1;\n"),
            ("2_Irrev.v2.down.sql", b"SELECT 1;\n"),
        ],
        expect: &[
            "2_Irrev.v2.down.sql",
            "down file does not pair with",
            "2_Irrev.v2.SQL",
            "rename it to 2_Irrev.v2.up.sql",
        ],
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
    Case {
        what: "diesel directory",
        files: &[
            VALID,
            ("2024-01-01-000000_create_users/up.sql", b"CREATE TABLE users (id integer);\n"),
            ("2024-01-01-000000_create_users/down.sql", b"DROP TABLE users;\n"),
        ],
        expect: &["2024-01-01-000000_create_users/", "diesel"],
    },
    Case {
        what: "Prisma directory",
        files: &[
            VALID,
            ("20240101000000_init/migration.sql", b"CREATE TABLE users (id integer);\n"),
        ],
        expect: &["20240101000000_init/", "Prisma"],
    },
    Case {
        what: "Prisma lock file",
        files: &[VALID, ("migration_lock.toml", b"provider = \"postgresql\"\n")],
        expect: &["1_valid.up.sql", "read as Prisma"],
    },
    Case {
        what: "Flyway versioned file",
        files: &[VALID, ("V2__add_users.sql", b"CREATE TABLE users (id integer);\n")],
        expect: &["V2__add_users.sql", "Flyway"],
    },
    Case {
        what: "Flyway undo file",
        files: &[VALID, ("U1.1__drop_users.sql", b"DROP TABLE users;\n")],
        expect: &["U1.1__drop_users.sql", "Flyway"],
    },
    Case {
        what: "Flyway callback file",
        files: &[VALID, ("afterMigrate.sql", b"GRANT SELECT ON t TO reader;\n")],
        expect: &["afterMigrate.sql", "Flyway callback"],
    },
    Case {
        what: "goose file",
        files: &[
            VALID,
            (
                "2_users.sql",
                b"-- +goose Up\nCREATE TABLE users (id integer);\n\n-- +goose Down\nDROP TABLE users;\n",
            ),
        ],
        expect: &["2_users.sql", "goose migration in a directory read as shipgate"],
    },
    Case {
        what: "goose file, lower-case annotations",
        files: &[
            VALID,
            ("2_users.up.sql", b"--+goose up\nCREATE TABLE users (id integer);\n-- +goose down\nDROP TABLE users;\n"),
        ],
        expect: &["2_users.up.sql:1", "goose"],
    },
    Case {
        what: "dbmate file",
        files: &[
            VALID,
            (
                "20240101000000_users.sql",
                b"-- migrate:up\nCREATE TABLE users (id integer);\n\n-- migrate:down\nDROP TABLE users;\n",
            ),
        ],
        expect: &["20240101000000_users.sql", "dbmate migration in a directory read as shipgate"],
    },
    Case {
        what: "dbmate down section alone",
        files: &[
            VALID,
            (
                "2_users.sql",
                b"CREATE TABLE users (id integer);\n--migrate:down transaction:false\nDROP TABLE users;\n",
            ),
        ],
        expect: &["2_users.sql", "dbmate migration in a directory read as shipgate"],
    },
];

impl Case {
    /// A project holding the case's files (a `/` in a name makes the subdirectory).
    fn project(&self) -> Project {
        let p = Project::new();
        for (name, bytes) in self.files {
            if let Some((subdir, _)) = name.split_once('/') {
                std::fs::create_dir_all(p.migrations().join(subdir))
                    .expect("creating a subdirectory");
            }
            p.write_bytes(name, bytes);
        }
        p
    }
}

on_every_engine!(each_malformed_directory_exits_5_and_writes_nothing);

fn each_malformed_directory_exits_5_and_writes_nothing(engine: Engine) {
    let db = Db::new(engine);
    for case in CASES {
        let p = case.project();
        let commands = [
            &["up"][..],
            &["release"],
            &["status"],
            &["baseline", "--version", "1"],
        ];
        for command in commands {
            let run = p.run(&db, command);
            assert_eq!(run.code, Some(5), "{} ({command:?}): {run:?}", case.what);
            let error = run
                .stderr
                .lines()
                // `release` reports through its log line, other commands through the error line.
                .find(|l| l.starts_with("shipgate: error:") || l.contains("release failed:"))
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
        assert!(
            !db.table_exists("users"),
            "{}: a foreign migration ran",
            case.what
        );
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

on_every_engine!(
    upper_case_extensions_are_read_as_migrations,
    only_regular_files_of_bounded_size_are_read,
);

/// `2_second.SQL` and `3_third.up.SQL` are migrations: the server does not care about the
/// case of a file name, and a skipped migration is a deploy that did not happen. The
/// history keeps the name as written; a down file pairs with its up file in any case.
fn upper_case_extensions_are_read_as_migrations(engine: Engine) {
    let db = Db::new(engine);
    let p = Project::new();
    let second = "CREATE TABLE second (id integer);\n";
    let third = "CREATE TABLE third (id integer);\n";
    p.write("1_first.sql", "CREATE TABLE first (id integer);\n")
        .write("2_second.SQL", second)
        .write("3_third.up.SQL", third)
        .write("3_third.Down.Sql", "DROP TABLE third;\n");
    p.run(&db, &["release"]).code(0);
    assert_eq!(db.versions(), [1, 2, 3]);
    assert!(db.table_exists("second") && db.table_exists("third"));
    let history = db.history();
    assert_eq!(
        (history[1].name.as_str(), history[1].checksum.as_str()),
        ("second", checksum(second).as_str())
    );
    assert_eq!(
        (history[2].name.as_str(), history[2].checksum.as_str()),
        ("third", checksum(third).as_str())
    );

    p.run(&db, &["down", "--to", "2", "--yes"]).code(0);
    assert_eq!(db.versions(), [1, 2]);
    assert!(!db.table_exists("third"), "the .Down.Sql file reverted 3");

    // Same version in two cases is the duplicate it looks like.
    p.write("2_second.sql", second);
    p.run(&db, &["up"]).code(5).stderr_has(&[
        "duplicate version 2",
        "2_second.SQL",
        "2_second.sql",
    ]);
}

/// A FIFO, a device, a dangling link or a huge file named like a migration is refused with
/// the file named, promptly: a FIFO must not block the run, a device must not be read until
/// memory runs out. A link to a regular file is followed.
fn only_regular_files_of_bounded_size_are_read(engine: Engine) {
    let db = Db::new(engine);
    let setups: &[Special] = &[
        Special {
            what: "FIFO",
            make: |dir| {
                let status = std::process::Command::new("mkfifo")
                    .arg(dir.join("2_pipe.sql"))
                    .status()
                    .expect("running mkfifo");
                assert!(status.success(), "mkfifo: {status}");
            },
            expect: &["2_pipe.sql", "not a regular file", "FIFO"],
        },
        Special {
            what: "link to /dev/zero",
            make: |dir| symlink("/dev/zero", dir.join("2_zero.sql")).expect("symlink"),
            expect: &["2_zero.sql", "not a regular file", "character device"],
        },
        Special {
            what: "dangling link",
            make: |dir| symlink("gone/2_gone.sql", dir.join("2_gone.sql")).expect("symlink"),
            expect: &["2_gone.sql", "dangling symbolic link", "gone/2_gone.sql"],
        },
        Special {
            what: "file over the size limit",
            make: |dir| {
                // Sparse: the limit must be enforced before the bytes are read.
                let file = std::fs::File::create(dir.join("2_big.sql")).expect("create");
                file.set_len(64 * 1024 * 1024 + 1).expect("set_len");
            },
            expect: &["2_big.sql", "larger than", "64 MiB"],
        },
    ];
    for Special { what, make, expect } in setups {
        let p = Project::new();
        p.write_bytes(VALID.0, VALID.1);
        make(&p.migrations());
        for command in [&["release"][..], &["up"], &["check"]] {
            let run = Run::wait_within(bounded_memory(p.command(Some(&db), command)), BOUND);
            assert_eq!(run.code, Some(5), "{what} ({command:?}): {run:?}");
            let output = format!("{}{}", run.stdout, run.stderr);
            for f in *expect {
                assert!(
                    output.contains(f),
                    "{what} ({command:?}): lacks {f:?}: {run:?}"
                );
            }
        }
        assert!(!db.table_exists("valid"), "{what}: a migration ran");
        assert!(
            !db.table_exists("shipgate_migrations"),
            "{what}: shipgate wrote to the database"
        );
    }

    // A link to a regular file elsewhere is read like the file.
    let p = Project::new();
    let target = p.write_root("2_shared.sql", "CREATE TABLE shared (id integer);\n");
    symlink(&target, p.migrations().join("2_shared.sql")).expect("symlink");
    p.run(&db, &["up"]).code(0);
    assert!(db.table_exists("shared"));
}

/// A migrations directory entry that is not a regular file of a sensible size.
struct Special {
    what: &'static str,
    /// Creates the entry in the directory given.
    make: fn(&Path),
    /// Fragments the output must contain.
    expect: &'static [&'static str],
}

/// How long a refused run may take: no connect wait, no lock wait, only the files.
const BOUND: Duration = Duration::from_secs(20);

/// `cmd` under a 4 GiB address-space limit, so that reading a device whole fails fast instead
/// of taking the test machine's memory.
fn bounded_memory(cmd: Command) -> Command {
    let mut bounded = Command::new("prlimit");
    bounded
        .arg("--as=4294967296")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            bounded.env(key, value);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        bounded.current_dir(dir);
    }
    bounded
}
