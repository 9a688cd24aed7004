//! Migration files as they were at a git ref, read through the `git` command-line tool, for
//! `check --against-git REF`.
//!
//! Owns running `git` (bounded to the migrations directory) and comparing what it returns with
//! the files on disk: which files were added, changed or removed since the ref, and which of
//! the changed up files are real edits (different normalised checksum, so a CRLF-only change is
//! not one). It never writes to the repository. A repeatable migration is meant to change:
//! an edit to one is linted, never refused.

use std::path::Path;
use std::process::Command;

use crate::lint::{Finding, Only, Severity};
use crate::migrate::source::{self, MigrationSet, Version};

/// A problem running git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// A git command failed.
    #[error("git {command}: {stderr}")]
    Failed {
        /// The arguments.
        command: String,
        /// What git said.
        stderr: String,
    },
}

/// How the migrations directory differs from a ref.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The ref, as given.
    pub reference: String,
    /// `.sql` files that are not at the ref (new, or untracked).
    pub added: Vec<String>,
    /// `.sql` files that exist at the ref and differ from it, with their bytes at the ref.
    pub modified: Vec<(String, Vec<u8>)>,
    /// `.sql` files at the ref that are gone.
    pub removed: Vec<String>,
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// Only migration-looking files directly in the directory (the extension in any case, as
/// `source` reads them).
fn is_sql(name: &str) -> bool {
    source::is_sql_file_name(name) && !name.contains('/')
}

/// The untracked files under `dir` (ignored ones left out), NUL-separated as git prints them.
fn untracked(dir: &Path) -> Result<Vec<u8>, GitError> {
    git(
        dir,
        &[
            "ls-files",
            "--others",
            "--exclude-standard",
            "-z",
            "--",
            ".",
        ],
    )
}

/// `git diff --name-status` against `reference` under `dir`: (status, name) pairs.
fn name_status(dir: &Path, reference: &str) -> Result<Vec<(String, String)>, GitError> {
    let diff = git(
        dir,
        &[
            "diff",
            "--relative",
            "--name-status",
            "--no-renames",
            "-z",
            reference,
            "--",
            ".",
        ],
    )?;
    let fields: Vec<String> = diff
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    Ok(fields
        .chunks(2)
        .filter_map(|pair| match pair {
            [status, name] => Some((status.clone(), name.clone())),
            _ => None,
        })
        .collect())
}

/// Refuses a ref that names no commit, saying how CI gets one.
fn verify(dir: &Path, reference: &str) -> Result<(), GitError> {
    let commit = format!("{reference}^{{commit}}");
    git(dir, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| GitError::Failed {
        command: format!("rev-parse {reference}"),
        stderr: format!("`{reference}` is not a commit in this repository (in CI, fetch it first: git fetch origin main)"),
    })?;
    Ok(())
}

/// Every file under `dir`, whatever its name, that was added or changed since `reference` or
/// is untracked (an Alembic project's revision files), as `dir.join(name)`; removed files are
/// left out.
pub fn changed_files(dir: &Path, reference: &str) -> Result<Vec<std::path::PathBuf>, GitError> {
    verify(dir, reference)?;
    let diff: Vec<u8> = name_status(dir, reference)?
        .into_iter()
        .filter(|(status, _)| !status.starts_with('D'))
        .flat_map(|(_, name)| name.into_bytes().into_iter().chain([0]))
        .collect();
    let untracked = untracked(dir)?;
    let mut files: Vec<std::path::PathBuf> = diff
        .split(|b| *b == 0)
        .chain(untracked.split(|b| *b == 0))
        .filter(|f| !f.is_empty())
        .map(|f| dir.join(String::from_utf8_lossy(f).as_ref()))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Reads how `dir` differs from `reference` (the working tree, untracked files included).
pub fn changes(dir: &Path, reference: &str) -> Result<Changes, GitError> {
    verify(dir, reference)?;
    let mut changes = Changes {
        reference: reference.to_owned(),
        ..Changes::default()
    };
    for (status, name) in &name_status(dir, reference)? {
        if !is_sql(name) {
            continue;
        }
        match status.chars().next() {
            Some('A') => changes.added.push(name.clone()),
            Some('D') => changes.removed.push(name.clone()),
            Some(_) => {
                let old = git(dir, &["show", &format!("{reference}:./{name}")])?;
                changes.modified.push((name.clone(), old));
            }
            None => {}
        }
    }
    let untracked = untracked(dir)?;
    for name in untracked.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if is_sql(&name) && !changes.added.contains(&name) {
            changes.added.push(name);
        }
    }
    changes.added.sort();
    Ok(changes)
}

/// The migrations to lint (added or really changed since the ref) and a finding for every edit
/// of an up file that exists at the ref, and every removed one. Repeatable migrations added or
/// changed are linted, and removing one is no finding: it runs again whenever it changes. Pure.
pub fn compare(set: &MigrationSet, changes: &Changes) -> (Only, Vec<Finding>) {
    let repeatable_of = |name: &str| {
        set.repeatables
            .iter()
            .find(|r| r.script.path.file_name().is_some_and(|f| f == name))
            .map(|r| r.name.clone())
    };
    let repeatables = changes
        .added
        .iter()
        .map(String::as_str)
        .chain(changes.modified.iter().map(|(n, _)| n.as_str()))
        .filter_map(repeatable_of)
        .collect();
    let version_of = |name: &str| -> Option<Version> {
        set.migrations.iter().find_map(|m| {
            let matches = |p: &Path| p.file_name().is_some_and(|f| f == name);
            (matches(&m.up.path) || m.down.as_ref().is_some_and(|d| matches(&d.path)))
                .then(|| m.version.clone())
        })
    };
    let mut versions: std::collections::BTreeSet<Version> =
        changes.added.iter().filter_map(|n| version_of(n)).collect();
    let mut findings = Vec::new();
    let finding = |rule: &str, file: String, message: String, instead: &str| {
        Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        file: Some(file),
        line: None,
        column: None,
        message,
        why: "a migration that exists on the main branch may already be applied somewhere; changing or removing it makes environments disagree about what their schema is".into(),
        instead: instead.to_owned(),
        acknowledged: None,
    }
    };
    for (name, old) in &changes.modified {
        let Some(m) = set
            .migrations
            .iter()
            .find(|m| m.up.path.file_name().is_some_and(|f| f == name.as_str()))
        else {
            // A changed down file is linted, not refused: down files carry no checksum.
            versions.extend(version_of(name));
            continue;
        };
        let before = source::checksum(old).unwrap_or_default();
        if before != m.checksum {
            findings.push(finding(
                "edited-since-ref",
                m.up.path.display().to_string(),
                format!(
                    "{name} was edited since {}: checksum {before} there, {} now",
                    changes.reference, m.checksum
                ),
                "revert the edit and put the change in a new migration; if the edit is intended and already applied, run `shipgate repair --accept-checksum` where it was applied",
            ));
            versions.insert(m.version.clone());
        }
    }
    for name in &changes.removed {
        if source::is_down_file_name(name) || name.starts_with("R__") {
            continue;
        }
        findings.push(finding(
            "removed-since-ref",
            set.dir.join(name).display().to_string(),
            format!("{name} exists at {} but was removed", changes.reference),
            "restore the file; to undo its effect, write a new migration",
        ));
    }
    (
        Only {
            versions,
            repeatables,
        },
        findings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_files_with_the_ref() {
        let files = vec![
            (
                "1_a.up.sql".to_owned(),
                b"CREATE TABLE a (id int);\n".to_vec(),
            ),
            ("1_a.down.sql".to_owned(), b"DROP TABLE a;\n".to_vec()),
            (
                "2_b.up.sql".to_owned(),
                b"CREATE TABLE b (id bigint);\n".to_vec(),
            ),
            (
                "3_c.up.sql".to_owned(),
                b"CREATE TABLE c (id int);\n".to_vec(),
            ),
            (
                "R__views.sql".to_owned(),
                b"CREATE VIEW v AS SELECT 2;\n".to_vec(),
            ),
        ];
        let set = source::parse(Path::new("m"), files).expect("valid");
        let changes = Changes {
            reference: "main".into(),
            added: vec!["3_c.up.sql".into()],
            modified: vec![
                // Only line endings differ: not an edit, nothing to lint.
                (
                    "1_a.up.sql".into(),
                    b"CREATE TABLE a (id int);\r\n".to_vec(),
                ),
                ("2_b.up.sql".into(), b"CREATE TABLE b (id int);\n".to_vec()),
                // A repeatable is meant to change: linted, not refused.
                (
                    "R__views.sql".into(),
                    b"CREATE VIEW v AS SELECT 1;\n".to_vec(),
                ),
            ],
            removed: vec![
                "0_gone.up.sql".into(),
                "1_a.down.sql".into(),
                "R__old.sql".into(),
            ],
        };
        let (only, findings) = compare(&set, &changes);
        assert_eq!(
            only.versions,
            std::collections::BTreeSet::from([2, 3].map(Version::from_int))
        );
        assert_eq!(only.repeatables, ["views".to_owned()].into());
        let got: Vec<(&str, Option<&str>)> = findings
            .iter()
            .map(|f| (f.rule.as_str(), f.file.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("edited-since-ref", Some("m/2_b.up.sql")),
                ("removed-since-ref", Some("m/0_gone.up.sql")),
            ]
        );
        assert!(findings[0].message.contains("edited since main"));
    }
}
