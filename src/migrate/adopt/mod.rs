//! Taking over another tool's history: `shipgate adopt`, and `release`/`up` with
//! `adopt = auto`. One module per foreign history table, each turning that table into the
//! versions its tool recorded as applied; this module checks them against the files, records
//! them and words every refusal.
//!
//! Adopting takes the lock, refuses when shipgate already has history here, reads the other
//! tool's table (never writing to it), refuses a failed, dirty or partial entry (with the other
//! tool's own fix), a recorded version without a file and, where the tool kept a checksum of the
//! file, a file edited since; then records exactly the applied versions, gaps included (adopt
//! records the applied set, not a prefix), in shipgate's history with an audit row, in one
//! transaction. A module only reads its table and says what it means; it must not write to it,
//! take the lock or record anything.
//!
//! Adding a tool is one file here and one line in [`read`].

// `Version` is becoming an ordered sequence (not `Copy`): versions are cloned, never copied,
// so this module needs of it only `FromStr`, `Display`, `Ord` and `Clone`.
#![allow(clippy::clone_on_copy)]

mod atlas;
mod dbmate;
mod diesel;
mod flyway;
mod golang_migrate;
mod goose;
mod prisma;
mod sqlx;

use super::backend::{Audit, Backend, ForeignHistory};
use super::plan::{HistoryRow, State};
use super::repair::Change;
use super::source::{Migration, MigrationSet, Version};
use super::{lock, Error, Interrupt};
use crate::config::{DeployInfo, EngineSettings};

/// What another tool's table says, as its module read it.
#[derive(Debug, Default)]
pub struct Taken {
    /// Versions the tool recorded as applied; [`read`] sorts them and drops repeats.
    pub versions: Vec<Version>,
    /// What was read but is not a version to record (repeatable migrations, the tool's own
    /// bookkeeping rows), said in the summary.
    pub notes: Vec<String>,
    /// Entries the tool recorded as failed, dirty or partial, versions that do not read, and
    /// (with the files) files edited since: [`read`] refuses the takeover for any of them.
    pub problems: Vec<String>,
}

impl Taken {
    /// A baseline `tool` recorded at `bound`: every file up to it counts as applied (without
    /// the files: the baseline's version stands for them).
    fn baseline(&mut self, tool: &str, set: Option<&MigrationSet>, bound: &Version) {
        let Some(set) = set else {
            self.notes.push(format!(
                "{tool}'s baseline at version {bound} counts every migration up to it as applied"
            ));
            self.versions.push(bound.clone());
            return;
        };
        let covered = up_to(set, bound);
        self.notes.push(format!(
            "{tool}'s baseline at version {bound} counts the {} file(s) up to it as applied",
            covered.len()
        ));
        self.versions.extend(covered);
    }
}

/// Rows as [`Backend::rows`] returns them: every column as optional text.
type Rows = Vec<Vec<Option<String>>>;

/// Reads `foreign`'s table with its tool's module: the versions it recorded as applied, sorted,
/// each with a file in `set`. A refusal (`Error::Refused`) says what stops the takeover and how
/// to fix it, bare: callers add what was or was not changed.
pub(crate) async fn read(
    backend: &mut Backend,
    set: &MigrationSet,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let mut taken = by_tool(backend, Some(set), foreign).await?;
    refuse(foreign.tool, std::mem::take(&mut taken.problems))?;
    require_files(foreign.tool, set, &taken.versions)?;
    Ok(taken)
}

/// `foreign`'s table read by its tool's module, versions sorted and without repeats; with
/// `set`, checked against the files where the tool keeps checksums and baselines expanded to
/// them.
async fn by_tool(
    backend: &mut Backend,
    set: Option<&MigrationSet>,
    foreign: &ForeignHistory,
) -> Result<Taken, Error> {
    let mut taken = match foreign.tool {
        "sqlx" => sqlx::read(backend, set, foreign).await,
        "golang-migrate" => golang_migrate::read(backend, set, foreign).await,
        "dbmate" => dbmate::read(backend, set, foreign).await,
        "goose" => goose::read(backend, set, foreign).await,
        "diesel" => diesel::read(backend, set, foreign).await,
        "Prisma" => prisma::read(backend, set, foreign).await,
        "Flyway" => flyway::read(backend, set, foreign).await,
        "Atlas" => atlas::read(backend, set, foreign).await,
        tool => Err(Error::Refused(format!(
            "shipgate cannot read {tool}'s history ({}): record what {tool} applied with `shipgate baseline --version V --reason \"switching from {tool}\"` (every migration up to V counts as applied)",
            foreign.table
        ))),
    }?;
    taken.versions.sort();
    taken.versions.dedup();
    Ok(taken)
}

/// What another tool's history table says, read only, without shipgate's files (`status` with
/// `runner = "command"`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The tool.
    pub tool: &'static str,
    /// Its table.
    pub table: String,
    /// Rows in it.
    pub rows: i64,
    /// Migrations it records as applied (a baseline counts once); `None` when its state stops
    /// the count (golang-migrate's dirty row).
    pub applied: Option<usize>,
    /// The newest applied version.
    pub latest: Option<String>,
    /// What was read but is not an applied migration.
    pub notes: Vec<String>,
    /// Failed, dirty or partial entries, and versions that do not read.
    pub problems: Vec<String>,
}

/// Reads `foreign`'s table as its tool does, changing nothing: what it says is applied, and
/// what it records as failed, dirty or partial.
pub async fn report(backend: &mut Backend, foreign: &ForeignHistory) -> Result<Report, Error> {
    let (applied, latest, notes, problems) = match by_tool(backend, None, foreign).await {
        Ok(t) => (
            Some(t.versions.len()),
            t.versions.last().map(ToString::to_string),
            t.notes,
            t.problems,
        ),
        Err(Error::Refused(problem)) => (None, foreign.newest.clone(), Vec::new(), vec![problem]),
        Err(e) => return Err(e),
    };
    Ok(Report {
        tool: foreign.tool,
        table: foreign.table.clone(),
        rows: foreign.count,
        applied,
        latest,
        notes,
        problems,
    })
}

/// `shipgate adopt [--from TOOL] [--dry-run]`: records in shipgate's history exactly what the
/// other tool applied. With `dry_run`, reads and checks everything and changes nothing.
#[allow(clippy::too_many_arguments)]
pub async fn adopt(
    backend: &mut Backend,
    set: &MigrationSet,
    from: Option<&str>,
    dry_run: bool,
    reason: Option<&str>,
    settings: &EngineSettings,
    deploy: &DeployInfo,
    interrupt: &mut Interrupt,
) -> Result<Change, Error> {
    let foreign = backend
        .foreign_history()
        .await
        .map_err(Error::db("looking for another tool's migration history"))?
        .ok_or_else(|| {
            Error::Refused(
                "adopt: this database has no other tool's migration history table; nothing was changed".into(),
            )
        })?;
    if let Some(from) = from {
        if !from.eq_ignore_ascii_case(foreign.tool) {
            return Err(Error::Refused(format!(
                "adopt --from {from}: this database holds {}'s history ({}), not {from}'s; nothing was changed",
                foreign.tool, foreign.table
            )));
        }
    }
    let unchanged = |e| in_words(e, "adopt", "nothing was changed");
    if dry_run {
        refuse_own_history(backend).await?;
        let taken = read(backend, set, &foreign).await.map_err(unchanged)?;
        return Ok(Change {
            action: "adopt".into(),
            summary: format!(
                "dry run: would record {} migration(s) {} applied ({}){}; nothing was changed",
                taken.versions.len(),
                foreign.tool,
                list(&taken.versions),
                notes(&taken.notes)
            ),
            versions: taken.versions,
        });
    }
    lock::acquire(backend, settings.lock_wait, interrupt).await?;
    let result = async {
        refuse_own_history(backend).await?;
        let change = take_over(backend, set, &foreign, reason, deploy)
            .await
            .map_err(unchanged)?;
        // What the other tool built is the schema drift is checked against from now on.
        crate::migrate::schema::record(backend, None).await;
        Ok(change)
    }
    .await;
    lock::release(backend).await;
    result
}

/// With the lock held and no shipgate history here: reads `foreign`'s table again and records
/// what it says, with an `adopt` audit row, in one transaction. Refusals are bare, as [`read`]'s.
pub(crate) async fn take_over(
    backend: &mut Backend,
    set: &MigrationSet,
    foreign: &ForeignHistory,
    reason: Option<&str>,
    deploy: &DeployInfo,
) -> Result<Change, Error> {
    let taken = read(backend, set, foreign).await?;
    backend
        .ensure_tables()
        .await
        .map_err(Error::db("creating shipgate's tables"))?;
    let records = super::repair::records(set, taken.versions.iter().cloned(), deploy);
    let after = format!(
        "recorded {} migration(s) {} applied: {}",
        records.len(),
        foreign.tool,
        list(&taken.versions)
    );
    let audit = Audit {
        action: "adopt",
        version: taken.versions.last().cloned(),
        reason,
        before: Some(format!(
            "{}'s {} with {} row(s); no shipgate history",
            foreign.tool, foreign.table, foreign.count
        )),
        after: Some(after.clone()),
        deploy,
    };
    backend
        .record_baseline(&records, &audit)
        .await
        .map_err(Error::db("recording the adopted history"))?;
    Ok(Change {
        action: "adopt".into(),
        summary: format!(
            "{after}{}; {}'s table {} was left as it is",
            notes(&taken.notes),
            foreign.tool,
            foreign.table
        ),
        versions: taken.versions,
    })
}

/// The refusal of a run that would apply on a database `foreign`'s tool migrated and shipgate
/// has not (SPEC §4), with both ways forward. Reads the other tool's table to say how many
/// migrations it recorded (or what would stop taking them over).
pub(crate) async fn refusal(
    backend: &mut Backend,
    set: &MigrationSet,
    foreign: &ForeignHistory,
    pending: usize,
) -> Error {
    let tool = foreign.tool;
    let recorded = match read(backend, set, foreign).await {
        Ok(taken) => format!(
            "{} migration(s) recorded as applied{}",
            taken.versions.len(),
            taken
                .versions
                .last()
                .map(|v| format!(", newest version {v}"))
                .unwrap_or_default()
        ),
        Err(Error::Refused(problem)) => format!(
            "{} row(s){}; `shipgate adopt` would refuse it: {problem}",
            foreign.count,
            foreign
                .newest
                .as_deref()
                .map(|v| format!(", newest version {v}"))
                .unwrap_or_default()
        ),
        Err(e) => format!("{} row(s); it could not be read: {e}", foreign.count),
    };
    Error::Refused(format!(
        "refusing to run: this database has no shipgate history but {tool}'s ({table}: {recorded}); applying the {pending} pending migration(s) would run again what {tool} already applied. Take its history over first with `shipgate adopt --from {tool} --reason \"switching from {tool}\"` (it records exactly what {tool} applied, checked against the files), or set `adopt = \"auto\"` (SHIPGATE_ADOPT=auto) to take it over as part of the release; nothing was applied",
        table = foreign.table,
    ))
}

/// History rows for `versions` as if recorded, for planning a run that will adopt them first.
pub(crate) fn as_history(set: &MigrationSet, versions: &[Version]) -> Vec<HistoryRow> {
    versions
        .iter()
        .filter_map(|v| file_of(set, v))
        .map(|m| {
            HistoryRow::new(
                m.version.clone(),
                m.name.clone(),
                m.checksum.clone(),
                State::Applied,
            )
        })
        .collect()
}

/// A bare refusal from [`read`] in the words of `command`, saying what it left as it was.
pub(crate) fn in_words(e: Error, command: &str, outcome: &str) -> Error {
    match e {
        Error::Refused(problem) => Error::Refused(format!("{command}: {problem}; {outcome}")),
        e => e,
    }
}

async fn refuse_own_history(backend: &mut Backend) -> Result<(), Error> {
    let rows = backend
        .read_history_for_plan()
        .await
        .map_err(Error::db("reading migration history"))?
        .map_or(0, |h| h.migrations.len());
    if rows > 0 {
        return Err(Error::Refused(format!(
            "adopt: shipgate already has {rows} migration(s) in its history here; adopt only takes over a database shipgate has not managed; nothing was changed"
        )));
    }
    Ok(())
}

fn list(versions: &[Version]) -> String {
    match versions {
        [] => "none".into(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

fn notes(notes: &[String]) -> String {
    notes.iter().map(|n| format!("; {n}")).collect()
}

/// `column` read back as text on `backend`'s engine.
fn as_text(backend: &Backend, column: &str) -> String {
    match backend.engine() {
        crate::config::Engine::Mysql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS TEXT)"),
    }
}

/// Runs `sql` on `backend`, reading `foreign`'s table.
async fn rows(backend: &mut Backend, foreign: &ForeignHistory, sql: &str) -> Result<Rows, Error> {
    backend
        .rows(sql)
        .await
        .map_err(Error::db(format!("reading {}", foreign.table)))
}

/// Every value of `column` in `foreign`'s table, as text (NULLs skipped).
async fn column(
    backend: &mut Backend,
    foreign: &ForeignHistory,
    column: &str,
) -> Result<Vec<String>, Error> {
    let sql = format!(
        "SELECT {} FROM {}",
        as_text(backend, column),
        foreign.sql_name
    );
    Ok(rows(backend, foreign, &sql)
        .await?
        .iter()
        .filter_map(|r| cell(r, 0).map(|t| t.trim().to_owned()))
        .collect())
}

/// `texts` as `tool`'s versions: those that parse, and what is wrong with the others.
fn versions<'t>(
    tool: &str,
    texts: impl IntoIterator<Item = &'t str>,
) -> (Vec<Version>, Vec<String>) {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    for text in texts {
        match version(tool, text) {
            Ok(v) => parsed.push(v),
            Err(problem) => problems.push(problem),
        }
    }
    (parsed, problems)
}

/// Column `i` of a row, when it is not NULL.
fn cell(row: &[Option<String>], i: usize) -> Option<&str> {
    row.get(i).and_then(|c| c.as_deref())
}

/// A boolean column read back as text on any engine (`true`, `t`, `1`).
fn truthy(text: Option<&str>) -> bool {
    matches!(
        text.map(str::trim),
        Some("true" | "t" | "1" | "TRUE" | "True")
    )
}

/// `text` (a version as `tool` stored it) as a shipgate version, or what is wrong with it.
fn version(tool: &str, text: &str) -> Result<Version, String> {
    text.trim()
        .parse::<Version>()
        .map_err(|_| format!("{tool}'s version {text:?} is not a version shipgate can read"))
}

/// The migration of `version` in `set`: the one place versions meet the set.
fn file_of<'s>(set: &'s MigrationSet, version: &Version) -> Option<&'s Migration> {
    set.get(version)
}

/// Every version in `set` up to and including `bound` (what a baseline at `bound` covers).
fn up_to(set: &MigrationSet, bound: &Version) -> Vec<Version> {
    set.migrations
        .iter()
        .filter(|m| m.version <= *bound)
        .map(|m| m.version.clone())
        .collect()
}

/// The up file of `m`, as bytes on disk.
fn file_bytes(m: &Migration) -> Result<Vec<u8>, Error> {
    std::fs::read(&m.up.path)
        .map_err(|e| Error::Refused(format!("cannot read {}: {e}", m.up.path.display())))
}

/// `Err` listing `problems`, if there are any, as why `tool`'s history cannot be taken over.
fn refuse(tool: &str, problems: Vec<String>) -> Result<(), Error> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{tool}'s history cannot be taken over as it is: {}",
        problems.join("; ")
    )))
}

/// Every version must have its file: a recorded migration that this build does not have cannot
/// be taken over (its checksum and name would be unknown).
fn require_files(tool: &str, set: &MigrationSet, versions: &[Version]) -> Result<(), Error> {
    let missing: Vec<String> = versions
        .iter()
        .filter(|v| file_of(set, v).is_none())
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{tool} recorded version(s) {} that have no file in {}",
        missing.join(", "),
        set.dir.display()
    )))
}
