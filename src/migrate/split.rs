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
    /// The column (1-based, in characters) of that first token on its line.
    pub column: usize,
}

/// Whose lexical rules to split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// PostgreSQL and SQLite: `''` escapes, `E'…'`, `$tag$…$tag$`, nested block comments,
    /// `BEGIN ATOMIC … END` bodies.
    Standard,
    /// MySQL and MariaDB: backslash escapes in `'…'` and `"…"`, `#` comments, `-- ` comments,
    /// `BEGIN … END` bodies of routines and triggers, and the client's `DELIMITER` lines.
    Mysql,
}

/// Splits `sql` into its top-level statements, dropping statements that hold only comments
/// and white space.
pub fn statements(sql: &str) -> Vec<Statement> {
    statements_with(sql, Flavor::Standard)
}

/// Splits `sql` by the lexical rules of `flavor`.
pub fn statements_with(sql: &str, flavor: Flavor) -> Vec<Statement> {
    let mysql = flavor == Flavor::Mysql;
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize;
    let mut words: [&str; 2] = ["", ""];
    let mut first_word = "";
    let mut routine = false;
    let mut delimiter: &str = ";";
    let mut lines = Lines::default();
    while i < bytes.len() {
        let c = bytes[i];
        if mysql && first_word.is_empty() && (c == b'd' || c == b'D') && at_line_start(bytes, i) {
            if let Some((new_delimiter, line_end)) = delimiter_line(sql, i) {
                push(&mut out, &mut lines, sql, start, i);
                delimiter = new_delimiter;
                i = line_end;
                start = i;
                continue;
            }
        }
        // Bytes, not `&sql[i..]`: `i` may sit inside a multi-byte character (é in an identifier).
        // The usual `;` is one byte compare, not a slice compare per byte of the file.
        let at_delimiter = match delimiter.as_bytes() {
            [d] => c == *d,
            d => bytes[i..].starts_with(d),
        };
        if depth == 0 && at_delimiter {
            push(&mut out, &mut lines, sql, start, i);
            i += delimiter.len();
            start = i;
            words = ["", ""];
            first_word = "";
            routine = false;
            continue;
        }
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && (!mysql || bytes.get(i + 2).is_none_or(|b| b.is_ascii_whitespace())) =>
            {
                i = skip_until(bytes, i + 2, b"\n");
            }
            b'#' if mysql => i = skip_until(bytes, i + 1, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = if mysql {
                    skip_until(bytes, i + 2, b"*/")
                } else {
                    skip_block_comment(bytes, i + 2)
                };
            }
            b'\'' => {
                let escapes = mysql
                    || (i > 0
                        && matches!(bytes[i - 1], b'E' | b'e')
                        && !is_ident(bytes, i.wrapping_sub(2)));
                i = skip_quoted(bytes, i + 1, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i + 1, b'"', mysql),
            b'`' => i = skip_quoted(bytes, i + 1, b'`', false),
            b'$' if !mysql => i = skip_dollar(bytes, i),
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = ident_end(bytes, i);
                // A custom delimiter such as `$$` may touch the word before it (`END$$`).
                if delimiter == ";" {
                    // An identifier never contains `;`: nothing to cut (and no search to pay).
                } else if let Some(p) = sql[i..end].find(delimiter) {
                    end = i + p.max(1);
                }
                let word = &sql[i..end];
                if first_word.is_empty() {
                    first_word = word;
                }
                let is = |w: &str| word.eq_ignore_ascii_case(w);
                if mysql {
                    if delimiter != ";" {
                        // With a client DELIMITER the author marks statement ends: no guessing.
                        words = [words[1], word];
                        i = end;
                        continue;
                    }
                    // Routine and trigger bodies: BEGIN … END (and CASE … END) nest; END IF,
                    // END LOOP, END WHILE and END REPEAT close constructs that did not open one.
                    if first_word.eq_ignore_ascii_case("create")
                        && (is("procedure") || is("function") || is("trigger") || is("event"))
                    {
                        routine = true;
                    }
                    if routine && (is("begin") || (is("case") && depth > 0)) {
                        depth += 1;
                    } else if routine && is("end") && depth > 0 {
                        let next = next_word(sql, end);
                        let closes_other = ["if", "loop", "while", "repeat"]
                            .iter()
                            .any(|w| next.eq_ignore_ascii_case(w));
                        if !closes_other {
                            depth -= 1;
                        }
                    }
                } else if is("atomic") && words[1].eq_ignore_ascii_case("begin") {
                    // `BEGIN ATOMIC … END`: the semicolons inside belong to the body.
                    depth += 1;
                } else if is("end") && depth > 0 {
                    depth -= 1;
                } else if depth > 0 && (is("case") || is("begin")) {
                    // CASE … END and nested blocks inside an atomic body.
                    depth += 1;
                }
                words = [words[1], word];
                i = end;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &mut lines, sql, start, bytes.len());
    out
}

fn at_line_start(bytes: &[u8], i: usize) -> bool {
    bytes[..i]
        .iter()
        .rev()
        .take_while(|b| **b != b'\n')
        .all(|b| b.is_ascii_whitespace())
}

/// A MySQL client `DELIMITER <token>` line at `i`: the new delimiter and where the line ends.
fn delimiter_line(sql: &str, i: usize) -> Option<(&str, usize)> {
    let line_end = sql[i..].find('\n').map_or(sql.len(), |n| i + n + 1);
    let line = sql[i..line_end].trim();
    let (keyword, rest) = line.split_once(char::is_whitespace)?;
    if !keyword.eq_ignore_ascii_case("delimiter") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some((token, line_end))
}

fn next_word(sql: &str, from: usize) -> &str {
    let rest = sql[from..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Where statements start, as line and column: advanced forward only, so numbering every
/// statement of a file reads the file once.
#[derive(Default)]
struct Lines {
    /// Bytes before this offset have been counted.
    pos: usize,
    /// Newlines before `pos`.
    newlines: usize,
    /// Offset of the first byte of the line `pos` is on.
    line_start: usize,
}

impl Lines {
    fn at(&mut self, sql: &str, at: usize) -> (usize, usize) {
        for (i, b) in sql.as_bytes()[self.pos..at].iter().enumerate() {
            if *b == b'\n' {
                self.newlines += 1;
                self.line_start = self.pos + i + 1;
            }
        }
        self.pos = at;
        (
            1 + self.newlines,
            1 + sql[self.line_start..at].chars().count(),
        )
    }
}

fn push(out: &mut Vec<Statement>, lines: &mut Lines, sql: &str, start: usize, end: usize) {
    let piece = &sql[start..end];
    if !has_code(piece) {
        return;
    }
    let lead = piece.len() - piece.trim_start().len();
    let (line, column) = lines.at(sql, start + lead);
    out.push(Statement {
        sql: piece.trim().to_owned(),
        line,
        column,
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
    let haystack = &bytes[from.min(bytes.len())..];
    let found = match needle {
        // Comments to the end of the line: a byte search, not a window compare per byte.
        [b] => haystack.iter().position(|c| c == b),
        _ => haystack.windows(needle.len()).position(|w| w == needle),
    };
    found.map_or(bytes.len(), |p| from + p + needle.len())
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
        let at: Vec<(usize, usize)> = statements("SELECT 1; SELECT 2;\n  SELECT 3;")
            .iter()
            .map(|s| (s.line, s.column))
            .collect();
        assert_eq!(at, vec![(1, 1), (1, 11), (2, 3)]);
    }

    #[test]
    fn splits_mysql_by_its_own_rules() {
        let m = |sql: &str| -> Vec<String> {
            statements_with(sql, Flavor::Mysql)
                .into_iter()
                .map(|s| s.sql)
                .collect()
        };
        let cases: &[(&str, &[&str])] = &[
            ("SELECT 'it\\'s;'; SELECT 2", &["SELECT 'it\\'s;'", "SELECT 2"]),
            ("SELECT \"a\\\";b\"; SELECT 2", &["SELECT \"a\\\";b\"", "SELECT 2"]),
            ("# a; comment\nSELECT 1; SELECT 2", &["# a; comment\nSELECT 1", "SELECT 2"]),
            ("SELECT 1--1; SELECT 2", &["SELECT 1--1", "SELECT 2"]),
            ("SELECT $$a;b$$", &["SELECT $$a", "b$$"]),
            (
                "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN IF NEW.a < 0 THEN SET NEW.a = 0; END IF; SET NEW.b = CASE WHEN 1 THEN 2 END; END; SELECT 2",
                &[
                    "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN IF NEW.a < 0 THEN SET NEW.a = 0; END IF; SET NEW.b = CASE WHEN 1 THEN 2 END; END",
                    "SELECT 2",
                ],
            ),
            (
                "DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END$$\nDELIMITER ;\nSELECT 2;",
                &["CREATE PROCEDURE p() BEGIN SELECT 1; END", "SELECT 2"],
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(m(sql), *want, "input: {sql}");
        }
    }

    #[test]
    fn non_ascii_code_splits_without_panicking() {
        // A proptest found this: stepping byte by byte over `é` outside quotes must not slice
        // the text inside the character.
        for flavor in [Flavor::Standard, Flavor::Mysql] {
            let got = statements_with("CREATE TABLE café (prénom text); SELECT '€'; 𑎮ଆ", flavor);
            let texts: Vec<&str> = got.iter().map(|s| s.sql.as_str()).collect();
            assert_eq!(
                texts,
                ["CREATE TABLE café (prénom text)", "SELECT '€'", "𑎮ଆ"],
                "{flavor:?}"
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
