//! Which tables a PostgreSQL statement locks, in which mode, and which index a
//! `CREATE INDEX CONCURRENTLY` builds: read from PostgreSQL's own parse tree (libpg_query).
//!
//! Pure and at the bottom of the crate (it imports nothing of shipgate's), so the engine can
//! look before it locks without importing the lint. The modes are PostgreSQL's table-level
//! lock modes as its documentation lists them per command; only what a statement takes on a
//! table that other sessions use matters here, so a statement that locks nothing of anyone's
//! (a `CREATE TABLE` without foreign keys, DML) yields nothing.

use pg_query::protobuf::{self as pb, AlterTableType, ConstrType, ObjectType, ReindexObjectType};
use pg_query::NodeEnum as N;

/// PostgreSQL's table-level lock modes, weakest first (`pg_locks.mode` names them
/// `AccessShareLock` … `AccessExclusiveLock`; `LockStmt.mode` numbers them 1 to 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// `SELECT`.
    AccessShare = 1,
    /// `SELECT … FOR UPDATE`.
    RowShare = 2,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive = 3,
    /// `VACUUM`, `CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`.
    ShareUpdateExclusive = 4,
    /// `CREATE INDEX`.
    Share = 5,
    /// `CREATE TRIGGER`, adding a foreign key.
    ShareRowExclusive = 6,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive = 7,
    /// Most `ALTER TABLE`, `DROP`, `TRUNCATE`, `VACUUM FULL`.
    AccessExclusive = 8,
}

impl Mode {
    /// The mode `LockStmt.mode` (or any 1..=8 number) names.
    pub fn from_number(n: i32) -> Option<Mode> {
        use Mode::*;
        Some(match n {
            1 => AccessShare,
            2 => RowShare,
            3 => RowExclusive,
            4 => ShareUpdateExclusive,
            5 => Share,
            6 => ShareRowExclusive,
            7 => Exclusive,
            8 => AccessExclusive,
            _ => return None,
        })
    }

    /// The mode `pg_locks.mode` names (`RowExclusiveLock`).
    pub fn from_pg_locks(name: &str) -> Option<Mode> {
        (1..=8)
            .filter_map(Mode::from_number)
            .find(|m| m.pg_locks_name() == name)
    }

    /// As `pg_locks.mode` names it.
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            Mode::AccessShare => "AccessShareLock",
            Mode::RowShare => "RowShareLock",
            Mode::RowExclusive => "RowExclusiveLock",
            Mode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            Mode::Share => "ShareLock",
            Mode::ShareRowExclusive => "ShareRowExclusiveLock",
            Mode::Exclusive => "ExclusiveLock",
            Mode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// As the documentation and `LOCK TABLE` spell it: `ACCESS EXCLUSIVE`.
    pub fn sql_name(self) -> &'static str {
        match self {
            Mode::AccessShare => "ACCESS SHARE",
            Mode::RowShare => "ROW SHARE",
            Mode::RowExclusive => "ROW EXCLUSIVE",
            Mode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Mode::Share => "SHARE",
            Mode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Mode::Exclusive => "EXCLUSIVE",
            Mode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Whether a session holding `self` makes a request for `other` wait (PostgreSQL's
    /// conflict table; it is symmetric).
    pub fn conflicts(self, other: Mode) -> bool {
        use Mode::*;
        let (a, b) = if self <= other {
            (self, other)
        } else {
            (other, self)
        };
        match a {
            AccessShare => b == AccessExclusive,
            RowShare => b >= Exclusive,
            RowExclusive => b >= Share,
            ShareUpdateExclusive => b >= ShareUpdateExclusive,
            Share => b != Share,
            ShareRowExclusive | Exclusive | AccessExclusive => true,
        }
    }

    /// Whether ordinary traffic (reads or writes) queues behind a request for this mode: the
    /// modes worth looking before taking.
    pub fn strong(self) -> bool {
        self.conflicts(Mode::RowExclusive)
    }
}

/// A table (or index, view, materialized view) a statement locks, as the statement names it:
/// the server resolves an unqualified name through the `search_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// The schema the statement names, if any.
    pub schema: Option<String>,
    /// The relation's own name.
    pub name: String,
    /// The mode the statement takes.
    pub mode: Mode,
}

impl TableLock {
    /// `schema.name` quoted as an identifier for `to_regclass`, or `name` alone.
    pub fn regclass_text(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", ident(s), ident(&self.name)),
            None => ident(&self.name),
        }
    }

    /// `schema.name` or `name`, for messages.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrentIndex {
    /// The index's schema: PostgreSQL puts an index in its table's schema, so this is the
    /// table's schema as the statement names it (`None`: the `search_path` decides).
    pub schema: Option<String>,
    /// The index's name.
    pub name: String,
    /// The table it indexes, as named.
    pub table: String,
    /// `IF NOT EXISTS`: the server would skip the build when an index of that name exists,
    /// valid or not.
    pub if_not_exists: bool,
}

/// The strong locks (see [`Mode::strong`]) one statement takes on relations it names, the
/// strongest per relation; empty for a statement the grammar rejects or that takes none.
pub fn strong_locks(sql: &str) -> Vec<TableLock> {
    let Ok(parsed) = pg_query::parse(sql) else {
        return Vec::new();
    };
    let mut out: Vec<TableLock> = Vec::new();
    for raw in &parsed.protobuf.stmts {
        if let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            statement_locks(node, &mut out);
        }
    }
    out.retain(|l| l.mode.strong());
    out
}

/// The `CREATE INDEX CONCURRENTLY` of `sql` (one statement), if it is one with a name.
pub fn concurrent_index(sql: &str) -> Option<ConcurrentIndex> {
    let parsed = pg_query::parse(sql).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    match raw.stmt.as_ref()?.node.as_ref()? {
        N::IndexStmt(i) if i.concurrent && !i.idxname.is_empty() => {
            let rel = i.relation.as_ref()?;
            Some(ConcurrentIndex {
                schema: (!rel.schemaname.is_empty()).then(|| rel.schemaname.clone()),
                name: i.idxname.clone(),
                table: rel.relname.clone(),
                if_not_exists: i.if_not_exists,
            })
        }
        _ => None,
    }
}

/// Adds what `node` locks to `out`, keeping the strongest mode per relation.
fn statement_locks(node: &N, out: &mut Vec<TableLock>) {
    let mut add = |r: Option<&pb::RangeVar>, mode: Mode| {
        if let Some(r) = r.filter(|r| !r.relname.is_empty()) {
            add_lock(out, range_var(r, mode));
        }
    };
    match node {
        N::AlterTableStmt(a) if a.objtype == ObjectType::ObjectTable as i32 => {
            let mut mode = None;
            for cmd in &a.cmds {
                if let Some(N::AlterTableCmd(c)) = cmd.node.as_ref() {
                    let (m, referenced) = alter_table_cmd(c);
                    mode = mode.max(Some(m));
                    if let Some(r) = referenced {
                        add(Some(r), Mode::ShareRowExclusive);
                    }
                }
            }
            if let Some(m) = mode {
                add(a.relation.as_ref(), m);
            }
        }
        N::CreateStmt(c) => {
            // A new table locks nothing of anyone's, but a foreign key locks the table it
            // references.
            for elt in &c.table_elts {
                match elt.node.as_ref() {
                    Some(N::Constraint(k)) => add(foreign_key(k), Mode::ShareRowExclusive),
                    Some(N::ColumnDef(d)) => {
                        for k in &d.constraints {
                            if let Some(N::Constraint(k)) = k.node.as_ref() {
                                add(foreign_key(k), Mode::ShareRowExclusive);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        N::IndexStmt(i) if !i.concurrent => add(i.relation.as_ref(), Mode::Share),
        N::IndexStmt(i) => add(i.relation.as_ref(), Mode::ShareUpdateExclusive),
        N::DropStmt(d) => {
            let relations = [
                ObjectType::ObjectTable,
                ObjectType::ObjectView,
                ObjectType::ObjectMatview,
                ObjectType::ObjectForeignTable,
            ]
            .map(|t| t as i32);
            let index = d.remove_type == ObjectType::ObjectIndex as i32;
            if relations.contains(&d.remove_type) || (index && !d.concurrent) {
                for object in &d.objects {
                    if let Some(l) = qualified(object, Mode::AccessExclusive) {
                        add_lock(out, l);
                    }
                }
            }
        }
        N::TruncateStmt(t) => {
            for r in &t.relations {
                if let Some(N::RangeVar(r)) = r.node.as_ref() {
                    add(Some(r), Mode::AccessExclusive);
                }
            }
        }
        N::RenameStmt(r)
            if [
                ObjectType::ObjectTable,
                ObjectType::ObjectColumn,
                ObjectType::ObjectTabconstraint,
                ObjectType::ObjectView,
                ObjectType::ObjectMatview,
                ObjectType::ObjectIndex,
            ]
            .map(|t| t as i32)
            .contains(&r.rename_type) =>
        {
            add(r.relation.as_ref(), Mode::AccessExclusive);
        }
        N::LockStmt(l) => {
            if let Some(mode) = Mode::from_number(l.mode) {
                for r in &l.relations {
                    if let Some(N::RangeVar(r)) = r.node.as_ref() {
                        add(Some(r), mode);
                    }
                }
            }
        }
        N::CreateTrigStmt(t) => add(t.relation.as_ref(), Mode::ShareRowExclusive),
        N::ReindexStmt(r) if !has_option(&r.params, "concurrently") => {
            let kind = ReindexObjectType::try_from(r.kind);
            if matches!(
                kind,
                Ok(ReindexObjectType::ReindexObjectTable | ReindexObjectType::ReindexObjectIndex)
            ) {
                // Queries take ACCESS SHARE on a table's indexes as they plan: an index
                // locked exclusively stops them as a locked table would.
                add(r.relation.as_ref(), Mode::AccessExclusive);
            }
        }
        N::VacuumStmt(v) if v.is_vacuumcmd && has_option(&v.options, "full") => {
            for r in &v.rels {
                if let Some(N::VacuumRelation(r)) = r.node.as_ref() {
                    add(r.relation.as_ref(), Mode::AccessExclusive);
                }
            }
        }
        N::ClusterStmt(c) => add(c.relation.as_ref(), Mode::AccessExclusive),
        N::RefreshMatViewStmt(r) => {
            let mode = if r.concurrent {
                Mode::Exclusive
            } else {
                Mode::AccessExclusive
            };
            add(r.relation.as_ref(), mode);
        }
        _ => {}
    }
}

/// The mode one `ALTER TABLE` subcommand takes on its table, and the table a foreign key it
/// adds references.
fn alter_table_cmd(c: &pb::AlterTableCmd) -> (Mode, Option<&pb::RangeVar>) {
    use AlterTableType as T;
    let Ok(t) = AlterTableType::try_from(c.subtype) else {
        return (Mode::AccessExclusive, None);
    };
    match t {
        T::AtValidateConstraint
        | T::AtSetStatistics
        | T::AtClusterOn
        | T::AtDropCluster
        | T::AtAttachPartition
        | T::AtDetachPartitionFinalize => (Mode::ShareUpdateExclusive, None),
        T::AtEnableTrig
        | T::AtEnableAlwaysTrig
        | T::AtEnableReplicaTrig
        | T::AtDisableTrig
        | T::AtEnableTrigAll
        | T::AtDisableTrigAll
        | T::AtEnableTrigUser
        | T::AtDisableTrigUser => (Mode::ShareRowExclusive, None),
        T::AtAddConstraint => match c.def.as_ref().and_then(|d| d.node.as_ref()) {
            Some(N::Constraint(k)) => match foreign_key(k) {
                Some(referenced) => (Mode::ShareRowExclusive, Some(referenced)),
                None => (Mode::AccessExclusive, None),
            },
            _ => (Mode::AccessExclusive, None),
        },
        _ => (Mode::AccessExclusive, None),
    }
}

/// The table a foreign-key constraint references.
fn foreign_key(k: &pb::Constraint) -> Option<&pb::RangeVar> {
    (k.contype == ConstrType::ConstrForeign as i32)
        .then_some(k.pktable.as_ref())
        .flatten()
}

fn range_var(r: &pb::RangeVar, mode: Mode) -> TableLock {
    TableLock {
        schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
        name: r.relname.clone(),
        mode,
    }
}

/// A `DROP`'s object: `[schema.]name` as a list of strings.
fn qualified(n: &pb::Node, mode: Mode) -> Option<TableLock> {
    let N::List(l) = n.node.as_ref()? else {
        return None;
    };
    let parts: Vec<&str> = l
        .items
        .iter()
        .filter_map(|i| match i.node.as_ref() {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect();
    let (name, schema) = match parts.as_slice() {
        [.., schema, name] => (*name, Some((*schema).to_owned())),
        [name] => (*name, None),
        [] => return None,
    };
    Some(TableLock {
        schema,
        name: name.to_owned(),
        mode,
    })
}

fn add_lock(out: &mut Vec<TableLock>, lock: TableLock) {
    match out
        .iter_mut()
        .find(|l| l.schema == lock.schema && l.name == lock.name)
    {
        Some(l) => l.mode = l.mode.max(lock.mode),
        None => out.push(lock),
    }
}

/// Whether a `DefElem` list (`VACUUM (FULL)`, `REINDEX (CONCURRENTLY)`) names `option`.
fn has_option(options: &[pb::Node], option: &str) -> bool {
    options.iter().any(|o| match o.node.as_ref() {
        Some(N::DefElem(d)) => d.defname.eq_ignore_ascii_case(option),
        _ => false,
    })
}

/// An identifier quoted for PostgreSQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks(sql: &str) -> Vec<(String, &'static str)> {
        strong_locks(sql)
            .into_iter()
            .map(|l| (l.display(), l.mode.sql_name()))
            .collect()
    }

    #[test]
    fn statements_name_the_tables_they_lock_strongly() {
        let ae = "ACCESS EXCLUSIVE";
        assert_eq!(
            locks("ALTER TABLE app.users ADD COLUMN x int"),
            [("app.users".into(), ae)]
        );
        assert_eq!(
            locks("ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id)"),
            [
                ("users".into(), "SHARE ROW EXCLUSIVE"),
                ("orders".into(), "SHARE ROW EXCLUSIVE")
            ]
        );
        assert_eq!(
            locks("CREATE TABLE o (id int, u int REFERENCES users)"),
            [("users".into(), "SHARE ROW EXCLUSIVE")]
        );
        assert_eq!(locks("CREATE INDEX i ON t (a)"), [("t".into(), "SHARE")]);
        assert_eq!(
            locks("DROP TABLE a, s.b"),
            [("a".into(), ae), ("s.b".into(), ae)]
        );
        assert_eq!(
            locks("TRUNCATE t; LOCK TABLE u"),
            [("t".into(), ae), ("u".into(), ae)]
        );
        assert_eq!(
            locks("ALTER TABLE t RENAME COLUMN a TO b"),
            [("t".into(), ae)]
        );
        assert_eq!(locks("VACUUM (FULL) t"), [("t".into(), ae)]);
        // Nothing strong: traffic does not queue behind these.
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "ALTER TABLE t VALIDATE CONSTRAINT c",
            "CREATE TABLE n (id int)",
            "UPDATE t SET a = 1",
            "LOCK TABLE t IN ROW EXCLUSIVE MODE",
            "REINDEX TABLE CONCURRENTLY t",
            "not sql at all",
        ] {
            assert_eq!(locks(sql), [], "{sql}");
        }
    }

    #[test]
    fn the_conflict_table_is_postgresqls() {
        use Mode::*;
        assert!(AccessShare.conflicts(AccessExclusive));
        assert!(!AccessShare.conflicts(Exclusive));
        assert!(RowExclusive.conflicts(Share));
        assert!(!RowExclusive.conflicts(RowExclusive));
        assert!(!Share.conflicts(Share));
        assert!(ShareUpdateExclusive.conflicts(ShareUpdateExclusive));
        assert!(!ShareUpdateExclusive.strong());
        assert!(Share.strong());
        assert_eq!(
            Mode::from_pg_locks("ShareRowExclusiveLock"),
            Some(ShareRowExclusive)
        );
    }

    #[test]
    fn concurrent_index_is_read_from_the_parse_tree() {
        let i = concurrent_index(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"Email\" ON app.users (email)",
        )
        .expect("a concurrent index");
        assert_eq!(i.schema.as_deref(), Some("app"));
        assert_eq!(i.name, "Email");
        assert_eq!(i.table, "users");
        assert!(i.if_not_exists);
        assert_eq!(concurrent_index("CREATE INDEX i ON t (a)"), None);
        assert_eq!(concurrent_index("CREATE INDEX CONCURRENTLY ON t (a)"), None);
        assert_eq!(
            concurrent_index("-- x\nCREATE INDEX CONCURRENTLY i ON t (a)")
                .map(|i| (i.schema, i.if_not_exists)),
            Some((None, false))
        );
    }
}
