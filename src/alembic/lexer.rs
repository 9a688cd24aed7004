//! Python's lexical rules, as much of them as reading a revision file's module-level literals
//! needs: source decoding (BOM, PEP 263 coding line, newline normalisation), names, numbers,
//! operators, brackets, comments, explicit line joining, and strings in every prefix form (raw,
//! bytes, triple-quoted, f-strings with nested replacement fields as Python 3.12 reads them).
//! It yields logical lines (the tokens between two NEWLINEs, with the line's indentation), so
//! `revision.rs` can see statements without a Python parser.
//!
//! It owns no Python semantics beyond tokens: it never evaluates anything, and a string's value
//! is decoded only when asked for ([`Str::value`]), so an odd escape in code that shipgate never
//! reads cannot fail a file. It does no I/O.

use std::fmt;

/// Where a token starts: 1-based line of the normalised source.
pub type Line = usize;

/// A lexical error, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line.
    pub line: Line,
    /// What is wrong, in lower case.
    pub problem: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

fn err<T>(line: Line, problem: impl Into<String>) -> Result<T, LexError> {
    Err(LexError {
        line,
        problem: problem.into(),
    })
}

/// A string literal's kind, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// `"…"`, `r"…"`, `u"…"`: a `str`.
    Text,
    /// `b"…"`, `rb"…"`: `bytes`.
    Bytes,
    /// `f"…"`, `t"…"` and their raw forms: evaluated at run time, never a literal.
    Formatted,
}

/// One string literal token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str {
    /// From the prefix.
    pub kind: StrKind,
    /// `r`/`R` in the prefix: backslashes are not escapes.
    pub raw: bool,
    /// The text between the quotes, as written (newlines normalised to `\n`).
    pub body: String,
}

impl Str {
    /// The value Python gives this literal, for `Text` strings (escapes decoded). `Bytes` and
    /// `Formatted` literals have no `str` value and are refused by the caller before this.
    pub fn value(&self) -> Result<String, String> {
        if self.raw {
            return Ok(self.body.clone());
        }
        decode_escapes(&self.body)
    }
}

/// A token of a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword.
    Name(String),
    /// A numeric literal, as written.
    Number(String),
    /// A string literal.
    Str(Str),
    /// An operator or delimiter, brackets included (`(`, `==`, `**=`, `:=`, `->`, `...`).
    Op(&'static str),
}

impl Tok {
    /// Whether this is the operator `op`.
    pub fn is_op(&self, op: &str) -> bool {
        matches!(self, Tok::Op(o) if *o == op)
    }

    /// Whether this is the name (or keyword) `name`.
    pub fn is_name(&self, name: &str) -> bool {
        matches!(self, Tok::Name(n) if n == name)
    }
}

/// A token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// 1-based line where it starts.
    pub line: Line,
}

/// The tokens of one logical line (a statement, or a compound statement's header and whatever
/// follows its colon on the same line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// Python's indentation column of the first token (tabs to the next multiple of 8).
    pub indent: usize,
    /// Never empty.
    pub tokens: Vec<Token>,
}

/// Turns a file's bytes into the text Python reads: a UTF-8 BOM dropped, the PEP 263 coding
/// line honoured (UTF-8 and Latin-1 families, ASCII), `\r\n` and `\r` turned into `\n`.
pub fn decode_source(bytes: &[u8]) -> Result<String, LexError> {
    let (bom, bytes) = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let encoding = coding_declaration(bytes);
    let text = match encoding.as_deref().map(normal_encoding) {
        None | Some(Some(Encoding::Utf8)) => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return err(line, "not valid UTF-8");
            }
        },
        Some(Some(Encoding::Latin1)) if !bom => bytes.iter().map(|&b| char::from(b)).collect(),
        Some(Some(Encoding::Ascii)) if !bom => match bytes.iter().position(|b| !b.is_ascii()) {
            None => bytes.iter().map(|&b| char::from(b)).collect(),
            Some(at) => {
                let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
                return err(line, "not ASCII, as its coding declaration says");
            }
        },
        Some(_) => {
            let name = encoding.unwrap_or_default();
            return err(
                1,
                if bom {
                    format!("coding declaration `{name}` contradicts the UTF-8 byte order mark")
                } else {
                    format!("coding declaration `{name}`: only UTF-8, Latin-1 and ASCII sources are read")
                },
            );
        }
    };
    Ok(text.replace("\r\n", "\n").replace('\r', "\n"))
}

enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

/// The encoding named by a `coding[:=]` comment on line 1, or on line 2 when line 1 is blank or
/// a comment (PEP 263, as CPython's tokenizer reads it).
fn coding_declaration(bytes: &[u8]) -> Option<String> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    if let Some(name) = coding_in(first) {
        return Some(name);
    }
    let trimmed = first.trim_ascii_start();
    if trimmed.is_empty() || trimmed.starts_with(b"#") {
        return lines.next().and_then(coding_in);
    }
    None
}

fn coding_in(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.trim_start_matches([' ', '\t', '\x0c']);
    let comment = rest.strip_prefix('#')?;
    let at = comment.find("coding")?;
    let after = &comment[at + "coding".len()..];
    let after = after.strip_prefix([':', '='])?;
    let name: String = after
        .trim_start_matches([' ', '\t'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// CPython's `get_normal_name`, for the encodings shipgate decodes; `None` for the others.
fn normal_encoding(name: &str) -> Option<Encoding> {
    let enc: String = name
        .chars()
        .take(12)
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if enc == "utf-8" || enc.starts_with("utf-8-") || enc == "utf8" {
        return Some(Encoding::Utf8);
    }
    for latin in ["latin-1", "iso-8859-1", "iso-latin-1"] {
        if enc == latin || enc.starts_with(&format!("{latin}-")) {
            return Some(Encoding::Latin1);
        }
    }
    matches!(enc.as_str(), "ascii" | "us-ascii").then_some(Encoding::Ascii)
}

/// Python's `str.isspace`, which `str.strip()` uses.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Operators, longest first so the first match is Python's.
const OPS: &[&str] = &[
    "**=", "//=", ">>=", "<<=", "...", "->", ":=", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=",
    "%=", "&=", "|=", "^=", "@=", "**", "//", "<<", ">>", "(", ")", "[", "]", "{", "}", ",", ":",
    ";", ".", "=", "+", "-", "*", "/", "%", "&", "|", "^", "~", "<", ">", "@", "!",
];

/// Splits normalised source (see [`decode_source`]) into logical lines.
pub fn logical_lines(src: &str) -> Result<Vec<LogicalLine>, LexError> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
    };
    lexer.run()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: Line,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek(i) == Some(c))
    }

    fn run(&mut self) -> Result<Vec<LogicalLine>, LexError> {
        let mut lines = Vec::new();
        let mut current: Vec<Token> = Vec::new();
        let mut indent = 0;
        let mut brackets: Vec<(char, Line)> = Vec::new();
        let mut at_line_start = true;
        loop {
            if at_line_start && current.is_empty() {
                // Measure this physical line's indentation; blank and comment-only lines
                // start no logical line.
                let mut col = 0;
                while let Some(c) = self.peek(0) {
                    match c {
                        ' ' => col += 1,
                        '\t' => col = (col / 8 + 1) * 8,
                        '\x0c' => col = 0,
                        _ => break,
                    }
                    self.bump();
                }
                indent = col;
                at_line_start = false;
            }
            let Some(c) = self.peek(0) else { break };
            let line = self.line;
            match c {
                ' ' | '\t' | '\x0c' => {
                    self.bump();
                }
                '#' => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '\n' => {
                    self.bump();
                    if brackets.is_empty() {
                        if !current.is_empty() {
                            lines.push(LogicalLine {
                                indent,
                                tokens: std::mem::take(&mut current),
                            });
                        }
                        at_line_start = true;
                    }
                }
                '\\' => {
                    self.bump();
                    if self.bump() != Some('\n') {
                        return err(line, "unexpected character after line continuation");
                    }
                }
                '\'' | '"' => {
                    let s = self.string("", line)?;
                    current.push(Token {
                        tok: Tok::Str(s),
                        line,
                    });
                }
                c if c.is_ascii_digit()
                    || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) =>
                {
                    let number = self.number();
                    current.push(Token {
                        tok: Tok::Number(number),
                        line,
                    });
                }
                c if is_name_start(c) => {
                    let name = self.name();
                    if matches!(self.peek(0), Some('\'' | '"')) && is_prefix(&name) {
                        let s = self.string(&name, line)?;
                        current.push(Token {
                            tok: Tok::Str(s),
                            line,
                        });
                    } else {
                        current.push(Token {
                            tok: Tok::Name(name),
                            line,
                        });
                    }
                }
                _ => {
                    let Some(op) = OPS.iter().find(|op| self.starts_with(op)) else {
                        return err(line, format!("unexpected character {c:?}"));
                    };
                    for _ in 0..op.chars().count() {
                        self.bump();
                    }
                    match *op {
                        "(" | "[" | "{" => brackets.push((c, line)),
                        ")" | "]" | "}" => {
                            let open = match *op {
                                ")" => '(',
                                "]" => '[',
                                _ => '{',
                            };
                            match brackets.pop() {
                                Some((o, _)) if o == open => {}
                                Some((o, at)) => {
                                    return err(
                                        line,
                                        format!("`{op}` does not close `{o}` opened on line {at}"),
                                    )
                                }
                                None => return err(line, format!("unmatched `{op}`")),
                            }
                        }
                        _ => {}
                    }
                    current.push(Token {
                        tok: Tok::Op(op),
                        line,
                    });
                }
            }
        }
        if let Some((open, at)) = brackets.last() {
            return err(*at, format!("`{open}` is never closed"));
        }
        if !current.is_empty() {
            lines.push(LogicalLine {
                indent,
                tokens: current,
            });
        }
        Ok(lines)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek(0).filter(|&c| is_name_continue(c)) {
            name.push(c);
            self.bump();
        }
        name
    }

    /// A number as written; its exact form never matters to shipgate, only where it ends.
    fn number(&mut self) -> String {
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            let exponent_sign = matches!(c, '+' | '-')
                && text.ends_with(['e', 'E'])
                && !text.starts_with("0x")
                && !text.starts_with("0X");
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || exponent_sign {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        text
    }

    /// A string literal whose prefix (possibly empty) has been read; at the opening quote.
    fn string(&mut self, prefix: &str, line: Line) -> Result<Str, LexError> {
        let lower = prefix.to_ascii_lowercase();
        let raw = lower.contains('r');
        let kind = if lower.contains('b') {
            StrKind::Bytes
        } else if lower.contains('f') || lower.contains('t') {
            StrKind::Formatted
        } else {
            StrKind::Text
        };
        let quote = self.peek(0).unwrap_or('"');
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        let width = if triple { 3 } else { 1 };
        for _ in 0..width {
            self.bump();
        }
        let body = if kind == StrKind::Formatted {
            self.fstring_body(quote, triple, raw, line, false)?
        } else {
            self.plain_body(quote, triple, line)?
        };
        Ok(Str { kind, raw, body })
    }

    fn at_close(&self, quote: char, triple: bool) -> bool {
        self.peek(0) == Some(quote)
            && (!triple || (self.peek(1) == Some(quote) && self.peek(2) == Some(quote)))
    }

    fn close(&mut self, triple: bool) {
        for _ in 0..if triple { 3 } else { 1 } {
            self.bump();
        }
    }

    fn plain_body(&mut self, quote: char, triple: bool, line: Line) -> Result<String, LexError> {
        let mut body = String::new();
        loop {
            if self.at_close(quote, triple) {
                self.close(triple);
                return Ok(body);
            }
            match self.bump() {
                None => return err(line, "string literal is never closed"),
                Some('\n') if !triple => {
                    return err(line, "string literal is never closed on its line")
                }
                Some('\\') => {
                    body.push('\\');
                    // Any character after a backslash is part of the string, the quote and a
                    // newline included, raw or not (so a raw string cannot end in one
                    // backslash); `Str::value` decodes escapes later.
                    match self.bump() {
                        None => return err(line, "string literal is never closed"),
                        Some(c) => body.push(c),
                    }
                }
                Some(c) => body.push(c),
            }
        }
    }

    /// An f-string's body up to its closing quote (or, with `in_spec`, up to the `}` that ends a
    /// format spec). Replacement fields are read as code, so quotes inside them (Python 3.12)
    /// never end the string.
    fn fstring_body(
        &mut self,
        quote: char,
        triple: bool,
        raw: bool,
        line: Line,
        in_spec: bool,
    ) -> Result<String, LexError> {
        let mut body = String::new();
        loop {
            if !in_spec && self.at_close(quote, triple) {
                self.close(triple);
                return Ok(body);
            }
            match self.peek(0) {
                None => return err(line, "f-string is never closed"),
                Some('\n') if !triple => return err(line, "f-string is never closed on its line"),
                Some('}') if in_spec => return Ok(body),
                Some('{') if self.peek(1) == Some('{') && !in_spec => {
                    self.bump();
                    self.bump();
                    body.push_str("{{");
                }
                Some('}') if self.peek(1) == Some('}') => {
                    self.bump();
                    self.bump();
                    body.push_str("}}");
                }
                Some('{') => {
                    self.bump();
                    body.push('{');
                    self.replacement_field(quote, triple, raw, line)?;
                    body.push('}');
                }
                Some('\\') if !raw => {
                    self.bump();
                    body.push('\\');
                    match self.bump() {
                        None => return err(line, "f-string is never closed"),
                        Some(c) => body.push(c),
                    }
                }
                Some(c) => {
                    self.bump();
                    body.push(c);
                }
            }
        }
    }

    /// After a replacement field's `{`: code up to `!conversion`, `:spec` or the closing `}`.
    fn replacement_field(
        &mut self,
        quote: char,
        triple: bool,
        raw: bool,
        line: Line,
    ) -> Result<(), LexError> {
        let mut depth = 0usize;
        loop {
            let Some(c) = self.peek(0) else {
                return err(line, "f-string replacement field is never closed");
            };
            match c {
                '\n' if !triple && depth == 0 => {
                    return err(
                        line,
                        "f-string replacement field is never closed on its line",
                    )
                }
                '\'' | '"' => {
                    self.string("", line)?;
                }
                c if is_name_start(c) => {
                    let name = self.name();
                    if matches!(self.peek(0), Some('\'' | '"')) && is_prefix(&name) {
                        self.string(&name, line)?;
                    }
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    self.bump();
                }
                ')' | ']' => {
                    depth = depth.saturating_sub(1);
                    self.bump();
                }
                '}' if depth > 0 => {
                    depth -= 1;
                    self.bump();
                }
                '}' => {
                    self.bump();
                    return Ok(());
                }
                '!' if depth == 0 && self.peek(1) != Some('=') => {
                    self.bump();
                }
                ':' if depth == 0 && self.peek(1) != Some('=') => {
                    self.bump();
                    self.fstring_body(quote, triple, raw, line, true)?;
                    if self.bump() != Some('}') {
                        return err(line, "f-string format spec is never closed");
                    }
                    return Ok(());
                }
                '#' if triple => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                _ => {
                    self.bump();
                }
            }
        }
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!c.is_ascii() && !is_py_space(c))
}

fn is_name_continue(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Whether `name` is a string prefix Python accepts (any case): r, u, b, f, t and the raw
/// pairs br, rb, fr, rf, tr, rt.
fn is_prefix(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "r" | "u" | "b" | "f" | "t" | "br" | "rb" | "fr" | "rf" | "tr" | "rt"
    )
}

/// Decodes the escapes of a non-raw `str` literal's body as Python does.
fn decode_escapes(body: &str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("string ends in a backslash".into());
        };
        match e {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut value = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value).ok_or("octal escape out of range")?);
            }
            'x' | 'u' | 'U' => {
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..digits)
                    .filter_map(|_| chars.next_if(|c| c.is_ascii_hexdigit()))
                    .collect();
                if hex.len() != digits {
                    return Err(format!("truncated \\{e} escape"));
                }
                let value =
                    u32::from_str_radix(&hex, 16).map_err(|_| format!("bad \\{e} escape"))?;
                match char::from_u32(value) {
                    Some(c) => out.push(c),
                    None => {
                        return Err(format!(
                            "\\{e}{hex} is not a Unicode scalar value shipgate can hold"
                        ))
                    }
                }
            }
            'N' => return Err("named Unicode escapes (\\N{…}) are not read".into()),
            other => {
                // Python keeps an unknown escape as written (with a warning).
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each logical line as the names/strings/ops it holds, strings as `kind:value`.
    fn render(src: &str) -> Result<Vec<String>, LexError> {
        let lines = logical_lines(&decode_source(src.as_bytes())?)?;
        Ok(lines
            .iter()
            .map(|l| {
                let toks: Vec<String> = l
                    .tokens
                    .iter()
                    .map(|t| match &t.tok {
                        Tok::Name(n) => n.clone(),
                        Tok::Number(n) => format!("#{n}"),
                        Tok::Op(o) => (*o).to_owned(),
                        Tok::Str(s) => match s.kind {
                            StrKind::Text => {
                                format!("s:{}", s.value().unwrap_or_else(|e| format!("<{e}>")))
                            }
                            StrKind::Bytes => format!("b:{}", s.body),
                            StrKind::Formatted => format!("f:{}", s.body),
                        },
                    })
                    .collect();
                format!("{}|{}|{}", l.indent, l.tokens[0].line, toks.join(" "))
            })
            .collect())
    }

    #[test]
    fn logical_lines_table() {
        let cases: &[(&str, &[&str])] = &[
            ("revision = 'abc'\n", &["0|1|revision = s:abc"]),
            ("revision: str = \"abc\"", &["0|1|revision : str = s:abc"]),
            (
                "a = 1 # comment ' not a string\nb = 2\n",
                &["0|1|a = #1", "0|2|b = #2"],
            ),
            (
                "x = (\n  'a',  # c )\n  'b',\n)\n",
                &["0|1|x = ( s:a , s:b , )"],
            ),
            ("x = 'a' \\\n  'b'\n", &["0|1|x = s:a s:b"]),
            (
                "if x:\n    y = 1\n\n\n  # c\nz = 2\n",
                &["0|1|if x :", "4|2|y = #1", "0|6|z = #2"],
            ),
            ("\tx = 1\n", &["8|1|x = #1"]),
            ("'''a\n'b'\n\"c\"'''\n", &["0|1|s:a\n'b'\n\"c\""]),
            ("r'\\d\\''", &["0|1|s:\\d\\'"]),
            ("'\\x41\\u00e9\\101\\n\\q'", &["0|1|s:Aé\u{41}\n\\q"]),
            ("'a\\\nb'", &["0|1|s:ab"]),
            ("b'x' Rb'y' bR'z'", &["0|1|b:x b:y b:z"]),
            ("u'x' U'y' R'z'", &["0|1|s:x s:y s:z"]),
            ("f'{x!r:>{w}}' 'a'", &["0|1|f:{} s:a"]),
            ("f\"{d[\"k\"]}\" 'a'", &["0|1|f:{} s:a"]),
            ("f'{{literal}}' rf'{a}\\d'", &["0|1|f:{{literal}} f:{}\\d"]),
            ("f'''{\n  x  # comment }\n}'''", &["0|1|f:{}"]),
            ("f'{a:{b}{c}}'", &["0|1|f:{}"]),
            ("f'{x:=10}'", &["0|1|f:{}"]),
            ("f'{a != b}'", &["0|1|f:{}"]),
            (
                "x = {'a': [1, (2,)]}\n",
                &["0|1|x = { s:a : [ #1 , ( #2 , ) ] }"],
            ),
            (
                "a **= 2; b //= 3; c := 4; d -> e; f ... g",
                &["0|1|a **= #2 ; b //= #3 ; c := #4 ; d -> e ; f ... g"],
            ),
            (
                "x = 1e-5 + 0x1f + 1_000j + .5\n",
                &["0|1|x = #1e-5 + #0x1f + #1_000j + #.5"],
            ),
            ("é = 'ü'\n", &["0|1|é = s:ü"]),
            ("rb = 1\nbr(2)\n", &["0|1|rb = #1", "0|2|br ( #2 )"]),
            (
                "x = 1\r\ny = 2\rz = 3\r\n",
                &["0|1|x = #1", "0|2|y = #2", "0|3|z = #3"],
            ),
            ("'''a\r\nb'''", &["0|1|s:a\nb"]),
            ("\u{feff}x = 1", &["0|1|x = #1"]),
            ("# only a comment\n", &[]),
            ("", &[]),
            ("x = 1 \\\n\n", &["0|1|x = #1"]),
            ("'a' \"b\" '''c''' \"\"\"d\"\"\"", &["0|1|s:a s:b s:c s:d"]),
            ("''''''", &["0|1|s:"]),
            ("'' 'x'", &["0|1|s: s:x"]),
            (
                "'\\N{BULLET}'",
                &["0|1|s:<named Unicode escapes (\\N{…}) are not read>"],
            ),
            ("'\\x4'", &["0|1|s:<truncated \\x escape>"]),
            ("F\"{x}\" Rb\"\\\\\" 'it\\'s'", &["0|1|f:{} b:\\\\ s:it's"]),
            ("f\"\"\"{'\"\"\"'}\"\"\" 'after'", &["0|1|f:{} s:after"]),
            (
                "x = [\n1,\n# ] not a bracket\n2]  # '''\ny = 1",
                &["0|1|x = [ #1 , #2 ]", "0|5|y = #1"],
            ),
            ("x = 1_000.5e+3j", &["0|1|x = #1_000.5e+3j"]),
            (
                "if a:\n\tb = 1\n        c = 2\n",
                &["0|1|if a :", "8|2|b = #1", "8|3|c = #2"],
            ),
        ];
        for (src, want) in cases {
            let got = render(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
            assert_eq!(got, *want, "source {src:?}");
        }
    }

    #[test]
    fn lexical_errors_name_their_line() {
        let cases: &[(&str, Line, &str)] = &[
            ("x = 'abc\n", 1, "never closed on its line"),
            ("x = '''abc\n\n", 1, "never closed"),
            ("\n\nx = (1,\n", 3, "`(` is never closed"),
            ("x = 1)\n", 1, "unmatched `)`"),
            ("x = (1]\n", 1, "does not close"),
            ("x = 1 \\ y\n", 1, "after line continuation"),
            ("x = $\n", 1, "unexpected character"),
            ("x = f'{a\n", 1, "never closed"),
            ("x = r'\\'\n", 1, "never closed"),
            ("x = '\\\n", 1, "never closed"),
        ];
        for (src, line, problem) in cases {
            let e = decode_source(src.as_bytes())
                .and_then(|s| logical_lines(&s))
                .expect_err(src);
            assert_eq!(e.line, *line, "{src:?}: {e}");
            assert!(e.problem.contains(problem), "{src:?}: {e}");
        }
    }

    #[test]
    fn source_decoding_follows_pep_263() {
        assert_eq!(
            decode_source(b"# -*- coding: latin-1 -*-\nx = '\xe9'").as_deref(),
            Ok("# -*- coding: latin-1 -*-\nx = 'é'")
        );
        assert_eq!(
            decode_source(b"#!/usr/bin/env python\n# vim: set fileencoding=iso-8859-1 :\n'\xe9'")
                .map(|s| s.ends_with("'é'")),
            Ok(true)
        );
        // The second line counts only after a blank or comment line.
        assert!(decode_source(b"x = 1\n# coding: latin-1\n'\xe9'").is_err());
        assert!(decode_source(b"# coding: utf-8\n'\xe9'").is_err());
        assert!(decode_source(b"# coding: cp1252\n'x'").is_err());
        assert!(decode_source(b"\xef\xbb\xbf# coding: latin-1\n'x'").is_err());
        assert_eq!(
            decode_source(b"\xef\xbb\xbf# coding: utf-8\n'x'").as_deref(),
            Ok("# coding: utf-8\n'x'")
        );
        assert_eq!(decode_source(b"'\xc3\xa9'").as_deref(), Ok("'é'"));
        let e = decode_source(b"x = 1\ny = '\xff'").expect_err("invalid UTF-8");
        assert_eq!(e.line, 2);
    }
}
