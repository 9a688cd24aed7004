//! Flyway's `flyway_schema_history` (Flyway 10–13: `getRawCreateScript` in
//! `flyway-database-postgresql/…/PostgreSQLDatabase.java`, `flyway-mysql/…/MySQLDatabase.java`
//! and `flyway-core/…/database/sqlite/SQLiteDatabase.java`): one row per event, ordered by
//! `installed_rank`, with `version` (dotted, `1.2.10`, `_` already turned into `.`), `type`,
//! `script`, `checksum` and `success`.
//!
//! The rows are replayed as Flyway's `MigrationInfoServiceImpl` reads them: a row with no
//! version is a repeatable migration (`R__…`), reported and not recorded (shipgate has none);
//! a `BASELINE` row (`<< Flyway Baseline >>`, or a `SQL_BASELINE` `B…` script) means every
//! migration up to its version is applied, as with `shipgate baseline`; a `SCHEMA` row is
//! Flyway's note that it created the schema, not a migration; a `DELETE` row (`flyway repair`
//! of a missing migration) and an `UNDO_…` row take their version back out; any other row
//! with a version is an applied migration. A row with `success = false` is a migration that
//! failed and left its changes (Flyway records those only where DDL is not transactional):
//! refused until it is cleaned up by hand and `flyway repair` removes the entry.
//!
//! `checksum` is Flyway's CRC-32 of the file (`flyway-core/…/resolver/ChecksumCalculator.java`):
//! the file is read line by line as UTF-8 (`BufferedReader.readLine`: `\n`, `\r` and `\r\n` end
//! a line), a byte order mark is dropped from the first line, and each line's UTF-8 bytes,
//! without its terminator, go into one `java.util.zip.CRC32`; the value is stored as a signed
//! 32-bit `int`. For an `SQL` row it is compared with the file, and a mismatch is refused. (With
//! placeholder replacement Flyway checksums repeatable scripts after replacing; versioned ones,
//! the only ones compared here, are checksummed as they are on disk.)

use std::collections::BTreeMap;

use super::{as_text, cell, file_bytes, file_of, rows, truthy, version, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::{MigrationSet, Version};
use crate::migrate::Error;

/// A row of the table, as text.
#[derive(Debug, Clone, Default)]
struct Row {
    version: Option<String>,
    description: String,
    kind: String,
    script: String,
    checksum: Option<String>,
    success: bool,
}

/// What the rows say once replayed in `installed_rank` order.
#[derive(Debug, Default)]
struct Replayed {
    /// Applied versions, each with the row that applied it.
    applied: BTreeMap<Version, Row>,
    /// The highest baseline.
    baseline: Option<Version>,
    /// Descriptions of the repeatable migrations run.
    repeatables: Vec<String>,
    problems: Vec<String>,
}

pub(super) async fn read(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let columns = [
        "version",
        "description",
        "type",
        "script",
        "checksum",
        "success",
    ]
    .map(|c| as_text(backend, c))
    .join(", ");
    let sql = format!(
        "SELECT {columns} FROM {} ORDER BY installed_rank",
        foreign.sql_name
    );
    let rows: Vec<Row> = rows(backend, foreign, &sql)
        .await?
        .iter()
        .map(|r| Row {
            version: cell(r, 0).map(str::to_owned),
            description: cell(r, 1).unwrap_or_default().to_owned(),
            kind: cell(r, 2).unwrap_or_default().trim().to_ascii_uppercase(),
            script: cell(r, 3).unwrap_or_default().to_owned(),
            checksum: cell(r, 4).map(str::to_owned),
            success: truthy(cell(r, 5)),
        })
        .collect();
    let mut replayed = replay(&rows);
    for (v, row) in &replayed.applied {
        let (Some(m), Some(stored), "SQL") = (
            set.and_then(|set| file_of(set, v)),
            &row.checksum,
            row.kind.as_str(),
        ) else {
            continue;
        };
        let ours = checksum(&file_bytes(m)?);
        if stored.trim().parse::<i64>() != Ok(i64::from(ours)) {
            replayed.problems.push(format!(
                "version {v} ({}) was edited since Flyway applied it as {} (Flyway's checksum {}, the file's {ours})",
                m.up.path.display(),
                row.script,
                stored.trim()
            ));
        }
    }
    let mut taken = Taken {
        versions: replayed.applied.into_keys().collect(),
        problems: replayed.problems,
        ..Taken::default()
    };
    if let Some(baseline) = replayed.baseline {
        taken.baseline("Flyway", set, &baseline);
    }
    if !replayed.repeatables.is_empty() {
        taken.notes.push(format!(
            "{} repeatable migration(s) Flyway ran ({}) have no version and were not recorded",
            replayed.repeatables.len(),
            replayed.repeatables.join(", ")
        ));
    }
    Ok(taken)
}

/// Replays the rows in `installed_rank` order. Pure, for the tests.
fn replay(rows: &[Row]) -> Replayed {
    let mut out = Replayed::default();
    for row in rows {
        if !row.success {
            let what = match &row.version {
                Some(v) => format!("version {v}"),
                None => format!("repeatable migration {:?}", row.description),
            };
            out.problems.push(format!(
                "{what} ({}) failed (success = false) and may have left part of its changes: fix the database by hand, then remove the failed entry with `flyway repair`",
                row.script
            ));
            continue;
        }
        let Some(text) = &row.version else {
            if row.kind != "DELETE" && !out.repeatables.contains(&row.description) {
                out.repeatables.push(row.description.clone());
            }
            continue;
        };
        let v = match version("Flyway", text) {
            Ok(v) => v,
            Err(problem) => {
                out.problems.push(problem);
                continue;
            }
        };
        let baseline = matches!(row.kind.as_str(), "BASELINE" | "SQL_BASELINE")
            || row.description == "<< Flyway Baseline >>";
        match row.kind.as_str() {
            "SCHEMA" => {}
            _ if baseline => {
                if out.baseline.as_ref().is_none_or(|b| *b < v) {
                    out.baseline = Some(v);
                }
            }
            kind if kind == "DELETE" || kind.starts_with("UNDO") => {
                out.applied.remove(&v);
            }
            _ => {
                out.applied.insert(v, row.clone());
            }
        }
    }
    out
}

/// Flyway's checksum of a file's bytes (see the module documentation).
fn checksum(bytes: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut digest = crc.digest();
    for line in text.split(['\r', '\n']) {
        digest.update(line.as_bytes());
    }
    // Java keeps the unsigned value in a signed int: the same 32 bits.
    digest.finalize() as i32
}

#[cfg(test)]
mod tests {
    use super::{checksum, replay, Row};
    use crate::migrate::source::Version;

    // Each value below was computed by the algorithm of ChecksumCalculator (BufferedReader over
    // UTF-8, BOM dropped from the first line, java.util.zip.CRC32 over each line's bytes) run on
    // a JVM, and agrees with CRC-32("123456789") = 0xCBF43926, the standard check value.
    #[test]
    fn checksum_is_flyway_s_crc32_of_the_lines() {
        // The lines are 123, 456 and 789: CRC-32 of "123456789", as a signed int.
        assert_eq!(checksum(b"123\r\n456\n789\n"), 0xCBF4_3926_u32 as i32);
        assert_eq!(checksum(b"123\r\n456\n789\n"), -873_187_034);
        // A byte order mark and CRLF endings do not count; the é's UTF-8 bytes do.
        assert_eq!(
            checksum(b"\xef\xbb\xbfCREATE TABLE t (\r\n  id int -- \xc3\xa9\r\n);\n"),
            -1_662_832_228
        );
        assert_eq!(
            checksum(b"CREATE TABLE t (\n  id int -- \xc3\xa9\n);"),
            -1_662_832_228
        );
        // A lone CR ends a line too; an empty file is 0.
        assert_eq!(checksum(b"SELECT 1;\r"), 78_787_420);
        assert_eq!(checksum(b""), 0);
        // Bytes that are not UTF-8 are read as U+FFFD, as Java's decoder replaces them.
        assert_eq!(checksum(b"ab\xffcd\n"), -745_682_726);
    }

    fn row(version: Option<&str>, kind: &str, description: &str, success: bool) -> Row {
        Row {
            version: version.map(str::to_owned),
            description: description.into(),
            kind: kind.into(),
            script: format!("{description}.sql"),
            checksum: None,
            success,
        }
    }

    fn texts<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Vec<String> {
        versions.into_iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rows_replay_into_applied_versions_a_baseline_and_repeatables() {
        let rows = [
            row(Some("0"), "SCHEMA", "<< Flyway Schema Creation >>", true),
            row(Some("3"), "BASELINE", "<< Flyway Baseline >>", true),
            row(Some("4"), "SQL", "users", true),
            row(None, "SQL", "views", true),
            row(Some("6"), "SQL", "gone", true),
            row(None, "SQL", "views", true),
            row(Some("7"), "JDBC", "java", true),
            row(Some("6"), "DELETE", "gone", true),
            row(Some("7"), "UNDO_SQL", "java", true),
            row(Some("9"), "SQL", "later", true),
        ];
        let r = replay(&rows);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(texts(r.applied.keys()), ["4", "9"]);
        assert_eq!(r.baseline.map(|b| b.to_string()).as_deref(), Some("3"));
        assert_eq!(r.repeatables, ["views"]);
    }

    #[test]
    fn a_failed_row_is_a_problem_naming_flyway_repair() {
        let r = replay(&[
            row(Some("1"), "SQL", "ok", true),
            row(Some("2"), "SQL", "broken", false),
        ]);
        assert_eq!(texts(r.applied.keys()), ["1"]);
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].contains("version 2 (broken.sql) failed"));
        assert!(r.problems[0].contains("flyway repair"));
    }

    #[test]
    fn versions_are_parsed_by_shipgate_s_version_type() {
        // Flyway stores `V1_2__x.sql` as "1.2". Whatever shipgate's `Version` reads, an applied
        // row is either taken as that version or named as a problem, never dropped silently.
        let r = replay(&[
            row(Some("1.2"), "SQL", "dotted", true),
            row(Some("005"), "SQL", "padded", true),
        ]);
        let dotted = "1.2".parse::<Version>();
        assert_eq!(r.applied.len() + r.problems.len(), 2, "{r:?}");
        assert_eq!(dotted.is_ok(), r.problems.is_empty(), "{r:?}");
        let padded: Version = "005".parse().expect("digits are a version");
        assert!(r.applied.contains_key(&padded), "{r:?}");
    }
}
