//! Prisma Migrate's `_prisma_migrations` (prisma-engines, `schema-engine/connectors/
//! sql-schema-connector/src/flavour/{postgres,mysql,sqlite}.rs`, `create_migrations_table`):
//! one row per attempt at a migration, `migration_name` its directory name
//! (`20240101120000_init`), `checksum` the SHA-256 of its `migration.sql` in lowercase hex
//! (`schema-connector/src/checksum.rs`), `started_at`, `finished_at` (set when it succeeded),
//! `rolled_back_at` (set by `prisma migrate resolve --rolled-back`) and `logs`.
//!
//! A migration is applied when one of its rows is finished and not rolled back. A row neither
//! finished nor rolled back is a migration that failed part-way: Prisma itself refuses to go on
//! (P3009) until `prisma migrate resolve` says what the database holds, and so does adopt. A
//! rolled-back row is not applied. The version is the name's timestamp prefix (up to the first
//! `_`). The checksum is compared with the file as Prisma compares it: the bytes as they are,
//! with CRLF turned into LF, or LF into CRLF (git may have changed line endings since), and in
//! the unpadded hex an old engine wrote (prisma-engines issue 1887) when the stored text is not
//! 64 characters long.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{as_text, cell, file_bytes, file_of, rows, version, Taken};
use crate::migrate::backend::{Backend, ForeignHistory};
use crate::migrate::source::MigrationSet;
use crate::migrate::Error;

/// One migration's rows, as far as adopting cares.
#[derive(Default)]
struct Attempts {
    /// The checksum of a finished, not rolled back row.
    applied: Option<String>,
    failed: bool,
}

pub(super) async fn read(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let sql = format!(
        "SELECT {}, {}, {}, {} FROM {} ORDER BY started_at",
        as_text(backend, "migration_name"),
        as_text(backend, "checksum"),
        as_text(backend, "finished_at"),
        as_text(backend, "rolled_back_at"),
        foreign.sql_name
    );
    let mut by_name: BTreeMap<String, Attempts> = BTreeMap::new();
    for r in rows(backend, foreign, &sql).await? {
        let name = cell(&r, 0).unwrap_or_default().to_owned();
        let attempts = by_name.entry(name).or_default();
        match (cell(&r, 2).is_some(), cell(&r, 3).is_some()) {
            (true, false) => attempts.applied = Some(cell(&r, 1).unwrap_or_default().to_owned()),
            (false, false) => attempts.failed = true,
            (_, true) => {}
        }
    }
    let mut taken = Taken::default();
    let mut problems = Vec::new();
    for (name, attempts) in by_name {
        if attempts.failed {
            problems.push(format!(
                "migration {name} failed part-way (finished_at and rolled_back_at are empty): fix the database by hand, then tell Prisma what it holds with `prisma migrate resolve --applied {name}` (you finished it) or `prisma migrate resolve --rolled-back {name}` (you undid it)"
            ));
            continue;
        }
        let Some(stored) = attempts.applied else {
            continue;
        };
        let prefix = name.split('_').next().unwrap_or_default();
        let v = match version("Prisma", prefix) {
            Ok(v) => v,
            Err(problem) => {
                problems.push(format!("{problem} (migration {name})"));
                continue;
            }
        };
        if let Some(m) = set.and_then(|set| file_of(set, &v)) {
            let bytes = file_bytes(m)?;
            if !checksum_matches(&bytes, &stored) {
                problems.push(format!(
                    "migration {name} ({}) was edited since Prisma applied it (Prisma's checksum {stored}, the file's {})",
                    m.up.path.display(),
                    hex::encode(Sha256::digest(&bytes))
                ));
            }
        }
        taken.versions.push(v);
    }
    taken.problems = problems;
    Ok(taken)
}

/// Whether `file` is the migration Prisma recorded as `stored`, by Prisma's own rule.
fn checksum_matches(file: &[u8], stored: &str) -> bool {
    let lf = replace(file, b"\r\n", b"\n");
    let crlf = replace(file, b"\n", b"\r\n");
    let candidates = [file, &lf, &crlf];
    let matched = candidates.into_iter().any(|bytes| {
        let digest = Sha256::digest(bytes);
        let text = if !stored.is_empty() && stored.len() != 64 {
            // Each byte without its leading zero, as an early engine wrote it.
            digest.iter().map(|b| format!("{b:x}")).collect::<String>()
        } else {
            hex::encode(digest)
        };
        text == stored
    });
    matched
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::checksum_matches;

    // SHA-256 of the five bytes "hello", a standard test vector.
    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn the_file_matches_its_sha256_in_lowercase_hex() {
        assert!(checksum_matches(b"hello", HELLO));
        assert!(!checksum_matches(b"hello\n", HELLO));
        assert!(!checksum_matches(b"hellO", HELLO));
    }

    #[test]
    fn line_endings_changed_by_git_still_match() {
        let lf = b"CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n";
        let crlf = b"CREATE TABLE a (id int);\r\nCREATE TABLE b (id int);\r\n";
        let stored_lf = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(lf));
        let stored_crlf = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(crlf));
        assert!(checksum_matches(crlf, &stored_lf));
        assert!(checksum_matches(lf, &stored_crlf));
    }

    #[test]
    fn an_old_engine_s_unpadded_checksum_matches() {
        // SHA-256("abc") = ba7816bf 8f01cfea … f20015ad: bytes 0x01, 0x03 and 0x00 lose their
        // leading zero in the old text.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(b"abc");
        let unpadded: String = digest.iter().map(|b| format!("{b:x}")).collect();
        assert!(unpadded.starts_with("ba7816bf8f1cfea"), "{unpadded}");
        assert!(checksum_matches(b"abc", &unpadded));
        assert!(checksum_matches(b"abc", &hex::encode(digest)));
        assert!(!checksum_matches(b"abd", &unpadded));
    }
}
