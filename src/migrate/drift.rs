//! Drift: the schema shipgate is responsible for, as a normalised snapshot, and the
//! differences between the live schema and the snapshot stored after the last release.
//!
//! Pure: the backends read the catalog in one statement (rows of eight text columns:
//! `kind, schema, table, name, a, b, c, d`, see [`normalise`]) and store or read the snapshot's
//! JSON; this module turns rows into a [`Snapshot`], compares two of them ([`diff`]) and words
//! each [`Difference`] with the DDL that would explain it. It must not do I/O, read the
//! configuration or know which engine produced the rows beyond what the rows say.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of the snapshot's JSON layout, stored in it so a later shipgate can tell.
pub const FORMAT: u32 = 1;

/// How many stored snapshots are kept (the newest by time taken; one row per version).
pub const KEEP: u32 = 10;

/// Other tools' history tables: never part of the schema shipgate compares (their rows change
/// with every run of their tool, and their shape is the tool's business).
pub const OTHER_TOOLS_TABLES: &[&str] = &[
    "_sqlx_migrations",
    "schema_migrations",
    "goose_db_version",
    "flyway_schema_history",
    "__diesel_schema_migrations",
    "_prisma_migrations",
    "atlas_schema_revisions",
    "alembic_version",
];

/// What kind of schema object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A table (PostgreSQL: also partitioned and foreign tables).
    Table,
    /// A column of a table.
    Column,
    /// A table constraint (primary key, unique, check, foreign key, exclusion).
    Constraint,
    /// An index not backing a constraint.
    Index,
    /// A view or materialised view.
    View,
    /// A function or procedure, compared by the hash of its definition.
    Function,
    /// A trigger, compared by the hash of its definition.
    Trigger,
    /// An enum type and its labels in order.
    Enum,
    /// An installed extension and its version.
    Extension,
    /// A sequence not owned by an identity column.
    Sequence,
}

impl Kind {
    /// The one-letter code the backends' catalog statements emit.
    fn from_code(code: &str) -> Option<Kind> {
        Some(match code {
            "t" => Kind::Table,
            "c" => Kind::Column,
            "k" => Kind::Constraint,
            "i" => Kind::Index,
            "v" => Kind::View,
            "f" => Kind::Function,
            "g" => Kind::Trigger,
            "e" => Kind::Enum,
            "x" => Kind::Extension,
            "q" => Kind::Sequence,
            _ => return None,
        })
    }

    /// The word for it in messages.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::Constraint => "constraint",
            Kind::Index => "index",
            Kind::View => "view",
            Kind::Function => "function",
            Kind::Trigger => "trigger",
            Kind::Enum => "enum",
            Kind::Extension => "extension",
            Kind::Sequence => "sequence",
        }
    }

    /// The names of the catalog row's `a`, `b`, `c` values as attributes. A definition that
    /// is long and only compared is stored as `hash`.
    fn attributes(self) -> [&'static str; 3] {
        match self {
            Kind::Table => ["type", "", ""],
            Kind::Column => ["type", "nullable", "default"],
            Kind::Constraint | Kind::View => ["definition", "", ""],
            Kind::Index => ["definition", "valid", ""],
            Kind::Function => ["hash", "type", ""],
            Kind::Trigger => ["hash", "event", ""],
            Kind::Enum => ["labels", "", ""],
            Kind::Extension => ["version", "", ""],
            Kind::Sequence => ["type", "increment", ""],
        }
    }

    /// Objects that belong to a table and go with it.
    fn on_table(self) -> bool {
        matches!(
            self,
            Kind::Column | Kind::Constraint | Kind::Index | Kind::Trigger
        )
    }
}

/// One schema object, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// Its schema (PostgreSQL); `None` where the connection's database is the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The table it belongs to (columns, constraints, indexes, triggers, owned sequences).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Its name (a function's with its argument types).
    pub name: String,
    /// What is compared: type, nullability, default, definition or its hash, labels, …
    pub attrs: BTreeMap<String, String>,
}

impl Object {
    /// The key it is compared under: kind, schema, table and name.
    fn key(&self) -> String {
        let mut key = String::from(self.kind.word());
        for part in [&self.schema, &self.table].into_iter().flatten() {
            key.push(' ');
            key.push_str(part);
        }
        key.push(' ');
        key.push_str(&self.name);
        key
    }

    /// The key of the table it belongs to, for objects that belong to one.
    fn table_key(&self) -> Option<String> {
        let table = self.table.as_ref().filter(|_| self.kind.on_table())?;
        let mut key = String::from("table");
        if let Some(schema) = &self.schema {
            key.push(' ');
            key.push_str(schema);
        }
        key.push(' ');
        key.push_str(table);
        Some(key)
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
}

/// The schema shipgate is responsible for, as one deterministic value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The schema that unqualified names resolve to (PostgreSQL's `current_schema()`), so
    /// messages name `users` rather than `public.users`.
    pub default_schema: Option<String>,
    /// Every object by its key.
    pub objects: BTreeMap<String, Object>,
}

/// A snapshot as `shipgate_schema` holds it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The version it belongs to (the highest applied one when it was taken).
    pub version: String,
    /// When it was taken (RFC 3339, UTC).
    pub taken_at: Option<String>,
    /// The run that took it, if a run did (`baseline`, `adopt` and `drift --accept` have none).
    pub run_id: Option<i64>,
    /// [`Snapshot::hash`] when it was stored.
    pub hash: String,
    /// The schema.
    pub snapshot: Snapshot,
}

/// The JSON layout: what [`Snapshot::to_json`] writes.
#[derive(Serialize, Deserialize)]
struct Layout {
    format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_schema: Option<String>,
    objects: Vec<Object>,
}

/// Why stored JSON could not be read as a snapshot.
#[derive(Debug, thiserror::Error)]
#[error("the stored schema snapshot is not readable: {0}")]
pub struct ReadError(String);

impl Snapshot {
    /// The JSON stored in `shipgate_schema`: objects in key order, so equal schemas give equal
    /// text and equal hashes.
    pub fn to_json(&self) -> String {
        let stored = Layout {
            format: FORMAT,
            default_schema: self.default_schema.clone(),
            objects: self.objects.values().cloned().collect(),
        };
        serde_json::to_string(&stored).expect("a snapshot of strings always serialises")
    }

    /// Reads what [`Snapshot::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<Snapshot, ReadError> {
        let stored: Layout = serde_json::from_str(text).map_err(|e| ReadError(e.to_string()))?;
        if stored.format > FORMAT {
            return Err(ReadError(format!(
                "format {} was written by a newer shipgate (this one reads up to {FORMAT})",
                stored.format
            )));
        }
        Ok(Snapshot {
            default_schema: stored.default_schema,
            objects: stored.objects.into_iter().map(|o| (o.key(), o)).collect(),
        })
    }

    /// SHA-256 of the JSON, hex: two snapshots with the same hash hold the same schema.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().as_bytes()))
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds no object at all.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// `schema.name`, or `name` alone in the default schema (or without schemas).
    fn qualify(&self, schema: Option<&str>, name: &str) -> String {
        match schema {
            Some(s) if Some(s) != self.default_schema.as_deref() => format!("{s}.{name}"),
            _ => name.to_owned(),
        }
    }

    /// The name people know the object by: `users`, `users.email` for a column,
    /// `audit.events` outside the default schema.
    fn display(&self, o: &Object) -> String {
        match (&o.table, o.kind) {
            (Some(table), Kind::Column) => {
                format!("{}.{}", self.qualify(o.schema.as_deref(), table), o.name)
            }
            (Some(_), Kind::Index | Kind::Constraint | Kind::Trigger) => o.name.clone(),
            _ => self.qualify(o.schema.as_deref(), &o.name),
        }
    }

    /// `name` as DDL writes it: as it is when it is a plain identifier, else quoted (double
    /// quotes on PostgreSQL, the one engine whose snapshots carry a schema; backticks, which
    /// MySQL and SQLite both read, elsewhere). PostgreSQL folds unquoted names to lower case,
    /// so a name with a capital is quoted there; MySQL and SQLite keep case.
    fn quote(&self, name: &str) -> String {
        let postgres = self.default_schema.is_some();
        let plain = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| {
                c.is_ascii_digit()
                    || c == '_'
                    || c.is_ascii_lowercase()
                    || (!postgres && c.is_ascii_uppercase())
            })
            && !RESERVED.contains(&name.to_ascii_lowercase().as_str());
        match (plain, postgres) {
            (true, _) => name.to_owned(),
            (false, true) => format!("\"{}\"", name.replace('"', "\"\"")),
            (false, false) => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// `schema.name` (the schema left out when it is the default one), each part quoted as
    /// DDL needs.
    fn qualified(&self, schema: Option<&str>, name: &str) -> String {
        match schema {
            Some(s) if Some(s) != self.default_schema.as_deref() => {
                format!("{}.{}", self.quote(s), self.quote(name))
            }
            _ => self.quote(name),
        }
    }

    /// DDL that would create `o` (what someone ran by hand, or what a migration should run),
    /// with names quoted where the engine needs it (`ALTER TABLE "User" ADD COLUMN …`).
    fn ddl(&self, o: &Object) -> Option<String> {
        let table = o
            .table
            .as_deref()
            .map(|t| self.qualified(o.schema.as_deref(), t));
        match o.kind {
            Kind::Table => {
                let mut columns: Vec<&Object> = self
                    .objects
                    .values()
                    .filter(|c| {
                        c.kind == Kind::Column
                            && c.schema == o.schema
                            && c.table.as_deref() == Some(&o.name)
                    })
                    .collect();
                columns.sort_by_key(|c| c.attr("position").and_then(|p| p.parse::<u32>().ok()));
                let columns: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{} {}", self.quote(&c.name), column_text(c)))
                    .collect();
                Some(format!(
                    "CREATE TABLE {} ({})",
                    self.qualified(o.schema.as_deref(), &o.name),
                    columns.join(", ")
                ))
            }
            Kind::Column => Some(format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                table?,
                self.quote(&o.name),
                column_text(o)
            )),
            Kind::Constraint => Some(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                table?,
                self.quote(&o.name),
                o.attr("definition")?
            )),
            Kind::Index => {
                let definition = o.attr("definition")?;
                Some(
                    if definition.starts_with("CREATE") || definition.starts_with("ALTER") {
                        definition.to_owned()
                    } else {
                        format!(
                            "CREATE INDEX {} ON {} ({definition})",
                            self.quote(&o.name),
                            table?
                        )
                    },
                )
            }
            Kind::View => Some(format!(
                "CREATE VIEW {} AS {}",
                self.qualified(o.schema.as_deref(), &o.name),
                o.attr("definition")?
            )),
            Kind::Enum => Some(format!(
                "CREATE TYPE {} AS ENUM {}",
                self.qualified(o.schema.as_deref(), &o.name),
                o.attr("labels")?
            )),
            Kind::Extension => Some(format!("CREATE EXTENSION {}", self.quote(&o.name))),
            Kind::Sequence => Some(format!(
                "CREATE SEQUENCE {}",
                self.qualified(o.schema.as_deref(), &o.name)
            )),
            Kind::Function | Kind::Trigger => None,
        }
    }
}

/// Words that cannot stand as a name unquoted in some engine's DDL (SQL's reserved words that
/// tables and columns are most often named after). A name outside the list that still needs
/// quotes is rare; the DDL in a drift message is a hint to write a migration from, not run.
const RESERVED: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "asc",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "index",
    "into",
    "key",
    "leading",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "primary",
    "references",
    "select",
    "session_user",
    "some",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "when",
    "where",
    "window",
    "with",
];

/// A column's type, nullability and default as DDL.
fn column_text(c: &Object) -> String {
    let mut text = c.attr("type").unwrap_or("").to_owned();
    if c.attr("nullable") == Some("NOT NULL") {
        text.push_str(" NOT NULL");
    }
    if let Some(default) = c.attr("default") {
        text.push_str(" DEFAULT ");
        text.push_str(default);
    }
    text
}

/// Whitespace runs as one space, trimmed: a definition reformatted by the server (or a view
/// re-indented) is the same definition.
fn collapse(text: &str) -> String {
    // Most values (types, names, short definitions) have nothing to collapse: copied as they are.
    let mut previous_space = true;
    let plain = text.chars().all(|c| {
        let ok = c == ' ' && !previous_space || !c.is_whitespace();
        previous_space = c == ' ';
        ok
    }) && !text.ends_with(' ');
    if plain {
        return text.to_owned();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Tables never compared: shipgate's own (any of `prefix`'s) and other tools' history tables.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    /// Table names (unqualified) left out with everything that belongs to them.
    pub tables: BTreeSet<String>,
}

impl Exclude {
    /// shipgate's tables under `prefix` and [`OTHER_TOOLS_TABLES`].
    pub fn for_prefix(prefix: &str) -> Exclude {
        let own = ["migrations", "runs", "audit", "repeatables", "schema"]
            .iter()
            .map(|t| format!("{prefix}_{t}"));
        Exclude {
            tables: own
                .chain(OTHER_TOOLS_TABLES.iter().map(|t| (*t).to_owned()))
                .collect(),
        }
    }

    fn excludes(&self, kind: Kind, table: Option<&str>, name: &str) -> bool {
        let own = matches!(kind, Kind::Table | Kind::Sequence | Kind::View) && {
            self.tables.contains(name)
        };
        own || table.is_some_and(|t| self.tables.contains(t))
    }
}

/// Builds the snapshot from the catalog rows a backend read: `kind, schema, table, name, a, b,
/// c, d`, all text. Kind `S` carries the default schema in `schema`; the others are
/// [`Kind::from_code`]'s letters, with `a`, `b`, `c` named by [`Kind::attributes`] and `d` a
/// column's position. Rows of an unknown kind, and objects of excluded tables, are left out;
/// definitions are whitespace-collapsed and functions' and triggers' hashed.
pub fn normalise(rows: &[Vec<Option<String>>], exclude: &Exclude) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for row in rows {
        let get = |i: usize| {
            row.get(i)
                .and_then(Option::as_deref)
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
        };
        let Some(code) = get(0) else { continue };
        if code == "S" {
            snapshot.default_schema = get(1);
            continue;
        }
        let (Some(kind), Some(name)) = (Kind::from_code(&code), get(3)) else {
            continue;
        };
        let table = get(2);
        if exclude.excludes(kind, table.as_deref(), &name) {
            continue;
        }
        let mut attrs = BTreeMap::new();
        for (attr, value) in kind.attributes().into_iter().zip([get(4), get(5), get(6)]) {
            let (false, Some(value)) = (attr.is_empty(), value) else {
                continue;
            };
            let value = collapse(&value);
            let value = if attr == "hash" {
                hex::encode(&Sha256::digest(value.as_bytes())[..8])
            } else {
                value
            };
            attrs.insert(attr.to_owned(), value);
        }
        // A column's ordinal position orders `CREATE TABLE` in messages; it is not compared
        // (a dropped and re-added column would otherwise move every later one).
        if kind == Kind::Column {
            if let Some(position) = get(7) {
                attrs.insert("position".to_owned(), position);
            }
        }
        let object = Object {
            kind,
            schema: get(1),
            table,
            name,
            attrs,
        };
        snapshot.objects.insert(object.key(), object);
    }
    snapshot
}

/// Objects and schemas left out of the comparison (`drift_ignore`, `drift_ignore_schemas`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    /// Globs (`*`, `?`) over object names: `audit_*` matches a name in any schema,
    /// `public.tmp_*` a qualified one, `users.legacy_*` columns of `users`. A table's glob
    /// covers its columns, indexes, constraints and triggers.
    pub objects: Vec<String>,
    /// Globs over schema names (PostgreSQL; MySQL and SQLite have none).
    pub schemas: Vec<String>,
}

impl Ignore {
    /// Whether `o` is left out.
    pub fn ignores(&self, o: &Object) -> bool {
        if self.objects.is_empty() && self.schemas.is_empty() {
            return false;
        }
        if let Some(schema) = &o.schema {
            if self.schemas.iter().any(|g| glob(g, schema)) {
                return true;
            }
        }
        let mut names = vec![o.name.clone()];
        if let Some(schema) = &o.schema {
            names.push(format!("{schema}.{}", o.name));
        }
        if let Some(table) = &o.table {
            names.push(table.clone());
            names.push(format!("{table}.{}", o.name));
            if let Some(schema) = &o.schema {
                names.push(format!("{schema}.{table}"));
                names.push(format!("{schema}.{table}.{}", o.name));
            }
        }
        self.objects
            .iter()
            .any(|g| names.iter().any(|n| glob(g, n)))
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // The classic two-pointer match with one backtrack point: linear in practice, never
    // exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// How an object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// In the live schema, not in the snapshot: nobody's migration created it.
    Unexpected,
    /// In the snapshot, not in the live schema: dropped outside the migrations.
    Missing,
    /// In both, with different attributes.
    Changed,
}

/// One difference between the live schema and the snapshot, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What changed.
    pub change: Change,
    /// The object's kind.
    pub kind: Kind,
    /// The object's name as people know it (`users.email`, `users_email_idx`).
    pub name: String,
    /// The sentence: what differs and the DDL that shows it.
    pub message: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every difference between `live` and `stored` that `ignore` does not leave out, in key
/// order. An object that belongs to a table that is itself unexpected or missing is not
/// listed on its own: the table's line says it (with its columns in the DDL).
pub fn diff(live: &Snapshot, stored: &Snapshot, ignore: &Ignore) -> Vec<Difference> {
    let only_in = |a: &Snapshot, b: &Snapshot| -> BTreeSet<String> {
        a.objects
            .iter()
            .filter(|(k, o)| o.kind == Kind::Table && !b.objects.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let whole_tables: BTreeSet<String> = only_in(live, stored)
        .union(&only_in(stored, live))
        .cloned()
        .collect();
    let covered = |o: &Object| o.table_key().is_some_and(|t| whole_tables.contains(&t));
    let keys: BTreeSet<&String> = live.objects.keys().chain(stored.objects.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let difference = match (live.objects.get(key), stored.objects.get(key)) {
            (Some(o), None) if !ignore.ignores(o) && !covered(o) => one_side(
                live,
                o,
                Change::Unexpected,
                "exists but no migration created it",
                "",
            ),
            (None, Some(o)) if !ignore.ignores(o) && !covered(o) => one_side(
                stored,
                o,
                Change::Missing,
                "is missing: no migration dropped it",
                "the snapshot has ",
            ),
            (Some(now), Some(then)) if !ignore.ignores(now) => {
                let Some(changes) = changed(now, then) else {
                    continue;
                };
                let name = live.display(now);
                Difference {
                    change: Change::Changed,
                    kind: now.kind,
                    message: format!("{} {name}: {changes}", now.kind.word()),
                    name,
                }
            }
            _ => continue,
        };
        out.push(difference);
    }
    out
}

/// The difference of an object only `snapshot` has: `<kind> <name> <what> (<ddl>)`.
fn one_side(
    snapshot: &Snapshot,
    o: &Object,
    change: Change,
    what: &str,
    ddl_lead: &str,
) -> Difference {
    let name = snapshot.display(o);
    let mut message = format!("{} {name} {what}", o.kind.word());
    if let Some(ddl) = snapshot.ddl(o) {
        message.push_str(&format!(" ({ddl_lead}{ddl})"));
    }
    Difference {
        change,
        kind: o.kind,
        name,
        message,
    }
}

/// `type text, snapshot has character varying(40); …` for the compared attributes that differ.
fn changed(now: &Object, then: &Object) -> Option<String> {
    let names: BTreeSet<&String> = now
        .attrs
        .keys()
        .chain(then.attrs.keys())
        .filter(|k| k.as_str() != "position")
        .collect();
    let parts: Vec<String> = names
        .into_iter()
        .filter_map(|k| {
            let (a, b) = (now.attr(k), then.attr(k));
            (a != b).then(|| {
                let word = |v: Option<&str>| v.unwrap_or("none").to_owned();
                let (a, b) = match k.as_str() {
                    // Only the hash is kept: say what it stands for.
                    "hash" => (format!("definition changed (hash {})", word(a)), word(b)),
                    "valid" => (
                        if a == Some("no") {
                            "INVALID (left by a failed CREATE INDEX CONCURRENTLY?)".to_owned()
                        } else {
                            "valid".to_owned()
                        },
                        if b == Some("no") { "INVALID" } else { "valid" }.to_owned(),
                    ),
                    _ => (format!("{k} {}", word(a)), word(b)),
                };
                format!("{a}, snapshot has {b}")
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[&str]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|v| (!v.is_empty()).then(|| (*v).to_owned()))
            .collect()
    }

    fn base() -> Vec<Vec<Option<String>>> {
        vec![
            row(&["S", "public"]),
            row(&["t", "public", "", "users", "r"]),
            row(&["c", "public", "users", "id", "bigint", "NOT NULL", "", "1"]),
            row(&[
                "c",
                "public",
                "users",
                "nickname",
                "character varying(40)",
                "NULL",
                "",
                "2",
            ]),
            row(&["k", "public", "users", "users_pkey", "PRIMARY KEY (id)"]),
            row(&["t", "public", "", "audit_log", "r"]),
            row(&[
                "c",
                "public",
                "audit_log",
                "at",
                "timestamptz",
                "NOT NULL",
                "now()",
                "1",
            ]),
            row(&["t", "public", "", "shipgate_migrations", "r"]),
            row(&[
                "c",
                "public",
                "shipgate_migrations",
                "version",
                "text",
                "NOT NULL",
                "",
                "1",
            ]),
            row(&[
                "f",
                "public",
                "",
                "touch()",
                "BEGIN   NEW.at := now(); END",
                "function",
            ]),
        ]
    }

    fn snap(rows: &[Vec<Option<String>>]) -> Snapshot {
        normalise(rows, &Exclude::for_prefix("shipgate"))
    }

    fn messages(d: &[Difference]) -> Vec<String> {
        d.iter().map(|d| d.message.clone()).collect()
    }

    #[test]
    fn ddl_quotes_names_the_engine_would_fold_or_refuse() {
        let pg = Snapshot {
            default_schema: Some("public".into()),
            ..Snapshot::default()
        };
        assert_eq!(pg.quote("users"), "users");
        assert_eq!(pg.quote("User"), "\"User\"");
        assert_eq!(pg.quote("user"), "\"user\"");
        assert_eq!(pg.quote("order"), "\"order\"");
        assert_eq!(pg.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(pg.qualified(Some("audit"), "Events"), "audit.\"Events\"");
        assert_eq!(pg.qualified(Some("public"), "users"), "users");
        let other = Snapshot::default();
        assert_eq!(other.quote("Users"), "Users");
        assert_eq!(other.quote("order"), "`order`");
        assert_eq!(other.quote("has space"), "`has space`");
    }

    #[test]
    fn same_schema_no_difference_and_json_round_trips() {
        let s = snap(&base());
        assert!(!s.objects.keys().any(|k| k.contains("shipgate_")), "{s:?}");
        assert_eq!(s.len(), 7);
        let back = Snapshot::from_json(&s.to_json()).expect("reads its own JSON");
        assert_eq!(back, s);
        assert_eq!(back.hash(), s.hash());
        assert!(diff(&s, &back, &Ignore::default()).is_empty());
    }

    #[test]
    fn whitespace_and_row_order_do_not_matter() {
        let mut rows = base();
        rows.reverse();
        rows[0] = row(&[
            "f",
            "public",
            "",
            "touch()",
            "BEGIN NEW.at := now();\n END",
            "function",
        ]);
        assert_eq!(snap(&rows).hash(), snap(&base()).hash());
    }

    #[test]
    fn unexpected_index_and_column_name_their_ddl() {
        let stored = snap(&base());
        let mut rows = base();
        rows.push(row(&[
            "i",
            "public",
            "users",
            "users_email_idx",
            "CREATE INDEX users_email_idx ON public.users USING btree (email)",
        ]));
        rows.push(row(&[
            "c", "public", "users", "email", "text", "NULL", "", "3",
        ]));
        let d = diff(&snap(&rows), &stored, &Ignore::default());
        assert_eq!(
            messages(&d),
            [
                "column users.email exists but no migration created it (ALTER TABLE users ADD COLUMN email text)",
                "index users_email_idx exists but no migration created it (CREATE INDEX users_email_idx ON public.users USING btree (email))",
            ]
        );
        assert!(d.iter().all(|d| d.change == Change::Unexpected));
    }

    #[test]
    fn changed_type_and_missing_table_are_worded() {
        let stored = snap(&base());
        let rows: Vec<_> = base()
            .into_iter()
            .filter(|r| r.get(3).cloned().flatten().as_deref() != Some("audit_log"))
            .filter(|r| r.get(2).cloned().flatten().as_deref() != Some("audit_log"))
            .map(|mut r| {
                if r.get(3).cloned().flatten().as_deref() == Some("nickname") {
                    r[4] = Some("text".into());
                }
                r
            })
            .collect();
        let d = diff(&snap(&rows), &stored, &Ignore::default());
        assert_eq!(
            messages(&d),
            [
                "column users.nickname: type text, snapshot has character varying(40)",
                "table audit_log is missing: no migration dropped it (the snapshot has CREATE TABLE audit_log (at timestamptz NOT NULL DEFAULT now()))",
            ]
        );
    }

    #[test]
    fn unexpected_table_is_one_line_with_its_columns() {
        let stored = snap(&base());
        let mut rows = base();
        rows.push(row(&["t", "audit", "", "events", "r"]));
        rows.push(row(&["c", "audit", "events", "b", "text", "NULL", "", "2"]));
        rows.push(row(&[
            "c", "audit", "events", "a", "integer", "NOT NULL", "0", "1",
        ]));
        let d = diff(&snap(&rows), &stored, &Ignore::default());
        assert_eq!(
            messages(&d),
            ["table audit.events exists but no migration created it (CREATE TABLE audit.events (a integer NOT NULL DEFAULT 0, b text))"]
        );
    }

    #[test]
    fn function_body_and_index_validity_changes() {
        let mut before = base();
        before.push(row(&[
            "i",
            "public",
            "users",
            "n_idx",
            "CREATE INDEX n_idx ON public.users (nickname)",
        ]));
        let stored = snap(&before);
        let mut rows = before.clone();
        rows[9] = row(&[
            "f",
            "public",
            "",
            "touch()",
            "BEGIN NEW.at := clock_timestamp(); END",
            "function",
        ]);
        rows[10] = row(&[
            "i",
            "public",
            "users",
            "n_idx",
            "CREATE INDEX n_idx ON public.users (nickname)",
            "no",
        ]);
        let d = diff(&snap(&rows), &stored, &Ignore::default());
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].message
                .starts_with("function touch(): definition changed (hash "),
            "{}",
            d[0]
        );
        assert_eq!(
            d[1].message,
            "index n_idx: INVALID (left by a failed CREATE INDEX CONCURRENTLY?), snapshot has valid"
        );
    }

    #[test]
    fn ignore_globs_cover_names_tables_and_schemas() {
        let stored = snap(&base());
        let mut rows = base();
        rows.push(row(&["t", "public", "", "tmp_load", "r"]));
        rows.push(row(&[
            "c",
            "public",
            "users",
            "legacy_flag",
            "boolean",
            "NULL",
            "",
            "3",
        ]));
        rows.push(row(&["t", "scratch", "", "anything", "r"]));
        rows.push(row(&[
            "i",
            "public",
            "audit_log",
            "audit_at",
            "CREATE INDEX audit_at ON public.audit_log (at)",
        ]));
        let live = snap(&rows);
        assert_eq!(diff(&live, &stored, &Ignore::default()).len(), 4);
        let ignore = Ignore {
            objects: vec![
                "public.tmp_*".into(),
                "users.legacy_*".into(),
                "audit_*".into(),
            ],
            schemas: vec!["scr?tch".into()],
        };
        assert_eq!(diff(&live, &stored, &ignore), []);
    }

    #[test]
    fn collapse_keeps_plain_text_and_folds_whitespace() {
        for (text, want) in [
            ("character varying(40)", "character varying(40)"),
            ("a  b", "a b"),
            (" a", "a"),
            ("a ", "a"),
            ("a\n\tb", "a b"),
            ("", ""),
        ] {
            assert_eq!(collapse(text), want, "{text:?}");
        }
    }

    #[test]
    fn glob_matches_like_a_shell() {
        for (p, t, want) in [
            ("audit_*", "audit_log", true),
            ("audit_*", "audit", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("?x", "ax", true),
            ("public.tmp_*", "public.tmp_1", true),
            ("public.tmp_*", "tmp_1", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn a_newer_format_is_refused() {
        let e = Snapshot::from_json(r#"{"format": 99, "objects": []}"#)
            .expect_err("a newer format is refused");
        assert!(e.to_string().contains("newer shipgate"), "{e}");
        assert!(Snapshot::from_json("not json").is_err());
    }
}
