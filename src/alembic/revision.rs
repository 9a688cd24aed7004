//! One Alembic revision file read without Python: the module-level literals Alembic takes from
//! the imported module (`revision`, `down_revision`, `branch_labels`, `depends_on`) and the
//! module docstring, whose first paragraph `alembic history` prints as the message.
//!
//! It reads exactly what Python would bind at import time when that is a literal: a string
//! (implicit concatenation, any quoting, escapes), `None`, or a tuple or list of strings, in a
//! plain or annotated top-level assignment (the last one wins, as in Python). Anything else
//! that may bind one of those names (a name or call on the right, an f-string, an assignment
//! inside `if`/`try`/`for`, `+=`, `del`, an import, a tuple target, `.append`, a star import)
//! is a [`Problem`] naming the line and the variable: shipgate never guesses a value. Code in
//! function and class bodies does not run at import and is not read.
//!
//! Pure: it is handed the file's bytes; listing and reading files is `mod.rs`'s job.

use std::path::{Path, PathBuf};

use super::lexer::{self, is_py_space, Line, LogicalLine, StrKind, Tok, Token};

/// The names Alembic reads from a revision module, and `__doc__`, which holds the message.
const WATCHED: [&str; 5] = [
    "revision",
    "down_revision",
    "branch_labels",
    "depends_on",
    "__doc__",
];

/// Calls through which module-level code can bind any name.
const DYNAMIC: [&str; 4] = ["globals", "locals", "vars", "exec"];

/// List methods that change a list in place: calling one on a watched name changes its value.
const MUTATORS: [&str; 8] = [
    "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse",
];

/// A revision as Alembic reads it from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// `revision` (or, for a file without one, the legacy `<hex>.py` file name).
    pub id: String,
    /// `down_revision` as a tuple: empty for a base (`None`, `()`), several for a merge.
    pub down_revisions: Vec<String>,
    /// `branch_labels` as a tuple.
    pub branch_labels: Vec<String>,
    /// `depends_on` as a tuple: revision ids or branch labels.
    pub depends_on: Vec<String>,
    /// The first paragraph of the stripped module docstring (Alembic's `Script.doc`), or "".
    pub message: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The line of the `revision` assignment (0 when the id comes from the file name).
    pub line: Line,
}

/// Why a file cannot be read as a revision, at a line (0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, or 0.
    pub line: Line,
    /// What is wrong, in lower case, naming the variable.
    pub problem: String,
}

fn problem(line: Line, text: impl Into<String>) -> Problem {
    Problem {
        line,
        problem: text.into(),
    }
}

/// A Python literal as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    None,
    Str(String),
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
}

/// Where a statement sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// At the top of the module, run unconditionally at import.
    Top,
    /// Inside a module-level compound statement (`if`, `try`, `for`, …) named by the keyword.
    Block(&'static str),
    /// Inside a function or class body: not module state (functions do not run at import).
    Function,
}

/// Reads one revision file (`path` is used for the legacy file-name id and is kept).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Revision, Vec<Problem>> {
    let src = lexer::decode_source(bytes).map_err(|e| vec![problem(e.line, e.problem)])?;
    let lines = lexer::logical_lines(&src).map_err(|e| vec![problem(e.line, e.problem)])?;
    let mut reader = Reader::default();
    reader.read(&lines);
    if !reader.problems.is_empty() {
        return Err(reader.problems);
    }
    reader.finish(path)
}

#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
    /// The last top-level literal bound to each watched name, with its line.
    values: [Option<(Line, Lit)>; 5],
    /// The module docstring, when the first statement is a `str` literal.
    docstring: Option<String>,
}

impl Reader {
    fn read(&mut self, lines: &[LogicalLine]) {
        let mut stack: Vec<(usize, Scope)> = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            while stack
                .last()
                .is_some_and(|(indent, _)| *indent >= line.indent)
            {
                stack.pop();
            }
            let scope = scope_of(&stack);
            if index == 0 && line.indent == 0 {
                self.docstring = docstring(&line.tokens);
            }
            match header(&line.tokens) {
                Ok(Some((keyword, colon))) => {
                    let (head, body) = line.tokens.split_at(colon);
                    let inner = match (scope, keyword) {
                        (Scope::Function, _) | (_, "def" | "class") => Scope::Function,
                        (Scope::Block(outer), _) => Scope::Block(outer),
                        (Scope::Top, keyword) => Scope::Block(keyword),
                    };
                    self.header_bindings(scope, keyword, head);
                    for stmt in statements(&body[1..]) {
                        self.statement(inner, stmt);
                    }
                    stack.push((line.indent, inner));
                }
                Ok(None) => {
                    for stmt in statements(&line.tokens) {
                        self.statement(scope, stmt);
                    }
                }
                Err(p) => self.problems.push(p),
            }
        }
    }

    /// A compound statement's header: what it binds (`for x in`, `as x`, `def x`, a walrus).
    fn header_bindings(&mut self, scope: Scope, keyword: &'static str, head: &[Token]) {
        if scope == Scope::Function {
            return;
        }
        let block = match scope {
            Scope::Block(outer) => outer,
            _ => keyword,
        };
        let binds = |name: &str| -> Option<Line> {
            let mut for_target = keyword == "for";
            for (i, t) in head.iter().enumerate() {
                if t.tok.is_name("in") {
                    for_target = false;
                }
                let Tok::Name(n) = &t.tok else { continue };
                if n != name || after_dot(head, i) {
                    continue;
                }
                let after_as = i > 0 && head[i - 1].tok.is_name("as");
                let walrus = head.get(i + 1).is_some_and(|t| t.tok.is_op(":="));
                let defined = (i == 1 && matches!(keyword, "def" | "class"))
                    || (i == 2 && head[0].tok.is_name("async"));
                if for_target || after_as || walrus || defined || keyword == "case" {
                    return Some(t.line);
                }
            }
            None
        };
        for name in WATCHED {
            if let Some(line) = binds(name) {
                self.problems.push(problem(
                    line,
                    format!("`{name}` is bound by a `{block}` statement; shipgate reads only a top-level `{name} = <literal>`"),
                ));
            }
        }
    }

    fn statement(&mut self, scope: Scope, stmt: &[Token]) {
        let Some(first) = stmt.first() else { return };
        if scope == Scope::Function {
            // Functions do not run at import, but `global` hands a module name to one that
            // might be called.
            if first.tok.is_name("global") {
                for name in WATCHED {
                    if stmt.iter().any(|t| t.tok.is_name(name)) {
                        self.problems.push(problem(
                            first.line,
                            format!("`global {name}` lets code change `{name}`; shipgate reads only a top-level `{name} = <literal>`"),
                        ));
                    }
                }
            }
            return;
        }
        let context = match scope {
            Scope::Block(keyword) => format!(" inside a module-level `{keyword}` block"),
            _ => String::new(),
        };
        if is_star_import(stmt) {
            self.problems.push(problem(
                first.line,
                "`import *` may bind any of revision, down_revision, branch_labels, depends_on; shipgate cannot tell which",
            ));
            return;
        }
        if let Some(t) = stmt.iter().enumerate().find_map(|(i, t)| {
            let call = stmt.get(i + 1).is_some_and(|n| n.tok.is_op("("));
            let dynamic = DYNAMIC.iter().any(|d| t.tok.is_name(d));
            (call && dynamic && !after_dot(stmt, i)).then_some(t)
        }) {
            self.problems.push(problem(
                t.line,
                format!("module-level code calls `{}()`, which may bind revision, down_revision, branch_labels or depends_on; shipgate cannot tell", show_name(&t.tok)),
            ));
        }
        let parts = assignment_parts(stmt);
        let (targets, value) = match parts.split_last() {
            Some((value, targets)) if !targets.is_empty() => (targets, Some(*value)),
            _ => (&[][..], None),
        };
        for (idx, name) in WATCHED.iter().enumerate() {
            // Every way the statement may bind or change `name`, except the one form read.
            for (i, t) in stmt.iter().enumerate() {
                if !t.tok.is_name(name) || after_dot(stmt, i) {
                    continue;
                }
                let next = stmt.get(i + 1).map(|t| &t.tok);
                let how = if next.is_some_and(|n| n.is_op(":=")) {
                    Some("assigned with `:=`")
                } else if next.is_some_and(is_augmented) {
                    Some("changed by an augmented assignment")
                } else if next.is_some_and(|n| n.is_op("."))
                    && stmt
                        .get(i + 2)
                        .is_some_and(|m| MUTATORS.iter().any(|mu| m.tok.is_name(mu)))
                {
                    Some("changed in place by a method call")
                } else if first.tok.is_name("del") {
                    Some("deleted")
                } else if first.tok.is_name("import") || first.tok.is_name("from") {
                    imports(stmt, name).then_some("bound by an import")
                } else {
                    None
                };
                if let Some(how) = how {
                    self.problems.push(problem(
                        t.line,
                        format!("`{name}` is {how}{context}; shipgate reads only a top-level `{name} = <literal>`"),
                    ));
                }
            }
            let Some(value) = value else { continue };
            for target in targets {
                let target: &[Token] = target;
                let simple = match target {
                    [t] => t.tok.is_name(name),
                    [t, colon, ..] if parts.len() == 2 => {
                        t.tok.is_name(name) && colon.tok.is_op(":")
                    }
                    _ => false,
                };
                if simple {
                    let line = target[0].line;
                    if scope != Scope::Top {
                        self.problems.push(problem(
                            line,
                            format!("`{name}` is assigned{context}, which shipgate cannot evaluate; assign it once at the top level"),
                        ));
                        continue;
                    }
                    match literal(value) {
                        Ok(lit) => self.values[idx] = Some((line, lit)),
                        Err(why) => self.problems.push(problem(
                            line,
                            format!("`{name}` is not a literal: {why}; shipgate reads only strings, None, and tuples or lists of strings"),
                        )),
                    }
                } else if target
                    .iter()
                    .enumerate()
                    .any(|(i, t)| t.tok.is_name(name) && !after_dot(target, i))
                {
                    self.problems.push(problem(
                        target[0].line,
                        format!("`{name}` is assigned through a tuple, subscript or other target{context}; shipgate reads only `{name} = <literal>`"),
                    ));
                }
            }
        }
    }

    fn finish(self, path: &Path) -> Result<Revision, Vec<Problem>> {
        let [revision, down, labels, depends, doc] = self.values;
        let mut problems = Vec::new();
        let (id, line) = match revision {
            Some((line, Lit::Str(id))) => (id, line),
            Some((line, other)) => {
                problems.push(problem(
                    line,
                    format!("`revision` must be a string, not {}", describe(&other)),
                ));
                (String::new(), line)
            }
            None => match legacy_id(path) {
                Some(id) => (id, 0),
                None => {
                    problems.push(problem(
                        0,
                        "no top-level `revision = \"…\"`, and the file name is not a legacy `<hex>.py` id",
                    ));
                    (String::new(), 0)
                }
            },
        };
        if down.is_none() {
            problems.push(problem(
                0,
                "no top-level `down_revision = …` (Alembic requires it: use None for a base revision)",
            ));
        }
        let mut tuple = |name: &str, value: Option<(Line, Lit)>| -> Vec<String> {
            match value.map(|(line, lit)| (line, as_tuple(lit))) {
                None => Vec::new(),
                Some((_, Ok(items))) => items,
                Some((line, Err(what))) => {
                    problems.push(problem(
                        line,
                        format!("`{name}` must be None, a string, or a tuple or list of strings, not {what}"),
                    ));
                    Vec::new()
                }
            }
        };
        let down_revisions = tuple("down_revision", down);
        let branch_labels = tuple("branch_labels", labels);
        let depends_on = tuple("depends_on", depends);
        let doc = match doc {
            Some((_, Lit::Str(text))) => Some(text),
            Some((_, Lit::None)) => None,
            Some((line, other)) => {
                problems.push(problem(
                    line,
                    format!("`__doc__` must be a string, not {}", describe(&other)),
                ));
                None
            }
            None => self.docstring,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Revision {
            id,
            down_revisions,
            branch_labels,
            depends_on,
            message: doc.map(|d| first_paragraph(&d)).unwrap_or_default(),
            path: path.to_owned(),
            line,
        })
    }
}

fn scope_of(stack: &[(usize, Scope)]) -> Scope {
    stack.last().map_or(Scope::Top, |(_, scope)| *scope)
}

/// Alembic's `Script.doc`: the docstring stripped (Python's whitespace), up to the first blank
/// line (`re.split("\n\n", longdoc)[0]`).
fn first_paragraph(doc: &str) -> String {
    let stripped = doc.trim_matches(is_py_space);
    stripped
        .split_once("\n\n")
        .map_or(stripped, |(first, _)| first)
        .to_owned()
}

/// Alembic's legacy rule for a file without `revision`: `([a-f0-9]+)\.py$` matched at the start
/// of the file name.
fn legacy_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".py")?;
    (!stem.is_empty() && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| stem.to_owned())
}

/// The docstring, when the module's first statement is a `str` literal (implicit
/// concatenation and parentheses allowed, as CPython's `Constant` docstring).
fn docstring(tokens: &[Token]) -> Option<String> {
    let first = statements(tokens).next()?;
    let mut inner = first;
    while let [open, rest @ .., close] = inner {
        if open.tok.is_op("(") && close.tok.is_op(")") {
            inner = rest;
        } else {
            break;
        }
    }
    if inner.is_empty() {
        return None;
    }
    let mut doc = String::new();
    for t in inner {
        match &t.tok {
            Tok::Str(s) if s.kind == StrKind::Text => doc.push_str(&s.value().ok()?),
            _ => return None,
        }
    }
    Some(doc)
}

/// A compound statement's keyword and the index of the colon ending its header, or `None` for
/// a simple statement line.
fn header(tokens: &[Token]) -> Result<Option<(&'static str, usize)>, Problem> {
    const KEYWORDS: [&str; 13] = [
        "if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def", "class",
        "match", "case",
    ];
    let Some(Tok::Name(first)) = tokens.first().map(|t| &t.tok) else {
        return Ok(None);
    };
    let first = if first == "async" {
        match tokens.get(1).map(|t| &t.tok) {
            Some(Tok::Name(n)) => n.as_str(),
            _ => return Ok(None),
        }
    } else {
        first.as_str()
    };
    let Some(keyword) = KEYWORDS.into_iter().find(|k| *k == first) else {
        return Ok(None);
    };
    let colon = header_colon(tokens);
    if matches!(keyword, "match" | "case") {
        // Soft keywords: `match = 1`, `match(x)`, `case.x` are ordinary statements.
        let soft = colon.is_some()
            && tokens.get(1).is_some_and(|t| match &t.tok {
                Tok::Op(op) => matches!(*op, "(" | "[" | "{" | "-" | "*" | "~"),
                _ => true,
            });
        return Ok(soft.then(|| (keyword, colon.unwrap_or(0))));
    }
    match colon {
        Some(colon) => Ok(Some((keyword, colon))),
        None => Err(problem(
            tokens[0].line,
            format!("`{keyword}` statement without its `:`"),
        )),
    }
}

/// The first colon at bracket depth 0 that is not a lambda's.
fn header_colon(tokens: &[Token]) -> Option<usize> {
    let mut depth = 0usize;
    let mut lambdas = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        match &t.tok {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => depth = depth.saturating_sub(1),
            Tok::Name(n) if depth == 0 && n == "lambda" => lambdas += 1,
            Tok::Op(":") if depth == 0 => {
                if lambdas == 0 {
                    return Some(i);
                }
                lambdas -= 1;
            }
            _ => {}
        }
    }
    None
}

/// The simple statements of a line, split at depth-0 `;`.
fn statements(tokens: &[Token]) -> impl Iterator<Item = &[Token]> {
    split_depth0(tokens, |t| t.is_op(";"))
        .into_iter()
        .filter(|s| !s.is_empty())
}

/// An assignment statement's targets and value: split at each depth-0 `=`, except after a
/// top-level `lambda`, whose defaults (`f = lambda revision=1: …`) assign nothing.
fn assignment_parts(stmt: &[Token]) -> Vec<&[Token]> {
    let lambda = stmt
        .iter()
        .position(|t| t.tok.is_name("lambda"))
        .unwrap_or(stmt.len());
    let mut parts = split_depth0(&stmt[..lambda], |t| t.is_op("="));
    if lambda < stmt.len() {
        // The last part runs on to the end of the statement.
        let last_len = parts.pop().map_or(0, <[Token]>::len);
        parts.push(&stmt[lambda - last_len..]);
    }
    parts
}

/// `tokens` split at each depth-0 token for which `at` holds.
fn split_depth0(tokens: &[Token], at: impl Fn(&Tok) -> bool) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match &t.tok {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => depth = depth.saturating_sub(1),
            tok if depth == 0 && at(tok) => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

fn after_dot(tokens: &[Token], i: usize) -> bool {
    i > 0 && tokens[i - 1].tok.is_op(".")
}

fn is_augmented(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::Op(
            "+=" | "-="
                | "*="
                | "/="
                | "//="
                | "%="
                | "**="
                | ">>="
                | "<<="
                | "&="
                | "|="
                | "^="
                | "@="
        )
    )
}

fn is_star_import(stmt: &[Token]) -> bool {
    stmt.first().is_some_and(|t| t.tok.is_name("from"))
        && stmt.iter().any(|t| t.tok.is_name("import"))
        && stmt.last().is_some_and(|t| t.tok.is_op("*"))
}

/// Whether an `import`/`from … import` statement binds `name`.
fn imports(stmt: &[Token], name: &str) -> bool {
    let start = stmt
        .iter()
        .position(|t| t.tok.is_name("import"))
        .map_or(0, |i| i + 1);
    let mut names = &stmt[start..];
    if let [open, inner @ .., close] = names {
        if open.tok.is_op("(") && close.tok.is_op(")") {
            names = inner;
        }
    }
    // Each comma-separated item binds its `as` name, else (`from m import name`) its name,
    // else (`import name.sub`) the first component of its dotted name.
    split_depth0(names, |t| t.is_op(","))
        .into_iter()
        .any(|item| match item.iter().position(|t| t.tok.is_name("as")) {
            Some(at) => item.get(at + 1).is_some_and(|t| t.tok.is_name(name)),
            None => item.first().is_some_and(|t| t.tok.is_name(name)),
        })
}

fn describe(lit: &Lit) -> &'static str {
    match lit {
        Lit::None => "None",
        Lit::Str(_) => "a string",
        Lit::Tuple(_) => "a tuple",
        Lit::List(_) => "a list",
    }
}

/// Alembic's `util.to_tuple`: None → (), a string → (s,), a tuple or list as it is. Items must
/// be strings (anything else breaks Alembic's revision map).
fn as_tuple(lit: Lit) -> Result<Vec<String>, String> {
    match lit {
        Lit::None => Ok(Vec::new()),
        Lit::Str(s) => Ok(vec![s]),
        Lit::Tuple(items) | Lit::List(items) => items
            .into_iter()
            .map(|item| match item {
                Lit::Str(s) => Ok(s),
                other => Err(format!("a sequence holding {}", describe(&other))),
            })
            .collect(),
    }
}

/// The literal a value expression is, or why it is not one.
fn literal(tokens: &[Token]) -> Result<Lit, String> {
    let mut p = LitParser {
        toks: tokens,
        pos: 0,
    };
    let lit = p.expr(None)?;
    match p.toks.get(p.pos) {
        None => Ok(lit),
        Some(t) => Err(format!("{} follows the value", show(&t.tok))),
    }
}

struct LitParser<'a> {
    toks: &'a [Token],
    pos: usize,
}

impl LitParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    /// `atom (, atom)* [,]` up to `close` (or the end): a tuple when it has a comma.
    fn expr(&mut self, close: Option<&str>) -> Result<Lit, String> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            match self.peek() {
                None if close.is_none() => break,
                Some(t) if close.is_some_and(|c| t.is_op(c)) => break,
                None => return Err("the value is cut short".into()),
                _ => {}
            }
            items.push(self.atom()?);
            match self.peek() {
                Some(t) if t.is_op(",") => {
                    comma = true;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if items.is_empty() && close.is_none() {
            return Err("there is no value".into());
        }
        if comma || items.len() != 1 {
            Ok(Lit::Tuple(items))
        } else {
            Ok(items.pop().unwrap_or(Lit::None))
        }
    }

    fn atom(&mut self) -> Result<Lit, String> {
        let Some(tok) = self.peek() else {
            return Err("the value is cut short".into());
        };
        match tok {
            Tok::Str(_) => {
                let mut text = String::new();
                let mut kinds = Vec::new();
                while let Some(Tok::Str(s)) = self.peek() {
                    kinds.push(s.kind);
                    if s.kind == StrKind::Text {
                        text.push_str(&s.value()?);
                    }
                    self.pos += 1;
                }
                if kinds.contains(&StrKind::Formatted) {
                    Err("an f-string is computed when the module runs".into())
                } else if kinds.iter().all(|k| *k == StrKind::Bytes) {
                    Err("a bytes literal is not a string".into())
                } else if kinds.contains(&StrKind::Bytes) {
                    Err("it concatenates bytes and str, which Python refuses".into())
                } else {
                    Ok(Lit::Str(text))
                }
            }
            Tok::Name(n) if n == "None" => {
                self.pos += 1;
                Ok(Lit::None)
            }
            Tok::Op("(") => {
                self.pos += 1;
                if self.peek().is_some_and(|t| t.is_op(")")) {
                    self.pos += 1;
                    return Ok(Lit::Tuple(Vec::new()));
                }
                let inner = self.expr(Some(")"))?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Op("[") => {
                self.pos += 1;
                let inner = self.expr(Some("]"))?;
                self.expect("]")?;
                Ok(match inner {
                    Lit::Tuple(items) => Lit::List(items),
                    one => Lit::List(vec![one]),
                })
            }
            other => Err(format!("{} is not a literal", show(other))),
        }
    }

    fn expect(&mut self, close: &str) -> Result<(), String> {
        match self.peek() {
            Some(t) if t.is_op(close) => {
                self.pos += 1;
                Ok(())
            }
            Some(t) => Err(format!("{} follows a value", show(t))),
            None => Err("the value is cut short".into()),
        }
    }
}

fn show_name(tok: &Tok) -> &str {
    match tok {
        Tok::Name(n) => n,
        _ => "?",
    }
}

/// A token for a message: ``name `x` ``, ``the number `1` ``, `` `+` ``.
fn show(tok: &Tok) -> String {
    match tok {
        Tok::Name(n) => format!("the name `{n}`"),
        Tok::Number(n) => format!("the number `{n}`"),
        Tok::Op(op) => format!("`{op}`"),
        Tok::Str(s) if s.kind == StrKind::Formatted => "an f-string".into(),
        Tok::Str(_) => "a string".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(src: &str) -> Result<Revision, Vec<Problem>> {
        parse(Path::new("versions/x_rev.py"), src.as_bytes())
    }

    fn ok(src: &str) -> Revision {
        read(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
    }

    /// (source, id, down, labels, depends, message)
    #[allow(clippy::type_complexity)]
    const GOOD: &[(&str, &str, &[&str], &[&str], &[&str], &str)] = &[
        ("revision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        (
            "\"\"\"add users\n\nRevision ID: a\nRevises:\n\"\"\"\nfrom typing import Sequence, Union\n\nrevision: str = \"a\"\ndown_revision: Union[str, Sequence[str], None] = \"b\"\nbranch_labels: Union[str, Sequence[str], None] = None\ndepends_on: Union[str, Sequence[str], None] = None\n",
            "a", &["b"], &[], &[], "add users",
        ),
        ("revision = 'a'\ndown_revision = ('b', 'c')\n", "a", &["b", "c"], &[], &[], ""),
        ("revision = 'a'\ndown_revision = ['b']\n", "a", &["b"], &[], &[], ""),
        ("revision = 'a'\ndown_revision = (\n    'b',  # first\n    'c',\n)\n", "a", &["b", "c"], &[], &[], ""),
        ("revision = 'a'\ndown_revision = 'b', 'c'\n", "a", &["b", "c"], &[], &[], ""),
        ("revision = 'a'\ndown_revision = ()\n", "a", &[], &[], &[], ""),
        ("revision = 'a'\ndown_revision = ('b')\n", "a", &["b"], &[], &[], ""),
        ("revision = 'a'\ndown_revision = ('b',)\n", "a", &["b"], &[], &[], ""),
        ("revision = 'a' 'b' \"c\"\ndown_revision = None\n", "abc", &[], &[], &[], ""),
        ("revision = ('a'\n  'b')\ndown_revision = None\n", "ab", &[], &[], &[], ""),
        ("revision = r'a\\b'\ndown_revision = u'x'\n", "a\\b", &["x"], &[], &[], ""),
        ("revision = 'a\\x41'\ndown_revision = None\n", "aA", &[], &[], &[], ""),
        ("revision = 'a'; down_revision = None; branch_labels = 'main'\n", "a", &[], &["main"], &[], ""),
        ("revision = 'a'\ndown_revision = None\nbranch_labels = ('x', 'y')\ndepends_on = 'z'\n", "a", &[], &["x", "y"], &["z"], ""),
        ("revision = 'a'\ndown_revision = None\ndepends_on = ['z', 'w']\n", "a", &[], &[], &["z", "w"], ""),
        ("revision = 'old'\nrevision = 'new'\ndown_revision = None\n", "new", &[], &[], &[], ""),
        ("revision = \\\n  'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        // Doc: first paragraph, stripped; parenthesised and concatenated docstrings count.
        ("'''\n  two\n  lines\n\n  more'''\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], "two\n  lines"),
        ("('doc' \" more\")\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], "doc more"),
        ("# comment\n\n'''doc'''\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], "doc"),
        ("\"\"\"doc\"\"\"; revision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], "doc"),
        // Not docstrings: an f-string, bytes, a later string, a method call on it.
        ("f'''doc'''\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        ("b'''doc'''\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        ("import os\n'''doc'''\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        ("'''doc'''.strip()\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        ("'''doc'''\n__doc__ = 'other'\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], "other"),
        // BOM and CRLF.
        ("\u{feff}\"\"\"crlf\r\n\r\nmore\"\"\"\r\nrevision = 'a'\r\ndown_revision = (\r\n  'b',\r\n)\r\n", "a", &["b"], &[], &[], "crlf"),
        // Code that does not run at import, or does not bind the names, is not read.
        (
            "revision = 'a'\ndown_revision = None\n\ndef upgrade():\n    revision = 'zzz'\n    down_revision = f'{x}'\n    if x:\n        depends_on = y\n\nclass T:\n    revision = 1\n",
            "a", &[], &[], &[], "",
        ),
        ("revision = 'a'\ndown_revision = None\nx = revision\nprint(down_revision.upper())\nop.revision = 2\nf(revision=1)\n", "a", &[], &[], &[], ""),
        ("revision = 'a'\ndown_revision = None\nif TYPE_CHECKING:\n    from x import Y\n", "a", &[], &[], &[], ""),
        ("revision = 'a'\ndown_revision = None\nrevision_id: str = 'zzz'\nmy_down_revision = 3\n", "a", &[], &[], &[], ""),
        ("revision: str\nrevision = 'a'\ndown_revision = None\n", "a", &[], &[], &[], ""),
        ("revision = 'a'\ndown_revision = None\nmatch = 3\nmatch(x)\n", "a", &[], &[], &[], ""),
        ("revision = 'a'\ndown_revision = None\nf = lambda revision='x': revision\ng = [revision for revision in y]\n", "a", &[], &[], &[], ""),
        ("revision = 'a'\ndown_revision = None\ndef f():\n    exec('revision = 1')\n", "a", &[], &[], &[], ""),
        ("revision = \"it's\"\ndown_revision = 'say \"hi\"'\n", "it's", &["say \"hi\""], &[], &[], ""),
        ("revision = 'a'\ndown_revision = None\nx = f\"{d[\"revision\"]}\"\n", "a", &[], &[], &[], ""),
    ];

    #[test]
    fn literals_are_read_as_python_binds_them() {
        for (src, id, down, labels, depends, message) in GOOD {
            let r = ok(src);
            assert_eq!(r.id, *id, "{src:?}");
            assert_eq!(r.down_revisions, *down, "{src:?}");
            assert_eq!(r.branch_labels, *labels, "{src:?}");
            assert_eq!(r.depends_on, *depends, "{src:?}");
            assert_eq!(r.message, *message, "{src:?}");
        }
    }

    /// (source, line, words the problem must hold)
    const BAD: &[(&str, Line, &str)] = &[
        (
            "revision = REV\ndown_revision = None\n",
            1,
            "`revision` is not a literal: the name `REV`",
        ),
        (
            "revision = 'a'\ndown_revision = get()\n",
            2,
            "`down_revision` is not a literal: the name `get`",
        ),
        ("revision = 'a'\ndown_revision = f'{x}'\n", 2, "f-string"),
        (
            "revision = 'a'\ndown_revision = 'b' if x else None\n",
            2,
            "the name `if` follows",
        ),
        (
            "revision = 'a' + 'b'\ndown_revision = None\n",
            1,
            "`+` follows",
        ),
        (
            "revision = 'a'.strip()\ndown_revision = None\n",
            1,
            "`.` follows",
        ),
        ("revision = b'a'\ndown_revision = None\n", 1, "bytes"),
        (
            "revision = 'a' b'x'\ndown_revision = None\n",
            1,
            "bytes and str",
        ),
        (
            "revision = None\ndown_revision = None\n",
            1,
            "`revision` must be a string, not None",
        ),
        (
            "revision = 'a'\ndown_revision = ('b', None)\n",
            2,
            "holding None",
        ),
        (
            "revision = 'a'\ndown_revision = ('b', ('c',))\n",
            2,
            "holding a tuple",
        ),
        (
            "revision = 'a'\ndown_revision = {'b'}\n",
            2,
            "`{` is not a literal",
        ),
        ("revision = 'a'\ndown_revision = 1\n", 2, "the number `1`"),
        (
            "revision = 'a'\ndown_revision = None\nif x:\n    down_revision = 'b'\n",
            4,
            "inside a module-level `if` block",
        ),
        (
            "revision = 'a'\ndown_revision = None\ntry:\n    pass\nexcept E:\n    revision = 'b'\n",
            6,
            "`except` block",
        ),
        (
            "revision = 'a'\nif x: down_revision = None\n",
            2,
            "`if` block",
        ),
        (
            "revision = 'a'\ndown_revision = ['b']\ndown_revision += ['c']\n",
            3,
            "augmented assignment",
        ),
        (
            "revision = 'a'\ndown_revision = ['b']\ndown_revision.append('c')\n",
            3,
            "method call",
        ),
        (
            "revision = 'a'\ndown_revision = None\ndel revision\n",
            3,
            "deleted",
        ),
        (
            "revision = 'a'\ndown_revision = None\nfrom x import depends_on\n",
            3,
            "import",
        ),
        (
            "revision = 'a'\ndown_revision = None\nimport y as branch_labels\n",
            3,
            "import",
        ),
        (
            "revision = 'a'\ndown_revision = None\nfrom x import *\n",
            3,
            "import *",
        ),
        (
            "revision = 'a'\ndown_revision = None\nrevision, x = 'b', 1\n",
            3,
            "tuple, subscript",
        ),
        (
            "revision = 'a'\ndown_revision = ['b']\ndown_revision[0] = 'c'\n",
            3,
            "tuple, subscript",
        ),
        (
            "revision = 'a'\ndown_revision = None\nfor revision in x:\n    pass\n",
            3,
            "`for` statement",
        ),
        (
            "revision = 'a'\ndown_revision = None\nwith f() as depends_on:\n    pass\n",
            3,
            "`with` statement",
        ),
        (
            "revision = 'a'\ndown_revision = None\ndef revision():\n    pass\n",
            3,
            "`def` statement",
        ),
        (
            "revision = 'a'\ndown_revision = None\n(revision := 'b')\n",
            3,
            ":=",
        ),
        (
            "revision = 'a'\ndown_revision = None\ndef f():\n    global revision\n",
            4,
            "global revision",
        ),
        (
            "revision = 'a'\ndown_revision = None\n__doc__ = d\n",
            3,
            "`__doc__` is not a literal",
        ),
        ("revision = 'a'\n", 0, "no top-level `down_revision"),
        ("down_revision = None\n", 0, "no top-level `revision"),
        ("revision = 'a\ndown_revision = None\n", 1, "never closed"),
        (
            "revision = 'a'\ndown_revision = (\n  'b',\n",
            2,
            "never closed",
        ),
        (
            "revision = '\\N{BULLET}'\ndown_revision = None\n",
            1,
            "named Unicode escapes",
        ),
        ("revision = 'a'\ndown_revision =\n", 2, "there is no value"),
        (
            "revision = 'a'\nif x\n    down_revision = None\n",
            2,
            "without its `:`",
        ),
        (
            "revision = 'a'\ndown_revision = None\nglobals()['revision'] = 'b'\n",
            3,
            "`globals()`",
        ),
        (
            "revision = 'a'\ndown_revision = None\nexec(code)\n",
            3,
            "`exec()`",
        ),
        (
            "revision = 'a'\ndown_revision = None\n[(revision := x) for x in y]\n",
            3,
            ":=",
        ),
        (
            "revision = 'a'\ndown_revision = None\nmatch x:\n    case revision:\n        pass\n",
            4,
            "`match` statement",
        ),
        (
            "revision = 'a'\ndown_revision = None\ntype revision = str\n",
            3,
            "tuple, subscript",
        ),
        (
            "revision = 'a'\ndown_revision = None\nx = revision = 'b'\nrevision = x\n",
            4,
            "the name `x`",
        ),
    ];

    #[test]
    fn anything_but_a_literal_is_a_problem_naming_line_and_variable() {
        for (src, line, words) in BAD {
            let problems = read(src).expect_err(src);
            assert!(
                problems
                    .iter()
                    .any(|p| p.line == *line && p.problem.contains(words)),
                "{src:?}: want line {line} with {words:?}, got {problems:?}"
            );
        }
    }

    #[test]
    fn legacy_files_take_their_id_from_the_name() {
        let r = parse(Path::new("v/1975ea83b712.py"), b"down_revision = None\n").expect("legacy");
        assert_eq!(r.id, "1975ea83b712");
        assert_eq!(r.line, 0);
        assert!(parse(
            Path::new("v/1975ea83b712_add.py"),
            b"down_revision = None\n"
        )
        .is_err());
    }

    #[test]
    fn every_problem_of_a_file_is_reported() {
        let problems = read("revision = X\ndown_revision = Y\n").expect_err("two names");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
