//! What PostgreSQL's own grammar (libpg_query) says about a statement whose kind the lint does
//! not analyse rule by rule, and what runs inside a `DO` block.
//!
//! The lint reads every PostgreSQL statement with the server's grammar; the kinds the rules are
//! about (tables, indexes, constraints, columns, data changes, timeouts) are analysed in
//! `check::pg`. Any other statement the grammar accepts is not unreadable: it is classified
//! here as known to take no lock the rules care about, or reported as one the lint cannot
//! check. A `DO` block runs its body now, so its static SQL statements (read with the
//! PL/pgSQL parser) are linted like top-level ones; only dynamic SQL (`EXECUTE` of a built
//! string) stays opaque. A function's body runs when the function is called, not when the
//! migration runs, so it is only checked to parse.

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::NodeEnum;

/// The grammar's verdict on one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Readable, and of a kind that takes no lock or rewrite any rule is about.
    Safe,
    /// Readable and safe, and it creates this relation (a materialized view, `CREATE TABLE
    /// … AS`): later statements treat it as new.
    Creates(String),
    /// A `DO` block: the static statements its body runs, in order, and the reason its body
    /// cannot be fully checked (dynamic SQL), if any.
    Runs {
        statements: Vec<String>,
        opaque: Option<String>,
    },
    /// A PL/pgSQL function or procedure: the static statements of its body, which run when it
    /// is called, not when the migration runs.
    Function {
        name: String,
        statements: Vec<String>,
    },
    /// The grammar reads it, but the lint cannot say what it locks: report it.
    Unchecked(String),
    /// The grammar rejects it too.
    Invalid(String),
}

/// Reads `sql`, one statement, with PostgreSQL's grammar.
#[cfg(test)]
fn verdict(sql: &str) -> Verdict {
    let parsed = match pg_query::parse(sql) {
        Ok(p) => p,
        Err(e) => return Verdict::Invalid(e.to_string()),
    };
    let Some(node) = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|n| n.node.as_ref())
    else {
        return Verdict::Safe;
    };
    classify(node, sql)
}

/// What the lint makes of a statement it does not analyse rule by rule (`sql` is its text).
pub(super) fn classify(node: &NodeEnum, sql: &str) -> Verdict {
    match node {
        NodeEnum::DoStmt(d) => do_block(d),
        NodeEnum::CreateFunctionStmt(f) => function(f, sql),
        NodeEnum::CreateTableAsStmt(c) => match c.into.as_ref().and_then(|i| i.rel.as_ref()) {
            Some(rel) => Verdict::Creates(rel.relname.clone()),
            None => Verdict::Safe,
        },
        // Catalog-only or lock-light statements: no table rewrite, no long exclusive lock.
        NodeEnum::CommentStmt(_)
        | NodeEnum::GrantStmt(_)
        | NodeEnum::GrantRoleStmt(_)
        | NodeEnum::AlterDefaultPrivilegesStmt(_)
        | NodeEnum::CreateRoleStmt(_)
        | NodeEnum::AlterRoleStmt(_)
        | NodeEnum::CreateStatsStmt(_)
        | NodeEnum::AlterStatsStmt(_)
        | NodeEnum::CreateSeqStmt(_)
        | NodeEnum::AlterSeqStmt(_)
        | NodeEnum::CreateEnumStmt(_)
        | NodeEnum::AlterEnumStmt(_)
        | NodeEnum::CompositeTypeStmt(_)
        | NodeEnum::CreateDomainStmt(_)
        | NodeEnum::CreateExtensionStmt(_)
        | NodeEnum::AlterExtensionStmt(_)
        | NodeEnum::CreatePolicyStmt(_)
        | NodeEnum::AlterPolicyStmt(_)
        | NodeEnum::CreatePublicationStmt(_)
        | NodeEnum::AlterPublicationStmt(_)
        | NodeEnum::CreateSchemaStmt(_)
        | NodeEnum::DefineStmt(_)
        | NodeEnum::VariableSetStmt(_)
        | NodeEnum::SelectStmt(_)
        | NodeEnum::ViewStmt(_)
        | NodeEnum::CreateCastStmt(_)
        | NodeEnum::CreateConversionStmt(_)
        | NodeEnum::CreateTransformStmt(_)
        | NodeEnum::CreateOpClassStmt(_)
        | NodeEnum::CreateOpFamilyStmt(_)
        | NodeEnum::CreateEventTrigStmt(_)
        | NodeEnum::AlterObjectSchemaStmt(_)
        | NodeEnum::AlterOwnerStmt(_)
        | NodeEnum::AlterFunctionStmt(_)
        | NodeEnum::SecLabelStmt(_)
        | NodeEnum::CreateTrigStmt(_)
        | NodeEnum::NotifyStmt(_)
        // Session and transaction housekeeping, and plans.
        | NodeEnum::TransactionStmt(_)
        | NodeEnum::ExplainStmt(_)
        | NodeEnum::VacuumStmt(_)
        | NodeEnum::PrepareStmt(_)
        | NodeEnum::DeallocateStmt(_)
        | NodeEnum::DeclareCursorStmt(_)
        | NodeEnum::FetchStmt(_)
        | NodeEnum::ClosePortalStmt(_)
        | NodeEnum::DiscardStmt(_)
        | NodeEnum::ListenStmt(_)
        | NodeEnum::UnlistenStmt(_)
        | NodeEnum::VariableShowStmt(_)
        | NodeEnum::DropRoleStmt(_)
        // No rule is about these yet: a role's defaults, and REFRESH MATERIALIZED VIEW (it
        // locks the view it refreshes, no table).
        | NodeEnum::AlterRoleSetStmt(_)
        | NodeEnum::RefreshMatViewStmt(_) => Verdict::Safe,
        // Renames of objects that are not tables, columns or indexes.
        NodeEnum::RenameStmt(r) if !renames_a_relation(r.rename_type) => Verdict::Safe,
        // ALTER TABLE … ALTER CONSTRAINT (deferrability) rewrites nothing and validates nothing.
        NodeEnum::AlterTableStmt(a)
            if !a.cmds.is_empty()
                && a.cmds.iter().all(|c| {
                    matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
                        if cmd.subtype == AlterTableType::AtAlterConstraint as i32)
                }) =>
        {
            Verdict::Safe
        }
        _ => Verdict::Unchecked(format!(
            "PostgreSQL reads it, but the lint does not know what a {} takes; check its locks by hand",
            node_name(node)
        )),
    }
}

fn renames_a_relation(kind: i32) -> bool {
    matches!(
        ObjectType::try_from(kind),
        Ok(ObjectType::ObjectTable
            | ObjectType::ObjectColumn
            | ObjectType::ObjectIndex
            | ObjectType::ObjectTabconstraint
            | ObjectType::ObjectSchema
            | ObjectType::ObjectDatabase
            | ObjectType::ObjectMatview
            | ObjectType::ObjectView)
    )
}

fn node_name(node: &NodeEnum) -> String {
    let debug = format!("{node:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("statement")
        .to_owned()
}

/// The string of a `DefElem` argument (`AS '…'`, `LANGUAGE plpgsql`).
fn option<'a>(options: &'a [pg_query::protobuf::Node], key: &str) -> Option<&'a str> {
    options.iter().find_map(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname == key => match d.arg.as_ref()?.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.as_str()),
            NodeEnum::List(l) => match l.items.first()?.node.as_ref()? {
                NodeEnum::String(s) => Some(s.sval.as_str()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    })
}

fn do_block(d: &pg_query::protobuf::DoStmt) -> Verdict {
    let language = option(&d.args, "language").unwrap_or("plpgsql");
    let Some(body) = option(&d.args, "as") else {
        return Verdict::Unchecked("DO block without a body".into());
    };
    if !language.eq_ignore_ascii_case("plpgsql") {
        return Verdict::Unchecked(format!(
            "DO block in {language}: its body runs code that shipgate cannot check"
        ));
    }
    match plpgsql(body) {
        Ok((statements, dynamic)) => Verdict::Runs {
            statements,
            opaque: dynamic.then(|| {
                "DO block runs dynamic SQL (EXECUTE of a built string) that shipgate cannot check"
                    .to_owned()
            }),
        },
        Err(e) => Verdict::Invalid(format!("DO block body: {e}")),
    }
}

/// A function: a PL/pgSQL body is read with its own signature (a trigger function knows `NEW`
/// and `OLD`, parameters are variables), as PostgreSQL's validator would.
fn function(f: &pg_query::protobuf::CreateFunctionStmt, sql: &str) -> Verdict {
    let language = option(&f.options, "language").unwrap_or("sql");
    match (
        language.to_ascii_lowercase().as_str(),
        option(&f.options, "as"),
    ) {
        ("plpgsql", Some(_)) => match pg_query::parse_plpgsql(sql) {
            Ok(tree) => {
                let mut statements = Vec::new();
                let mut dynamic = false;
                walk(&tree, &mut statements, &mut dynamic);
                let name = f
                    .funcname
                    .iter()
                    .filter_map(|n| match &n.node {
                        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(".");
                Verdict::Function { name, statements }
            }
            Err(e) => Verdict::Invalid(format!("function body: {e}")),
        },
        // SQL bodies were parsed with the statement (BEGIN ATOMIC) or run when called; other
        // languages are the server's to check when the function is created.
        _ => Verdict::Safe,
    }
}

/// The static SQL statements of a PL/pgSQL body, and whether it also runs dynamic SQL.
fn plpgsql(body: &str) -> Result<(Vec<String>, bool), String> {
    let mut tag = String::from("shipgate");
    while body.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    let wrapped = format!(
        "CREATE FUNCTION shipgate_lint_body() RETURNS void LANGUAGE plpgsql AS ${tag}${body}${tag}$"
    );
    let tree = pg_query::parse_plpgsql(&wrapped).map_err(|e| e.to_string())?;
    let mut statements = Vec::new();
    let mut dynamic = false;
    walk(&tree, &mut statements, &mut dynamic);
    Ok((statements, dynamic))
}

fn walk(value: &serde_json::Value, statements: &mut Vec<String>, dynamic: &mut bool) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match key.as_str() {
                    "PLpgSQL_stmt_execsql" => {
                        if let Some(q) = inner["sqlstmt"]["PLpgSQL_expr"]["query"].as_str() {
                            statements.push(q.to_owned());
                        }
                    }
                    "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" => *dynamic = true,
                    _ => walk(inner, statements, dynamic),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                walk(item, statements, dynamic);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_server_reads_is_not_unreadable() {
        for sql in [
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql COST 100 AS $$ BEGIN RETURN 1; END $$",
            "CREATE OR REPLACE FUNCTION g(a int) RETURNS SETOF int LANGUAGE sql STABLE PARALLEL SAFE ROWS 10 SECURITY DEFINER SET search_path = public AS 'SELECT a'",
            "ALTER TABLE t ALTER CONSTRAINT t_fk DEFERRABLE INITIALLY DEFERRED",
            "ALTER SEQUENCE s RENAME TO s2",
            "CREATE STATISTICS st (dependencies) ON a, b FROM t",
            "COMMENT ON TABLE t IS 'x'",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO app",
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh'",
            "CREATE POLICY p ON t USING (owner = current_user)",
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
            "CREATE PROCEDURE p(target int) LANGUAGE plpgsql AS $$ DECLARE n int; BEGIN UPDATE t SET a = target; GET DIAGNOSTICS n = ROW_COUNT; END $$",
        ] {
            assert!(
                matches!(verdict(sql), Verdict::Safe | Verdict::Function { .. }),
                "{sql}"
            );
        }
    }

    #[test]
    fn a_do_block_runs_its_static_statements_and_its_dynamic_sql_is_opaque() {
        let v = verdict(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'x') THEN CREATE TYPE x AS ENUM ('a'); END IF; UPDATE t SET a = 1; END $$",
        );
        assert_eq!(
            v,
            Verdict::Runs {
                statements: vec![
                    "CREATE TYPE x AS ENUM ('a')".into(),
                    "UPDATE t SET a = 1".into()
                ],
                opaque: None
            }
        );
        let v = verdict("DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'y'; END $$");
        assert!(
            matches!(&v, Verdict::Runs { statements, opaque: Some(_) } if statements.is_empty()),
            "{v:?}"
        );
        // A body that holds the wrapper's own dollar tag still parses.
        let v = verdict("DO $x$ BEGIN PERFORM '$shipgate$'; END $x$");
        assert!(matches!(v, Verdict::Runs { .. }), "{v:?}");
        assert!(matches!(
            verdict("DO LANGUAGE plpython3u $$ x $$"),
            Verdict::Unchecked(_)
        ));
    }

    #[test]
    fn invalid_and_unknown_statements_are_reported() {
        assert!(matches!(verdict("SELEKT 1"), Verdict::Invalid(_)));
        assert!(matches!(
            verdict("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1 END $$"),
            Verdict::Invalid(_)
        ));
        assert!(matches!(
            verdict("CLUSTER t USING t_pkey"),
            Verdict::Unchecked(_)
        ));
    }
}
