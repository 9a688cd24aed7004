//! Splitting a migration file into statements, by the lexical rules of the engine that runs it.
//!
//! Owns: where one statement ends and the next begins, and nothing else. It does not parse
//! SQL: the server decides what a statement means; shipgate only has to agree with it about
//! where one ends, which is a lexical question with a different answer per engine (`[it's]` is
//! an identifier to SQLite and the start of a string elsewhere; `/*!…*/` is code to MySQL and a
//! comment elsewhere). One module per engine holds those rules, behind [`statements`]:
//! - [`postgres`]: `''` and `E'…'` strings, `$tag$` bodies, nested block comments, `BEGIN
//!   ATOMIC … END`;
//! - [`sqlite`]: SQLite's tokenizer and its `CREATE TRIGGER … BEGIN … END` rule
//!   (`sqlite3_complete`), checked against SQLite itself by a property test;
//! - [`mysql`]: backslash escapes, `#` and `-- ` comments, executable comments, routine and
//!   trigger bodies, the client's `DELIMITER` lines.
//!
//! Pure: no I/O. Every engine module reads each byte a bounded number of times, so a file
//! splits in time linear in its size.

use std::ops::Range;

use crate::config::Engine;

pub mod mysql;
pub mod postgres;
pub mod sqlite;

/// One statement of a file: its text (without the trailing `;`) and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's SQL, trimmed, without the terminating semicolon: the file's own bytes.
    pub sql: String,
    /// The line of the file on which the statement's first token stands (1-based).
    pub line: usize,
    /// The column (1-based, in characters) of that first token on its line.
    pub column: usize,
}

/// The `sql_mode` flags that change where a MySQL/MariaDB statement ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MysqlMode {
    /// Backslash escapes in strings (on unless `NO_BACKSLASH_ESCAPES`).
    pub backslash_escapes: bool,
    /// `"…"` is an identifier, not a string (`ANSI_QUOTES`).
    pub ansi_quotes: bool,
}

impl Default for MysqlMode {
    fn default() -> MysqlMode {
        MysqlMode {
            backslash_escapes: true,
            ansi_quotes: false,
        }
    }
}

impl MysqlMode {
    /// The flags of a `sql_mode` value as the server prints it.
    pub fn from_sql_mode(sql_mode: &str) -> MysqlMode {
        let has = |flag: &str| {
            sql_mode
                .split(',')
                .any(|m| m.trim().eq_ignore_ascii_case(flag))
        };
        MysqlMode {
            // ANSI mode includes ANSI_QUOTES; the server prints the expansion too.
            backslash_escapes: !has("NO_BACKSLASH_ESCAPES"),
            ansi_quotes: has("ANSI_QUOTES") || has("ANSI"),
        }
    }
}

/// Whose rules a file is read by: the engine, and for MySQL/MariaDB the session's
/// `sql_mode` flags when shipgate is connected (the default `sql_mode` otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The engine.
    pub engine: Engine,
    /// MySQL's lexical flags.
    pub mysql: MysqlMode,
    /// The server's version number (PostgreSQL's `server_version_num`, 150004 for 15.4) when
    /// connected: statement boundaries never depend on it, but what a layout decides from the
    /// statements may (Flyway runs `ALTER TYPE … ADD VALUE` outside a transaction before 12).
    pub server_version: Option<u32>,
}

impl From<Engine> for Rules {
    fn from(engine: Engine) -> Rules {
        Rules {
            engine,
            mysql: MysqlMode::default(),
            server_version: None,
        }
    }
}

/// Splits `sql` into its statements by `rules`, dropping statements that hold only comments
/// and white space.
pub fn statements(sql: &str, rules: impl Into<Rules>) -> Vec<Statement> {
    spanned(sql, rules).into_iter().map(|(s, _)| s).collect()
}

/// [`statements`], each with the bytes of `sql` it spans: from its first token to the end of
/// its terminator (or of the text).
pub fn spanned(sql: &str, rules: impl Into<Rules>) -> Vec<(Statement, Range<usize>)> {
    let rules = rules.into();
    let pieces = match rules.engine {
        Engine::Postgres => postgres::pieces(sql),
        Engine::Sqlite => sqlite::pieces(sql),
        Engine::Mysql => mysql::pieces(sql, rules.mysql),
    };
    let mut lines = Lines::default();
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        if !p.code {
            continue;
        }
        let text = &sql[p.start..p.end];
        let lead = text.len() - text.trim_start().len();
        let start = p.start + lead;
        let (line, column) = lines.at(sql, start);
        let statement = Statement {
            sql: text.trim().to_owned(),
            line,
            column,
        };
        out.push((statement, start..p.next));
    }
    out
}

/// The first `n` words of a statement, upper-cased, after comments, as `engine` reads them
/// (MySQL's executable comments are code). Stops early at anything that is not a word.
pub fn leading_words(sql: &str, engine: Engine, n: usize) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut words = Vec::with_capacity(n);
    while words.len() < n {
        i = match engine {
            Engine::Postgres => postgres::skip_trivia(bytes, i),
            Engine::Sqlite => sqlite::skip_trivia(bytes, i),
            Engine::Mysql => mysql::skip_trivia(bytes, i),
        };
        let end = bytes[i..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(bytes.len(), |p| i + p);
        if end == i {
            break;
        }
        words.push(sql[i..end].to_ascii_uppercase());
        i = end;
    }
    words
}

/// Whether a statement ends the transaction shipgate runs a file in (or starts one inside
/// it), as `engine` reads it: `BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK` (not
/// `ROLLBACK TO`), `ABORT`, PostgreSQL's `PREPARE TRANSACTION`; on MySQL also `XA …`, but not the compound statement `BEGIN NOT
/// ATOMIC`. `SAVEPOINT` and `RELEASE` work inside the transaction. The keyword, when it is.
pub fn transaction_control(sql: &str, engine: Engine) -> Option<String> {
    let words = leading_words(sql, engine, 3);
    let first = words.first()?;
    let second = words.get(1).map(String::as_str);
    let control = match first.as_str() {
        "COMMIT" | "END" | "ABORT" => true,
        "START" => second == Some("TRANSACTION") || engine != Engine::Mysql,
        "ROLLBACK" => second != Some("TO"),
        "BEGIN" => !(engine == Engine::Mysql && second == Some("NOT")),
        "XA" => engine == Engine::Mysql,
        // PostgreSQL's two-phase commit: it ends the transaction it prepares.
        "PREPARE" => engine == Engine::Postgres && second == Some("TRANSACTION"),
        _ => false,
    };
    control.then(|| first.clone())
}

/// One stretch of a file between statement terminators, as an engine module finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    /// First byte of the piece.
    pub start: usize,
    /// End of the piece's text, before its terminator.
    pub end: usize,
    /// First byte after its terminator.
    pub next: usize,
    /// Whether it holds anything the server runs (not only comments and white space).
    pub code: bool,
}

/// Where statements start, as line and column: advanced forward only, so numbering every
/// statement of a file reads the file once. A line ends at LF, CRLF or a lone CR, as the
/// normalised text the checksum and directives read has it.
#[derive(Default)]
struct Lines {
    /// Bytes before this offset have been counted.
    pos: usize,
    /// Line breaks before `pos`.
    newlines: usize,
    /// Offset of the first byte of the line `pos` is on.
    line_start: usize,
}

impl Lines {
    fn at(&mut self, sql: &str, at: usize) -> (usize, usize) {
        let bytes = sql.as_bytes();
        for i in self.pos..at {
            let lone_cr = bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
            if bytes[i] == b'\n' || lone_cr {
                self.newlines += 1;
                self.line_start = i + 1;
            }
        }
        self.pos = at;
        (
            1 + self.newlines,
            1 + sql[self.line_start..at].chars().count(),
        )
    }
}

/// Shared lexing steps.
pub(crate) mod lex {
    /// The end of the quoted run that starts after the opening quote at `i - 1`: after the
    /// closing `quote`, a doubled quote standing for one; with `backslash`, `\` escapes the
    /// next byte. Unterminated: the end of the text.
    pub fn quoted(bytes: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
        while i < bytes.len() {
            let c = bytes[i];
            if backslash && c == b'\\' {
                i += 2;
            } else if c == quote {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i += 1;
            }
        }
        bytes.len()
    }

    /// Just after the first `needle` at or after `from`; the end of the text without one.
    pub fn past(bytes: &[u8], from: usize, needle: &[u8]) -> usize {
        let haystack = &bytes[from.min(bytes.len())..];
        let found = match needle {
            // Comments to the end of the line: a byte search, not a window compare per byte.
            [b] => haystack.iter().position(|c| c == b),
            _ => haystack.windows(needle.len()).position(|w| w == needle),
        };
        found.map_or(bytes.len(), |p| from + p + needle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_transaction_control_by_each_engines_rules() {
        let cases: &[(&str, Engine, Option<&str>)] = &[
            ("COMMIT", Engine::Sqlite, Some("COMMIT")),
            ("end transaction", Engine::Sqlite, Some("END")),
            ("-- note\nBEGIN IMMEDIATE", Engine::Sqlite, Some("BEGIN")),
            ("ROLLBACK TO sp", Engine::Sqlite, None),
            ("SAVEPOINT sp", Engine::Sqlite, None),
            ("# note\nCOMMIT", Engine::Mysql, Some("COMMIT")),
            ("/*!40101 COMMIT */", Engine::Mysql, Some("COMMIT")),
            ("START TRANSACTION", Engine::Mysql, Some("START")),
            ("START SLAVE", Engine::Mysql, None),
            ("BEGIN NOT ATOMIC SELECT 1; END", Engine::Mysql, None),
            ("XA START 'x'", Engine::Mysql, Some("XA")),
            ("/* c */ commit work", Engine::Postgres, Some("COMMIT")),
            ("CREATE TABLE t (x int)", Engine::Postgres, None),
        ];
        for (sql, engine, want) in cases {
            assert_eq!(
                transaction_control(sql, *engine).as_deref(),
                *want,
                "{engine}: {sql}"
            );
        }
    }

    #[test]
    fn spans_cover_statement_and_terminator_and_lines_count_lone_crs() {
        let sql = "BEGIN;\rINSERT INTO t VALUES ('a\rb');\r\nCOMMIT;";
        let got = spanned(sql, Engine::Sqlite);
        let spans: Vec<&str> = got.iter().map(|(_, r)| &sql[r.clone()]).collect();
        assert_eq!(
            spans,
            ["BEGIN;", "INSERT INTO t VALUES ('a\rb');", "COMMIT;"]
        );
        let lines: Vec<usize> = got.iter().map(|(s, _)| s.line).collect();
        // The CR inside the string is a line break to the normalised text as well.
        assert_eq!(lines, [1, 2, 4]);
    }
}

#[cfg(test)]
mod modes {
    use super::*;

    fn texts(sql: &str, mode: MysqlMode) -> Vec<String> {
        statements(
            sql,
            Rules {
                engine: Engine::Mysql,
                mysql: mode,
                server_version: None,
            },
        )
        .into_iter()
        .map(|s| s.sql)
        .collect()
    }

    #[test]
    fn mysql_statements_end_where_the_sessions_sql_mode_says() {
        let sql = "INSERT INTO t VALUES ('x\\');\nCOMMIT;\nSELECT \"a\\\"; SELECT 2";
        // The default sql_mode: `\'` escapes the quote, `\"` too.
        assert_eq!(texts(sql, MysqlMode::default()).len(), 1);
        // NO_BACKSLASH_ESCAPES: the string ends at `x\'`, so COMMIT is a statement.
        let nbe = MysqlMode::from_sql_mode("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES");
        assert!(!nbe.backslash_escapes && !nbe.ansi_quotes);
        let got = texts(sql, nbe);
        assert_eq!(got[..2], ["INSERT INTO t VALUES ('x\\')", "COMMIT"]);
        // ANSI_QUOTES as well: `"a\"` is an identifier, which no backslash escapes.
        let ansi = MysqlMode::from_sql_mode("ansi_quotes,no_backslash_escapes");
        assert!(ansi.ansi_quotes);
        assert_eq!(
            texts(sql, ansi),
            [
                "INSERT INTO t VALUES ('x\\')",
                "COMMIT",
                "SELECT \"a\\\"",
                "SELECT 2"
            ]
        );
        // ANSI_QUOTES alone: `'x\'` still escapes, so the first string runs on.
        assert_eq!(
            MysqlMode::from_sql_mode("ANSI"),
            MysqlMode {
                backslash_escapes: true,
                ansi_quotes: true
            }
        );
    }
}
