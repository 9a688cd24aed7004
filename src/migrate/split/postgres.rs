//! PostgreSQL's own reading of a migration file, through libpg_query: the server's scanner and
//! grammar (PostgreSQL 17), compiled in.
//!
//! Owns where a PostgreSQL statement begins and ends. A file the grammar accepts is split
//! exactly as the server splits a simple-query message; a file it rejects is split at the
//! scanner's top-level `;` tokens (the server rejects such a file as a whole when it arrives in
//! one message, and runs statement-by-statement files one statement at a time, where each meets
//! its own error). Offsets are the file's own bytes, so line numbers are exact and the SQL that
//! runs is the file's text. Which statements end or open a transaction is decided once, for
//! every engine, by `split::transaction_control` on these exact statements.

use super::lex::past as skip_until;
use super::{Piece, Statement};
use pg_query::protobuf::{self, Token};

/// One statement as PostgreSQL reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStatement {
    /// Its text and where its first token stands.
    pub statement: Statement,
    /// Byte range in the file, from the first token to the end of the statement (before `;`).
    pub range: std::ops::Range<usize>,
}

/// A file as PostgreSQL reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgFile {
    /// Its statements, in order (statements holding only comments are not statements).
    pub statements: Vec<PgStatement>,
    /// The grammar's error, when the file does not parse (the split then comes from the
    /// scanner alone).
    pub syntax_error: Option<String>,
}

/// Why a file cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    /// A NUL byte: PostgreSQL ends a query string there, so what follows would never run.
    #[error("a NUL byte at offset {0}: PostgreSQL would stop reading the file there")]
    Nul(usize),
}

/// Reads `sql` the way PostgreSQL does.
pub fn read(sql: &str) -> Result<PgFile, PgError> {
    if let Some(at) = sql.bytes().position(|b| b == 0) {
        return Err(PgError::Nul(at));
    }
    let lines = Lines::new(sql);
    // The raw parser's statement locations: the server's own boundaries, in linear time (the
    // full parse tree, which the lint reads per statement, costs far more on large files).
    if let Ok(pieces) = pg_query::split_with_parser(sql) {
        let base = sql.as_ptr() as usize;
        let statements = pieces
            .iter()
            .filter_map(|piece| {
                let from = (piece.as_ptr() as usize).saturating_sub(base);
                let to = (from + piece.len()).min(sql.len());
                let first = skip_trivia(sql.as_bytes(), from);
                if first >= to {
                    return None;
                }
                let end = trim_end(sql, first, to);
                Some(statement(sql, &lines, first, end))
            })
            .collect();
        return Ok(PgFile {
            statements,
            syntax_error: None,
        });
    }
    let syntax_error = pg_query::parse(sql).err().map(|e| e.to_string());
    match pg_query::scan(sql) {
        Ok(scan) => Ok(PgFile {
            statements: from_tokens(sql, &lines, &scan.tokens),
            syntax_error,
        }),
        // An unterminated quote or comment: the scanner stops; the server would reject the
        // statement it is in. Everything is one statement from the first code byte.
        Err(e) => {
            let start = skip_trivia(sql.as_bytes(), 0);
            let statements = if start >= sql.len() {
                Vec::new()
            } else {
                vec![statement(sql, &lines, start, sql.trim_end().len())]
            };
            Ok(PgFile {
                statements,
                syntax_error: Some(syntax_error.unwrap_or_else(|| e.to_string())),
            })
        }
    }
}

fn is_comment(t: &protobuf::ScanToken) -> bool {
    t.token == Token::SqlComment as i32 || t.token == Token::CComment as i32
}

/// The statements of a file the grammar rejected: runs of tokens between top-level `;`
/// tokens, keeping `BEGIN ATOMIC … END` bodies whole.
fn from_tokens(sql: &str, lines: &Lines, tokens: &[protobuf::ScanToken]) -> Vec<PgStatement> {
    let mut out = Vec::new();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    let mut parens = 0usize;
    let mut atomic = 0usize;
    let mut previous: Option<i32> = None;
    for t in tokens {
        if is_comment(t) {
            continue;
        }
        let kind = t.token;
        if kind == i32::from(b';') && parens == 0 && atomic == 0 {
            if let Some(start) = first.take() {
                let end = trim_end(sql, start, last_end);
                out.push(statement(sql, lines, start, end));
            }
            previous = Some(kind);
            continue;
        }
        if first.is_none() {
            first = Some(t.start as usize);
        }
        if kind == i32::from(b'(') {
            parens += 1;
        } else if kind == i32::from(b')') {
            parens = parens.saturating_sub(1);
        } else if (kind == Token::Atomic as i32 && previous == Some(Token::BeginP as i32))
            || (atomic > 0 && kind == Token::Case as i32)
        {
            atomic += 1;
        } else if atomic > 0 && kind == Token::EndP as i32 {
            atomic -= 1;
        }
        last_end = t.end as usize;
        previous = Some(kind);
    }
    if let Some(start) = first {
        let end = trim_end(sql, start, last_end.max(start));
        out.push(statement(sql, lines, start, end));
    }
    out
}

/// `end` moved back over trailing white space (the statement's text ends at its last token).
fn trim_end(sql: &str, start: usize, end: usize) -> usize {
    let end = end.min(sql.len()).max(start);
    start + sql[start..end].trim_end().len()
}

fn statement(sql: &str, lines: &Lines, start: usize, end: usize) -> PgStatement {
    let (line, column) = lines.position(sql, start);
    PgStatement {
        statement: Statement {
            sql: sql[start..end].to_owned(),
            line,
            column,
        },
        range: start..end,
    }
}

/// Line starts of a file, for turning byte offsets into 1-based lines and columns.
struct Lines(Vec<usize>);

impl Lines {
    fn new(sql: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(
            sql.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines(starts)
    }

    /// Line and column (in characters) of byte `offset`.
    fn position(&self, sql: &str, offset: usize) -> (usize, usize) {
        let line = self.0.partition_point(|&s| s <= offset);
        let start = self.0[line - 1];
        let column = sql
            .get(start..offset)
            .map_or(1, |prefix| prefix.chars().count() + 1);
        (line, column)
    }
}

/// The stretches between statement terminators, as PostgreSQL's scanner and grammar find them:
/// each runs from just after the previous terminator (leading comments included) to the end of
/// its statement.
pub(crate) fn pieces(sql: &str) -> Vec<Piece> {
    let Ok(file) = read(sql) else {
        // A NUL byte (refused by the file reader before this): one piece, the server's problem.
        return vec![Piece {
            start: 0,
            end: sql.len(),
            next: sql.len(),
            code: !sql.trim().is_empty(),
        }];
    };
    let mut out = Vec::with_capacity(file.statements.len());
    let mut from = 0;
    for s in &file.statements {
        let next = terminator_after(sql, s.range.end);
        out.push(Piece {
            start: from.min(s.range.start),
            end: s.range.end,
            next,
            code: true,
        });
        from = next;
    }
    out
}

/// The first byte after the `;` that ends a statement ending at `end` (the end of the text if
/// none follows): only white space and comments may stand between.
fn terminator_after(sql: &str, end: usize) -> usize {
    let at = skip_trivia(sql.as_bytes(), end);
    if sql.as_bytes().get(at) == Some(&b';') {
        at + 1
    } else {
        end
    }
}

/// The first byte at or after `i` that is not white space or a comment.
pub(crate) fn skip_trivia(bytes: &[u8], mut i: usize) -> usize {
    loop {
        match bytes.get(i) {
            Some(b'-') if bytes.get(i + 1) == Some(&b'-') => i = skip_until(bytes, i + 2, b"\n"),
            Some(b'/') if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i + 2),
            Some(c) if c.is_ascii_whitespace() => i += 1,
            _ => return i,
        }
    }
}

fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::super::Statement;
    use crate::config::Engine;

    fn statements(sql: &str) -> Vec<Statement> {
        super::super::statements(sql, Engine::Postgres)
    }

    fn texts(sql: &str) -> Vec<String> {
        statements(sql).into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let cases: &[(&str, &[&str])] = &[
            ("SELECT 1; SELECT 2;", &["SELECT 1", "SELECT 2"]),
            ("SELECT 1", &["SELECT 1"]),
            ("SELECT ';'; SELECT 2", &["SELECT ';'", "SELECT 2"]),
            ("SELECT 'it''s;'; SELECT 2", &["SELECT 'it''s;'", "SELECT 2"]),
            ("SELECT E'a\\';b'; SELECT 2", &["SELECT E'a\\';b'", "SELECT 2"]),
            ("SELECT \"a;b\" FROM t;", &["SELECT \"a;b\" FROM t"]),
            ("-- a; comment\nSELECT 1;", &["-- a; comment\nSELECT 1"]),
            ("/* a; /* nested; */ b; */ SELECT 1;", &["/* a; /* nested; */ b; */ SELECT 1"]),
            (
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 2;",
                &["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT 2"],
            ),
            ("DO $body$ BEGIN PERFORM 1; END $body$; SELECT 2", &["DO $body$ BEGIN PERFORM 1; END $body$", "SELECT 2"]),
            ("PREPARE p AS SELECT $1; SELECT 2", &["PREPARE p AS SELECT $1", "SELECT 2"]),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 2",
                &[
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END",
                    "SELECT 2",
                ],
            ),
            // PostgreSQL has no backtick quotes: the server splits there.
            ("SELECT `a;b` FROM t", &["SELECT `a", "b` FROM t"]),
            // An identifier may end in `$`: `é$a$` is not a dollar quote.
            ("SELECT 1 AS é$a$; COMMIT; SELECT 2", &["SELECT 1 AS é$a$", "COMMIT", "SELECT 2"]),
            ("  ;; -- only comments\n/* x */ ;", &[]),
            ("", &[]),
        ];
        for (sql, want) in cases {
            assert_eq!(texts(sql), *want, "input: {sql}");
        }
    }

    #[test]
    fn reports_the_line_each_statement_starts_on() {
        let got = statements("SELECT 1;\n\n  -- note\nSELECT\n 2;\nSELECT 3;");
        let lines: Vec<usize> = got.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![1, 3, 6]);
        let at: Vec<(usize, usize)> = statements("SELECT 1; SELECT 2;\n  SELECT 3;")
            .iter()
            .map(|s| (s.line, s.column))
            .collect();
        assert_eq!(at, vec![(1, 1), (1, 11), (2, 3)]);
    }

    #[test]
    fn non_ascii_code_splits_without_panicking() {
        // A proptest found this: stepping byte by byte over `é` outside quotes must not slice
        // the text inside the character.
        for engine in [Engine::Postgres, Engine::Sqlite, Engine::Mysql] {
            let got =
                super::super::statements("CREATE TABLE café (prénom text); SELECT '€'; 𑎮ଆ", engine);
            let texts: Vec<&str> = got.iter().map(|s| s.sql.as_str()).collect();
            assert_eq!(
                texts,
                ["CREATE TABLE café (prénom text)", "SELECT '€'", "𑎮ଆ"],
                "{engine}"
            );
        }
    }

    #[test]
    fn unterminated_constructs_do_not_panic() {
        for sql in [
            "SELECT 'abc",
            "SELECT $$abc",
            "/* abc",
            "SELECT \"abc",
            "$",
            "E'",
            "$a",
        ] {
            let _ = statements(sql);
        }
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    /// Each statement, its line, and the transaction control it is (by the split module's
    /// one rule, `transaction_control`).
    fn texts(sql: &str) -> Vec<(String, usize, Option<String>)> {
        read(sql)
            .expect("readable")
            .statements
            .into_iter()
            .map(|s| {
                let control = control(&s.statement.sql);
                (s.statement.sql, s.statement.line, control)
            })
            .collect()
    }

    fn control(sql: &str) -> Option<String> {
        super::super::transaction_control(sql, crate::config::Engine::Postgres)
    }

    #[test]
    fn splits_where_the_server_does() {
        let got = texts("SELECT 1 AS é$a$; COMMIT; SELECT 2;");
        assert_eq!(
            got,
            [
                ("SELECT 1 AS é$a$".into(), 1, None),
                ("COMMIT".into(), 1, Some("COMMIT".into())),
                ("SELECT 2".into(), 1, None),
            ]
        );
        let body = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql COST 100 AS $f$\nBEGIN\n  RETURN 1; -- ;\nEND\n$f$;\n-- a comment\n\nCOMMIT;\n";
        let got = texts(body);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1], ("COMMIT".into(), 8, Some("COMMIT".into())));
        let atomic = "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nEND;";
        let got = texts(atomic);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].2.as_deref(), Some("END"));
    }

    #[test]
    fn knows_every_form_of_transaction_control() {
        for (sql, want) in [
            ("BEGIN", Some("BEGIN")),
            ("begin work", Some("BEGIN")),
            (
                "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                Some("START"),
            ),
            ("END", Some("END")),
            ("COMMIT AND CHAIN", Some("COMMIT")),
            ("PREPARE TRANSACTION 'x'", Some("PREPARE")),
            ("ABORT", Some("ABORT")),
            ("ROLLBACK", Some("ROLLBACK")),
            ("ROLLBACK TO SAVEPOINT a", None),
            ("SAVEPOINT a", None),
            ("RELEASE SAVEPOINT a", None),
            ("DO $$ BEGIN COMMIT; END $$", None),
            ("SELECT 'COMMIT'", None),
        ] {
            let got = texts(&format!("{sql};"));
            assert_eq!(got.len(), 1, "{sql}: {got:?}");
            assert_eq!(got[0].2.as_deref(), want, "{sql}");
        }
    }

    #[test]
    fn a_file_the_grammar_rejects_is_split_by_the_scanner() {
        let file = read("CREATE TABLE t (id int);\nSELEKT 1;\nCOMMIT;\nSELECT 'a;b';\n")
            .expect("readable");
        assert!(file.syntax_error.is_some());
        let got: Vec<_> = file
            .statements
            .iter()
            .map(|s| {
                let sql = s.statement.sql.as_str();
                (sql, s.statement.line, control(sql))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("CREATE TABLE t (id int)", 1, None),
                ("SELEKT 1", 2, None),
                ("COMMIT", 3, Some("COMMIT".into())),
                ("SELECT 'a;b'", 4, None),
            ]
        );
    }

    #[test]
    fn positions_are_exact_and_comment_only_text_is_no_statement() {
        let file =
            read("-- header\n/* a; b */\n  SELECT 1; -- trailing\n\n\tSELECT\n 2;\n-- end only\n")
                .expect("readable");
        let got: Vec<_> = file
            .statements
            .iter()
            .map(|s| {
                (
                    s.statement.line,
                    s.statement.column,
                    s.statement.sql.as_str(),
                )
            })
            .collect();
        assert_eq!(got, [(3, 3, "SELECT 1"), (5, 2, "SELECT\n 2")]);
        assert!(read("-- nothing\n/* here */\n")
            .expect("readable")
            .statements
            .is_empty());
        assert!(read("").expect("readable").statements.is_empty());
    }

    #[test]
    fn a_nul_byte_is_an_error_and_an_unterminated_quote_one_statement() {
        assert_eq!(read("SELECT 1;\0SELECT 2;"), Err(PgError::Nul(9)));
        let file = read("SELECT 'open;\nCOMMIT;").expect("readable");
        assert_eq!(file.statements.len(), 1);
        assert!(file.syntax_error.is_some());
    }
}
