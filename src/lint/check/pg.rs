//! The analysis of PostgreSQL statements, read with PostgreSQL's own grammar (libpg_query).
//!
//! Every PostgreSQL statement is parsed here, never by a general SQL parser: what the server
//! rejects is `opaque-sql`, the kinds the rules are about are analysed from the server's parse
//! tree, and any other kind is classified by [`super::super::postgres::classify`] (known to take
//! no lock a rule is about, a `DO` block whose statements are linted in turn, or reported as
//! one the lint cannot check).

use pg_query::protobuf::{self as pb, AlterTableType, ConstrType, ObjectType, VariableSetKind};
use pg_query::NodeEnum as N;

use super::{binary_coercible, AddedColumn, Dropped, File, Key, Scope};
use crate::lint::postgres::{self, Verdict};

/// `AccessExclusiveLock` in PostgreSQL's lock modes (`LOCK TABLE` without a mode takes it).
const ACCESS_EXCLUSIVE: i32 = 8;
/// `INTERVAL_FULL_RANGE`: the field mask of an `interval` with no field restriction.
const INTERVAL_FULL_RANGE: i64 = 0x7FFF;

impl File<'_> {
    /// Lints one PostgreSQL statement (`code` starts at its first token).
    pub(super) fn postgres(&mut self, code: &str, line: usize) {
        let parsed = match pg_query::parse(code) {
            Ok(p) => p,
            Err(e) => {
                self.grammar_verdict(Verdict::Invalid(e.to_string()), code, line);
                return;
            }
        };
        for raw in &parsed.protobuf.stmts {
            if let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
                self.pg_statement(node, code, line);
            }
        }
    }

    /// Lints a statement of a kind the rules do not analyse by what PostgreSQL's grammar says
    /// of it: the statements a `DO` block runs are linted like top-level ones; what the grammar
    /// reads but the lint cannot analyse, or rejects, is reported as `opaque-sql`.
    fn grammar_verdict(&mut self, verdict: Verdict, code: &str, line: usize) {
        match verdict {
            Verdict::Safe => {}
            Verdict::Creates(relation) => self.state.create(Key::Table(relation)),
            Verdict::Runs { statements, opaque } => {
                for inner in &statements {
                    self.statement(inner, line);
                }
                if let Some(why) = opaque {
                    self.opaque(why, code);
                }
            }
            Verdict::Function { name, statements } => self.function_body(&name, &statements, line),
            Verdict::Unchecked(why) => self.opaque(why, code),
            Verdict::Invalid(e) => self.opaque(
                format!(
                    "PostgreSQL's grammar rejects this statement ({e}), so it cannot be checked"
                ),
                code,
            ),
        }
    }

    /// Lints the statements of a function's body like top-level ones, for `check` only: they
    /// run when the function is called, not when the migration runs, so they neither change
    /// what the rest of the file sees nor refuse a release.
    fn function_body(&mut self, name: &str, statements: &[String], line: usize) {
        let state = self.state.clone();
        let holding = self.holding.clone();
        let not_valid_here = self.not_valid_here.clone();
        let (ddl, ddl_flagged) = (self.ddl, self.ddl_flagged);
        let touched = self.touched_existing.get();
        let first = self.hits.len();
        for inner in statements {
            self.statement(inner, line);
        }
        *self.state = state;
        self.holding = holding;
        self.not_valid_here = not_valid_here;
        (self.ddl, self.ddl_flagged) = (ddl, ddl_flagged);
        self.touched_existing.set(touched);
        for hit in &mut self.hits[first..] {
            hit.deferred = true;
            hit.message = format!(
                "in the body of function {name} (it runs when the function is called, not when this migration runs): {}",
                hit.message
            );
        }
    }

    fn pg_statement(&mut self, node: &N, code: &str, line: usize) {
        let mut exclusive: Vec<String> = Vec::new();
        let mut dml = false;
        match node {
            N::CreateStmt(c) => {
                let table = relation(c.relation.as_ref());
                let columns = c.table_elts.iter().filter_map(|e| match &e.node {
                    Some(N::ColumnDef(d)) => Some(d),
                    _ => None,
                });
                for d in columns {
                    let ty = d.type_name.as_ref().map(type_text).unwrap_or_default();
                    self.state
                        .types
                        .insert((table.clone(), d.colname.clone()), ty);
                }
                self.table_created(table, temporary(c.relation.as_ref()));
            }
            N::CreateTableAsStmt(c) if c.objtype == ObjectType::ObjectTable as i32 => {
                let rel = c.into.as_ref().and_then(|i| i.rel.as_ref());
                self.table_created(relation(rel), temporary(rel));
            }
            N::IndexStmt(i) => {
                let index = (!i.idxname.is_empty()).then(|| i.idxname.clone());
                self.index_created(
                    &relation(i.relation.as_ref()),
                    index,
                    i.unique,
                    i.concurrent,
                );
            }
            N::CreateSchemaStmt(s) => {
                let n = if s.schemaname.is_empty() {
                    s.authrole
                        .as_ref()
                        .map(|r| r.rolename.clone())
                        .unwrap_or_default()
                } else {
                    s.schemaname.clone()
                };
                self.state.create(Key::Schema(n));
            }
            N::CreatedbStmt(d) => self.state.create(Key::Database(d.dbname.clone())),
            N::DropStmt(d) => {
                let kind = match ObjectType::try_from(d.remove_type) {
                    Ok(ObjectType::ObjectTable) => Some(Dropped::Table),
                    Ok(ObjectType::ObjectIndex) => Some(Dropped::Index),
                    Ok(ObjectType::ObjectSchema) => Some(Dropped::Schema),
                    _ => None,
                };
                if let Some(kind) = kind {
                    for object in d.objects.iter().filter_map(object_name) {
                        self.dropped(kind, object, d.concurrent, &mut exclusive);
                    }
                }
            }
            N::DropdbStmt(d) => {
                self.dropped(Dropped::Database, d.dbname.clone(), false, &mut exclusive);
            }
            N::TruncateStmt(t) => {
                for table in range_vars(&t.relations) {
                    if self.existed(Key::Table(table.clone())) {
                        self.hit("truncate", format!("TRUNCATE {table} removes every row"));
                    }
                    exclusive.push(table);
                }
            }
            N::AlterTableStmt(a) if a.objtype == ObjectType::ObjectTable as i32 => {
                self.pg_alter_table(a, &mut exclusive);
            }
            N::RenameStmt(r) if renames_in_a_table(r.rename_type) => {
                let table = relation(r.relation.as_ref());
                match ObjectType::try_from(r.rename_type) {
                    Ok(ObjectType::ObjectTable) => self.rename_table(&table, &r.newname),
                    Ok(ObjectType::ObjectColumn) => {
                        self.column_renamed(&table, &r.subname, &r.newname);
                    }
                    _ => {}
                }
                exclusive.push(table);
            }
            // Renaming an index, a view or a schema rewrites nothing and locks no table for
            // long.
            N::RenameStmt(r)
                if [
                    ObjectType::ObjectIndex as i32,
                    ObjectType::ObjectSchema as i32,
                    ObjectType::ObjectView as i32,
                    ObjectType::ObjectMatview as i32,
                ]
                .contains(&r.rename_type) => {}
            N::LockStmt(l) => {
                if l.mode == ACCESS_EXCLUSIVE {
                    exclusive.extend(range_vars(&l.relations));
                }
            }
            N::UpdateStmt(u) => {
                let table = relation(u.relation.as_ref());
                // Rows of a table nobody else sees yet (created in scope, temporary) are the
                // batch's own: changing them lengthens no lock on anyone's table.
                dml = !(self.is_new(&table) && u.from_clause.is_empty());
                if u.where_clause.is_none() && self.large(&table) {
                    self.hit(
                        "update-without-where",
                        format!("UPDATE {table} without WHERE rewrites every row"),
                    );
                }
            }
            N::DeleteStmt(d) => {
                let table = relation(d.relation.as_ref());
                dml = !(self.is_new(&table) && d.using_clause.is_empty());
                if d.where_clause.is_none() && self.large(&table) {
                    self.hit(
                        "delete-without-where",
                        format!("DELETE FROM {table} without WHERE removes every row"),
                    );
                }
            }
            N::InsertStmt(i) => {
                // Literal rows into a table nobody else sees yet touch nothing of anyone's.
                let into_new = self.is_new(&relation(i.relation.as_ref()));
                let literal = matches!(
                    i.select_stmt.as_ref().and_then(|s| s.node.as_ref()),
                    Some(N::SelectStmt(s)) if !s.values_lists.is_empty()
                );
                dml = !(into_new && literal);
            }
            N::MergeStmt(_) | N::CopyStmt(_) => dml = true,
            N::VariableSetStmt(v) => {
                let value = match VariableSetKind::try_from(v.kind) {
                    Ok(VariableSetKind::VarSetValue) => v.args.first().and_then(constant),
                    Ok(VariableSetKind::VarSetDefault) => Some("DEFAULT".to_owned()),
                    _ => return,
                };
                let scope = if v.is_local {
                    Scope::Local
                } else {
                    Scope::Session
                };
                self.timeout(&v.name, value.as_deref(), scope);
            }
            N::ExecuteStmt(_) => self.opaque(
                "EXECUTE runs a prepared or dynamic statement that shipgate cannot see".into(),
                code,
            ),
            N::CallStmt(c) => {
                let procedure = c
                    .funccall
                    .as_ref()
                    .map(|f| names(&f.funcname).join("."))
                    .unwrap_or_default();
                self.opaque(
                    format!(
                        "CALL {procedure} runs a procedure whose statements shipgate cannot see"
                    ),
                    code,
                );
            }
            other => {
                let verdict = postgres::classify(other, code);
                self.grammar_verdict(verdict, code, line);
            }
        }
        self.locks(exclusive, dml, line);
    }

    /// `CREATE [TEMPORARY] TABLE table`.
    fn table_created(&mut self, table: String, temporary: bool) {
        if temporary {
            self.state.temporary.insert(table.clone());
        }
        self.created_here.insert(table.clone());
        self.state.create(Key::Table(table));
    }

    /// `ALTER TABLE table RENAME COLUMN old TO new`.
    fn column_renamed(&mut self, table: &str, old: &str, new: &str) {
        if self.existed(Key::Column(table.to_owned(), old.to_owned())) {
            self.hit(
                "rename-column",
                format!("column {table}.{old} renamed to {new}"),
            );
        }
        let key = (table.to_owned(), old.to_owned());
        if let Some(ty) = self.state.types.remove(&key) {
            self.state
                .types
                .insert((table.to_owned(), new.to_owned()), ty);
        }
        self.state
            .remove(Key::Column(table.to_owned(), old.to_owned()));
        self.state
            .create(Key::Column(table.to_owned(), new.to_owned()));
    }

    fn pg_alter_table(&mut self, a: &pb::AlterTableStmt, exclusive: &mut Vec<String>) {
        let table = relation(a.relation.as_ref());
        let large = self.large(&table);
        let existed = self.existed(Key::Table(table.clone()));
        for cmd in &a.cmds {
            let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
                continue;
            };
            let def = cmd.def.as_ref().and_then(|d| d.node.as_ref());
            let mut takes_exclusive = true;
            match AlterTableType::try_from(cmd.subtype) {
                Ok(AlterTableType::AtAddColumn) => {
                    if let Some(N::ColumnDef(c)) = def {
                        self.pg_add_column(&table, c, large, existed);
                        let ty = c.type_name.as_ref().map(type_text).unwrap_or_default();
                        self.state
                            .types
                            .insert((table.clone(), c.colname.clone()), ty);
                        self.state
                            .create(Key::Column(table.clone(), c.colname.clone()));
                    }
                }
                Ok(AlterTableType::AtAddConstraint) => {
                    if let Some(N::Constraint(c)) = def {
                        takes_exclusive = self.pg_add_constraint(&table, c, large);
                    }
                }
                Ok(AlterTableType::AtValidateConstraint) => {
                    // SHARE UPDATE EXCLUSIVE: reads and writes go on.
                    takes_exclusive = false;
                    let c = &cmd.name;
                    if self.transactional && self.not_valid_here.contains(c) && large {
                        self.hit(
                            "validate-in-same-transaction",
                            format!("constraint {c} is validated in the transaction that added it"),
                        );
                    }
                    if let Some((t, Some(col))) = self.state.not_valid.get(c).cloned() {
                        self.state.not_null_checked.insert((t, col));
                    }
                }
                // Deferrability only: nothing is rewritten or validated.
                Ok(AlterTableType::AtAlterConstraint) => takes_exclusive = false,
                Ok(AlterTableType::AtSetNotNull) => {
                    let col = &cmd.name;
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
                Ok(AlterTableType::AtAlterColumnType) => {
                    if let Some(N::ColumnDef(c)) = def {
                        let col = &cmd.name;
                        let new = c.type_name.as_ref().map(type_text).unwrap_or_default();
                        let old = self.column_type(&table, col);
                        // `USING col` leaves the contents as they are; any other expression
                        // computes every row.
                        let same_contents = c.raw_default.as_deref().is_none_or(|u| {
                            matches!(&u.node, Some(N::ColumnRef(r)) if names(&r.fields) == [col.as_str()])
                        });
                        let free = same_contents
                            && old.as_deref().is_some_and(|o| binary_coercible(o, &new));
                        if large && !free {
                            let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
                            self.hit(
                                "column-type-change",
                                format!(
                                    "{table}.{col} changed{from} to {}",
                                    c.type_name.as_ref().map(type_display).unwrap_or_default()
                                ),
                            );
                        }
                        self.state.types.insert((table.clone(), col.clone()), new);
                    }
                }
                Ok(AlterTableType::AtDropColumn) => {
                    let col = cmd.name.clone();
                    if self.existed(Key::Column(table.clone(), col.clone())) {
                        self.hit("drop-column", format!("column {table}.{col} dropped"));
                    }
                    self.state.types.remove(&(table.clone(), col.clone()));
                    self.state.remove(Key::Column(table.clone(), col));
                }
                _ => {}
            }
            if takes_exclusive && !exclusive.contains(&table) {
                exclusive.push(table.clone());
            }
        }
    }

    /// `ALTER TABLE table ADD <constraint>`; whether it takes an ACCESS EXCLUSIVE lock.
    fn pg_add_constraint(&mut self, table: &str, c: &pb::Constraint, large: bool) -> bool {
        let name = (!c.conname.is_empty()).then(|| c.conname.clone());
        match ConstrType::try_from(c.contype) {
            Ok(ConstrType::ConstrForeign) => {
                // SHARE ROW EXCLUSIVE: writes stop, reads go on.
                if c.skip_validation {
                    if let Some(n) = name {
                        self.not_valid(n, table, None);
                    }
                } else if large {
                    self.hit(
                        "constraint-not-valid",
                        format!(
                            "foreign key on {table} ({}) added without NOT VALID checks every row under lock",
                            names(&c.fk_attrs).join(", ")
                        ),
                    );
                }
                false
            }
            Ok(ConstrType::ConstrCheck) => {
                if c.skip_validation {
                    if let Some(n) = name {
                        let column = c.raw_expr.as_deref().and_then(not_null_column);
                        self.not_valid(n, table, column);
                    }
                } else if large {
                    self.hit(
                        "constraint-not-valid",
                        format!("CHECK constraint on {table} added without NOT VALID checks every row under an exclusive lock"),
                    );
                }
                true
            }
            Ok(kind @ (ConstrType::ConstrUnique | ConstrType::ConstrPrimary)) => {
                // `… USING INDEX i` adopts an index built beforehand.
                if large && c.indexname.is_empty() {
                    let what = if kind == ConstrType::ConstrPrimary {
                        "PRIMARY KEY"
                    } else {
                        "UNIQUE"
                    };
                    self.hit(
                        "unique-not-using-index",
                        format!(
                            "{what} constraint on {table} builds its index under an exclusive lock"
                        ),
                    );
                }
                true
            }
            _ => true,
        }
    }

    fn pg_add_column(&mut self, table: &str, c: &pb::ColumnDef, large: bool, existed: bool) {
        let col = &c.colname;
        let constraints: Vec<&pb::Constraint> = c
            .constraints
            .iter()
            .filter_map(|n| match &n.node {
                Some(N::Constraint(c)) => Some(c.as_ref()),
                _ => None,
            })
            .collect();
        let mut not_null = c.is_not_null;
        let mut default = c.raw_default.as_deref();
        let mut generated = !c.identity.is_empty() || !c.generated.is_empty();
        for k in &constraints {
            match ConstrType::try_from(k.contype) {
                Ok(ConstrType::ConstrNotnull | ConstrType::ConstrPrimary) => not_null = true,
                Ok(ConstrType::ConstrDefault) => default = k.raw_expr.as_deref(),
                Ok(ConstrType::ConstrIdentity | ConstrType::ConstrGenerated) => generated = true,
                _ => {}
            }
        }
        self.added_column(
            AddedColumn {
                table,
                col,
                type_name: c.type_name.as_ref().map(type_text).unwrap_or_default(),
                not_null,
                has_default: default.is_some(),
                default: if large {
                    default.and_then(expression_text)
                } else {
                    None
                },
                generated,
            },
            large,
            existed,
        );
        for k in &constraints {
            let (rule, message) = match ConstrType::try_from(k.contype) {
                Ok(ConstrType::ConstrUnique) => ("unique-not-using-index", format!("{table}.{col} declared UNIQUE inline: its index is built under an exclusive lock")),
                Ok(ConstrType::ConstrPrimary) => ("unique-not-using-index", format!("{table}.{col} declared PRIMARY KEY inline: its index is built under an exclusive lock")),
                Ok(ConstrType::ConstrForeign) => ("constraint-not-valid", format!("{table}.{col} declares its foreign key inline, which is validated at once")),
                Ok(ConstrType::ConstrCheck) => ("constraint-not-valid", format!("{table}.{col} declares its CHECK inline, which is validated at once")),
                _ => continue,
            };
            if large {
                self.hit(rule, message);
            }
        }
    }
}

/// Renames of a table or of something in it (a column, a constraint): they lock the table.
fn renames_in_a_table(kind: i32) -> bool {
    [
        ObjectType::ObjectTable as i32,
        ObjectType::ObjectColumn as i32,
        ObjectType::ObjectTabconstraint as i32,
    ]
    .contains(&kind)
}

/// A relation's own name (the grammar has folded it to lower case unless it was quoted).
fn relation(r: Option<&pb::RangeVar>) -> String {
    r.map(|r| r.relname.clone()).unwrap_or_default()
}

fn temporary(r: Option<&pb::RangeVar>) -> bool {
    r.is_some_and(|r| r.relpersistence == "t")
}

fn range_vars(nodes: &[pb::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::RangeVar(r)) => Some(r.relname.clone()),
            _ => None,
        })
        .collect()
}

/// The `String` nodes of a qualified name, in order.
fn names(nodes: &[pb::Node]) -> Vec<&str> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect()
}

/// The own name of a dropped object: `schema.table` is a list, a schema is a string.
fn object_name(n: &pb::Node) -> Option<String> {
    match n.node.as_ref()? {
        N::List(l) => names(&l.items).last().map(|s| (*s).to_owned()),
        N::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

/// A constant's text: `0`, `0s`, `on`.
fn constant(n: &pb::Node) -> Option<String> {
    use pb::a_const::Val;
    match n.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref()? {
            Val::Ival(i) => Some(i.ival.to_string()),
            Val::Fval(f) => Some(f.fval.clone()),
            Val::Sval(s) => Some(s.sval.clone()),
            Val::Boolval(b) => Some(b.boolval.to_string()),
            Val::Bsval(b) => Some(b.bsval.clone()),
        },
        N::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

/// The column of a `col IS NOT NULL` check.
fn not_null_column(e: &pb::Node) -> Option<String> {
    let N::NullTest(t) = e.node.as_ref()? else {
        return None;
    };
    if t.nulltesttype != pb::NullTestType::IsNotNull as i32 {
        return None;
    }
    match t.arg.as_deref()?.node.as_ref()? {
        N::ColumnRef(r) => match names(&r.fields).as_slice() {
            [col] => Some((*col).to_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// An expression as PostgreSQL prints it back (`gen_random_uuid()`, `'x'::text`).
fn expression_text(e: &pb::Node) -> Option<String> {
    let target = pb::ResTarget {
        val: Some(Box::new(e.clone())),
        ..Default::default()
    };
    let select = pb::SelectStmt {
        target_list: vec![pb::Node {
            node: Some(N::ResTarget(Box::new(target))),
        }],
        op: pb::SetOperation::SetopNone as i32,
        limit_option: pb::LimitOption::Default as i32,
        ..Default::default()
    };
    let text = N::SelectStmt(Box::new(select)).deparse().ok()?;
    text.strip_prefix("SELECT ").map(str::to_owned)
}

/// A type as written, in the names [`super::pg_type`] reads: `bigint`, `varchar(200)`,
/// `timestamptz(3)`, `numeric(10,2)`, `text[]`.
fn type_text(t: &pb::TypeName) -> String {
    let parts = names(&t.names);
    let base = match parts.as_slice() {
        ["pg_catalog", b] => match *b {
            "int2" => "smallint",
            "int4" => "integer",
            "int8" => "bigint",
            "float4" => "real",
            "float8" => "double precision",
            "bool" => "boolean",
            "bpchar" => "char",
            other => other,
        }
        .to_owned(),
        _ => parts.join("."),
    };
    let mut mods: Vec<String> = t.typmods.iter().filter_map(constant).collect();
    if base == "interval" && mods.first() == Some(&INTERVAL_FULL_RANGE.to_string()) {
        mods.remove(0);
    }
    let mut text = if mods.is_empty() {
        base
    } else {
        format!("{base}({})", mods.join(","))
    };
    for _ in &t.array_bounds {
        text.push_str("[]");
    }
    text
}

/// A type as a message shows it: built-in types in capitals, as SQL keywords are written
/// (`BIGINT`, `VARCHAR(500)`), others as named.
fn type_display(t: &pb::TypeName) -> String {
    let text = type_text(t);
    let built_in = match names(&t.names).as_slice() {
        ["pg_catalog", _] => true,
        [n] => [
            "text",
            "uuid",
            "json",
            "jsonb",
            "bytea",
            "date",
            "serial",
            "bigserial",
            "smallserial",
        ]
        .contains(n),
        _ => false,
    };
    if built_in {
        text.to_uppercase()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::volatile_call;
    use super::*;

    fn column_type(sql: &str) -> String {
        let parsed = pg_query::parse(sql).expect("valid");
        let node = parsed.protobuf.stmts[0].stmt.as_ref().expect("a statement");
        let Some(N::CreateStmt(c)) = &node.node else {
            panic!("not a CREATE TABLE")
        };
        let Some(N::ColumnDef(d)) = &c.table_elts[0].node else {
            panic!("not a column")
        };
        type_text(d.type_name.as_ref().expect("a type"))
    }

    #[test]
    fn types_read_as_the_binary_coercion_check_names_them() {
        for (written, text) in [
            ("bigint", "bigint"),
            ("VARCHAR(200)", "varchar(200)"),
            ("character varying", "varchar"),
            ("timestamp(3) with time zone", "timestamptz(3)"),
            ("NUMERIC(10, 2)", "numeric(10,2)"),
            ("interval(3)", "interval(3)"),
            ("text[]", "text[]"),
            ("bigserial", "bigserial"),
            ("public.mood", "public.mood"),
        ] {
            assert_eq!(
                column_type(&format!("CREATE TABLE t (c {written})")),
                text,
                "{written}"
            );
        }
        assert!(binary_coercible("character varying(200)", "varchar(500)"));
        assert!(!binary_coercible("integer", "bigint"));
    }

    #[test]
    fn defaults_print_back_for_the_volatility_check() {
        let e = pg_query::parse("SELECT coalesce(clock_timestamp(), now()), 'random()'")
            .expect("valid");
        let Some(N::SelectStmt(s)) = &e.protobuf.stmts[0].stmt.as_ref().expect("a statement").node
        else {
            panic!()
        };
        let Some(N::ResTarget(r)) = &s.target_list[0].node else {
            panic!()
        };
        let printed = expression_text(r.val.as_ref().expect("an expression")).expect("deparsed");
        assert_eq!(volatile_call(&printed).as_deref(), Some("clock_timestamp"));
    }
}
