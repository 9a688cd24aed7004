//! History × files → [`Plan`]. Pure.
//!
//! Owns the planning rules of SPEC §4: what is pending, applied, modified (checksum changed),
//! missing (the database is ahead of this build), out of order and dirty, and which of those
//! block a run under a [`Policy`]; and which repeatable migrations run again (never applied, or
//! their checksum differs from the one recorded when they last ran), after the versioned ones.
//! It never talks to a database: backends read [`History`], this module decides.

use std::collections::HashMap;

use serde::Serialize;

use super::source::{MigrationSet, Version};

/// The state of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applied completely.
    Applied,
    /// Started (no-transaction file) and not finished: a crash or a kill.
    Running,
    /// Failed part-way (no-transaction file): some statements committed.
    Failed,
}

impl State {
    /// The value stored in the history table.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Running => "running",
            State::Failed => "failed",
        }
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "applied" => Some(State::Applied),
            "running" => Some(State::Running),
            "failed" => Some(State::Failed),
            _ => None,
        }
    }
}

/// One row of the migration history, engine-neutral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    /// The migration's version.
    pub version: Version,
    /// Its name when it was applied.
    pub name: String,
    /// The checksum of its up file when it was applied (or accepted by repair).
    pub checksum: String,
    /// Applied, or dirty (running / failed).
    pub state: State,
    /// Statements committed so far, for no-transaction files.
    pub statements_done: i64,
    /// The error that left it failed, if any.
    pub error: Option<String>,
    /// When it was applied (RFC 3339, UTC).
    pub applied_at: Option<String>,
    /// How long it ran.
    pub execution_ms: i64,
    /// `host:pid` of the process that applied it.
    pub applied_by: Option<String>,
    /// The platform's deploy id at the time.
    pub deploy_id: Option<String>,
    /// The application version (commit, image) at the time.
    pub app_version: Option<String>,
}

impl HistoryRow {
    /// A row in `state` with only what planning reads: version, name and checksum (no times,
    /// no deploy details).
    pub fn new(version: Version, name: String, checksum: String, state: State) -> HistoryRow {
        HistoryRow {
            version,
            name,
            checksum,
            state,
            statements_done: 0,
            error: None,
            applied_at: None,
            execution_ms: 0,
            applied_by: None,
            deploy_id: None,
            app_version: None,
        }
    }
}

/// The last run of a repeatable migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepeatableRow {
    /// Its name.
    pub name: String,
    /// The checksum of its file when it last ran.
    pub checksum: String,
    /// When it last ran (RFC 3339, UTC).
    pub applied_at: Option<String>,
    /// How long that run took.
    pub execution_ms: i64,
    /// `host:pid` of the process that ran it.
    pub applied_by: Option<String>,
    /// The platform's deploy id at the time.
    pub deploy_id: Option<String>,
    /// The application version at the time.
    pub app_version: Option<String>,
}

/// Everything recorded about what ran: versioned migrations and repeatable ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Versioned migrations, in no particular order.
    pub migrations: Vec<HistoryRow>,
    /// Repeatable migrations' last runs, in no particular order.
    pub repeatables: Vec<RepeatableRow>,
}

/// The rules a run plans under.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Fail when the database holds migrations this build does not have.
    pub strict: bool,
    /// Apply a pending migration older than the newest applied one instead of failing.
    pub allow_out_of_order: bool,
    /// Stop after this version (`--to`).
    pub target: Option<Version>,
}

/// An applied migration whose file changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modified {
    /// Version.
    pub version: Version,
    /// Name on disk.
    pub name: String,
    /// The file, as a path string.
    pub file: String,
    /// The checksum recorded in history.
    pub recorded_checksum: String,
    /// The checksum of the file now.
    pub file_checksum: String,
}

/// A row that is not fully applied: a crash or failure inside a no-transaction migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dirty {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// `running` (cut off) or `failed`.
    pub state: State,
    /// Statements that had committed.
    pub statements_done: i64,
    /// The recorded error, if it failed rather than being cut off.
    pub error: Option<String>,
}

/// A migration identified by version and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
}

/// A repeatable migration that runs again: its file is new or changed since it last ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRepeatable {
    /// Name.
    pub name: String,
    /// The file, as a path string.
    pub file: String,
    /// The checksum recorded when it last ran; `None` when it never ran.
    pub recorded_checksum: Option<String>,
    /// The checksum of the file now.
    pub file_checksum: String,
}

/// Everything a run needs to know about history versus files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// Highest applied version.
    pub current: Option<Version>,
    /// Highest version on disk.
    pub head: Option<Version>,
    /// Applied migrations, ascending.
    pub applied: Vec<Entry>,
    /// What this run would apply, in order (the target and out-of-order policy respected).
    pub pending: Vec<Entry>,
    /// Pending on disk but beyond `--to`.
    pub beyond_target: Vec<Entry>,
    /// Applied migrations whose files changed.
    pub modified: Vec<Modified>,
    /// Applied migrations with no file (the database is ahead of this build).
    pub missing: Vec<Entry>,
    /// Pending migrations older than the newest applied one.
    pub out_of_order: Vec<Entry>,
    /// Dirty rows.
    pub dirty: Vec<Dirty>,
    /// Repeatable migrations that run again after the versioned ones, in name order (whatever
    /// `--to` says: they have no version).
    pub pending_repeatables: Vec<PendingRepeatable>,
}

/// Why a run refuses to proceed. Each message says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocker {
    /// An applied file was edited.
    #[error("migration {} ({}) was edited after it was applied: recorded checksum {}, file checksum {}; restore the file, or accept the edit with `shipgate repair --accept-checksum {} --reason \"…\"`", .0.version, .0.file, .0.recorded_checksum, .0.file_checksum, .0.version)]
    Modified(Modified),
    /// A half-applied migration.
    #[error("migration {} ({}) is dirty: state {}, {} statement(s) committed{}; inspect the database, then run `shipgate repair --mark-applied {}` or `shipgate repair --mark-rolled-back {}`", .0.version, .0.name, .0.state.as_str(), .0.statements_done, .0.error.as_deref().map(|e| format!(", error: {e}")).unwrap_or_default(), .0.version, .0.version)]
    Dirty(Dirty),
    /// A pending migration older than the newest applied.
    #[error("pending migration {} ({}) is older than the newest applied migration {}; give it a newer version, or pass --allow-out-of-order", .entry.version, .entry.name, .current)]
    OutOfOrder {
        /// The pending migration.
        entry: Entry,
        /// The newest applied version.
        current: Version,
    },
    /// Under `--strict`, the database is ahead of this build.
    #[error("applied migration {} ({}) has no file in this build (the database is ahead of it); --strict refuses", .0.version, .0.name)]
    Missing(Entry),
}

/// Compares `history` with `set` under `policy`.
pub fn compute(history: &History, set: &MigrationSet, policy: &Policy) -> Plan {
    let mut plan = Plan {
        head: set.head(),
        ..Plan::default()
    };
    let recorded: HashMap<&str, &str> = history
        .repeatables
        .iter()
        .map(|r| (r.name.as_str(), r.checksum.as_str()))
        .collect();
    for r in &set.repeatables {
        let last = recorded.get(r.name.as_str()).copied();
        if last != Some(r.checksum.as_str()) {
            plan.pending_repeatables.push(PendingRepeatable {
                name: r.name.clone(),
                file: r.script.path.display().to_string(),
                recorded_checksum: last.map(str::to_owned),
                file_checksum: r.checksum.clone(),
            });
        }
    }
    let history = &history.migrations;
    let by_version: HashMap<Version, &HistoryRow> =
        history.iter().map(|r| (r.version.clone(), r)).collect();
    let mut rows: Vec<&HistoryRow> = history.iter().collect();
    rows.sort_by(|a, b| a.version.cmp(&b.version));

    for row in &rows {
        let entry = Entry {
            version: row.version.clone(),
            name: row.name.clone(),
        };
        if row.state != State::Applied {
            plan.dirty.push(Dirty {
                version: row.version.clone(),
                name: row.name.clone(),
                state: row.state,
                statements_done: row.statements_done,
                error: row.error.clone(),
            });
            continue;
        }
        plan.current = Some(row.version.clone());
        match set.get(&row.version) {
            None => plan.missing.push(entry.clone()),
            Some(m) if m.checksum != row.checksum => plan.modified.push(Modified {
                version: m.version.clone(),
                name: m.name.clone(),
                file: m.up.path.display().to_string(),
                recorded_checksum: row.checksum.clone(),
                file_checksum: m.checksum.clone(),
            }),
            Some(_) => {}
        }
        plan.applied.push(entry);
    }

    for m in &set.migrations {
        if by_version.contains_key(&m.version) {
            continue;
        }
        let entry = Entry {
            version: m.version.clone(),
            name: m.name.clone(),
        };
        if plan.current.as_ref().is_some_and(|c| m.version < *c) {
            plan.out_of_order.push(entry.clone());
            if !policy.allow_out_of_order {
                continue;
            }
        }
        if policy.target.as_ref().is_some_and(|t| m.version > *t) {
            plan.beyond_target.push(entry);
        } else {
            plan.pending.push(entry);
        }
    }
    plan
}

impl Plan {
    /// Whether the run has anything to do: a pending versioned migration or a repeatable one
    /// to run again.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.pending_repeatables.is_empty()
    }

    /// What stops a run that would change the schema, under `policy`. Empty means go.
    pub fn blockers(&self, policy: &Policy) -> Vec<Blocker> {
        let mut out: Vec<Blocker> = self.dirty.iter().cloned().map(Blocker::Dirty).collect();
        out.extend(self.modified.iter().cloned().map(Blocker::Modified));
        if !policy.allow_out_of_order {
            let current = self.current.clone().unwrap_or(Version::ZERO);
            out.extend(
                self.out_of_order
                    .iter()
                    .cloned()
                    .map(|entry| Blocker::OutOfOrder {
                        entry,
                        current: current.clone(),
                    }),
            );
        }
        if policy.strict {
            out.extend(self.missing.iter().cloned().map(Blocker::Missing));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::source;
    use std::path::Path;

    fn set(versions: &[u64]) -> MigrationSet {
        let files = versions
            .iter()
            .map(|v| (format!("{v}_m{v}.sql"), format!("SELECT {v};").into_bytes()))
            .collect();
        source::parse(Path::new("m"), files).expect("valid set")
    }

    fn row(version: u64, state: State, set: &MigrationSet) -> HistoryRow {
        let checksum = set
            .get(&Version::from_int(version))
            .map_or_else(|| "gone".to_string(), |m| m.checksum.clone());
        HistoryRow::new(
            Version::from_int(version),
            format!("m{version}"),
            checksum,
            state,
        )
    }

    fn versions(entries: &[Entry]) -> Vec<Version> {
        entries.iter().map(|e| e.version.clone()).collect()
    }

    fn ints(versions: &[u64]) -> Vec<Version> {
        versions.iter().copied().map(Version::from_int).collect()
    }

    fn versioned(migrations: Vec<HistoryRow>) -> History {
        History {
            migrations,
            repeatables: Vec::new(),
        }
    }

    #[test]
    fn classifies_history_against_files() {
        struct Case {
            files: &'static [u64],
            applied: &'static [u64],
            dirty: &'static [u64],
            policy: Policy,
            pending: &'static [u64],
            missing: &'static [u64],
            out_of_order: &'static [u64],
            blockers: usize,
        }
        let p = Policy::default();
        let cases = [
            // fresh database
            Case {
                files: &[1, 2, 3],
                applied: &[],
                dirty: &[],
                policy: p.clone(),
                pending: &[1, 2, 3],
                missing: &[],
                out_of_order: &[],
                blockers: 0,
            },
            // every-deploy no-op
            Case {
                files: &[1, 2, 3],
                applied: &[1, 2, 3],
                dirty: &[],
                policy: p.clone(),
                pending: &[],
                missing: &[],
                out_of_order: &[],
                blockers: 0,
            },
            // --to stops where asked
            Case {
                files: &[1, 2, 3],
                applied: &[1],
                dirty: &[],
                policy: Policy {
                    target: Some(Version::from_int(2)),
                    ..p.clone()
                },
                pending: &[2],
                missing: &[],
                out_of_order: &[],
                blockers: 0,
            },
            // database ahead of this build: warn, succeed
            Case {
                files: &[1, 2],
                applied: &[1, 2, 3],
                dirty: &[],
                policy: p.clone(),
                pending: &[],
                missing: &[3],
                out_of_order: &[],
                blockers: 0,
            },
            // ... unless --strict
            Case {
                files: &[1, 2],
                applied: &[1, 2, 3],
                dirty: &[],
                policy: Policy {
                    strict: true,
                    ..p.clone()
                },
                pending: &[],
                missing: &[3],
                out_of_order: &[],
                blockers: 1,
            },
            // out of order fails by default
            Case {
                files: &[1, 2, 3],
                applied: &[1, 3],
                dirty: &[],
                policy: p.clone(),
                pending: &[],
                missing: &[],
                out_of_order: &[2],
                blockers: 1,
            },
            // ... and applies with --allow-out-of-order
            Case {
                files: &[1, 2, 3, 4],
                applied: &[1, 3],
                dirty: &[],
                policy: Policy {
                    allow_out_of_order: true,
                    ..p.clone()
                },
                pending: &[2, 4],
                missing: &[],
                out_of_order: &[2],
                blockers: 0,
            },
            // a dirty row blocks and is not pending
            Case {
                files: &[1, 2, 3],
                applied: &[1],
                dirty: &[2],
                policy: p.clone(),
                pending: &[3],
                missing: &[],
                out_of_order: &[],
                blockers: 1,
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let s = set(c.files);
            let mut history: Vec<HistoryRow> = c
                .applied
                .iter()
                .map(|v| row(*v, State::Applied, &s))
                .collect();
            history.extend(c.dirty.iter().map(|v| row(*v, State::Running, &s)));
            let plan = compute(&versioned(history), &s, &c.policy);
            assert_eq!(versions(&plan.pending), ints(c.pending), "case {i} pending");
            assert_eq!(versions(&plan.missing), ints(c.missing), "case {i} missing");
            assert_eq!(
                versions(&plan.out_of_order),
                ints(c.out_of_order),
                "case {i} out of order"
            );
            assert_eq!(
                plan.blockers(&c.policy).len(),
                c.blockers,
                "case {i} blockers"
            );
        }
    }

    #[test]
    fn an_edited_file_blocks_with_both_checksums() {
        let s = set(&[1, 2]);
        let mut history = vec![row(1, State::Applied, &s), row(2, State::Applied, &s)];
        history[1].checksum = "abc".into();
        let plan = compute(&versioned(history), &s, &Policy::default());
        assert_eq!(plan.current, Some(Version::from_int(2)));
        let blockers = plan.blockers(&Policy::default());
        assert_eq!(blockers.len(), 1);
        let msg = blockers[0].to_string();
        assert!(
            msg.starts_with("migration 2 (m/2_m2.sql) was edited"),
            "{msg}"
        );
        assert!(
            msg.contains("recorded checksum abc") && msg.contains(&s.migrations[1].checksum),
            "{msg}"
        );
        assert!(msg.contains("shipgate repair --accept-checksum 2"), "{msg}");
    }

    #[test]
    fn a_dirty_row_names_repair() {
        let s = set(&[1]);
        let mut r = row(1, State::Failed, &s);
        r.statements_done = 1;
        r.error = Some("boom".into());
        let msg = compute(&versioned(vec![r]), &s, &Policy::default()).blockers(&Policy::default())
            [0]
        .to_string();
        assert!(
            msg.contains("state failed, 1 statement(s) committed, error: boom"),
            "{msg}"
        );
        assert!(msg.contains("shipgate repair --mark-applied 1"), "{msg}");
    }

    #[test]
    fn repeatables_run_again_when_new_or_changed_after_the_versioned_ones() {
        let files = vec![
            ("1_a.sql".to_owned(), b"SELECT 1;".to_vec()),
            ("R__b_views.sql".to_owned(), b"SELECT 'b';".to_vec()),
            ("R__a_views.sql".to_owned(), b"SELECT 'a';".to_vec()),
            ("R__c_same.sql".to_owned(), b"SELECT 'c';".to_vec()),
        ];
        let s = source::parse(Path::new("m"), files).expect("valid set");
        let last = |name: &str, checksum: &str| RepeatableRow {
            name: name.into(),
            checksum: checksum.into(),
            applied_at: None,
            execution_ms: 0,
            applied_by: None,
            deploy_id: None,
            app_version: None,
        };
        let same = s.repeatable("c_same").expect("in the set").checksum.clone();
        let history = History {
            migrations: vec![row(1, State::Applied, &s)],
            repeatables: vec![
                last("b_views", "old"),
                last("c_same", &same),
                last("gone", "x"),
            ],
        };
        let plan = compute(&history, &s, &Policy::default());
        assert!(plan.pending.is_empty());
        let names: Vec<(&str, Option<&str>)> = plan
            .pending_repeatables
            .iter()
            .map(|r| (r.name.as_str(), r.recorded_checksum.as_deref()))
            .collect();
        assert_eq!(names, [("a_views", None), ("b_views", Some("old"))]);
        assert!(plan.has_pending());
        assert!(plan.blockers(&Policy::default()).is_empty());
        // `--to` leaves versions pending, never repeatables.
        let to = Policy {
            target: Some(Version::from_int(1)),
            ..Policy::default()
        };
        assert_eq!(compute(&history, &s, &to).pending_repeatables.len(), 2);
    }
}
