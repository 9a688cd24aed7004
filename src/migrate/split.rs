//! Splitting a migration file into statements, lexically.
//!
//! Owns: finding the top-level `;` that end statements, skipping string literals
//! (`'…'`, `E'…'`, `"…"`, `` `…` ``), dollar-quoted bodies (`$tag$…$tag$`), line comments and
//! nested block comments. It does not parse SQL: a statement is whatever lies between two
//! top-level semicolons. The SQL linter (a real parser) is a separate concern; this splitter
//! only has to agree with the server about where statements end, which is a lexical question.
//! `BEGIN ATOMIC … END` bodies (SQL-standard function bodies) are kept whole.

/// One statement of a file: its text (without the trailing `;`) and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's SQL, trimmed, without the terminating semicolon.
    pub sql: String,
    /// The line of the file on which the statement's first token stands (1-based).
    pub line: usize,
}

/// Splits `sql` into its top-level statements, dropping statements that hold only comments
/// and white space.
pub fn statements(sql: &str) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut atomic_depth = 0usize;
    let mut words: [&str; 2] = ["", ""];
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = skip_until(bytes, i + 2, b"\n");
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i + 2);
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && !is_ident(bytes, i.wrapping_sub(2));
                i = skip_quoted(bytes, i + 1, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i + 1, b'"', false),
            b'`' => i = skip_quoted(bytes, i + 1, b'`', false),
            b'$' => i = skip_dollar(bytes, i),
            b';' if atomic_depth == 0 => {
                push(&mut out, sql, start, i);
                i += 1;
                start = i;
                words = ["", ""];
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let end = ident_end(bytes, i);
                let word = &sql[i..end];
                // `BEGIN ATOMIC … END`: the semicolons inside belong to the body.
                if word.eq_ignore_ascii_case("atomic") && words[1].eq_ignore_ascii_case("begin") {
                    atomic_depth += 1;
                } else if word.eq_ignore_ascii_case("end") && atomic_depth > 0 {
                    atomic_depth -= 1;
                } else if atomic_depth > 0
                    && (word.eq_ignore_ascii_case("case") || word.eq_ignore_ascii_case("begin"))
                {
                    // CASE … END and nested blocks inside an atomic body.
                    atomic_depth += 1;
                }
                words = [words[1], word];
                i = end;
            }
            _ => i += 1,
        }
    }
    push(&mut out, sql, start, bytes.len());
    out
}

fn push(out: &mut Vec<Statement>, sql: &str, start: usize, end: usize) {
    let piece = &sql[start..end];
    if !has_code(piece) {
        return;
    }
    let lead = piece.len() - piece.trim_start().len();
    let line = 1 + sql[..start + lead].matches('\n').count();
    out.push(Statement {
        sql: piece.trim().to_owned(),
        line,
    });
}

/// Whether `sql` holds anything besides comments and white space.
pub fn has_code(sql: &str) -> bool {
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

fn skip_until(bytes: &[u8], from: usize, needle: &[u8]) -> usize {
    bytes[from.min(bytes.len())..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map_or(bytes.len(), |p| from + p + needle.len())
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

fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    while i < bytes.len() {
        let c = bytes[i];
        if backslash_escapes && c == b'\\' {
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
    use super::*;

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
