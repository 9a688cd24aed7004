//! SQLite's lexical rules for where statements end.
//!
//! Owns: SQLite's tokenizer as far as boundaries need it — `'…'` strings (a doubled quote
//! stands for one; blobs `X'…'` end the same way), `"…"`, `` `…` `` and `[…]` identifiers (no
//! escapes inside brackets, so `[it's]` holds no string), `--` comments to the end of the line,
//! `/* … */` comments that do not nest, and TCL-style variables (`$name(…)` runs to a space or
//! `)`, semicolons included) — and the state machine of SQLite's `sqlite3_complete`, which keeps
//! `CREATE [TEMP] TRIGGER … BEGIN …; …; END;` whole: inside a trigger a `;` ends the statement
//! only when it follows `END` that itself follows a `;`. What SQLite's prepare-and-tail loop
//! sees as one statement is one statement here; the property test in `tests/it/statements.rs`
//! checks that against SQLite itself.

use super::lex::{past, quoted};
use super::Piece;

/// The tokens `sqlite3_complete`'s state machine distinguishes.
#[derive(Clone, Copy)]
enum Token {
    Semi,
    Space,
    Other,
    Explain,
    Create,
    Temp,
    Trigger,
    End,
}

/// `sqlite3_complete`'s states: 1 START (between statements), 2 NORMAL, 3 EXPLAIN, 4 CREATE,
/// 5 TRIGGER (inside a trigger), 6 SEMI (a `;` inside a trigger), 7 END (`; END` inside a
/// trigger). Rows are states 0 to 7, columns the tokens in [`Token`]'s order.
const TRANSITIONS: [[u8; 8]; 8] = [
    [1, 0, 2, 3, 4, 2, 2, 2],
    [1, 1, 2, 3, 4, 2, 2, 2],
    [1, 2, 2, 2, 2, 2, 2, 2],
    [1, 3, 3, 2, 4, 2, 2, 2],
    [1, 4, 2, 2, 2, 4, 5, 2],
    [6, 5, 5, 5, 5, 5, 5, 5],
    [6, 6, 5, 5, 5, 5, 5, 7],
    [1, 7, 5, 5, 5, 5, 5, 5],
];

const START: u8 = 1;

/// The statements of `sql` as SQLite's prepare-and-tail loop finds them.
pub(crate) fn pieces(sql: &str) -> Vec<Piece> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut state = START;
    let mut start = 0;
    let mut code = false;
    let mut i = 0;
    while i < bytes.len() {
        let (token, end) = token(bytes, i);
        state = TRANSITIONS[usize::from(state)][token as usize];
        match token {
            Token::Semi if state == START => {
                out.push(Piece {
                    start,
                    end: i,
                    next: end,
                    code,
                });
                start = end;
                code = false;
            }
            Token::Semi | Token::Space => {}
            _ => code = true,
        }
        i = end;
    }
    out.push(Piece {
        start,
        end: bytes.len(),
        next: bytes.len(),
        code,
    });
    out
}

/// The first byte at or after `i` that is not white space or a comment.
pub(crate) fn skip_trivia(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match token(bytes, i) {
            (Token::Space, end) => i = end,
            _ => break,
        }
    }
    i
}

/// SQLite's white space: space, tab, LF, VT, FF, CR.
fn is_space(c: u8) -> bool {
    c == b' ' || (b'\t'..=b'\r').contains(&c)
}

/// Bytes that continue an identifier or keyword (`sqlite3IsIdChar`).
fn is_id(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The token at `i` and the offset just after it.
fn token(bytes: &[u8], i: usize) -> (Token, usize) {
    let c = bytes[i];
    let next = bytes.get(i + 1).copied();
    match c {
        b';' => (Token::Semi, i + 1),
        _ if is_space(c) => {
            let end = bytes[i..]
                .iter()
                .position(|b| !is_space(*b))
                .map_or(bytes.len(), |p| i + p);
            (Token::Space, end)
        }
        // To the end of the line, the newline not included (it is white space of its own).
        b'-' if next == Some(b'-') => {
            let end = bytes[i + 2..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |p| i + 2 + p);
            (Token::Space, end)
        }
        b'/' if next == Some(b'*') => (Token::Space, past(bytes, i + 2, b"*/")),
        b'\'' | b'"' | b'`' => (Token::Other, quoted(bytes, i + 1, c, false)),
        b'[' => (Token::Other, past(bytes, i + 1, b"]")),
        b'$' | b'@' | b'#' | b':' => (Token::Other, variable(bytes, i)),
        _ if is_id(c) => {
            let end = bytes[i..]
                .iter()
                .position(|b| !is_id(*b))
                .map_or(bytes.len(), |p| i + p);
            (keyword(&bytes[i..end]), end)
        }
        _ => (Token::Other, i + 1),
    }
}

/// A parameter `$name`, `@name`, `#name` or `:name`, with TCL's `::` and `(…)` forms: the
/// parenthesis runs to a `)` or white space, whatever lies between.
fn variable(bytes: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    let mut n = 0;
    while j < bytes.len() {
        let c = bytes[j];
        if is_id(c) {
            n += 1;
        } else if c == b'(' && n > 0 {
            j += 1;
            while j < bytes.len() && !is_space(bytes[j]) && bytes[j] != b')' {
                j += 1;
            }
            return if bytes.get(j) == Some(&b')') {
                j + 1
            } else {
                j
            };
        } else if c == b':' && bytes.get(j + 1) == Some(&b':') {
            j += 1;
        } else {
            break;
        }
        j += 1;
    }
    j
}

fn keyword(word: &[u8]) -> Token {
    let is = |k: &str| word.eq_ignore_ascii_case(k.as_bytes());
    if is("create") {
        Token::Create
    } else if is("temp") || is("temporary") {
        Token::Temp
    } else if is("trigger") {
        Token::Trigger
    } else if is("end") {
        Token::End
    } else if is("explain") {
        Token::Explain
    } else {
        Token::Other
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Engine;

    fn texts(sql: &str) -> Vec<String> {
        super::super::statements(sql, Engine::Sqlite)
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    #[test]
    fn splits_by_sqlites_own_rules() {
        let cases: &[(&str, &[&str])] = &[
            ("SELECT 1; SELECT 2", &["SELECT 1", "SELECT 2"]),
            (
                "SELECT 'a' AS [it's]; COMMIT; SELECT 2",
                &["SELECT 'a' AS [it's]", "COMMIT", "SELECT 2"],
            ),
            ("SELECT 'it''s;'; SELECT 2", &["SELECT 'it''s;'", "SELECT 2"]),
            // No backslash escapes and no E'' strings: the quote after the backslash ends it.
            ("SELECT E'a\\'; SELECT 2", &["SELECT E'a\\'", "SELECT 2"]),
            ("SELECT \"a;\"\"b\", `c;``d`; SELECT 2", &["SELECT \"a;\"\"b\", `c;``d`", "SELECT 2"]),
            // Comments do not nest: the first */ ends this one.
            ("/* a /* b */ SELECT 1; */", &["/* a /* b */ SELECT 1", "*/"]),
            ("-- x;\nSELECT 1; -- y;", &["-- x;\nSELECT 1"]),
            ("SELECT x'3b27'; SELECT 2", &["SELECT x'3b27'", "SELECT 2"]),
            // Dollar signs start no body.
            ("SELECT 1 AS $$a; SELECT 2", &["SELECT 1 AS $$a", "SELECT 2"]),
            ("SELECT $v(a;'b); SELECT 2", &["SELECT $v(a;'b)", "SELECT 2"]),
            (
                "CREATE TRIGGER t AFTER INSERT ON x BEGIN INSERT INTO y VALUES (1); \
                 SELECT CASE WHEN 1 THEN 2 END; END; SELECT 2",
                &[
                    "CREATE TRIGGER t AFTER INSERT ON x BEGIN INSERT INTO y VALUES (1); \
                     SELECT CASE WHEN 1 THEN 2 END; END",
                    "SELECT 2",
                ],
            ),
            (
                "create temp trigger t after insert on x begin select 1; /* c */ end ; select 2",
                &[
                    "create temp trigger t after insert on x begin select 1; /* c */ end",
                    "select 2",
                ],
            ),
            (
                "EXPLAIN CREATE TEMPORARY TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; SELECT 2",
                &[
                    "EXPLAIN CREATE TEMPORARY TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END",
                    "SELECT 2",
                ],
            ),
            // TRIGGER must follow CREATE [TEMP] directly.
            ("CREATE TABLE trigger (end int); SELECT 2", &["CREATE TABLE trigger (end int)", "SELECT 2"]),
            ("SELECT [a;b; SELECT 2", &["SELECT [a;b; SELECT 2"]),
        ];
        for (sql, want) in cases {
            assert_eq!(texts(sql), *want, "input: {sql}");
        }
    }
}
