//! The rule table: every lint rule's stable id, default severity, the engines it applies to,
//! what gates it, and the three texts printed with a finding (what, why, what to do instead).
//!
//! Owns only data. Ids are a stable contract (they appear in `-- shipgate:allow` directives,
//! config files and CI annotations): never rename one; retire it instead.

use crate::engine::Engine;

use super::Severity;

/// What must hold for a finding of a rule to count, and whether it can refuse a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// A lock or rewrite hazard: counts only for a table that existed before this run and is
    /// large (with a database), or that the file did not create (without one).
    Large,
    /// Counts only for an object that existed before this run (drops, renames, failures on
    /// existing rows).
    Existing,
    /// A statement certain to fail wherever it runs: always counts.
    Fails,
    /// About the files, reverts or habits rather than the database in hand: reported by
    /// `check`, never more than a warning in the release gate.
    File,
    /// A statement shipgate cannot read: reported by `check`; in the release gate a warning
    /// unless it names a large table that existed before the run.
    Opaque,
}

/// One lint rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, kebab-case.
    pub id: &'static str,
    /// Severity unless configured otherwise.
    pub default: Severity,
    /// Engines whose migrations have this hazard.
    pub engines: &'static [Engine],
    /// What gates a finding.
    pub gate: Gate,
    /// Allowed without acknowledgement in a `-- shipgate:contract` file, and only there: an
    /// `allow` directive does not silence it elsewhere.
    pub contract: bool,
    /// What was found, in one line.
    pub summary: &'static str,
    /// Why it is dangerous.
    pub why: &'static str,
    /// The safe alternative.
    pub instead: &'static str,
}

const PG: &[Engine] = &[Engine::Postgres];
const PG_MY: &[Engine] = &[Engine::Postgres, Engine::Mysql];
const PG_LITE: &[Engine] = &[Engine::Postgres, Engine::Sqlite];
const MY: &[Engine] = &[Engine::Mysql];
const ALL: &[Engine] = &[Engine::Postgres, Engine::Mysql, Engine::Sqlite];

const fn rule(
    id: &'static str,
    engines: &'static [Engine],
    gate: Gate,
    summary: &'static str,
    why: &'static str,
    instead: &'static str,
) -> Rule {
    Rule {
        id,
        default: Severity::Error,
        engines,
        gate,
        contract: false,
        summary,
        why,
        instead,
    }
}

const fn contract(rule: Rule) -> Rule {
    Rule {
        contract: true,
        ..rule
    }
}

const fn warning(rule: Rule) -> Rule {
    Rule {
        default: Severity::Warning,
        ..rule
    }
}

/// Every rule, in the order the README lists them.
pub const RULES: &[Rule] = &[
    rule(
        "index-not-concurrent",
        PG,
        Gate::Large,
        "index built or dropped without CONCURRENTLY on an existing table",
        "a plain CREATE INDEX holds a SHARE lock that stops every INSERT, UPDATE and DELETE on the table until the whole index is built; a plain DROP INDEX takes an ACCESS EXCLUSIVE lock that stops reads too",
        "use CREATE INDEX CONCURRENTLY (or DROP INDEX CONCURRENTLY), alone in a file marked `-- shipgate:no-transaction`",
    ),
    rule(
        "concurrently-in-transaction",
        PG,
        Gate::Fails,
        "CONCURRENTLY in a file that runs inside a transaction",
        "PostgreSQL refuses to build or drop an index concurrently inside a transaction block, so this migration fails at deploy time",
        "put the statement alone in its own file with `-- shipgate:no-transaction` in the leading comments",
    ),
    rule(
        "concurrently-not-alone",
        PG,
        Gate::File,
        "CONCURRENTLY in a file with other statements",
        "a concurrent build that fails leaves an INVALID index behind while the statements before it stay committed, so a retry trips over half-done work",
        "give each CREATE/DROP INDEX CONCURRENTLY its own no-transaction file, with IF NOT EXISTS / IF EXISTS so a retry is harmless",
    ),
    rule(
        "constraint-not-valid",
        PG,
        Gate::Large,
        "foreign key or CHECK constraint added and validated in one step",
        "adding the constraint checks every existing row while holding a lock that blocks writes (ACCESS EXCLUSIVE for a CHECK, SHARE ROW EXCLUSIVE on both tables for a foreign key) for the whole scan",
        "add it with NOT VALID (instant; new rows are checked at once), then run ALTER TABLE ... VALIDATE CONSTRAINT in a later migration, which takes only a SHARE UPDATE EXCLUSIVE lock",
    ),
    rule(
        "validate-in-same-transaction",
        PG,
        Gate::Large,
        "constraint added NOT VALID and validated in the same transaction",
        "the lock taken by the ADD is still held while VALIDATE scans the table, so the NOT VALID step buys nothing",
        "move VALIDATE CONSTRAINT to the next migration file, or mark this file `-- shipgate:no-transaction` so each statement commits on its own",
    ),
    rule(
        "unique-not-using-index",
        PG,
        Gate::Large,
        "UNIQUE or PRIMARY KEY constraint that builds its index inline on an existing table",
        "the constraint builds its index under an ACCESS EXCLUSIVE lock: reads and writes of the table stop until the index is complete",
        "first CREATE UNIQUE INDEX CONCURRENTLY in a no-transaction file, then ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING INDEX (or PRIMARY KEY USING INDEX), which is instant",
    ),
    rule(
        "set-not-null",
        PG,
        Gate::Large,
        "SET NOT NULL on a column of an existing table",
        "PostgreSQL scans the whole table for NULLs while holding ACCESS EXCLUSIVE, blocking reads and writes",
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL (PostgreSQL 12+ trusts the validated check and skips the scan) and drop the check",
    ),
    rule(
        "add-column-not-null-no-default",
        PG_LITE,
        Gate::Existing,
        "NOT NULL column added to an existing table without a default",
        "existing rows would hold NULL, so the statement fails as soon as the table has a row (SQLite refuses it outright): the deploy breaks",
        "add the column with a constant DEFAULT (instant on PostgreSQL 11+), or add it nullable, backfill in batches, and enforce NOT NULL afterwards",
    ),
    rule(
        "add-column-volatile-default",
        PG,
        Gate::Large,
        "column added with a value computed per row",
        "a volatile default (clock_timestamp(), random(), gen_random_uuid(), a sequence), an identity column or a stored generated column makes PostgreSQL rewrite the whole table under ACCESS EXCLUSIVE",
        "add the column without a default or with a constant one, set the default for new rows afterwards, and backfill existing rows in batches",
    ),
    rule(
        "column-type-change",
        PG_MY,
        Gate::Large,
        "column type changed on an existing table",
        "a type change rewrites the table and rebuilds its indexes under an ACCESS EXCLUSIVE lock (on MySQL, a table copy that blocks writes), unless the old type is binary coercible to the new one: varchar(n) to varchar(m >= n), to varchar or to text, text to varchar, numeric(p,s) to numeric(q >= p,s) or numeric, a type to itself (shipgate knows the old type from the database, or from the file that created the column)",
        "add a column of the new type, write both and backfill in batches, move reads, then drop the old column in a contract migration",
    ),
    contract(rule(
        "rename-column",
        ALL,
        Gate::Existing,
        "column renamed",
        "the app version still serving during the rollout reads and writes the old name and fails from the moment the migration commits",
        "expand and contract: add the new column, write both, backfill, move reads, then drop the old one in a `-- shipgate:contract` file released after the old version has drained",
    )),
    contract(rule(
        "rename-table",
        ALL,
        Gate::Existing,
        "table renamed",
        "the app version still serving during the rollout queries the old name and fails from the moment the migration commits",
        "create the new table (or a view under the old name), move the app over, and rename or drop in a `-- shipgate:contract` file after the old version has drained",
    )),
    contract(rule(
        "drop-table",
        ALL,
        Gate::Existing,
        "table dropped",
        "the data is gone for good, and the app version still serving during the rollout may still query the table",
        "stop using the table in one release, then drop it in a file marked `-- shipgate:contract`, applied with --allow-contract once the old version has drained",
    )),
    contract(rule(
        "drop-column",
        ALL,
        Gate::Existing,
        "column dropped",
        "the data is gone for good, and the app version still serving during the rollout may still read or write the column",
        "stop using the column in one release, then drop it in a file marked `-- shipgate:contract`, applied with --allow-contract once the old version has drained",
    )),
    contract(rule(
        "drop-schema",
        ALL,
        Gate::Existing,
        "schema dropped",
        "every table, view and function in the schema goes with it, irreversibly",
        "drop the schema only in a file marked `-- shipgate:contract`, applied with --allow-contract after checking nothing uses it",
    )),
    contract(rule(
        "drop-database",
        ALL,
        Gate::Existing,
        "database dropped",
        "everything in the database goes with it, irreversibly; a migration is the wrong place for this",
        "drop databases by hand, outside the deploy; if it truly belongs here, use a `-- shipgate:contract` file",
    )),
    contract(rule(
        "truncate",
        PG_MY,
        Gate::Existing,
        "table truncated",
        "TRUNCATE removes every row at once, cannot be undone by a down file, and takes an ACCESS EXCLUSIVE lock",
        "if the rows really must go, do it in a `-- shipgate:contract` file; otherwise delete what is obsolete in bounded batches",
    )),
    rule(
        "exclusive-lock-then-more",
        PG,
        Gate::Large,
        "more work after an ACCESS EXCLUSIVE lock in the same transaction",
        "the lock is held until commit, so each later statement (another table's exclusive lock, or DML over many rows) lengthens the time the table is blocked, and locking several tables invites deadlocks",
        "split the file: one exclusive-lock statement per transactional migration, data changes in their own migration or in batches",
    ),
    rule(
        "update-without-where",
        ALL,
        Gate::Large,
        "UPDATE without WHERE on an existing table",
        "it rewrites every row in one transaction: long-held row locks, bloat and replication lag, and often a mistake",
        "add a WHERE clause; backfill a large table in bounded batches (WHERE id BETWEEN ...) rather than in one statement",
    ),
    rule(
        "delete-without-where",
        ALL,
        Gate::Large,
        "DELETE without WHERE on an existing table",
        "it removes every row in one long transaction, holding row locks and leaving the whole table as dead tuples, and is often a mistake",
        "add a WHERE clause and delete in bounded batches; to empty a table on purpose use TRUNCATE in a `-- shipgate:contract` file",
    ),
    rule(
        "timeout-disabled",
        PG_MY,
        Gate::File,
        "lock or statement timeout set to 0 (no limit)",
        "0 removes the bound: a statement may wait for a lock forever while every other query on that table queues behind it",
        "keep a finite bound: use the `-- shipgate:lock-timeout 10s` / `-- shipgate:statement-timeout 15m` directives, or SET LOCAL with a finite value",
    ),
    rule(
        "timeout-session-level",
        PG_MY,
        Gate::File,
        "session-level SET of a lock or statement timeout",
        "a plain SET outlives the migration: it stays on shipgate's connection and silently changes the bounds of every later migration in the run",
        "use SET LOCAL, which ends with the transaction, or the `-- shipgate:lock-timeout` / `-- shipgate:statement-timeout` directives",
    ),
    warning(rule(
        "missing-down",
        ALL,
        Gate::File,
        "migration has no down file while the rest of the set does",
        "the set is reversible, so operators expect `shipgate down` to work; without a down file a revert across this version is refused in an emergency",
        "write <version>_<name>.down.sql, or rename the up file to <version>_<name>.sql to declare it irreversible",
    )),
    warning(rule(
        "empty-down",
        ALL,
        Gate::File,
        "down file has no SQL: the migration is irreversible",
        "an empty or comment-only down file declares the migration irreversible: `shipgate down` refuses to revert across it, as for a missing down file, which is easy to miss in an emergency",
        "write the SQL that undoes the up file; if it truly cannot be undone, say so in a comment, or delete the down file and rename the up file to <version>_<name>.sql",
    )),
    warning(rule(
        "empty-up",
        ALL,
        Gate::File,
        "up file has no SQL: a no-op",
        "a comment-only up file is applied as a deliberate no-op and recorded in history; if SQL was meant to be written there (an unedited `shipgate new` template), adding it later changes an applied file's checksum",
        "write the migration's SQL before it is released; if the no-op is intended (to hold a version), acknowledge it with `-- shipgate:allow empty-up <reason>`",
    )),
    rule(
        "mysql-multiple-ddl",
        MY,
        Gate::File,
        "more than one DDL statement in a MySQL migration",
        "MySQL commits every DDL statement on its own, so a failure part-way leaves the migration half applied and recorded as dirty",
        "put each DDL statement in its own migration file (several changes to one table can share one ALTER TABLE statement)",
    ),
    rule(
        "opaque-sql",
        ALL,
        Gate::Opaque,
        "statement shipgate cannot analyse",
        "a statement the parser cannot read, a DO block or dynamic SQL (EXECUTE, CALL) may take any lock or destroy data; passing it silently would hide exactly what this check exists to catch",
        "prefer plain SQL statements; if this one is intended, review it and acknowledge it with `-- shipgate:allow opaque-sql <reason>`",
    ),
];

/// The rule with this id.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_and_texts_are_filled() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate id {}", r.id);
            assert!(
                r.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                r.id
            );
            assert!(!r.summary.is_empty() && !r.why.is_empty() && !r.instead.is_empty());
            assert!(!r.engines.is_empty());
        }
    }
}
