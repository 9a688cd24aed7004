//! PostgreSQL's lexical rules for where statements end.
//!
//! Owns: finding the top-level `;` that end statements, skipping string literals
//! (`'…'`, `E'…'`, `"…"`), dollar-quoted bodies (`$tag$…$tag$`), line comments and nested block
//! comments. `BEGIN ATOMIC … END` bodies (SQL-standard function bodies) are kept whole.

use super::lex::{past as skip_until, quoted as skip_quoted};
use super::Piece;

/// The stretches between top-level semicolons, by PostgreSQL's rules.
pub(crate) fn pieces(sql: &str) -> Vec<Piece> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize;
    let mut previous = "";
    let cut = |out: &mut Vec<Piece>, start: usize, end: usize, next: usize| {
        out.push(Piece {
            start,
            end,
            next,
            code: has_code(&sql[start..end]),
        });
    };
    while i < bytes.len() {
        let c = bytes[i];
        if depth == 0 && c == b';' {
            cut(&mut out, start, i, i + 1);
            i += 1;
            start = i;
            previous = "";
            continue;
        }
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_until(bytes, i + 2, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i + 2),
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && !is_ident(bytes, i.wrapping_sub(2));
                i = skip_quoted(bytes, i + 1, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i + 1, b'"', false),
            b'`' => i = skip_quoted(bytes, i + 1, b'`', false),
            b'$' => i = skip_dollar(bytes, i),
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let end = ident_end(bytes, i);
                let word = &sql[i..end];
                let is = |w: &str| word.eq_ignore_ascii_case(w);
                if is("atomic") && previous.eq_ignore_ascii_case("begin") {
                    // `BEGIN ATOMIC … END`: the semicolons inside belong to the body.
                    depth += 1;
                } else if is("end") && depth > 0 {
                    depth -= 1;
                } else if depth > 0 && (is("case") || is("begin")) {
                    // CASE … END and nested blocks inside an atomic body.
                    depth += 1;
                }
                previous = word;
                i = end;
            }
            _ => i += 1,
        }
    }
    cut(&mut out, start, bytes.len(), bytes.len());
    out
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

/// Whether `sql` holds anything besides comments and white space.
fn has_code(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_until(bytes, i + 2, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i + 2),
            c if c.is_ascii_whitespace() || c == b';' => i += 1,
            _ => return true,
        }
    }
    false
}

fn is_ident(bytes: &[u8], i: usize) -> bool {
    bytes
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while is_ident(bytes, i) || bytes.get(i) == Some(&b'$') {
        i += 1;
    }
    i
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

/// Skips `$tag$ … $tag$` starting at the `$` at `i`; a `$` that does not open a dollar quote
/// (a positional parameter such as `$1`, or part of an identifier) is stepped over.
fn skip_dollar(bytes: &[u8], i: usize) -> usize {
    if i > 0 && is_ident(bytes, i - 1) {
        return i + 1;
    }
    let mut j = i + 1;
    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'$') || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return i + 1;
    }
    let tag = &bytes[i..=j];
    skip_until(bytes, j + 1, tag)
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
            ("SELECT `a;b` FROM t", &["SELECT `a;b` FROM t"]),
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
