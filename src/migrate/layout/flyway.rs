//! Flyway: `V<version>__<description>.sql` versioned migrations, `U<version>__…` undo
//! migrations (their downs) and `R__<description>.sql` repeatable migrations, named with
//! Flyway's prefixes, separator and suffixes (its defaults, or the project's `flyway` settings).
//! The version is digits separated by `.` or `_` (`V1.2.10__`, `V2_1__`).
//!
//! Flyway also decides things from a file's statements, and this module decides them the same
//! way once the statements are found ([`read_statements`]): whether the file runs in a
//! transaction (its parsers' `detectCanExecuteInTransaction`: `CREATE INDEX CONCURRENTLY`,
//! `VACUUM`, `CREATE DATABASE`, … on PostgreSQL, `PRAGMA foreign_keys` on SQLite; a file that
//! mixes both kinds is refused unless `mixed`), and which text it would have rewritten before
//! running (placeholders, `${name}`), which shipgate refuses since it runs what the file says;
//! so is PostgreSQL's `COPY … FROM STDIN` with its rows in the file, which Flyway feeds itself.
//! Baseline migrations (`B…__`), script configuration files (`….sql.conf`) and callbacks
//! (`afterMigrate.sql`) are refused, each with what to do instead.

use super::{strip_suffix_ignore_case, Claim, Def, Entry, Kind, Layout, New, Problem, Role};
use crate::config::Engine;
use crate::migrate::split::{self, Statement};

pub(super) const DEF: Def = Def {
    layout: Layout::Flyway,
    needs_own_file: false,
    own_files: &[],
    claim: claim_default,
    marked: None,
    sections: None,
    settings: None,
    template,
};

/// Flyway's settings that change how shipgate reads its directory, under Flyway's own names
/// (`sqlMigrationPrefix`, …), with Flyway's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlywayOptions {
    /// `sqlMigrationPrefix`: versioned migrations (`V`).
    pub versioned_prefix: String,
    /// `undoSqlMigrationPrefix`: undo migrations, read as downs (`U`).
    pub undo_prefix: String,
    /// `repeatableSqlMigrationPrefix`: repeatable migrations (`R`).
    pub repeatable_prefix: String,
    /// `baselineMigrationPrefix`: baseline migrations, refused (`B`).
    pub baseline_prefix: String,
    /// `sqlMigrationSeparator`: between version and description (`__`).
    pub separator: String,
    /// `sqlMigrationSuffixes`: the file name endings, compared ignoring ASCII case (`.sql`).
    pub suffixes: Vec<String>,
    /// `mixed`: a file whose statements cannot all run in a transaction runs outside one
    /// instead of being refused.
    pub mixed: bool,
    /// `placeholderReplacement`: Flyway rewrites placeholders before running a file, so one in
    /// a file's code is refused; off, the text runs as written.
    pub placeholder_replacement: bool,
    /// `placeholderPrefix` (`${`).
    pub placeholder_prefix: String,
    /// `placeholderSuffix` (`}`).
    pub placeholder_suffix: String,
}

impl Default for FlywayOptions {
    fn default() -> FlywayOptions {
        FlywayOptions {
            versioned_prefix: "V".into(),
            undo_prefix: "U".into(),
            repeatable_prefix: "R".into(),
            baseline_prefix: "B".into(),
            separator: "__".into(),
            suffixes: vec![".sql".into()],
            mixed: false,
            placeholder_replacement: true,
            placeholder_prefix: "${".into(),
            placeholder_suffix: "}".into(),
        }
    }
}

impl FlywayOptions {
    /// The settings shipgate reads, as Flyway names them, for messages.
    pub const KEYS: &'static str = "sqlMigrationPrefix, undoSqlMigrationPrefix, \
        repeatableSqlMigrationPrefix, baselineMigrationPrefix, sqlMigrationSeparator, \
        sqlMigrationSuffixes, mixed, placeholderReplacement, placeholderPrefix, placeholderSuffix";

    /// Sets Flyway's setting `key` (Flyway's camelCase or snake_case, any case, with or without
    /// a `flyway.` prefix) to `value`. `Err` says what is expected.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let normal: String = key
            .trim()
            .trim_start_matches("flyway.")
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let text = |what: &str| -> Result<String, String> {
            let v = value.trim();
            if v.is_empty() || v.contains(['/', '\\']) {
                return Err(format!("{what}: non-empty text without `/`"));
            }
            Ok(v.to_owned())
        };
        let boolean = || match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("true or false".to_owned()),
        };
        match normal.as_str() {
            "sqlmigrationprefix" => self.versioned_prefix = text("a prefix")?,
            "undosqlmigrationprefix" => self.undo_prefix = text("a prefix")?,
            "repeatablesqlmigrationprefix" => self.repeatable_prefix = text("a prefix")?,
            "baselinemigrationprefix" => self.baseline_prefix = text("a prefix")?,
            "sqlmigrationseparator" => self.separator = text("a separator")?,
            "sqlmigrationsuffixes" => {
                let suffixes: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if suffixes.is_empty() || suffixes.iter().any(|s| s.contains(['/', '\\'])) {
                    return Err("comma-separated file name endings such as .sql".into());
                }
                self.suffixes = suffixes;
            }
            "mixed" => self.mixed = boolean()?,
            "placeholderreplacement" => self.placeholder_replacement = boolean()?,
            "placeholderprefix" => self.placeholder_prefix = text("a placeholder prefix")?,
            "placeholdersuffix" => self.placeholder_suffix = text("a placeholder suffix")?,
            _ => return Err(format!("one of Flyway's settings {}", Self::KEYS)),
        }
        Ok(())
    }

    /// What the statements of a Flyway script are checked for once they are found.
    pub(super) fn statement_rules(&self) -> super::StatementRules {
        super::StatementRules {
            layout: Layout::Flyway,
            transaction_by_statements: true,
            mixed: self.mixed,
            placeholders: self.placeholder_replacement.then(|| {
                (
                    self.placeholder_prefix.clone(),
                    self.placeholder_suffix.clone(),
                )
            }),
        }
    }

    /// The prefixes, longest first, each with what it names: Flyway tries them so, and a
    /// prefix that begins another (`V`, `VR`) never shadows it.
    fn prefixes(&self) -> Vec<(&str, Prefix)> {
        let mut all = vec![
            (self.versioned_prefix.as_str(), Prefix::Versioned),
            (self.undo_prefix.as_str(), Prefix::Undo),
            (self.repeatable_prefix.as_str(), Prefix::Repeatable),
            (self.baseline_prefix.as_str(), Prefix::Baseline),
        ];
        all.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        all
    }
}

/// The Flyway claim of `entry` under Flyway's default naming.
fn claim_default(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    claim(entry, &FlywayOptions::default())
}

/// What a file name prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Versioned,
    Undo,
    Repeatable,
    Baseline,
}

/// The Flyway claim of `entry` under the naming of `o`: `None` for a name that is not
/// Flyway's at all, `Some(Err(_))` for one of Flyway's files shipgate does not read.
pub(super) fn claim(entry: Entry<'_>, o: &FlywayOptions) -> Option<Result<Claim, String>> {
    let Entry::File(file) = entry else {
        return None;
    };
    if let Some(script) = strip_suffix_ignore_case(file, ".conf") {
        // A script configuration file beside a migration (`executeInTransaction`,
        // `placeholderReplacement`, `shouldExecute`): what it would change is not read.
        return claim(Entry::File(script), o).map(|_| {
            Err(format!(
                "a Flyway script configuration file: shipgate does not read them, and would run {script} as if it were not there; delete it and say it in the script instead (`executeInTransaction=false` is `-- shipgate:no-transaction` at the top of the file; placeholders and `shouldExecute` have no equivalent)"
            ))
        });
    }
    let stem = o
        .suffixes
        .iter()
        .find_map(|s| strip_suffix_ignore_case(file, s))?;
    if let Some(event) = callback(stem, &o.separator) {
        return Some(Err(format!(
            "a Flyway callback (`{event}`): shipgate runs no callbacks, so it would never run where Flyway does; move its SQL into a migration, or delete it"
        )));
    }
    let (prefix, rest) = o
        .prefixes()
        .into_iter()
        .find_map(|(p, kind)| stem.strip_prefix(p).map(|rest| (kind, rest)))?;
    let sep = o.separator.as_str();
    if prefix == Prefix::Repeatable {
        let description = rest.strip_prefix(sep)?;
        if description.is_empty() {
            return Some(Err(format!("no description after `{sep}`")));
        }
        return Some(Ok(Claim {
            version: None,
            version_text: String::new(),
            name: description.to_owned(),
            files: vec![(file.to_owned(), Role::Script(Kind::Repeatable))],
        }));
    }
    let (written, description) = rest.split_once(sep)?;
    if !is_version(written) {
        return None;
    }
    let kind = match prefix {
        Prefix::Versioned => Kind::Up,
        Prefix::Undo => Kind::Down,
        _ => {
            return Some(Err(format!(
                "a Flyway baseline migration (`{}<version>{sep}`): shipgate does not read them; record the version with `shipgate baseline` and keep the {} files",
                o.baseline_prefix, o.versioned_prefix
            )))
        }
    };
    if description.is_empty() {
        return Some(Err(format!("{file}: no description after `{sep}`")));
    }
    let version_text = written.replace('_', ".");
    Some(version_text.parse::<super::Version>().map(|version| Claim {
        version: Some(version),
        version_text,
        name: description.to_owned(),
        files: vec![(file.to_owned(), Role::Script(kind))],
    }))
}

/// `<digits>[.|_<digits>]*`, as Flyway writes versions.
fn is_version(v: &str) -> bool {
    v.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// Flyway's callback events, whose SQL files (`afterMigrate.sql`, `beforeEachMigrate__x.sql`)
/// Flyway runs around its commands.
const CALLBACKS: &[&str] = &[
    "beforeMigrate",
    "beforeEachMigrate",
    "beforeEachMigrateStatement",
    "afterEachMigrateStatement",
    "afterEachMigrateStatementError",
    "afterEachMigrate",
    "afterEachMigrateError",
    "beforeRepeatables",
    "afterVersioned",
    "afterMigrateApplied",
    "afterMigrate",
    "afterMigrateError",
    "afterMigrateOperationFinish",
    "beforeUndo",
    "beforeEachUndo",
    "beforeEachUndoStatement",
    "afterEachUndoStatement",
    "afterEachUndoStatementError",
    "afterEachUndo",
    "afterEachUndoError",
    "afterUndo",
    "afterUndoError",
    "beforeClean",
    "afterClean",
    "afterCleanError",
    "beforeValidate",
    "afterValidate",
    "afterValidateError",
    "beforeBaseline",
    "afterBaseline",
    "afterBaselineError",
    "beforeRepair",
    "afterRepair",
    "afterRepairError",
    "beforeInfo",
    "afterInfo",
    "afterInfoError",
    "afterInfoOperationFinish",
    "createSchema",
    "beforeCreateSchema",
    "beforeConnect",
    "afterConnect",
];

/// The callback event a file stem names (`afterMigrate`, `afterMigrate__notes`), if any.
fn callback<'s>(stem: &'s str, separator: &str) -> Option<&'s str> {
    let event = stem.split_once(separator).map_or(stem, |(e, _)| e);
    CALLBACKS.contains(&event).then_some(event)
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    let o = &new.options.flyway;
    let (n, name, sep) = (new.next, new.name, &o.separator);
    let suffix = o.suffixes.first().map_or(".sql", String::as_str);
    let mut files = vec![(
        format!("{}{n}{sep}{name}{suffix}", o.versioned_prefix),
        new.up_comment(),
    )];
    if new.down {
        files.push((
            format!("{}{n}{sep}{name}{suffix}", o.undo_prefix),
            new.down_comment(),
        ));
    }
    files
}

/// What Flyway decides from a script's statements, decided the same way: `Ok(true)` when the
/// script runs outside a transaction. A statement Flyway's parser for `rules.engine` says
/// cannot run in a transaction makes the whole file run outside one; a file that also holds
/// statements that can is refused unless `mixed` (Flyway's own rule). A placeholder in the
/// file's code (comments aside: Flyway replaces there too, but nothing runs there) is refused.
pub(super) fn read_statements(
    checks: &super::StatementRules,
    statements: &[Statement],
    rules: split::Rules,
    decide: bool,
) -> Result<bool, Problem> {
    let decide = decide && checks.transaction_by_statements;
    let mut first_in: Option<&Statement> = None;
    let mut first_out: Option<&Statement> = None;
    for s in statements {
        let scan = scan(&s.sql, rules);
        if let Some((prefix, suffix)) = &checks.placeholders {
            if let Some(at) = scan.code_find(&s.sql, prefix) {
                let line = s.line + line_breaks(&s.sql[..at]);
                let rest = &s.sql[at..];
                let shown = rest.find(suffix.as_str()).map_or_else(
                    || prefix.clone(),
                    |end| rest[..end + suffix.len()].to_owned(),
                );
                return Err(Problem {
                    line,
                    message: format!(
                        "Flyway placeholder `{shown}`: Flyway replaces it with a configured value before running the file, and shipgate runs the file as written; write the value into the file, or set the flyway setting placeholderReplacement = false if the text is meant literally"
                    ),
                });
            }
        }
        if rules.engine == Engine::Postgres && copy_from_stdin(&scan.keywords) {
            return Err(Problem {
                line: s.line,
                message: "`COPY … FROM STDIN` with its rows in the file: Flyway sends the lines that follow the statement as its data, shipgate runs SQL statements only; write the rows as INSERT statements".into(),
            });
        }
        if !decide {
            continue;
        }
        if can_run_in_transaction(&scan.keywords, rules) {
            first_in.get_or_insert(s);
        } else {
            first_out.get_or_insert(s);
        }
    }
    match (first_in, first_out) {
        (_, None) => Ok(false),
        (None, Some(_)) => Ok(true),
        (Some(_), Some(_)) if checks.mixed => Ok(true),
        (Some(inside), Some(outside)) => Err(Problem {
            line: outside.line,
            message: format!(
                "`{}` cannot run in a transaction, and the file's other statements (the first on line {}) run in one: Flyway refuses a file that mixes them unless `mixed` is set, and so does shipgate; move it to a file of its own, or set the flyway setting mixed = true to run the whole file outside a transaction",
                first_line(&outside.sql),
                inside.line
            ),
        }),
    }
}

/// The first line of a statement, for messages.
fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql).trim()
}

/// Line breaks in `text` (LF, CRLF or a lone CR, as file lines are counted).
fn line_breaks(text: &str) -> usize {
    let b = text.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count()
}

/// How many keywords of a statement Flyway's parsers read before deciding that it can run in a
/// transaction (`Parser.getTransactionalDetectionCutoff`).
const CUTOFF: usize = 10;

/// Whether Flyway's parser for the engine lets the statement whose leading keywords (at
/// parenthesis depth 0, upper case) are `keywords` run in a transaction. Flyway tests its
/// patterns after each keyword, against all the keywords so far
/// (`PostgreSQLParser.detectCanExecuteInTransaction`, `SQLiteParser`'s; MySQL's parser says
/// every statement can, its DDL committing implicitly whatever the transaction).
fn can_run_in_transaction(keywords: &[String], rules: split::Rules) -> bool {
    let k: Vec<&str> = keywords.iter().map(String::as_str).collect();
    (1..=k.len()).all(|n| !outside(&k[..n], rules))
}

/// Whether the keywords are PostgreSQL's `COPY … FROM STDIN`, whose rows Flyway's parser reads
/// from the lines after the statement (`PostgreSQLParser.COPY_FROM_STDIN_REGEX`).
fn copy_from_stdin(keywords: &[String]) -> bool {
    keywords.first().is_some_and(|k| k == "COPY")
        && keywords
            .windows(2)
            .any(|w| w[0] == "FROM" && w[1] == "STDIN")
}

/// Whether exactly these keywords match one of Flyway's non-transactional patterns.
fn outside(k: &[&str], rules: split::Rules) -> bool {
    match rules.engine {
        Engine::Postgres => {
            let old = rules.server_version.is_some_and(|v| v < 120_000);
            matches!(
                k,
                [
                    "CREATE" | "DROP",
                    "DATABASE" | "TABLESPACE" | "SUBSCRIPTION"
                ] | ["ALTER", "SYSTEM"]
                    | ["CREATE" | "DROP", "INDEX", "CONCURRENTLY"]
                    | ["CREATE" | "DROP", "UNIQUE", "INDEX", "CONCURRENTLY"]
                    | ["REINDEX", "SCHEMA" | "DATABASE" | "SYSTEM"]
                    | ["REINDEX", "VERBOSE", "SCHEMA" | "DATABASE" | "SYSTEM"]
                    | ["VACUUM"]
                    | ["DISCARD", "ALL"]
            ) || (old
                && k.first() == Some(&"ALTER")
                && k.get(1) == Some(&"TYPE")
                && k.ends_with(&["ADD", "VALUE"]))
        }
        Engine::Sqlite => k == ["PRAGMA", "FOREIGN_KEYS"],
        Engine::Mysql => false,
    }
}

/// A statement as Flyway's tokenizer sees what matters here: its leading keywords and where its
/// comments are.
struct Scan {
    /// Words of letters and `_` (Flyway's keywords: not quoted, not dotted, no digits) at
    /// parenthesis depth 0, upper case, up to the cutoff.
    keywords: Vec<String>,
    /// Byte ranges of comments (white space around them included).
    comments: Vec<std::ops::Range<usize>>,
}

impl Scan {
    /// The first occurrence of `needle` in `sql` that starts outside a comment.
    fn code_find(&self, sql: &str, needle: &str) -> Option<usize> {
        let mut from = 0;
        while let Some(p) = sql[from..].find(needle) {
            let at = from + p;
            if !self.comments.iter().any(|c| c.contains(&at)) {
                return Some(at);
            }
            from = at + needle.len().max(1);
        }
        None
    }
}

/// Reads a statement by `rules.engine`'s lexical rules: strings, quoted identifiers and
/// PostgreSQL's dollar-quoted bodies are code (a placeholder there is replaced by Flyway),
/// comments are not (MySQL's executable comments are code).
fn scan(sql: &str, rules: split::Rules) -> Scan {
    let b = sql.as_bytes();
    let engine = rules.engine;
    let skip = |i: usize| match engine {
        Engine::Postgres => split::postgres::skip_trivia(b, i),
        Engine::Sqlite => split::sqlite::skip_trivia(b, i),
        Engine::Mysql => split::mysql::skip_trivia(b, i),
    };
    let backslash = engine == Engine::Mysql && rules.mysql.backslash_escapes;
    let mut out = Scan {
        keywords: Vec::new(),
        comments: Vec::new(),
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let after = skip(i);
        if after > i {
            out.comments.push(i..after);
            i = after;
            continue;
        }
        let c = b[i];
        let next = b.get(i + 1).copied();
        i = match c {
            b'\'' => split::lex::quoted(b, i + 1, b'\'', backslash),
            b'"' => {
                let string = engine == Engine::Mysql && !rules.mysql.ansi_quotes;
                split::lex::quoted(b, i + 1, b'"', string && backslash)
            }
            b'`' if engine != Engine::Postgres => split::lex::quoted(b, i + 1, b'`', false),
            b'[' if engine == Engine::Sqlite => split::lex::past(b, i + 1, b"]"),
            b'$' if engine == Engine::Postgres => dollar_quoted(b, i).unwrap_or(i + 1),
            b'E' | b'e' if engine == Engine::Postgres && next == Some(b'\'') => {
                split::lex::quoted(b, i + 2, b'\'', true)
            }
            b'(' => {
                depth += 1;
                i + 1
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let end = word_end(b, i);
                // `schema.name` is an identifier to Flyway, not a keyword.
                let dotted = b.get(end) == Some(&b'.');
                let word = &sql[i..end];
                let keyword = word.chars().all(|c| c.is_alphabetic() || c == '_');
                if depth == 0 && keyword && !dotted && out.keywords.len() < CUTOFF {
                    out.keywords.push(word.to_uppercase());
                }
                if dotted {
                    word_end(b, end + 1)
                } else {
                    end
                }
            }
            _ if c.is_ascii_digit() => word_end(b, i),
            _ => i + 1,
        };
    }
    out
}

/// The end of a run of word bytes (letters, digits, `_`, `$`, non-ASCII) starting at `i`.
fn word_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80))
        .map_or(b.len(), |p| i + p)
}

/// The end of a PostgreSQL dollar-quoted string starting at `i` (`$$…$$`, `$tag$…$tag$`), or
/// `None` when the `$` opens none (a parameter such as `$1`).
fn dollar_quoted(b: &[u8], i: usize) -> Option<usize> {
    let tag_end = b[i + 1..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
        .map(|p| i + 1 + p)?;
    if b[tag_end] != b'$' || b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let tag = &b[i..=tag_end];
    Some(split::lex::past(b, tag_end + 1, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_claim(file: &str) -> Option<Result<Claim, String>> {
        claim(Entry::File(file), &FlywayOptions::default())
    }

    #[test]
    fn reads_flyway_names() {
        let c = default_claim("V2__Add_users.sql")
            .expect("claimed")
            .expect("valid");
        assert_eq!(
            (c.version_text.as_str(), c.name.as_str()),
            ("2", "Add_users")
        );
        assert_eq!(c.files[0].1, Role::Script(Kind::Up));
        let u = default_claim("U2__Add_users.sql")
            .expect("claimed")
            .expect("valid");
        assert_eq!(u.files[0].1, Role::Script(Kind::Down));
        let r = default_claim("R__Views.SQL")
            .expect("claimed")
            .expect("valid");
        assert_eq!((r.version, r.name.as_str()), (None, "Views"));
        assert_eq!(r.files[0].1, Role::Script(Kind::Repeatable));
        let dotted = default_claim("V1.2__dotted.sql")
            .expect("claimed")
            .expect("valid");
        assert_eq!(
            dotted.version,
            Some(super::super::Version::from_parts(&[1, 2]))
        );
        assert_eq!(default_claim("1_init.sql"), None);
        assert_eq!(default_claim("Vx__init.sql"), None);
        assert_eq!(default_claim("README.md"), None);
        let refused = |file: &str, why: &str| match default_claim(file) {
            Some(Err(e)) => assert!(e.contains(why), "{file}: {e}"),
            other => panic!("{file}: {other:?}"),
        };
        refused("B5__base.sql", "baseline");
        refused("R__.sql", "no description");
        refused("V3__a.sql.conf", "script configuration");
        refused("afterMigrate.sql", "callback (`afterMigrate`)");
        refused("beforeEachMigrate__audit.sql", "callback");
        assert_eq!(default_claim("notes.sql.conf"), None);
    }

    #[test]
    fn reads_the_projects_own_prefixes_separator_and_suffixes() {
        let mut o = FlywayOptions::default();
        for (k, v) in [
            ("sqlMigrationPrefix", "M"),
            ("flyway.repeatableSqlMigrationPrefix", "RM"),
            ("sql_migration_separator", "-"),
            ("SQLMIGRATIONSUFFIXES", ".pgsql, .sql"),
        ] {
            o.set(k, v).expect("a known setting");
        }
        let c = |f: &str| claim(Entry::File(f), &o);
        let m = c("M7-add.pgsql").expect("claimed").expect("valid");
        assert_eq!((m.version_text.as_str(), m.name.as_str()), ("7", "add"));
        // The longer prefix wins: `RM` is repeatable, not an `M…` version.
        let r = c("RM-views.sql").expect("claimed").expect("valid");
        assert_eq!((r.version, r.name.as_str()), (None, "views"));
        assert_eq!(c("V1__a.sql"), None);
        assert!(o.set("sqlMigrationPrefix", "").is_err());
        assert!(o.set("mixed", "perhaps").is_err());
        assert!(o.set("cleanDisabled", "true").is_err());
    }

    fn decide(sql: &str, engine: Engine, mixed: bool) -> Result<bool, Problem> {
        let rules = split::Rules::from(engine);
        let statements = split::statements(sql, rules);
        let checks = super::super::StatementRules {
            layout: Layout::Flyway,
            transaction_by_statements: true,
            mixed,
            placeholders: Some(("${".into(), "}".into())),
        };
        read_statements(&checks, &statements, rules, true)
    }

    #[test]
    fn decides_the_transaction_as_flyways_parsers_do() {
        let cases: &[(&str, Engine, bool)] = &[
            (
                "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
                Engine::Postgres,
                false,
            ),
            (
                "CREATE INDEX CONCURRENTLY i ON t (id);",
                Engine::Postgres,
                true,
            ),
            (
                "-- why\ncreate unique index concurrently if not exists i on t (id);",
                Engine::Postgres,
                true,
            ),
            ("DROP INDEX CONCURRENTLY i;", Engine::Postgres, true),
            ("VACUUM ANALYZE t;", Engine::Postgres, true),
            ("REINDEX (VERBOSE) SCHEMA public;", Engine::Postgres, true),
            ("REINDEX TABLE t;", Engine::Postgres, false),
            ("CREATE DATABASE x;", Engine::Postgres, true),
            (
                "ALTER SYSTEM SET work_mem = '64MB';",
                Engine::Postgres,
                true,
            ),
            ("DISCARD ALL;", Engine::Postgres, true),
            // Only PostgreSQL before 12 needs ADD VALUE outside a transaction.
            ("ALTER TYPE mood ADD VALUE 'meh';", Engine::Postgres, false),
            // Words in strings, quoted names and parentheses are not keywords.
            (
                "SELECT 'VACUUM'; CREATE TABLE \"vacuum\" (x int);",
                Engine::Postgres,
                false,
            ),
            ("PRAGMA foreign_keys = OFF;", Engine::Sqlite, true),
            ("PRAGMA journal_mode = WAL;", Engine::Sqlite, false),
            (
                "CREATE INDEX CONCURRENTLY i ON t (id);",
                Engine::Sqlite,
                false,
            ),
            ("CREATE TABLE t (id int); VACUUM;", Engine::Mysql, false),
        ];
        for (sql, engine, outside) in cases {
            assert_eq!(decide(sql, *engine, false), Ok(*outside), "{engine}: {sql}");
        }
        let old = split::Rules {
            server_version: Some(110_000),
            ..split::Rules::from(Engine::Postgres)
        };
        let alter = split::statements("ALTER TYPE public.mood ADD VALUE 'meh';", old);
        let checks = FlywayOptions::default().statement_rules();
        assert_eq!(read_statements(&checks, &alter, old, true), Ok(true));
    }

    #[test]
    fn a_file_that_mixes_both_kinds_is_refused_unless_mixed() {
        let sql = "CREATE TABLE t (id int);\n\nCREATE INDEX CONCURRENTLY i ON t (id);\n";
        let p = decide(sql, Engine::Postgres, false).expect_err("mixed");
        assert_eq!(p.line, 3);
        assert!(
            p.message.contains("CREATE INDEX CONCURRENTLY i ON t (id)")
                && p.message.contains("line 1")
                && p.message.contains("mixed"),
            "{}",
            p.message
        );
        assert_eq!(decide(sql, Engine::Postgres, true), Ok(true));
    }

    #[test]
    fn a_placeholder_in_code_is_refused_with_its_line() {
        let refused: &[(&str, Engine, usize, &str)] = &[
            (
                "SELECT 1;\nCREATE TABLE ${schema}.t (id int);",
                Engine::Postgres,
                2,
                "${schema}",
            ),
            (
                "INSERT INTO t VALUES ('${flyway:user}');",
                Engine::Postgres,
                1,
                "${flyway:user}",
            ),
            (
                "CREATE FUNCTION f() RETURNS int AS $$\nSELECT ${x}\n$$ LANGUAGE sql;",
                Engine::Postgres,
                2,
                "${x}",
            ),
            ("SELECT 1 /*! , ${x} */;", Engine::Mysql, 1, "${x}"),
            ("SELECT '-- ${x}';", Engine::Sqlite, 1, "${x}"),
        ];
        for (sql, engine, line, shown) in refused {
            let p = decide(sql, *engine, false).expect_err(sql);
            assert_eq!(p.line, *line, "{sql}");
            assert!(p.message.contains(&format!("`{shown}`")), "{}", p.message);
        }
        let allowed = [
            "-- ${x} in a comment\nSELECT 1;",
            "SELECT 1 /* ${x} */;",
            "SELECT 1; -- ${x}",
        ];
        for sql in allowed {
            assert_eq!(decide(sql, Engine::Postgres, false), Ok(false), "{sql}");
        }
        let mut off = FlywayOptions::default();
        off.set("placeholderReplacement", "false").expect("valid");
        let rules = split::Rules::from(Engine::Postgres);
        let s = split::statements("SELECT '${x}';", rules);
        assert_eq!(
            read_statements(&off.statement_rules(), &s, rules, true),
            Ok(false)
        );
    }

    #[test]
    fn copy_from_stdin_with_rows_in_the_file_is_refused() {
        let copy = decide(
            "COPY t (a, b) FROM STDIN;\n1\t2\n\\.\n",
            Engine::Postgres,
            false,
        );
        assert!(
            copy.as_ref()
                .is_err_and(|p| p.line == 1 && p.message.contains("FROM STDIN")),
            "{copy:?}"
        );
    }
}
