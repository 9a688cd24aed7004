//! Migration safety lint: turns the review checklist into rules that run in CI (`check`) and
//! again in the release gate (`up`, `release`).
//!
//! [`lint`] is pure: a [`MigrationSet`], [`LintOptions`] and a [`Catalog`] (what the database
//! holds, or an assumption when there is none) in, [`Finding`]s out. It parses SQL with
//! sqlparser (PostgreSQL, MySQL or SQLite dialect), applies the rules of [`rules::RULES`],
//! then the file's `-- shipgate:contract` marker, `-- shipgate:allow <rule> <reason>`
//! acknowledgements, the configured severities and the [`Verdict`]: `check` reports everything
//! about the files, the release gate only what endangers the database in hand. It never reads
//! files, the environment or the database; callers do, and decide what a finding blocks.

mod check;
mod postgres;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::engine::Engine;
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

/// Who the findings are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// `check` (CI): everything about the files, at the configured severities.
    #[default]
    Check,
    /// The release gate: only what endangers the database in hand refuses. Rules about files
    /// and reverts ([`Gate::File`]) are at most warnings, and so is a statement shipgate cannot
    /// read ([`Gate::Opaque`]) unless it names a large table that existed before the run.
    Release,
}

/// How to lint.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// Whose SQL dialect and hazards apply.
    pub engine: Engine,
    /// Severity per rule id, overriding the rule's default.
    pub severities: BTreeMap<String, Severity>,
    /// Report findings only for these migrations (the rest of the set still informs the
    /// analysis without a database). `None`: every migration.
    pub only: Option<Only>,
    /// Who the findings are for.
    pub verdict: Verdict,
}

impl LintOptions {
    /// Default severities for `engine`, every migration.
    pub fn new(engine: Engine) -> LintOptions {
        LintOptions {
            engine,
            severities: BTreeMap::new(),
            only: None,
            verdict: Verdict::Check,
        }
    }
}

/// The migrations a lint reports on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Only {
    /// Versioned migrations, by version.
    pub versions: BTreeSet<Version>,
    /// Repeatable migrations, by name.
    pub repeatables: BTreeSet<String>,
}

impl Only {
    /// What both select.
    pub fn intersection(&self, other: &Only) -> Only {
        Only {
            versions: self
                .versions
                .intersection(&other.versions)
                .cloned()
                .collect(),
            repeatables: self
                .repeatables
                .intersection(&other.repeatables)
                .cloned()
                .collect(),
        }
    }

    /// How many migrations it selects.
    pub fn len(&self) -> usize {
        self.versions.len() + self.repeatables.len()
    }

    /// Whether it selects none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// Which objects exist before this run, and how big the tables are.
#[derive(Debug, Clone)]
pub enum Catalog {
    /// No database (CI): every object a file did not create itself counts as existing, and
    /// every such table as large.
    Assumed,
    /// Read from the database before the run: objects created earlier in the pending batch,
    /// or absent from it, are new; hazards count for existing tables above the threshold.
    Live(Box<Live>),
}

/// What the database holds, read before the run.
#[derive(Debug, Clone)]
pub struct Live {
    /// Tables by lower-cased name.
    tables: HashMap<String, TableStats>,
    /// Indexes by lower-cased name, with their table's figures.
    indexes: HashMap<String, TableStats>,
    /// Schemas, lower-cased.
    schemas: HashSet<String>,
    /// Databases, lower-cased.
    databases: HashSet<String>,
    /// Columns by lower-cased (table, column), with their type as the server prints it.
    columns: HashMap<(String, String), String>,
    /// When a table counts as large.
    threshold: Threshold,
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
        Catalog::Live(Box::new(Live {
            tables: collect(tables),
            indexes: collect(indexes),
            schemas: HashSet::new(),
            databases: HashSet::new(),
            columns: HashMap::new(),
            threshold,
        }))
    }

    /// Records a schema that exists (a no-op without a database).
    pub fn add_schema(&mut self, name: &str) {
        if let Catalog::Live(live) = self {
            live.schemas.insert(name.to_lowercase());
        }
    }

    /// Records a database that exists (a no-op without a database).
    pub fn add_database(&mut self, name: &str) {
        if let Catalog::Live(live) = self {
            live.databases.insert(name.to_lowercase());
        }
    }

    /// Records a column that exists, with its type (a no-op without a database).
    pub fn add_column(&mut self, table: &str, column: &str, data_type: &str) {
        if let Catalog::Live(live) = self {
            live.columns.insert(
                (table.to_lowercase(), column.to_lowercase()),
                data_type.to_lowercase(),
            );
        }
    }

    fn is_live(&self) -> bool {
        matches!(self, Catalog::Live(_))
    }

    /// Whether a schema (`database`: a database) existed; always without a database.
    fn has_namespace(&self, name: &str, database: bool) -> bool {
        match self {
            Catalog::Assumed => true,
            Catalog::Live(live) => {
                let set = if database {
                    &live.databases
                } else {
                    &live.schemas
                };
                set.contains(&name.to_lowercase())
            }
        }
    }

    /// Whether a column of a table existed (`Some(type)`), as far as the catalog says: without
    /// a database every column exists, of an unknown type (`Some(None)`).
    fn column(&self, table: &str, column: &str) -> Option<Option<&str>> {
        match self {
            Catalog::Assumed => Some(None),
            Catalog::Live(live) => live
                .columns
                .get(&(table.to_lowercase(), column.to_lowercase()))
                .map(|t| Some(t.as_str())),
        }
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
            Catalog::Live(live) => {
                let map = if index { &live.indexes } else { &live.tables };
                match map.get(&name.to_lowercase()) {
                    None => Size::New,
                    Some(s) if s.is_large(&live.threshold) => Size::Large,
                    Some(_) => Size::Small,
                }
            }
        }
    }
}

/// Lints the up files of `set` and its repeatable migrations (and the presence and content of
/// down files). Returns every finding whose severity is not `off`, acknowledged ones included
/// (with their reason).
pub fn lint(set: &MigrationSet, options: &LintOptions, catalog: &Catalog) -> Vec<Finding> {
    let mut state = check::State::default();
    let reversible = set.migrations.iter().any(|m| m.down.is_some());
    let mut out = Vec::new();
    // Repeatables run after every versioned migration, so they are read after them.
    let scripts = set.migrations.iter().map(|m| (&m.up, Some(m), None)).chain(
        set.repeatables
            .iter()
            .map(|r| (&r.script, None, Some(&r.name))),
    );
    for (script, m, repeatable) in scripts {
        let report = options
            .only
            .as_ref()
            .is_none_or(|only| match (m, repeatable) {
                (Some(m), _) => only.versions.contains(&m.version),
                (_, Some(name)) => only.repeatables.contains(name),
                (None, None) => false,
            });
        // With a database, applied files are already in the catalog.
        if !report && catalog.is_live() {
            continue;
        }
        if !catalog.is_live() {
            state.forget_created();
        }
        let hits = check::script(&mut state, catalog, script, options.engine);
        if !report {
            continue;
        }
        let up_file = script.path.display().to_string();
        let up_allows = &script.directives.allows;
        let contract = script.directives.contract;
        let mut sink = Sink {
            out: &mut out,
            options,
        };
        for h in hits {
            if h.deferred && options.verdict == Verdict::Release {
                continue;
            }
            let covers = |a: &Allow| h.comments.0 <= a.line && a.line < h.comments.1;
            let at = Some((h.line, h.column));
            sink.push(
                h.rule,
                &up_file,
                at,
                h.message,
                up_allows,
                contract,
                covers,
                h.names_large,
            );
        }
        if script.is_empty() {
            sink.push(
                "empty-up",
                &up_file,
                Some((1, 1)),
                format!(
                    "{} holds no SQL statement: it is applied as a no-op and recorded",
                    file_name(&up_file)
                ),
                up_allows,
                false,
                |_| true,
                false,
            );
        }
        let is_up_file = up_file.to_ascii_lowercase().ends_with(".up.sql");
        if reversible && m.is_some_and(|m| m.down.is_none()) && is_up_file {
            sink.push(
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
                false,
            );
        }
        unknown_allows(&mut out, &up_file, up_allows);
        let Some((version, down)) = m.and_then(|m| Some((m.version.clone(), m.down.as_ref()?)))
        else {
            continue;
        };
        let down_file = down.path.display().to_string();
        if down.is_empty() {
            Sink { out: &mut out, options }.push(
                "empty-down",
                &down_file,
                Some((1, 1)),
                format!(
                    "{} holds no SQL statement: it declares version {} irreversible, and `shipgate down` refuses to revert it",
                    file_name(&down_file),
                    version
                ),
                &down.directives.allows,
                false,
                |_| true,
                false,
            );
        }
        unknown_allows(&mut out, &down_file, &down.directives.allows);
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where findings go, with the options that shape them.
struct Sink<'a> {
    out: &'a mut Vec<Finding>,
    options: &'a LintOptions,
}

impl Sink<'_> {
    /// `names_large`: the statement names a large table that existed before the run (what
    /// makes an opaque statement refuse a release).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        rule_id: &str,
        file: &str,
        at: Option<(usize, usize)>,
        message: String,
        allows: &[Allow],
        contract: bool,
        covers: impl Fn(&Allow) -> bool,
        names_large: bool,
    ) {
        let options = self.options;
        let Some(rule) = rules::find(rule_id) else {
            return;
        };
        if !rule.engines.contains(&options.engine) {
            return;
        }
        let mut severity = options
            .severities
            .get(rule.id)
            .copied()
            .unwrap_or(rule.default);
        if severity == Severity::Off || (rule.contract && contract) {
            return;
        }
        let harmless_here = match rule.gate {
            Gate::File => true,
            Gate::Opaque => !names_large,
            Gate::Large | Gate::Existing | Gate::Fails => false,
        };
        if options.verdict == Verdict::Release && harmless_here {
            severity = severity.min(Severity::Warning);
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
        self.out.push(Finding {
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
