//! Statement analysis: parses each statement of a migration (MySQL's and SQLite's with
//! sqlparser in the engine's dialect, PostgreSQL's with PostgreSQL's own grammar in [`pg`]) and
//! turns what it does into raw hits, already gated by what the [`Catalog`] says about the
//! tables it touches.
//!
//! Owns the knowledge of which PostgreSQL/MySQL/SQLite statement takes which lock or destroys
//! what. It does not decide severities, acknowledgements or contract files (`lint` does) and
//! it never sees the database: the catalog is data.

// Each match arm names one kind of operation and then asks whether its gate holds; folding
// the gate into a guard would send gated-out operations to the catch-all arm and hide which
// operations the analysis knows.
#![allow(clippy::collapsible_match)]

use std::collections::{HashMap, HashSet};

use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, ContextModifier, Expr,
    ObjectName, ObjectType, Set, TableConstraint, TableFactor,
};
use sqlparser::dialect::{Dialect, MySqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

mod pg;
use super::{Catalog, Size};
use crate::engine::Engine;
use crate::migrate::source::Script;
use crate::migrate::split::{self, Statement};

/// One rule hit before severities and acknowledgements are applied.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub rule: &'static str,
    pub message: String,
    /// Line and column of the statement's first SQL token.
    pub line: usize,
    pub column: usize,
    /// The lines whose comments belong to the statement: `[first, code)`.
    pub comments: (usize, usize),
    /// The statement names a large table that existed before the run (what makes a statement
    /// shipgate cannot read refuse a release).
    pub names_large: bool,
    /// In a function's body: reported by `check`, never by the release gate.
    pub deferred: bool,
}

/// What kind of object a name refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Table(String),
    Index(String),
    Schema(String),
    Database(String),
    /// (table, column).
    Column(String, String),
}

/// What a run has seen so far: objects created in scope (the file without a database, the
/// pending batch with one) and constraints that make later steps safe.
#[derive(Debug, Default, Clone)]
pub(super) struct State {
    created: HashSet<Key>,
    /// Objects dropped in scope: whatever the catalog says, they no longer exist.
    gone: HashSet<Key>,
    /// Temporary tables created so far (they live in the run's session): never large, never
    /// seen by another session.
    temporary: HashSet<String>,
    /// Column types as the files so far declared them, (table, column) → type: with the
    /// catalog's, what tells a binary-coercible type change from a rewrite.
    types: HashMap<(String, String), String>,
    /// Constraints added NOT VALID: name → (table, column when it is `col IS NOT NULL`).
    not_valid: HashMap<String, (String, Option<String>)>,
    /// Validated `CHECK (col IS NOT NULL)` constraints: (table, column).
    not_null_checked: HashSet<(String, String)>,
}

impl State {
    /// Starts a new scope of "created by this file" (used without a database).
    pub fn forget_created(&mut self) {
        self.created.clear();
        self.gone.clear();
    }

    fn create(&mut self, key: Key) {
        self.gone.remove(&key);
        self.created.insert(key);
    }

    fn remove(&mut self, key: Key) {
        self.created.remove(&key);
        self.gone.insert(key);
    }
}

/// The per-file context of the analysis.
struct File<'a> {
    state: &'a mut State,
    catalog: &'a Catalog,
    engine: Engine,
    /// The file runs in one transaction (PostgreSQL/SQLite without `no-transaction`).
    transactional: bool,
    /// Statements in the file.
    statements: usize,
    /// Constraints added NOT VALID in this file.
    not_valid_here: HashSet<String>,
    /// The table whose ACCESS EXCLUSIVE lock this transaction holds, and the line it was taken.
    holding: Option<(String, usize)>,
    /// DDL statements seen (MySQL).
    ddl: usize,
    /// Whether a statement so far touched a table that existed before this run (so a fresh
    /// database, where every table is new, is never blocked by file-level MySQL atomicity).
    touched_existing: std::cell::Cell<bool>,
    /// `mysql-multiple-ddl` already reported for this file.
    ddl_flagged: bool,
    /// Tables this file created (an `INSERT … VALUES` into one takes no risk).
    created_here: HashSet<String>,
    /// Names a table created in this file was renamed to: on SQLite, what completes the
    /// documented table rebuild (create new, copy, drop old, rename new to old).
    renamed_onto: HashSet<String>,
    hits: Vec<RawHit>,
}

/// A hit of the statement being analysed.
struct RawHit {
    rule: &'static str,
    message: String,
    names_large: bool,
    /// A SQLite `drop-table` of this table, which a later rename may show to be a rebuild.
    rebuild_of: Option<String>,
    /// Found in a function's body: it runs when the function is called, so `check` reports it
    /// and the release gate does not.
    deferred: bool,
}

/// A column being added, as either parser read it.
struct AddedColumn<'a> {
    table: &'a str,
    col: &'a str,
    /// Its type as written, lower-case (`serial` fills it from a sequence).
    type_name: String,
    not_null: bool,
    has_default: bool,
    /// The default expression's text, when it could be printed.
    default: Option<String>,
    /// Identity or stored generated.
    generated: bool,
}

/// Analyses a script that runs forward (an up script, a repeatable), updating `state`.
pub(super) fn script(
    state: &mut State,
    catalog: &Catalog,
    script: &Script,
    engine: Engine,
) -> Vec<Hit> {
    // The set was read for this engine; a script the every-deploy path left unread is split
    // here by the same rules.
    let statements: Vec<Statement> = if script.read {
        script.statements.clone()
    } else {
        split::statements(&script.sql, engine)
    };
    // MySQL runs a file of data changes only in one transaction, like the other engines.
    let transactional = !script.directives.no_transaction
        && (engine != Engine::Mysql || split::mysql::data_only(&statements));
    let mut file = File {
        state,
        catalog,
        engine,
        transactional,
        statements: statements.len(),
        not_valid_here: HashSet::new(),
        holding: None,
        ddl: 0,
        touched_existing: std::cell::Cell::new(false),
        ddl_flagged: false,
        created_here: HashSet::new(),
        renamed_onto: HashSet::new(),
        hits: Vec::new(),
    };
    let mut out = Vec::new();
    let mut held = Vec::new();
    for s in &statements {
        let (code_line, column) = code_start(s);
        file.statement(&s.sql, code_line);
        for raw in file.hits.drain(..) {
            let hit = Hit {
                rule: raw.rule,
                message: raw.message,
                line: code_line,
                column,
                comments: (s.line, code_line),
                names_large: raw.names_large,
                deferred: raw.deferred,
            };
            match raw.rebuild_of {
                Some(table) => held.push((table, hit)),
                None => out.push(hit),
            }
        }
    }
    // A drop that no rename of a new table onto its name completed is a drop after all.
    let dropped: Vec<Hit> = held
        .into_iter()
        .filter(|(table, _)| !file.renamed_onto.contains(table))
        .map(|(_, hit)| hit)
        .collect();
    if !dropped.is_empty() {
        out.extend(dropped);
        out.sort_by_key(|h| (h.line, h.column));
    }
    out
}

/// The byte offset where a statement's SQL starts, after its leading comments.
fn code_offset(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if text[i..].starts_with("--") || text[i..].starts_with('#') {
            i = text[i..].find('\n').map_or(text.len(), |n| i + n + 1);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..]
                .find("*/")
                .map_or(text.len(), |n| i + 2 + n + 2);
        } else {
            return i;
        }
    }
}

/// Line and column in the file where the SQL of a statement starts, after its comments.
fn code_start(s: &Statement) -> (usize, usize) {
    let before = &s.sql[..code_offset(&s.sql)];
    let line = s.line + before.matches('\n').count();
    let column = match before.rfind('\n') {
        Some(nl) => 1 + before[nl + 1..].chars().count(),
        None => s.column + before.chars().count(),
    };
    (line, column)
}

/// The object's own name (last part), lower-cased unless quoted.
fn name(o: &ObjectName) -> String {
    o.0.last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .unwrap_or_else(|| o.to_string().to_lowercase())
}

fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

impl File<'_> {
    fn hit(&mut self, rule: &'static str, message: String) {
        self.hits.push(RawHit {
            rule,
            message,
            names_large: false,
            rebuild_of: None,
            deferred: false,
        });
    }

    /// An `opaque-sql` hit, noting whether the statement's text (string literals included:
    /// dynamic SQL names its tables there) names a large table that existed before the run.
    fn opaque(&mut self, message: String, code: &str) {
        let names_large = self.catalog.is_live()
            && code
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .filter(|w| !w.is_empty())
                .any(|w| self.large(&w.to_lowercase()));
        self.hits.push(RawHit {
            rule: "opaque-sql",
            message,
            names_large,
            rebuild_of: None,
            deferred: false,
        });
    }

    fn size(&self, key: &Key) -> Size {
        if self.state.created.contains(key) || self.state.gone.contains(key) {
            return Size::New;
        }
        match key {
            Key::Table(t) if self.state.temporary.contains(t) => Size::New,
            Key::Table(t) => self.catalog.table(t),
            Key::Index(i) => self.catalog.index(i),
            Key::Schema(n) | Key::Database(n) => {
                // A MySQL schema is a database.
                let database = matches!(key, Key::Database(_)) || self.engine == Engine::Mysql;
                let existed = self.catalog.has_namespace(n, database);
                if existed {
                    Size::Small
                } else {
                    Size::New
                }
            }
            Key::Column(t, c) => {
                if self.size(&Key::Table(t.clone())) == Size::New
                    || self.catalog.column(t, c).is_none()
                {
                    Size::New
                } else {
                    Size::Small
                }
            }
        }
    }

    /// The type a column had before this statement, when the files so far or the catalog say.
    fn column_type(&self, table: &str, column: &str) -> Option<String> {
        let key = (table.to_owned(), column.to_owned());
        if let Some(t) = self.state.types.get(&key) {
            return Some(t.clone());
        }
        if self.state.created.contains(&Key::Table(table.to_owned())) {
            return None;
        }
        self.catalog
            .column(table, column)
            .flatten()
            .map(str::to_owned)
    }

    /// Created in scope, temporary, or absent from the database: nobody else uses it yet.
    fn is_new(&self, table: &str) -> bool {
        self.size(&Key::Table(table.to_owned())) == Size::New
    }

    fn large(&self, table: &str) -> bool {
        self.size(&Key::Table(table.to_owned())) == Size::Large
    }

    fn existed(&self, key: Key) -> bool {
        let existed = self.size(&key) != Size::New;
        if existed && matches!(key, Key::Table(_)) {
            self.touched_existing.set(true);
        }
        existed
    }

    fn statement(&mut self, sql: &str, line: usize) {
        let code = &sql[code_offset(sql)..];
        let dialect: Box<dyn Dialect> = match self.engine {
            // PostgreSQL statements are read with PostgreSQL's own grammar.
            Engine::Postgres => return self.postgres(code, line),
            Engine::Mysql => Box::new(MySqlDialect {}),
            Engine::Sqlite => Box::new(SQLiteDialect {}),
        };
        let statements = match Parser::parse_sql(&*dialect, code) {
            Ok(s) => s,
            Err(e) => {
                self.opaque(
                    format!(
                        "the {} parser cannot read this statement ({e}), so it cannot be checked",
                        self.engine
                    ),
                    code,
                );
                return;
            }
        };
        for s in &statements {
            self.parsed(s, line, code);
        }
    }

    fn parsed(&mut self, s: &ast::Statement, line: usize, code: &str) {
        use ast::Statement as S;
        let mut exclusive: Vec<String> = Vec::new();
        let mut dml = false;
        let mut is_ddl = true;
        match s {
            S::CreateTable(ct) => {
                let table = name(&ct.name);
                if ct.temporary {
                    self.state.temporary.insert(table.clone());
                }
                for c in &ct.columns {
                    self.state.types.insert(
                        (table.clone(), ident(&c.name)),
                        c.data_type.to_string().to_lowercase(),
                    );
                }
                self.created_here.insert(table.clone());
                self.state.create(Key::Table(table));
            }
            S::CreateIndex(ci) => self.create_index(ci),
            S::CreateSchema { schema_name, .. } => {
                let n = match schema_name {
                    ast::SchemaName::Simple(n) | ast::SchemaName::NamedAuthorization(n, _) => {
                        name(n)
                    }
                    ast::SchemaName::UnnamedAuthorization(i) => ident(i),
                };
                self.state.create(Key::Schema(n));
            }
            S::CreateDatabase { db_name, .. } => {
                self.state.create(Key::Database(name(db_name)));
            }
            S::Drop {
                object_type, names, ..
            } => {
                for n in names {
                    self.drop(*object_type, n, &mut exclusive);
                }
            }
            S::Truncate(t) => {
                for target in &t.table_names {
                    let table = name(&target.name);
                    if self.existed(Key::Table(table.clone())) {
                        self.hit("truncate", format!("TRUNCATE {table} removes every row"));
                    }
                    exclusive.push(table);
                }
            }
            S::AlterTable(at) => self.alter_table(at, &mut exclusive),
            S::Lock(lock) => {
                is_ddl = false;
                // LOCK TABLE without a mode takes ACCESS EXCLUSIVE.
                if matches!(
                    lock.lock_mode,
                    None | Some(ast::LockTableMode::AccessExclusive)
                ) {
                    exclusive.extend(lock.tables.iter().map(|t| name(&t.name)));
                }
            }
            S::RenameTable(renames) => {
                for r in renames {
                    self.rename_table(&name(&r.old_name), &name(&r.new_name));
                }
            }
            S::Update(u) => {
                is_ddl = false;
                // Rows of a table nobody else sees yet (created in scope, temporary) are the
                // batch's own: changing them lengthens no lock on anyone's table.
                dml = match &u.table.relation {
                    TableFactor::Table { name: t, .. } => {
                        !(self.is_new(&name(t)) && u.from.is_none() && u.table.joins.is_empty())
                    }
                    _ => true,
                };
                if u.selection.is_none() {
                    if let TableFactor::Table { name: t, .. } = &u.table.relation {
                        let table = name(t);
                        if self.large(&table) {
                            self.hit(
                                "update-without-where",
                                format!("UPDATE {table} without WHERE rewrites every row"),
                            );
                        }
                    }
                }
            }
            S::Delete(d) => {
                is_ddl = false;
                let tables = match &d.from {
                    ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
                };
                let own = tables.iter().all(|t| {
                    t.joins.is_empty()
                        && matches!(&t.relation, TableFactor::Table { name: n, .. } if self.is_new(&name(n)))
                });
                dml = !(own && d.using.is_none());
                if d.selection.is_none() {
                    for t in tables {
                        if let TableFactor::Table { name: n, .. } = &t.relation {
                            let table = name(n);
                            if self.large(&table) {
                                self.hit(
                                    "delete-without-where",
                                    format!("DELETE FROM {table} without WHERE removes every row"),
                                );
                            }
                        }
                    }
                }
            }
            S::Insert(insert) => {
                is_ddl = false;
                // Literal rows into a table nobody else sees yet touch nothing of anyone's.
                let into_new = match &insert.table {
                    ast::TableObject::TableName(n) => self.is_new(&name(n)),
                    _ => false,
                };
                let literal = insert
                    .source
                    .as_ref()
                    .is_some_and(|q| matches!(q.body.as_ref(), ast::SetExpr::Values(_)));
                dml = !(into_new && literal);
            }
            S::Merge(_) | S::Copy { .. } => {
                is_ddl = false;
                dml = true;
            }
            S::Set(set) => {
                is_ddl = false;
                self.set(set);
            }
            S::Execute { .. } => {
                is_ddl = false;
                self.opaque(
                    "EXECUTE runs a prepared or dynamic statement that shipgate cannot see".into(),
                    code,
                );
            }
            S::Call(f) => {
                is_ddl = false;
                self.opaque(
                    format!(
                        "CALL {} runs a procedure whose statements shipgate cannot see",
                        f.name
                    ),
                    code,
                );
            }
            S::CreateView(_)
            | S::CreateFunction(_)
            | S::CreateTrigger(_)
            | S::CreateSequence { .. }
            | S::CreateType { .. }
            | S::CreateExtension(_)
            | S::DropFunction(_)
            | S::DropTrigger(_)
            | S::AlterIndex { .. }
            | S::AlterView(_)
            | S::AlterType(_)
            | S::Comment { .. }
            | S::CreateProcedure { .. } => {}
            _ => is_ddl = false,
        }
        if self.engine == Engine::Mysql && is_ddl {
            self.ddl += 1;
            if self.ddl >= 2 && self.touched_existing.get() && !self.ddl_flagged {
                self.ddl_flagged = true;
                self.hit(
                    "mysql-multiple-ddl",
                    "second DDL statement in this file: MySQL commits each one separately".into(),
                );
            }
        }
        self.locks(exclusive, dml, line);
    }

    /// What holding `exclusive` (tables this statement locks ACCESS EXCLUSIVE) and changing
    /// data (`dml`) mean in a transaction that may already hold such a lock.
    fn locks(&mut self, mut exclusive: Vec<String>, dml: bool, line: usize) {
        if !self.transactional {
            return;
        }
        exclusive.retain(|t| self.large(t));
        if let Some((held, at)) = self.holding.clone() {
            if dml {
                self.hit(
                    "exclusive-lock-then-more",
                    format!("data change while the ACCESS EXCLUSIVE lock on {held} (taken at line {at}) is held"),
                );
            } else if let Some(other) = exclusive.iter().find(|t| **t != held) {
                self.hit(
                    "exclusive-lock-then-more",
                    format!("ACCESS EXCLUSIVE lock on {other} while the one on {held} (taken at line {at}) is held"),
                );
            }
        } else if let Some(t) = exclusive.first() {
            self.holding = Some((t.clone(), line));
        }
    }

    fn create_index(&mut self, ci: &ast::CreateIndex) {
        let index = ci.name.as_ref().map(name);
        self.index_created(&name(&ci.table_name), index, ci.unique, ci.concurrently);
    }

    /// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [index] ON table`.
    fn index_created(
        &mut self,
        table: &str,
        index: Option<String>,
        unique: bool,
        concurrently: bool,
    ) {
        if concurrently {
            let existed = self.existed(Key::Table(table.to_owned()));
            self.concurrently("CREATE INDEX CONCURRENTLY", existed);
        } else if self.large(table) {
            let named = index.as_ref().map(|n| format!("{n} "));
            self.hit(
                "index-not-concurrent",
                format!(
                    "CREATE {}INDEX {}on {table} without CONCURRENTLY blocks writes to {table} while it builds",
                    if unique { "UNIQUE " } else { "" },
                    named.unwrap_or_default()
                ),
            );
        }
        if let Some(n) = index {
            self.state.create(Key::Index(n));
        }
    }

    /// `existed`: the index's table (or the index) existed before this run. Sharing a file only
    /// matters then: on a table the same release creates, a half-done file harms nobody.
    fn concurrently(&mut self, what: &str, existed: bool) {
        if self.transactional {
            self.hit(
                "concurrently-in-transaction",
                format!("{what} in a file that runs in a transaction: PostgreSQL will refuse it"),
            );
        }
        if self.statements > 1 && existed {
            self.hit(
                "concurrently-not-alone",
                format!(
                    "{what} shares its file with {} other statement(s)",
                    self.statements - 1
                ),
            );
        }
    }

    fn drop(&mut self, object_type: ObjectType, n: &ObjectName, exclusive: &mut Vec<String>) {
        let kind = match object_type {
            ObjectType::Table => Dropped::Table,
            ObjectType::Index => Dropped::Index,
            ObjectType::Schema => Dropped::Schema,
            ObjectType::Database => Dropped::Database,
            _ => return,
        };
        self.dropped(kind, name(n), false, exclusive);
    }

    /// `DROP <kind> [CONCURRENTLY] object`.
    fn dropped(
        &mut self,
        kind: Dropped,
        object: String,
        concurrently: bool,
        exclusive: &mut Vec<String>,
    ) {
        match kind {
            Dropped::Table => {
                if self.existed(Key::Table(object.clone())) {
                    // On SQLite the file may go on to rename a new copy onto this name: the
                    // documented way to alter a table there, under the database's write lock.
                    let rebuild_of = (self.engine == Engine::Sqlite).then(|| object.clone());
                    self.hits.push(RawHit {
                        rule: "drop-table",
                        message: format!("DROP TABLE {object}"),
                        names_large: false,
                        rebuild_of,
                        deferred: false,
                    });
                }
                exclusive.push(object.clone());
                self.state.temporary.remove(&object);
                self.state.remove(Key::Table(object));
            }
            Dropped::Index => {
                if concurrently {
                    let existed = self.existed(Key::Index(object.clone()));
                    self.concurrently("DROP INDEX CONCURRENTLY", existed);
                } else if self.size(&Key::Index(object.clone())) == Size::Large {
                    self.hit(
                        "index-not-concurrent",
                        format!("DROP INDEX {object} without CONCURRENTLY locks its table against reads and writes"),
                    );
                }
                self.state.remove(Key::Index(object));
            }
            Dropped::Schema => {
                if self.existed(Key::Schema(object.clone())) {
                    self.hit("drop-schema", format!("DROP SCHEMA {object}"));
                }
                self.state.remove(Key::Schema(object));
            }
            Dropped::Database => {
                if self.existed(Key::Database(object.clone())) {
                    self.hit("drop-database", format!("DROP DATABASE {object}"));
                }
                self.state.remove(Key::Database(object));
            }
        }
    }

    fn rename_table(&mut self, old: &str, new: &str) {
        if self.existed(Key::Table(old.to_owned())) {
            self.hit("rename-table", format!("table {old} renamed to {new}"));
        } else {
            if self.created_here.remove(old) {
                self.created_here.insert(new.to_owned());
                self.renamed_onto.insert(new.to_owned());
            }
            let moved: Vec<((String, String), String)> = self
                .state
                .types
                .iter()
                .filter(|((t, _), _)| t == old)
                .map(|((_, c), ty)| ((new.to_owned(), c.clone()), ty.clone()))
                .collect();
            self.state.types.extend(moved);
            self.state.remove(Key::Table(old.to_owned()));
            let replaced = Key::Table(new.to_owned());
            if self.state.gone.remove(&replaced) {
                // It takes the place of a table this run dropped (a rebuild): as big as that
                // one was, and as much in use.
                self.state.created.remove(&replaced);
            } else {
                self.state.create(replaced);
            }
        }
    }

    fn alter_table(&mut self, at: &ast::AlterTable, exclusive: &mut Vec<String>) {
        let table = name(&at.name);
        let large = self.large(&table);
        let existed = self.existed(Key::Table(table.clone()));
        for op in &at.operations {
            use AlterTableOperation as O;
            let mut takes_exclusive = true;
            match op {
                O::AddColumn { column_def, .. } => {
                    self.add_column(&table, column_def, large, existed);
                    let col = ident(&column_def.name);
                    self.state.types.insert(
                        (table.clone(), col.clone()),
                        column_def.data_type.to_string().to_lowercase(),
                    );
                    self.state.create(Key::Column(table.clone(), col));
                }
                O::AddConstraint {
                    constraint,
                    not_valid,
                } => {
                    let cname = constraint_name(constraint);
                    match constraint {
                        TableConstraint::ForeignKey(fk) => {
                            // SHARE ROW EXCLUSIVE: writes stop, reads go on.
                            takes_exclusive = false;
                            if *not_valid {
                                if let Some(c) = cname {
                                    self.not_valid(c, &table, None);
                                }
                            } else if large {
                                self.hit(
                                    "constraint-not-valid",
                                    format!(
                                        "foreign key on {table} ({}) added without NOT VALID checks every row under lock",
                                        fk.columns.iter().map(ident).collect::<Vec<_>>().join(", ")
                                    ),
                                );
                            }
                        }
                        TableConstraint::Check(check) => {
                            if *not_valid {
                                if let Some(c) = cname {
                                    let column = match check.expr.as_ref() {
                                        Expr::IsNotNull(inner) => match inner.as_ref() {
                                            Expr::Identifier(i) => Some(ident(i)),
                                            _ => None,
                                        },
                                        _ => None,
                                    };
                                    self.not_valid(c, &table, column);
                                }
                            } else if large {
                                self.hit(
                                    "constraint-not-valid",
                                    format!("CHECK constraint on {table} added without NOT VALID checks every row under an exclusive lock"),
                                );
                            }
                        }
                        TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => {
                            if large {
                                self.hit(
                                    "unique-not-using-index",
                                    format!("{} constraint on {table} builds its index under an exclusive lock", constraint_kind(constraint)),
                                );
                            }
                        }
                        _ => {}
                    }
                }
                O::ValidateConstraint { name: c } => {
                    // SHARE UPDATE EXCLUSIVE: reads and writes go on.
                    takes_exclusive = false;
                    let c = ident(c);
                    if self.transactional && self.not_valid_here.contains(&c) && large {
                        self.hit(
                            "validate-in-same-transaction",
                            format!("constraint {c} is validated in the transaction that added it"),
                        );
                    }
                    if let Some((t, Some(col))) = self.state.not_valid.get(&c).cloned() {
                        self.state.not_null_checked.insert((t, col));
                    }
                }
                O::AlterColumn { column_name, op } => {
                    let col = ident(column_name);
                    match op {
                        AlterColumnOperation::SetNotNull => {
                            let checked = self
                                .state
                                .not_null_checked
                                .contains(&(table.clone(), col.clone()));
                            if large && !checked {
                                self.hit(
                                    "set-not-null",
                                    format!("SET NOT NULL on {table}.{col} scans the table under an exclusive lock"),
                                );
                            }
                        }
                        AlterColumnOperation::SetDataType { data_type, .. } => {
                            // (PostgreSQL's binary-coercible changes are told apart in `pg`.)
                            let new = data_type.to_string().to_lowercase();
                            if large {
                                let old = self.column_type(&table, &col);
                                let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
                                self.hit(
                                    "column-type-change",
                                    format!("{table}.{col} changed{from} to {data_type}"),
                                );
                            }
                            self.state.types.insert((table.clone(), col.clone()), new);
                        }
                        _ => {}
                    }
                }
                O::ModifyColumn {
                    col_name,
                    data_type,
                    ..
                } => {
                    if large {
                        self.hit(
                            "column-type-change",
                            format!("{table}.{} redefined as {data_type}", ident(col_name)),
                        );
                    }
                }
                O::ChangeColumn {
                    old_name,
                    new_name,
                    data_type,
                    ..
                } => {
                    let (old, new) = (ident(old_name), ident(new_name));
                    if old != new {
                        if existed {
                            self.hit(
                                "rename-column",
                                format!("column {table}.{old} renamed to {new}"),
                            );
                        }
                    } else if large {
                        self.hit(
                            "column-type-change",
                            format!("{table}.{old} redefined as {data_type}"),
                        );
                    }
                }
                O::DropColumn { column_names, .. } => {
                    for c in column_names {
                        let col = ident(c);
                        if self.existed(Key::Column(table.clone(), col.clone())) {
                            self.hit("drop-column", format!("column {table}.{col} dropped"));
                        }
                        self.state.types.remove(&(table.clone(), col.clone()));
                        self.state.remove(Key::Column(table.clone(), col));
                    }
                }
                O::RenameColumn {
                    old_column_name,
                    new_column_name,
                } => {
                    let (old, new) = (ident(old_column_name), ident(new_column_name));
                    if self.existed(Key::Column(table.clone(), old.clone())) {
                        self.hit(
                            "rename-column",
                            format!("column {table}.{old} renamed to {new}"),
                        );
                    }
                    if let Some(ty) = self.state.types.remove(&(table.clone(), old.clone())) {
                        self.state.types.insert((table.clone(), new.clone()), ty);
                    }
                    self.state.remove(Key::Column(table.clone(), old));
                    self.state.create(Key::Column(table.clone(), new));
                }
                O::RenameTable { table_name } => {
                    let new = match table_name {
                        ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                            name(n)
                        }
                    };
                    self.rename_table(&table, &new);
                }
                _ => {}
            }
            if takes_exclusive && !exclusive.contains(&table) {
                exclusive.push(table.clone());
            }
        }
    }

    /// The rules about a column being added, whichever parser read it: `NOT NULL` without a
    /// default on an existing table, and a value computed for every existing row.
    fn added_column(&mut self, c: AddedColumn<'_>, large: bool, existed: bool) {
        let AddedColumn {
            table,
            col,
            type_name,
            not_null,
            has_default,
            default,
            generated,
        } = c;
        let serial = matches!(
            type_name.as_str(),
            "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
        );
        if not_null && !has_default && !generated && !serial && existed {
            self.hit(
                "add-column-not-null-no-default",
                format!("{table}.{col} is NOT NULL with no default: existing rows have no value"),
            );
        }
        if large {
            let cause = if serial {
                Some(format!("its {type_name} type fills it from a sequence"))
            } else if generated {
                Some("identity and stored generated columns are computed for every row".into())
            } else {
                default.as_deref().and_then(volatile_call).map(|f| {
                    format!("its default calls {f}(), which is evaluated for every existing row")
                })
            };
            if let Some(cause) = cause {
                self.hit(
                    "add-column-volatile-default",
                    format!("{table}.{col} added with a per-row value: {cause}"),
                );
            }
        }
    }

    fn not_valid(&mut self, constraint: String, table: &str, column: Option<String>) {
        self.not_valid_here.insert(constraint.clone());
        self.state
            .not_valid
            .insert(constraint, (table.to_owned(), column));
    }

    fn add_column(&mut self, table: &str, c: &ast::ColumnDef, large: bool, existed: bool) {
        let col = ident(&c.name);
        let mut not_null = false;
        let mut default = None;
        let mut generated = false;
        for o in &c.options {
            match &o.option {
                ColumnOption::NotNull | ColumnOption::PrimaryKey(_) => not_null = true,
                ColumnOption::Default(e) => default = Some(e),
                ColumnOption::Generated { .. } | ColumnOption::Identity(_) => generated = true,
                _ => {}
            }
        }
        self.added_column(
            AddedColumn {
                table,
                col: &col,
                type_name: c.data_type.to_string().to_ascii_lowercase(),
                not_null,
                has_default: default.is_some(),
                default: default.map(ToString::to_string),
                generated,
            },
            large,
            existed,
        );
        for o in &c.options {
            match &o.option {
                ColumnOption::Unique(_) | ColumnOption::PrimaryKey(_) if large => self.hit(
                    "unique-not-using-index",
                    format!("{table}.{col} declared {} inline: its index is built under an exclusive lock", if matches!(o.option, ColumnOption::Unique(_)) { "UNIQUE" } else { "PRIMARY KEY" }),
                ),
                ColumnOption::ForeignKey(_) | ColumnOption::Check(_) if large => self.hit(
                    "constraint-not-valid",
                    format!("{table}.{col} declares its {} inline, which is validated at once", if matches!(o.option, ColumnOption::Check(_)) { "CHECK" } else { "foreign key" }),
                ),
                _ => {}
            }
        }
    }

    fn set(&mut self, set: &Set) {
        let Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } = set
        else {
            return;
        };
        let scope = match scope {
            Some(ContextModifier::Local) => Scope::Local,
            Some(ContextModifier::Global) => Scope::Global,
            _ => Scope::Session,
        };
        let value = values.first().map(ToString::to_string);
        self.timeout(&name(variable), value.as_deref(), scope);
    }

    /// `SET [scope] var = value`: what it does to the bounds on waiting and running.
    fn timeout(&mut self, var: &str, value: Option<&str>, scope: Scope) {
        let timeouts: &[&str] = match self.engine {
            Engine::Postgres => &["lock_timeout", "statement_timeout"],
            Engine::Mysql => &[
                "lock_wait_timeout",
                "innodb_lock_wait_timeout",
                "max_statement_time",
                "max_execution_time",
            ],
            Engine::Sqlite => &[],
        };
        if !timeouts.contains(&var) {
            return;
        }
        if value.is_some_and(is_zero) {
            self.hit(
                "timeout-disabled",
                format!("{var} set to 0 removes the bound"),
            );
        }
        let scope = match scope {
            Scope::Local => return,
            Scope::Global => "global",
            Scope::Session => "session-level",
        };
        self.hit(
            "timeout-session-level",
            format!("{scope} SET {var} outlives this migration"),
        );
    }
}

/// What a `DROP` removes, of what the rules care about.
#[derive(Debug, Clone, Copy)]
enum Dropped {
    Table,
    Index,
    Schema,
    Database,
}

/// The scope of a `SET`.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Local,
    Session,
    Global,
}

/// A PostgreSQL type as (canonical base name, modifiers): `character varying(200)` and
/// `VARCHAR(200)` are both `("varchar", [200])`; `timestamp(3) without time zone` is
/// `("timestamp", [3])`.
fn pg_type(t: &str) -> (String, Vec<i64>) {
    let t = t.trim().to_lowercase();
    let (base, args) = match (t.find('('), t.find(')')) {
        (Some(open), Some(close)) if open < close => (
            format!("{} {}", &t[..open], &t[close + 1..]),
            t[open + 1..close]
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect(),
        ),
        _ => (t.clone(), Vec::new()),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = match base.as_str() {
        "character varying" | "varchar" => "varchar",
        "decimal" | "numeric" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        "bit varying" | "varbit" => "varbit",
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "bool" | "boolean" => "bool",
        "double precision" | "float8" => "float8",
        "real" | "float4" => "float4",
        "character" | "char" | "bpchar" => "bpchar",
        other => other,
    }
    .to_owned();
    (base, args)
}

/// Whether PostgreSQL changes a column from `old` to `new` without rewriting the table (the
/// ALTER TABLE notes: the old type is binary coercible to the new one and the contents do not
/// change): the same type; varchar(n) to varchar(m >= n), varchar or text; text to varchar;
/// varbit likewise; numeric(p,s) to numeric(q >= p, s) or numeric; timestamp, timestamptz,
/// time, timetz and interval to a higher precision or none.
fn binary_coercible(old: &str, new: &str) -> bool {
    let (old_base, old_args) = pg_type(old);
    let (new_base, new_args) = pg_type(new);
    let widens = |old: &[i64], new: &[i64]| match (old.first(), new.first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(o), Some(n)) => n >= o,
    };
    match (old_base.as_str(), new_base.as_str()) {
        (o, n) if o == n && old_args == new_args => true,
        ("varchar", "varchar") | ("varbit", "varbit") => widens(&old_args, &new_args),
        ("varchar", "text") => true,
        ("text", "varchar") => new_args.is_empty(),
        ("numeric", "numeric") => match (old_args.as_slice(), new_args.as_slice()) {
            (_, []) => true,
            ([p, rest @ ..], [q, more @ ..]) => {
                q >= p && rest.first().unwrap_or(&0) == more.first().unwrap_or(&0)
            }
            _ => false,
        },
        (o, n)
            if o == n
                && ["timestamp", "timestamptz", "time", "timetz", "interval"].contains(&o) =>
        {
            widens(&old_args, &new_args)
        }
        _ => false,
    }
}

fn constraint_name(c: &TableConstraint) -> Option<String> {
    let n = match c {
        TableConstraint::ForeignKey(c) => c.name.as_ref(),
        TableConstraint::Check(c) => c.name.as_ref(),
        TableConstraint::Unique(c) => c.name.as_ref(),
        TableConstraint::PrimaryKey(c) => c.name.as_ref(),
        _ => None,
    };
    n.map(ident)
}

fn constraint_kind(c: &TableConstraint) -> &'static str {
    match c {
        TableConstraint::PrimaryKey(_) => "PRIMARY KEY",
        _ => "UNIQUE",
    }
}

/// Whether a timeout value means "no limit": `0`, `'0'`, `'0s'`, `'0ms'`.
fn is_zero(value: &str) -> bool {
    let v = value.trim().trim_matches(['\'', '"']).trim();
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim();
    !digits.is_empty() && digits.parse::<f64>().is_ok_and(|n| n == 0.0)
}

/// Functions a column default may call without being evaluated per row (immutable or stable,
/// or SQL syntax that prints like a call).
const NOT_VOLATILE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "current_user",
    "session_user",
    "current_schema",
    "cast",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "lower",
    "upper",
    "trim",
    "concat",
    "length",
    "abs",
    "round",
    "make_interval",
    "make_date",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array",
    "row",
    "interval",
    "timestamp",
    "timestamptz",
    "date",
    "numeric",
    "decimal",
    "varchar",
    "char",
];

/// The first function in a default expression that may be volatile (not known to be
/// immutable or stable), skipping string literals.
fn volatile_call(expr: &str) -> Option<String> {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.'))
            {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            if bytes.get(j) == Some(&b'(') {
                let f = word.rsplit('.').next().unwrap_or(word).to_ascii_lowercase();
                if !NOT_VOLATILE.contains(&f.as_str()) {
                    return Some(f);
                }
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_zero_timeouts() {
        for (v, want) in [
            ("0", true),
            ("'0'", true),
            ("'0s'", true),
            ("'0ms'", true),
            ("'5s'", false),
            ("100", false),
            ("DEFAULT", false),
        ] {
            assert_eq!(is_zero(v), want, "{v}");
        }
    }

    #[test]
    fn finds_volatile_calls_in_defaults() {
        for (e, want) in [
            ("now()", None),
            ("CURRENT_TIMESTAMP", None),
            ("'random()'", None),
            ("0", None),
            ("CAST('{}' AS JSONB)", None),
            ("random()", Some("random")),
            ("gen_random_uuid()", Some("gen_random_uuid")),
            ("public.uuid_generate_v4()", Some("uuid_generate_v4")),
            (
                "coalesce(clock_timestamp(), now())",
                Some("clock_timestamp"),
            ),
            ("nextval('s')", Some("nextval")),
        ] {
            assert_eq!(volatile_call(e).as_deref(), want, "{e}");
        }
    }

    #[test]
    fn locates_the_code_after_leading_comments() {
        let s = Statement {
            sql: "-- a\n  /* b */ SELECT 1".into(),
            line: 3,
            column: 5,
        };
        assert_eq!(code_start(&s), (4, 11));
        let s = Statement {
            sql: "SELECT 1".into(),
            line: 2,
            column: 7,
        };
        assert_eq!(code_start(&s), (2, 7));
    }
}
