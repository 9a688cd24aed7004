//! MySQL's and MariaDB's lexical rules for where statements end.
//!
//! Owns: `'…'` and `"…"` strings with backslash escapes (the default `sql_mode`) and doubled
//! quotes, `` `…` `` identifiers, `#` comments, `-- ` comments (the dashes must be followed by
//! white space or a control character: `1--1` is arithmetic), `/* … */` comments that do not
//! nest, executable comments (`/*! … */`, `/*!40101 … */`, MariaDB's `/*M!100100 … */`), whose
//! contents are code to the server and so to shipgate, the bodies of routines, triggers and
//! events (`BEGIN … END` nests, as do `CASE … END [CASE]`; `END IF`, `END LOOP`, `END WHILE`
//! and `END REPEAT` close what opened no block) and MariaDB's `BEGIN NOT ATOMIC … END`, and the
//! client's `DELIMITER` lines (with a custom delimiter the author marks every end). A versioned
//! executable comment is taken as code whatever the server's version: a file meant for
//! several server versions should say so with separate migrations.
//!
//! Also owns which statements MySQL runs inside a transaction without committing it
//! ([`data_only`]): only a file of those can commit together with its history row.

use super::lex::{past, quoted};
use super::{leading_words, Piece, Statement};
use crate::config::Engine;

/// The statements of `sql` as the `mysql` client and the server delimit them.
pub(crate) fn pieces(sql: &str, mode: super::MysqlMode) -> Vec<Piece> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize;
    let mut first_word = "";
    let mut header = Header::Open;
    let mut routine = false;
    let mut code = false;
    let mut executable = false;
    let mut line_start = true;
    let mut after_value = false;
    let mut delimiter: &str = ";";
    let cut = |out: &mut Vec<Piece>, start: usize, end: usize, next: usize, code: bool| {
        out.push(Piece {
            start,
            end,
            next,
            code,
        });
    };
    while i < bytes.len() {
        let c = bytes[i];
        if line_start && !code && (c == b'd' || c == b'D') {
            if let Some((new_delimiter, line_end)) = delimiter_line(sql, i) {
                cut(&mut out, start, i, i, false);
                delimiter = new_delimiter;
                i = line_end;
                start = i;
                continue;
            }
        }
        if c == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if !(c == b' ' || c == b'\t' || c == b'\r') {
            line_start = false;
        }
        // Bytes, not `&sql[i..]`: `i` may sit inside a multi-byte character (é in an identifier).
        // The usual `;` is one byte compare, not a slice compare per byte of the file.
        let at_delimiter = match delimiter.as_bytes() {
            [d] => c == *d,
            d => bytes[i..].starts_with(d),
        };
        if depth == 0 && at_delimiter {
            let next = i + delimiter.len();
            cut(&mut out, start, i, next, code);
            i = next;
            start = i;
            first_word = "";
            header = Header::Open;
            routine = false;
            code = false;
            executable = false;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && bytes.get(i + 2).is_none_or(|b| *b <= b' ' || *b == 0x7f) =>
            {
                i = line_end(bytes, i + 2);
            }
            b'#' => i = line_end(bytes, i + 1),
            b'/' if bytes.get(i + 1) == Some(&b'*') => match executable_opener(bytes, i) {
                Some(end) => {
                    executable = true;
                    i = end;
                }
                None => i = past(bytes, i + 2, b"*/"),
            },
            b'*' if executable && bytes.get(i + 1) == Some(&b'/') => {
                executable = false;
                i += 2;
            }
            b'\'' | b'"' | b'`' => {
                code = true;
                after_value = false;
                // Strings take backslash escapes unless NO_BACKSLASH_ESCAPES; identifiers
                // (backquoted, or double-quoted under ANSI_QUOTES) never do.
                let identifier = c == b'`' || (c == b'"' && mode.ansi_quotes);
                i = quoted(bytes, i + 1, c, !identifier && mode.backslash_escapes);
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                code = true;
                let mut end = word_end(bytes, i);
                // A custom delimiter such as `$$` may touch the word before it (`END$$`).
                if delimiter != ";" {
                    if let Some(p) = sql[i..end].find(delimiter) {
                        end = i + p.max(1);
                    }
                }
                let word = &sql[i..end];
                let is = |w: &str| word.eq_ignore_ascii_case(w);
                if first_word.is_empty() {
                    first_word = word;
                    header = if is("create") {
                        Header::Open
                    } else {
                        Header::Closed
                    };
                    // MariaDB's compound statement outside a routine.
                    if is("begin") && next_word(sql, end).0.eq_ignore_ascii_case("not") {
                        routine = true;
                    }
                } else if header == Header::Open && !after_value {
                    // CREATE [OR REPLACE] [DEFINER = user] [AGGREGATE] PROCEDURE|FUNCTION|…
                    if is("procedure") || is("function") || is("trigger") || is("event") {
                        routine = true;
                        header = Header::Closed;
                    } else if !(is("or") || is("replace") || is("definer") || is("aggregate")) {
                        header = Header::Closed;
                    }
                }
                after_value = false;
                if routine && delimiter == ";" {
                    if is("begin") || (is("case") && depth > 0) {
                        depth += 1;
                    } else if is("end") && depth > 0 {
                        let (next, next_end) = next_word(sql, end);
                        let closes_other = ["if", "loop", "while", "repeat"]
                            .iter()
                            .any(|w| next.eq_ignore_ascii_case(w));
                        if !closes_other {
                            depth -= 1;
                        }
                        // `END IF`, `END CASE`, …: the word after END opens nothing.
                        if closes_other || next.eq_ignore_ascii_case("case") {
                            end = next_end;
                        }
                    }
                }
                i = end;
            }
            b'=' | b'@' => {
                // A definer's user and host (`DEFINER = admin@localhost`) are values, not
                // keywords of the header.
                code = true;
                after_value = true;
                i += 1;
            }
            _ => {
                code = true;
                after_value = false;
                i += 1;
            }
        }
    }
    cut(&mut out, start, bytes.len(), bytes.len(), code);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    /// Still in `CREATE [OR REPLACE] [DEFINER = …]`, before the kind of object.
    Open,
    /// Past it.
    Closed,
}

/// The first byte at or after `i` that is not white space, a comment, or the opening or
/// closing of an executable comment.
pub(crate) fn skip_trivia(bytes: &[u8], mut i: usize) -> usize {
    loop {
        match bytes.get(i) {
            Some(c) if c.is_ascii_whitespace() => i += 1,
            Some(b'#') => i = line_end(bytes, i + 1),
            Some(b'-')
                if bytes.get(i + 1) == Some(&b'-')
                    && bytes.get(i + 2).is_none_or(|b| *b <= b' ' || *b == 0x7f) =>
            {
                i = line_end(bytes, i + 2);
            }
            Some(b'/') if bytes.get(i + 1) == Some(&b'*') => {
                i = executable_opener(bytes, i).unwrap_or_else(|| past(bytes, i + 2, b"*/"));
            }
            Some(b'*') if bytes.get(i + 1) == Some(&b'/') => i += 2,
            _ => return i,
        }
    }
}

/// Whether every statement is one MySQL runs inside a transaction without committing it, so
/// that the file can commit or roll back whole with its history row: `INSERT`, `UPDATE`,
/// `DELETE`, `REPLACE`, and `SELECT`, `WITH`, `VALUES`, `TABLE`, `DO` and `SET` (but not `SET
/// autocommit`, `SET PASSWORD`, `SET … ROLE` or `SET TRANSACTION`). Anything else — DDL,
/// `LOCK TABLES`, `GRANT`, `CALL` (a procedure may commit), `LOAD DATA` — commits implicitly or
/// may, and the file runs statement by statement.
pub fn data_only(statements: &[Statement]) -> bool {
    !statements.is_empty()
        && statements.iter().all(|s| {
            let words = leading_words(&s.sql, Engine::Mysql, 1);
            match words.first().map(String::as_str) {
                Some("INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "SELECT" | "WITH" | "VALUES")
                | Some("TABLE" | "DO") => true,
                Some("SET") => {
                    let lower = s.sql.to_ascii_lowercase();
                    !["autocommit", "password", "role", "transaction"]
                        .iter()
                        .any(|w| lower.contains(w))
                }
                _ => false,
            }
        })
}

/// The end of an executable comment's opener at `i` (`/*!`, `/*!40101`, `/*M!100100`), or
/// `None` for a plain comment.
fn executable_opener(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 2;
    if bytes.get(j) == Some(&b'M') && bytes.get(j + 1) == Some(&b'!') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'!') {
        return None;
    }
    j += 1;
    let digits = bytes[j..]
        .iter()
        .take(6)
        .take_while(|b| b.is_ascii_digit())
        .count();
    Some(j + digits)
}

/// The newline that ends a line comment (it stays, as white space of its own), or the end.
fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from.min(bytes.len())..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric()
            || bytes[i] == b'_'
            || bytes[i] == b'$'
            || bytes[i] >= 0x80)
    {
        i += 1;
    }
    i
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

/// The word after white space at `from`, and the offset just after it.
fn next_word(sql: &str, from: usize) -> (&str, usize) {
    let rest = sql[from..].trim_start();
    let start = sql.len() - rest.len();
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (&rest[..len], start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sql: &str) -> Vec<String> {
        super::super::statements(sql, Engine::Mysql)
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    #[test]
    fn splits_mysql_by_its_own_rules() {
        let cases: &[(&str, &[&str])] = &[
            ("SELECT 'it\\'s;'; SELECT 2", &["SELECT 'it\\'s;'", "SELECT 2"]),
            ("SELECT \"a\\\";b\"; SELECT 2", &["SELECT \"a\\\";b\"", "SELECT 2"]),
            ("# a; comment\nSELECT 1; SELECT 2", &["# a; comment\nSELECT 1", "SELECT 2"]),
            ("SELECT 1--1; SELECT 2", &["SELECT 1--1", "SELECT 2"]),
            ("SELECT 1 --\tx;\n; SELECT 2", &["SELECT 1 --\tx;", "SELECT 2"]),
            ("SELECT $$a;b$$", &["SELECT $$a", "b$$"]),
            ("/* a /* b */ SELECT 1; */", &["/* a /* b */ SELECT 1", "*/"]),
            (
                "/*!40101 CREATE TABLE b1 (y int) */;\n/*M!100100 SET x = ';' */;\n/* plain; */",
                &["/*!40101 CREATE TABLE b1 (y int) */", "/*M!100100 SET x = ';' */"],
            ),
            (
                "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END */;\nSELECT 2",
                &[
                    "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END */",
                    "SELECT 2",
                ],
            ),
            (
                "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN IF NEW.a < 0 THEN SET NEW.a = 0; END IF; SET NEW.b = CASE WHEN 1 THEN 2 END; END; SELECT 2",
                &[
                    "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN IF NEW.a < 0 THEN SET NEW.a = 0; END IF; SET NEW.b = CASE WHEN 1 THEN 2 END; END",
                    "SELECT 2",
                ],
            ),
            (
                "CREATE DEFINER = admin@localhost PROCEDURE p() BEGIN l: LOOP BEGIN SELECT 1; END; LEAVE l; END LOOP l; CASE WHEN 1 THEN SELECT 2; END CASE; END; SELECT 3",
                &[
                    "CREATE DEFINER = admin@localhost PROCEDURE p() BEGIN l: LOOP BEGIN SELECT 1; END; LEAVE l; END LOOP l; CASE WHEN 1 THEN SELECT 2; END CASE; END",
                    "SELECT 3",
                ],
            ),
            (
                "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END; SELECT 3",
                &["BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", "SELECT 3"],
            ),
            // Columns named like routine keywords open no body.
            (
                "CREATE TABLE x (event int, `begin` int, begin int); SELECT 2",
                &["CREATE TABLE x (event int, `begin` int, begin int)", "SELECT 2"],
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
    fn only_data_changes_are_data_only() {
        let only = |sql: &str| data_only(&super::super::statements(sql, Engine::Mysql));
        assert!(only("INSERT INTO t VALUES (1); UPDATE t SET a = 2; DELETE FROM t; REPLACE INTO t VALUES (3)"));
        assert!(only(
            "# seed\nSET @x = 1; /*!40101 SET NAMES utf8mb4 */; SELECT 1; DO 1"
        ));
        for sql in [
            "INSERT INTO t VALUES (1); CREATE TABLE u (a int)",
            "/*!40101 CREATE TABLE u (a int) */",
            "INSERT INTO t VALUES (1); SET autocommit = 1",
            "LOCK TABLES t WRITE; INSERT INTO t VALUES (1); UNLOCK TABLES",
            "CALL p()",
            "TRUNCATE TABLE t",
            "SET PASSWORD = 'x'",
            "",
        ] {
            assert!(!only(sql), "{sql}");
        }
    }
}
