//! The `alembic` runner: Alembic's own `alembic upgrade heads`, run only when shipgate's reading
//! of the project says something is pending.
//!
//! validate (`crate::alembic::Project::load`, before anything connects) → wait for the database
//! → read `alembic_version` (one statement; a missing table is empty) → compare with the graph:
//! nothing pending is the every-deploy no-op — no lock, no Python, one `nothing_to_do` run row;
//! rows this build does not know mean the database is ahead (a warning, or a refusal under
//! `--strict`) → the drift check (the live schema against the snapshot of the revisions the
//! rows name) → lock → read the rows again (a concurrent release may have applied them) → open
//! the run row → run the command as the `command` runner supervises it (process group, fence,
//! timeout, forwarded signals) → read the rows once more and record which pending revisions
//! are now applied → on exit 0, store the schema snapshot keyed by the rows now → close the
//! row → unlock.
//!
//! It never parses Python beyond what `crate::alembic` reads and never decides an exit code.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::command::{self, Spawn};
use super::Error;
use crate::alembic::{Project, Sources, State, Step};
use crate::config::Config;
use crate::migrate::apply::{self, Progress};
use crate::migrate::backend::{AuditRow, Backend};
use crate::migrate::schema::{self, Key};
use crate::migrate::{self, lock, Interrupt};

/// An Alembic project ready to release: its graph, where `alembic` runs, and the command.
#[derive(Debug, Clone)]
pub struct Prepared<'c> {
    /// The project as shipgate read it.
    pub project: Project,
    /// The configuration file, absolute (`ALEMBIC_CONFIG` of the child).
    pub config_file: PathBuf,
    /// The directory `alembic` runs in (the configuration file's).
    pub dir: PathBuf,
    /// The command line (`runner_command`, default `alembic upgrade heads`).
    pub argv: &'c [String],
    /// Where its program was found.
    pub path: PathBuf,
}

/// Loads the project `alembic_config` names: every file problem, with its file and line.
pub fn load(config: &Config) -> Result<(Project, Sources), Error> {
    let sources = Sources::beside(&config.runner.alembic_config);
    let project = Project::load_from(&sources).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok((project, sources))
}

/// Validates the project and the command before anything connects.
pub fn prepare<'c>(config: &'c Config, argv: &'c [String]) -> Result<Prepared<'c>, Error> {
    let (project, sources) = load(config)?;
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let path = command::executable(program).map_err(|why| {
        Error::Refused(format!(
            "runner_command: cannot run {program}: {why} (install Alembic in this image, e.g. \
             `alembic` in requirements.txt); nothing was run"
        ))
    })?;
    Ok(Prepared {
        project,
        config_file: sources.ini.clone(),
        dir: sources.cwd,
        argv,
        path,
    })
}

/// A release that succeeded: what Alembic applied (nothing on the no-op) and where the
/// database stands.
#[derive(Debug)]
pub struct Done {
    /// The command's run, when it ran.
    pub ran: Option<command::Done>,
    /// The revisions that were pending and are now applied, in upgrade order.
    pub applied: Vec<Step>,
    /// `alembic_version`'s rows afterwards.
    pub current: Vec<String>,
    /// Rows this build does not know (the database is ahead of it); nothing was run.
    pub unknown: Vec<String>,
    /// The project's directory, which revision files are named relative to.
    pub dir: PathBuf,
}

impl Done {
    /// `alembic_version`'s rows in words: `a1b2, c3d4`, or `none`.
    pub fn at(&self) -> String {
        revisions_text(&self.current)
    }

    /// The `release.succeeded` fields of this runner.
    pub fn event_data(&self) -> serde_json::Value {
        let applied: Vec<_> = self
            .applied
            .iter()
            .map(|s| json!({"revision": s.revision, "message": s.message, "file": relative(&s.file, &self.dir)}))
            .collect();
        json!({
            "runner": "alembic",
            "run_id": self.ran.as_ref().map(|r| r.run_id),
            "applied": applied,
            "current_revisions": self.current,
            "unknown_revisions": self.unknown,
            "command_duration_ms": self.ran.as_ref().map(|r| r.duration.as_millis() as u64),
        })
    }
}

/// A revision file as the project names it: relative to its directory when it is inside.
pub fn relative(file: &Path, dir: &Path) -> String {
    file.strip_prefix(dir).unwrap_or(file).display().to_string()
}

/// `a, b`, or `none`.
pub fn revisions_text(revisions: &[String]) -> String {
    if revisions.is_empty() {
        "none".into()
    } else {
        revisions.join(", ")
    }
}

/// The audit action of a release that applied revisions with Alembic.
pub const UPGRADE: &str = "upgrade";

/// An `upgrade` audit row's `after`: the rows now, the revisions applied and the run
/// (`alembic_version: c3; applied b2, c3 (run 7)`), read back by [`applied_by_shipgate`].
fn upgrade_text(now: &[String], applied: &[Step], run_id: i64) -> String {
    let ids: Vec<&str> = applied.iter().map(|s| s.revision.as_str()).collect();
    format!(
        "alembic_version: {}; {APPLIED}{} (run {run_id})",
        revisions_text(now),
        ids.join(", ")
    )
}

const APPLIED: &str = "applied ";
const REVERTED: &str = "reverted ";

/// When shipgate applied a revision: the audit row of the release that did, and its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBy<'a> {
    /// The audit row (`at`, `actor`, `deploy_id`).
    pub row: &'a AuditRow,
    /// The release's run id.
    pub run_id: Option<i64>,
}

/// Which revisions shipgate's releases applied and did not revert since, from the audit rows
/// (oldest first): the `upgrade` rows' revisions, less those a later `down` row reverted.
/// Pure, for the tests.
pub fn applied_by_shipgate(audit: &[AuditRow]) -> HashMap<&str, AppliedBy<'_>> {
    let mut out = HashMap::new();
    for row in audit {
        let Some(after) = row.after.as_deref() else {
            continue;
        };
        // `alembic_version: …; applied a, b (run 7)` or `alembic_version: …; reverted a, b`.
        let Some(rest) = after.strip_prefix("alembic_version: ") else {
            continue;
        };
        let Some((_, tail)) = rest.split_once("; ") else {
            continue;
        };
        match (row.action.as_str(), tail) {
            (UPGRADE, tail) if tail.starts_with(APPLIED) => {
                let (list, run) = tail[APPLIED.len()..]
                    .split_once(" (run ")
                    .unwrap_or((&tail[APPLIED.len()..], ""));
                let run_id = run.trim_end_matches(')').parse().ok();
                for id in list.split(", ").filter(|id| !id.is_empty()) {
                    out.insert(id, AppliedBy { row, run_id });
                }
            }
            ("down", tail) if tail.starts_with(REVERTED) => {
                for id in tail[REVERTED.len()..].split(", ") {
                    out.remove(id);
                }
            }
            _ => {}
        }
    }
    out
}

/// Reads the version table's rows.
pub async fn read_rows(backend: &mut Backend, config: &Config) -> Result<Vec<String>, Error> {
    let (schema, name) = &config.runner.alembic_version_table;
    backend
        .alembic_rows(schema.as_deref(), name)
        .await
        .map_err(|e| migrate::Error::db(format!("reading {name}"))(e).into())
}

/// Applies what is pending with Alembic, under the lock, recording the run.
pub async fn release(
    prepared: &Prepared<'_>,
    config: &Config,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<Done, Error> {
    command::in_session(config, interrupt, async |backend, interrupt| {
        run(backend, prepared, config, interrupt, progress).await
    })
    .await
}

async fn run(
    backend: &mut Backend,
    prepared: &Prepared<'_>,
    config: &Config,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<Done, Error> {
    let project = &prepared.project;
    let rows = read_rows(backend, config).await?;
    let state = project.state(&rows);
    if let Some(done) = settled(&state, &rows, prepared, config)? {
        record_nothing_to_do(backend, config, interrupt).await?;
        return Ok(done);
    }
    // Alembic would run: the live schema against the snapshot of the revisions it starts from.
    let keyed = super::keyed(config);
    command::check_drift(backend, keyed, Key::revisions(&rows).as_ref(), config).await?;
    command::lock(backend, config, interrupt).await?;
    // Another release may have applied it all while this one waited.
    let (rows, state) = match read_rows(backend, config).await {
        Ok(rows) => {
            let state = project.state(&rows);
            (rows, state)
        }
        Err(e) => {
            lock::release(backend).await;
            return Err(e);
        }
    };
    match settled(&state, &rows, prepared, config) {
        Ok(None) => {}
        other => {
            lock::release(backend).await;
            let done = other?;
            record_nothing_to_do(backend, config, interrupt).await?;
            return Ok(done.expect("settled returned Some: nothing left to run"));
        }
    }
    tracing::info!(
        pending = state.pending.len(),
        revisions = %state.pending.iter().map(|s| s.revision.as_str()).collect::<Vec<_>>().join(", "),
        "alembic revisions pending: running alembic under the migration lock"
    );
    let run_id = command::open_run(backend, "release", config, interrupt, progress).await?;
    let spawn = Spawn {
        path: &prepared.path,
        argv: prepared.argv,
        env: vec![(
            "ALEMBIC_CONFIG",
            OsString::from(prepared.config_file.as_os_str()),
        )],
        dir: Some(&prepared.dir),
        runner: "alembic",
    };
    let result = command::supervise(backend, &spawn, run_id, config, interrupt).await;
    // After the fence: what the table says now is what committed.
    let (applied, current) = match read_rows(backend, config).await {
        Ok(after) => {
            let now = project.state(&after);
            let applied: Vec<Step> = state
                .pending
                .iter()
                .filter(|s| now.applied.contains(&s.revision))
                .cloned()
                .collect();
            if result.is_ok() && !now.pending.is_empty() {
                tracing::warn!(
                    pending = now.pending.len(),
                    "alembic exited 0 but revisions are still pending: does env.py record them in another table than alembic_version_table?"
                );
            }
            (applied, after)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read what alembic applied");
            (Vec::new(), Vec::new())
        }
    };
    for s in &applied {
        tracing::info!(run_id, revision = %s.revision, file = %relative(&s.file, &prepared.dir), "applied revision {}: {}", s.revision, s.message);
    }
    if let (Ok(_), Some(key)) = (&result, Key::revisions(&current)) {
        schema::record_as(backend, keyed, &key, Some(run_id)).await;
    }
    if !applied.is_empty() {
        // alembic_version keeps no dates: this row is how `history` tells when a revision
        // was applied, by which run and deploy.
        let audit = migrate::backend::Audit {
            action: UPGRADE,
            version: None,
            reason: None,
            before: Some(format!("alembic_version: {}", revisions_text(&rows))),
            after: Some(upgrade_text(&current, &applied, run_id)),
            deploy: &config.deploy,
        };
        if let Err(e) = backend.record_audit(&audit).await {
            tracing::warn!(run_id, error = %e, "could not write the audit row of the revisions applied");
        }
    }
    command::close_run(
        backend,
        run_id,
        result.as_ref().err(),
        applied.len(),
        progress,
    )
    .await;
    lock::release(backend).await;
    result.map(|ran| Done {
        ran: Some(ran),
        applied,
        current,
        unknown: Vec::new(),
        dir: prepared.dir.clone(),
    })
}

/// What `alembic downgrade <target>` would revert from a database at `rows`: the target's full
/// id (`base` for everything) and the revisions it takes out, newest first. Refused when the
/// target is not a revision of this build, not applied, or the rows name revisions this build
/// does not know (only the build that has them can revert them).
pub fn to_revert(
    project: &Project,
    rows: &[String],
    target: &str,
) -> Result<(String, Vec<Step>), Error> {
    let state = project.state(rows);
    if !state.unknown.is_empty() {
        return Err(Error::Invalid(format!(
            "the database holds revisions this build does not know ({}): revert with the build that has them; nothing was reverted",
            state.unknown.join(", ")
        )));
    }
    let graph = &project.graph;
    let (target, keep) = if target == "base" {
        ("base".to_owned(), std::collections::HashSet::new())
    } else {
        let matches: Vec<&str> = graph
            .revisions()
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| *id == target || id.starts_with(target))
            .collect();
        let id = match matches.as_slice() {
            [one] => (*one).to_owned(),
            _ if matches.contains(&target) => target.to_owned(),
            [] => {
                return Err(Error::Invalid(format!(
                    "down --to {target}: no revision of this build is {target} (`base` reverts everything); nothing was reverted"
                )))
            }
            several => {
                return Err(Error::Invalid(format!(
                    "down --to {target}: the prefix names several revisions ({}); give more of it; nothing was reverted",
                    several.join(", ")
                )))
            }
        };
        if !state.applied.contains(&id) {
            return Err(Error::Invalid(format!(
                "down --to {id}: that revision is not applied here (applied: {}); nothing was reverted",
                revisions_text(rows)
            )));
        }
        let keep = graph.ancestors(std::slice::from_ref(&id));
        (id, keep)
    };
    let reverted = graph
        .history()
        .into_iter()
        .filter(|r| state.applied.contains(&r.id) && !keep.contains(&r.id))
        .map(|r| Step {
            revision: r.id.clone(),
            message: r.message.clone(),
            file: r.path.clone(),
            down_revisions: r.down_revisions.clone(),
            depends_on: r.depends_on.clone(),
        })
        .collect();
    Ok((target, reverted))
}

/// `shipgate down --to <target>` for an Alembic project, once the operator confirmed
/// `expected`: under the lock, the rows are read again and the revert chosen again (a
/// release may have moved the database: then nothing runs), a `down` run row is opened,
/// `alembic downgrade <target>` runs as the command runner supervises a child, the fence
/// ends its sessions, and an audit row records what was reverted, with `reason`.
pub async fn downgrade(
    prepared: &Prepared<'_>,
    config: &Config,
    target: &str,
    expected: &[String],
    reason: Option<&str>,
    interrupt: &mut Interrupt,
) -> Result<Vec<Step>, Error> {
    command::in_session(config, interrupt, async |backend, interrupt| {
        downgrade_on(
            backend, prepared, config, target, expected, reason, interrupt,
        )
        .await
    })
    .await
}

async fn downgrade_on(
    backend: &mut Backend,
    prepared: &Prepared<'_>,
    config: &Config,
    target: &str,
    expected: &[String],
    reason: Option<&str>,
    interrupt: &mut Interrupt,
) -> Result<Vec<Step>, Error> {
    let project = &prepared.project;
    command::lock(backend, config, interrupt).await?;
    let chosen = match read_rows(backend, config).await {
        Ok(rows) => to_revert(project, &rows, target).map(|(_, steps)| (rows, steps)),
        Err(e) => Err(e),
    };
    let (before, steps) = match chosen {
        Ok(chosen) => chosen,
        Err(e) => {
            lock::release(backend).await;
            return Err(e);
        }
    };
    let now: Vec<String> = steps.iter().map(|s| s.revision.clone()).collect();
    if now != expected {
        lock::release(backend).await;
        return Err(Error::Invalid(format!(
            "the database changed while waiting for the lock: down --to {target} would now revert {} instead of the {} confirmed; nothing was reverted",
            revisions_text(&now),
            revisions_text(expected)
        )));
    }
    let progress = Progress::default();
    let run_id = command::open_run(backend, "down", config, interrupt, &progress).await?;
    let argv = [
        prepared
            .argv
            .first()
            .cloned()
            .unwrap_or_else(|| "alembic".into()),
        "downgrade".into(),
        target.to_owned(),
    ];
    let spawn = Spawn {
        path: &prepared.path,
        argv: &argv,
        env: vec![(
            "ALEMBIC_CONFIG",
            OsString::from(prepared.config_file.as_os_str()),
        )],
        dir: Some(&prepared.dir),
        runner: "alembic",
    };
    let result = command::supervise(backend, &spawn, run_id, config, interrupt).await;
    let after = read_rows(backend, config).await.unwrap_or_default();
    let still = project.state(&after).applied;
    let reverted: Vec<Step> = steps
        .into_iter()
        .filter(|s| !still.contains(&s.revision))
        .collect();
    for s in &reverted {
        tracing::info!(run_id, revision = %s.revision, "reverted revision {}: {}", s.revision, s.message);
    }
    if let (Ok(_), Some(key)) = (&result, Key::revisions(&after)) {
        schema::record_as(backend, super::keyed(config), &key, Some(run_id)).await;
    }
    if !reverted.is_empty() {
        let audit = migrate::backend::Audit {
            action: "down",
            version: None,
            reason,
            before: Some(format!("alembic_version: {}", revisions_text(&before))),
            after: Some(format!(
                "alembic_version: {}; {REVERTED}{}",
                revisions_text(&after),
                reverted
                    .iter()
                    .map(|s| s.revision.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            deploy: &config.deploy,
        };
        if let Err(e) = backend.record_audit(&audit).await {
            tracing::warn!(error = %e, "could not write the audit row of the revert");
        }
    }
    command::close_run(
        backend,
        run_id,
        result.as_ref().err(),
        reverted.len(),
        &progress,
    )
    .await;
    lock::release(backend).await;
    result.map(|_| reverted)
}

/// What a state leaves to do: `Some` when nothing will run (current, or the database is ahead
/// and that is only a warning), `None` when Alembic must run, an error when it must not.
fn settled(
    state: &State,
    rows: &[String],
    prepared: &Prepared<'_>,
    config: &Config,
) -> Result<Option<Done>, Error> {
    if !state.overlapping.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds {} which another of its rows descends from (alembic upgrade refuses overlapping revisions); fix the table with `alembic stamp`; nothing was run",
            config.runner.alembic_version_table.1,
            state.overlapping.join(", ")
        )));
    }
    let done = || Done {
        ran: None,
        applied: Vec::new(),
        current: rows.to_vec(),
        unknown: state.unknown.clone(),
        dir: prepared.dir.clone(),
    };
    if !state.unknown.is_empty() {
        for revision in &state.unknown {
            tracing::warn!(revision = %revision, "alembic_version holds a revision this build does not know: the database is ahead of it");
        }
        if config.policy.strict {
            return Err(Error::Invalid(format!(
                "the database is ahead of this build: {} not among its revisions (--strict); nothing was run",
                state.unknown.join(", ")
            )));
        }
        if !state.pending.is_empty() {
            tracing::warn!(
                pending = state.pending.len(),
                "not running alembic: it cannot upgrade from a revision it does not know"
            );
        }
        return Ok(Some(done()));
    }
    Ok(state.pending.is_empty().then(done))
}

/// The no-op's run row. A database Alembic migrated before shipgate ever ran there has no
/// `shipgate_runs` yet: the no-op creates nothing (that takes the lock), so it records nothing.
async fn record_nothing_to_do(
    backend: &mut Backend,
    config: &Config,
    interrupt: &mut Interrupt,
) -> Result<(), Error> {
    match apply::record_nothing_to_do(
        backend,
        "release",
        &config.deploy,
        config.engine.lock_retries,
        interrupt,
    )
    .await
    {
        Err(migrate::Error::Database { error, .. }) if backend.is_missing_table(&error) => {
            tracing::debug!("no shipgate_runs table yet: the no-op is not recorded");
            Ok(())
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_relative_to_the_project() {
        assert_eq!(
            relative(
                Path::new("/app/migrations/versions/a.py"),
                Path::new("/app")
            ),
            "migrations/versions/a.py"
        );
        assert_eq!(
            relative(Path::new("/elsewhere/a.py"), Path::new("/app")),
            "/elsewhere/a.py"
        );
        assert_eq!(revisions_text(&[]), "none");
        assert_eq!(revisions_text(&["a".into(), "b".into()]), "a, b");
    }

    fn audit(action: &str, after: &str) -> AuditRow {
        AuditRow {
            at: format!("at {after}"),
            action: action.into(),
            version: None,
            actor: "host:1".into(),
            reason: None,
            before: None,
            after: Some(after.into()),
            deploy_id: None,
        }
    }

    #[test]
    fn the_audit_rows_say_which_release_applied_each_revision() {
        let step = |id: &str| Step {
            revision: id.into(),
            message: String::new(),
            file: PathBuf::new(),
            down_revisions: vec![],
            depends_on: vec![],
        };
        let first = upgrade_text(&["b2".into()], &[step("a1"), step("b2")], 3);
        assert_eq!(first, "alembic_version: b2; applied a1, b2 (run 3)");
        let rows = [
            audit(UPGRADE, &first),
            audit("down", "alembic_version: a1; reverted b2"),
            audit("repair", "alembic_version: x; applied z (run 1)"),
            audit("down", "reverted"),
            audit(UPGRADE, "alembic_version: c3; applied b2, c3 (run 9)"),
        ];
        let by = applied_by_shipgate(&rows);
        assert_eq!(by.len(), 3, "{by:?}");
        assert_eq!(by["a1"].run_id, Some(3));
        assert_eq!(by["b2"].run_id, Some(9));
        assert_eq!(by["b2"].row.at, rows[4].at);
        assert_eq!(by["c3"].run_id, Some(9));
    }
}
