//! Migration safety lint: turns the review checklist into rules that run in CI (`check`) and
//! again in the release gate (`up`, `release`).
//!
//! [`lint`] is pure: a [`MigrationSet`], [`LintOptions`] and a [`Catalog`] (what the database
//! holds, or an assumption when there is none) in, [`Finding`]s out. It parses SQL with
//! sqlparser (PostgreSQL, MySQL or SQLite dialect), applies the rules of [`rules::RULES`],
//! then the file's `-- shipgate:contract` marker, `-- shipgate:allow <rule> <reason>`
//! acknowledgements and the configured severities. It never reads files, the environment or
//! the database; callers do, and decide what a finding blocks.

mod check;
mod postgres;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

use crate::config::Engine;
use crate::migrate::source::{Allow, MigrationSet, Version};

pub use rules::{Gate, Rule, RULES};

/// The rule id of an acknowledgement that names no rule. Not configurable, not acknowledgeable.
pub const UNKNOWN_RULE: &str = "unknown-rule";

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not reported.
    Off,
    /// Reported; does not fail `check` or block a release.
    Warning,
    /// Fails `check` (exit 5) and blocks a release unless acknowledged.
    Error,
}

impl Severity {
    /// Parses `error`, `warning` (or `warn`) and `off`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "off" => Some(Severity::Off),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Off => "off",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's stable id.
    pub rule: String,
    /// Its severity, after configuration.
    pub severity: Severity,
    /// The file, as found in the migrations directory.
    pub file: Option<String>,
    /// 1-based line of the statement's first SQL token (1 for file-level findings).
    pub line: Option<usize>,
    /// 1-based column of that token.
    pub column: Option<usize>,
    /// What was found, naming the table or column.
    pub message: String,
    /// Why it is dangerous.
    pub why: String,
    /// The safe alternative.
    pub instead: String,
    /// The reason given by a `-- shipgate:allow` directive that acknowledges it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}

impl Finding {
    /// An error-level finding nobody acknowledged: fails `check` and blocks a release.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && self.acknowledged.is_none()
    }
}

impl fmt::Display for Finding {
    /// `file:line:column: severity [rule] message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
                if let Some(column) = self.column {
                    write!(f, "{column}:")?;
                }
            }
            f.write_str(" ")?;
        }
        write!(f, "{} [{}] {}", self.severity, self.rule, self.message)
    }
}

/// How to lint.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// Whose SQL dialect and hazards apply.
    pub engine: Engine,
    /// Severity per rule id, overriding the rule's default.
    pub severities: BTreeMap<String, Severity>,
    /// Report findings only for these versions (the rest of the set still informs the
    /// analysis without a database). `None`: every migration.
    pub only: Option<BTreeSet<Version>>,
}

impl LintOptions {
    /// Default severities for `engine`, every migration.
    pub fn new(engine: Engine) -> LintOptions {
        LintOptions {
            engine,
            severities: BTreeMap::new(),
            only: None,
        }
    }
}

/// When a table counts as large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Rows by the planner's estimate.
    pub rows: i64,
    /// Bytes on disk, indexes and TOAST included.
    pub bytes: i64,
}

impl Default for Threshold {
    /// 10,000 rows or 10 MB.
    fn default() -> Threshold {
        Threshold {
            rows: 10_000,
            bytes: 10 * 1024 * 1024,
        }
    }
}

/// What the database says about one table (or index: its table's figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Estimated rows; `None` when the engine does not say.
    pub rows: Option<i64>,
    /// Size in bytes; `None` when the engine does not say.
    pub bytes: Option<i64>,
}

impl TableStats {
    /// Large when either figure exceeds its threshold; unknown on both counts is large (a
    /// table shipgate cannot measure is not assumed harmless).
    pub fn is_large(&self, t: &Threshold) -> bool {
        match (self.rows, self.bytes) {
            (None, None) => true,
            (rows, bytes) => rows.is_some_and(|r| r > t.rows) || bytes.is_some_and(|b| b > t.bytes),
        }
    }
}

/// How big a table (or an index's table) is for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Created by this run (or does not exist): nobody else uses it yet.
    New,
    /// Existed before this run, below the threshold.
    Small,
    /// Existed before this run, above the threshold (or assumed so).
    Large,
}

/// Which tables exist before this run, and how big they are.
#[derive(Debug, Clone)]
pub enum Catalog {
    /// No database (CI): every table a file did not create itself counts as existing and large.
    Assumed,
    /// Read from the database before the run: objects created earlier in the pending batch
    /// are new; hazards count for existing tables above the threshold.
    Live {
        /// Tables by lower-cased name.
        tables: HashMap<String, TableStats>,
        /// Indexes by lower-cased name, with their table's figures.
        indexes: HashMap<String, TableStats>,
        /// When a table counts as large.
        threshold: Threshold,
    },
}

impl Catalog {
    /// A catalog from the database's tables and indexes (`(name, stats)`); a name found in
    /// several schemas keeps its largest figures.
    pub fn live(
        tables: impl IntoIterator<Item = (String, TableStats)>,
        indexes: impl IntoIterator<Item = (String, TableStats)>,
        threshold: Threshold,
    ) -> Catalog {
        fn collect(
            items: impl IntoIterator<Item = (String, TableStats)>,
        ) -> HashMap<String, TableStats> {
            let mut map: HashMap<String, TableStats> = HashMap::new();
            for (name, s) in items {
                let e = map.entry(name.to_lowercase()).or_default();
                e.rows = e.rows.max(s.rows);
                e.bytes = e.bytes.max(s.bytes);
                if s.rows.is_none() && s.bytes.is_none() {
                    *e = s;
                }
            }
            map
        }
        Catalog::Live {
            tables: collect(tables),
            indexes: collect(indexes),
            threshold,
        }
    }

    fn is_live(&self) -> bool {
        matches!(self, Catalog::Live { .. })
    }

    fn table(&self, name: &str) -> Size {
        self.lookup(name, false)
    }

    fn index(&self, name: &str) -> Size {
        self.lookup(name, true)
    }

    fn lookup(&self, name: &str, index: bool) -> Size {
        match self {
            Catalog::Assumed => Size::Large,
            Catalog::Live {
                tables,
                indexes,
                threshold,
            } => {
                let map = if index { indexes } else { tables };
                match map.get(&name.to_lowercase()) {
                    None => Size::New,
                    Some(s) if s.is_large(threshold) => Size::Large,
                    Some(_) => Size::Small,
                }
            }
        }
    }
}

/// Lints the up files of `set` (and the presence and content of down files). Returns every
/// finding whose severity is not `off`, acknowledged ones included (with their reason).
pub fn lint(set: &MigrationSet, options: &LintOptions, catalog: &Catalog) -> Vec<Finding> {
    let mut state = check::State::default();
    let reversible = set.migrations.iter().any(|m| m.down.is_some());
    let mut out = Vec::new();
    for m in &set.migrations {
        let report = options
            .only
            .as_ref()
            .is_none_or(|only| only.contains(&m.version));
        // With a database, applied files are already in the catalog.
        if !report && catalog.is_live() {
            continue;
        }
        if !catalog.is_live() {
            state.forget_created();
        }
        let hits = check::migration(&mut state, catalog, m, options.engine);
        if !report {
            continue;
        }
        let up_file = m.up.path.display().to_string();
        let up_allows = &m.up.directives.allows;
        let contract = m.up.directives.contract;
        for h in hits {
            let covers = |a: &Allow| h.comments.0 <= a.line && a.line < h.comments.1;
            let at = Some((h.line, h.column));
            push(
                &mut out, options, h.rule, &up_file, at, h.message, up_allows, contract, covers,
            );
        }
        let is_up_file = up_file.ends_with(".up.sql");
        if reversible && m.down.is_none() && is_up_file {
            push(
                &mut out,
                options,
                "missing-down",
                &up_file,
                Some((1, 1)),
                format!(
                    "{} has no .down.sql beside it, unlike the rest of the set",
                    file_name(&up_file)
                ),
                up_allows,
                false,
                |_| true,
            );
        }
        unknown_allows(&mut out, &up_file, up_allows);
        if let Some(down) = &m.down {
            let down_file = down.path.display().to_string();
            if down.statements.is_empty() {
                push(
                    &mut out,
                    options,
                    "empty-down",
                    &down_file,
                    Some((1, 1)),
                    format!("{} holds no SQL statement", file_name(&down_file)),
                    &down.directives.allows,
                    false,
                    |_| true,
                );
            }
            unknown_allows(&mut out, &down_file, &down.directives.allows);
        }
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[allow(clippy::too_many_arguments)]
fn push(
    out: &mut Vec<Finding>,
    options: &LintOptions,
    rule_id: &str,
    file: &str,
    at: Option<(usize, usize)>,
    message: String,
    allows: &[Allow],
    contract: bool,
    covers: impl Fn(&Allow) -> bool,
) {
    let Some(rule) = rules::find(rule_id) else {
        return;
    };
    if !rule.engines.contains(&options.engine) {
        return;
    }
    let severity = options
        .severities
        .get(rule.id)
        .copied()
        .unwrap_or(rule.default);
    if severity == Severity::Off || (rule.contract && contract) {
        return;
    }
    let mut instead = rule.instead.to_owned();
    let acknowledged = allows
        .iter()
        .find(|a| a.rule == rule.id && covers(a))
        .map(|a| a.reason.clone());
    let acknowledged = match acknowledged {
        // Destructive steps are released by the contract marker, not by an acknowledgement.
        Some(_) if rule.contract => {
            instead.push_str(" (an allow directive does not release a destructive step: only `-- shipgate:contract` does)");
            None
        }
        other => other,
    };
    out.push(Finding {
        rule: rule.id.to_owned(),
        severity,
        file: Some(file.to_owned()),
        line: at.map(|a| a.0),
        column: at.map(|a| a.1),
        message,
        why: rule.why.to_owned(),
        instead,
        acknowledged,
    });
}

fn unknown_allows(out: &mut Vec<Finding>, file: &str, allows: &[Allow]) {
    for a in allows {
        if rules::find(&a.rule).is_none() {
            out.push(Finding {
                rule: UNKNOWN_RULE.into(),
                severity: Severity::Error,
                file: Some(file.to_owned()),
                line: Some(a.line),
                column: Some(1),
                message: format!("`shipgate:allow {}` names no lint rule", a.rule),
                why: "an acknowledgement that matches nothing hides a typo and silences nothing"
                    .into(),
                instead: format!(
                    "use one of: {}",
                    RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
                ),
                acknowledged: None,
            });
        }
    }
}

#[cfg(test)]
mod tests;
