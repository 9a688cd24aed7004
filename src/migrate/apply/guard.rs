//! What runs before a migration's statements on PostgreSQL: looking for sessions in the way of
//! a strong lock (issue 15, part 4) and clearing an INVALID index left in the way of a
//! `CREATE INDEX CONCURRENTLY` (part 2).
//!
//! Which statement locks which table in which mode, and which index a statement builds, come
//! from [`crate::pglock`] (PostgreSQL's own parse tree). The fast path costs nothing beyond that
//! parse: no statement with a strong lock, no query; a statement with one, one query (which
//! also tells whether the table exists: a name that resolves to nothing has no holders).

use std::time::{Duration, Instant};

use super::wait_or_interrupt;
use crate::config::{DeployInfo, EngineSettings};
use crate::engine::Engine;
use crate::migrate::backend::{Audit, Backend, DbError, HeldLock, Timeouts};
use crate::migrate::heartbeat::{self, Wait};
use crate::migrate::source::Script;
use crate::migrate::split::Statement;
use crate::migrate::{human, Error, Interrupt, Stage, Version};
use crate::pglock::{self, TableLock};
use crate::retry::Backoff;

/// Polling for a blocker to go: 200 ms doubling to 2 s, jittered, within `lock_wait`.
const POLL: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));

/// A session that stayed in the way of a statement's lock past the wait.
#[derive(Debug)]
pub(super) struct StillBlocked {
    /// What it holds and who it is.
    pub held: HeldLock,
    /// How long shipgate waited.
    pub waited: Duration,
}

impl StillBlocked {
    /// The error of migration `version` (`file`), with what of it had committed.
    pub fn error(self, version: &Version, file: &str, statements: Option<(usize, usize)>) -> Error {
        Error::BlockedBy {
            version: version.clone(),
            file: file.to_owned(),
            blocker: describe(&self.held),
            waited: self.waited,
            statements,
        }
    }
}

/// `a lock on users held by pid 42 (app, from 10.0.0.7, idle in transaction for 3s; its
/// transaction open 4s): ROW EXCLUSIVE, in the way of ACCESS EXCLUSIVE`.
pub(super) fn describe(h: &HeldLock) -> String {
    let wait = Wait {
        lock: Some(h.table.display()),
        holder: Some(h.holder.clone()),
        state: None,
        via: None,
    };
    let xact = h
        .holder
        .xact_ms
        .map(|ms| {
            format!(
                "; its transaction open {}",
                human(Duration::from_millis(ms))
            )
        })
        .unwrap_or_default();
    format!(
        "{wait}{xact}: {}, in the way of {}",
        h.held.sql_name(),
        h.table.mode.sql_name()
    )
}

/// The strong locks `statements` take (PostgreSQL with `blocker_check` on; none otherwise).
pub(super) fn strong_locks<'s>(
    backend: &Backend,
    settings: &EngineSettings,
    statements: impl IntoIterator<Item = &'s Statement>,
) -> Vec<TableLock> {
    if !looks(backend, settings) {
        return Vec::new();
    }
    merged(statements.into_iter().map(|s| s.sql.as_str()))
}

/// Whether statements are looked at before locking: PostgreSQL with `blocker_check` on.
fn looks(backend: &Backend, settings: &EngineSettings) -> bool {
    backend.engine() == Engine::Postgres && settings.blocker_check
}

/// The strong locks of `statements` together, the strongest mode per table.
fn merged<'s>(statements: impl IntoIterator<Item = &'s str>) -> Vec<TableLock> {
    let mut all: Vec<TableLock> = Vec::new();
    for sql in statements {
        for l in pglock::strong_locks(sql) {
            match all
                .iter_mut()
                .find(|a| a.schema == l.schema && a.name == l.name)
            {
                Some(a) => a.mode = a.mode.max(l.mode),
                None => all.push(l),
            }
        }
    }
    all
}

/// The strong locks of each of a release's transactional migrations, worked out on a thread of
/// their own in the order they will run while the server runs the ones before: parsing every
/// statement with PostgreSQL's parser costs the client about 0.2 ms per migration, which the
/// migrations' own round trips would otherwise wait for (bench/fastapply.md).
pub(super) struct Ahead {
    next: Option<tokio::sync::mpsc::UnboundedReceiver<Vec<TableLock>>>,
}

impl Ahead {
    /// Starts on `scripts` (those run statement by statement are looked at as they run, and
    /// take no place here). Nothing is started when nothing is looked at.
    pub fn start<'s>(
        backend: &Backend,
        settings: &EngineSettings,
        scripts: impl IntoIterator<Item = &'s Script>,
    ) -> Ahead {
        if !looks(backend, settings) {
            return Ahead { next: None };
        }
        let texts: Vec<Vec<String>> = scripts
            .into_iter()
            .map(|s| {
                backend
                    .statements(s)
                    .iter()
                    .map(|st| st.sql.clone())
                    .collect()
            })
            .collect();
        if texts.is_empty() {
            return Ahead { next: None };
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let work = move || {
            for statements in &texts {
                if tx
                    .send(merged(statements.iter().map(String::as_str)))
                    .is_err()
                {
                    return;
                }
            }
        };
        match std::thread::Builder::new()
            .name("shipgate-look".into())
            .spawn(work)
        {
            Ok(_) => Ahead { next: Some(rx) },
            // No thread to be had: each migration works its locks out when it runs.
            Err(_) => Ahead { next: None },
        }
    }

    /// The locks of the next script, in the order given to [`Ahead::start`]; `script`'s own,
    /// worked out here, when there is no thread (or it stopped).
    pub async fn next(
        &mut self,
        backend: &Backend,
        settings: &EngineSettings,
        script: &Script,
    ) -> Vec<TableLock> {
        if let Some(rx) = self.next.as_mut() {
            if let Some(locks) = rx.recv().await {
                return locks;
            }
            self.next = None;
        }
        strong_locks(backend, settings, backend.statements(script))
    }
}

/// Look before locking: waits, up to `lock_wait` and polling on [`POLL`], until no other
/// session holds a lock on one of `locks`' tables that conflicts with the mode wanted and has
/// either held it (its transaction's age) past `blocker_grace` or sits idle in transaction.
/// A younger, busy holder is left to `lock_timeout` and its retries, as before. Logs who is in
/// the way when the wait starts, every few seconds after and when it ends. `Ok(Err(_))` when the
/// wait ran out; `Err` on a signal (`stage` says whether anything was in progress). A lookup
/// that fails is logged and the statement proceeds: the check only adds to `lock_timeout`.
pub(super) async fn clear(
    backend: &mut Backend,
    locks: &[TableLock],
    settings: &EngineSettings,
    interrupt: &mut Interrupt,
    stage: Stage,
) -> Result<Result<(), StillBlocked>, Error> {
    if locks.is_empty() {
        return Ok(Ok(()));
    }
    let started = Instant::now();
    let mut delays = POLL.delays();
    let mut next_log = started;
    let mut logged = false;
    loop {
        let held = match backend.lock_holders(locks).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for sessions holding the tables this migration locks; going ahead under lock_timeout");
                return Ok(Ok(()));
            }
        };
        let Some(blocker) = held
            .into_iter()
            .find(|h| in_the_way(h, settings.blocker_grace))
        else {
            if logged {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "the session in the way is gone; going ahead"
                );
            }
            return Ok(Ok(()));
        };
        let waited = started.elapsed();
        if waited >= settings.lock_wait {
            log(
                &blocker,
                waited,
                "still in the way at the end of lock_wait: not going ahead",
            );
            return Ok(Err(StillBlocked {
                held: blocker,
                waited,
            }));
        }
        if Instant::now() >= next_log {
            log(
                &blocker,
                waited,
                "waiting for a session in the way before taking the lock, so traffic does not queue behind it",
            );
            logged = true;
            next_log += heartbeat::EVERY;
        }
        let delay = delays
            .next()
            .unwrap_or(Duration::from_secs(2))
            .min(settings.lock_wait.saturating_sub(waited))
            .max(Duration::from_millis(1));
        match wait_or_interrupt(delay, interrupt).await {
            Ok(()) => {}
            Err(Error::Interrupted(signal, _)) => return Err(Error::Interrupted(signal, stage)),
            Err(e) => return Err(e),
        }
    }
}

/// Look before locking, before anything of `script` (migration `version`'s `file`, up or
/// down) runs: the tables of all its statements when it runs in one transaction (which keeps
/// every lock it takes), of its first statement when it runs statement by statement
/// (`untracked`; the later ones are looked at by [`before_statement`]). Nothing has run when
/// this fails.
pub(super) async fn before_file(
    backend: &mut Backend,
    (version, file): (&Version, &str),
    script: &Script,
    untracked: bool,
    settings: &EngineSettings,
    interrupt: &mut Interrupt,
) -> Result<(), Error> {
    let all = backend.statements(script);
    let first = if untracked { 1 } else { all.len() };
    let locks = strong_locks(backend, settings, all.iter().take(first));
    match clear(backend, &locks, settings, interrupt, Stage::Waiting).await? {
        Ok(()) => Ok(()),
        Err(blocked) => Err(blocked.error(version, file, None)),
    }
}

/// Look before locking before statement `i` of `total` of a file run statement by statement
/// (the first was looked at by [`before_file`]). When the wait runs out, the migration's row
/// records the stop (`failed`: the statements before it committed) and the error is returned.
pub(super) async fn before_statement(
    backend: &mut Backend,
    (version, file): (&Version, &str),
    statement: &Statement,
    (i, total): (usize, usize),
    settings: &EngineSettings,
    interrupt: &mut Interrupt,
) -> Result<(), Error> {
    if i == 0 {
        return Ok(());
    }
    let locks = strong_locks(backend, settings, [statement]);
    match clear(backend, &locks, settings, interrupt, Stage::Running).await? {
        Ok(()) => Ok(()),
        Err(blocked) => {
            let error = blocked.error(version, file, Some((i, total)));
            super::record_stop(backend, version, &error.to_string()).await;
            Err(error)
        }
    }
}

/// Whether `h` conflicts with the mode wanted and is worth waiting for.
fn in_the_way(h: &HeldLock, grace: Duration) -> bool {
    let idle = h
        .holder
        .state
        .as_deref()
        .is_some_and(|s| s.starts_with("idle in transaction"));
    let old = h
        .holder
        .xact_ms
        .is_some_and(|ms| Duration::from_millis(ms) >= grace);
    h.held.conflicts(h.table.mode) && (idle || old)
}

/// One log line about `h`, with the heartbeat's field names.
fn log(h: &HeldLock, waited: Duration, message: &str) {
    let who = &h.holder;
    tracing::warn!(
        table = %h.table.display(),
        lock_wanted = h.table.mode.sql_name(),
        lock_held = h.held.sql_name(),
        blocking_pid = who.pid,
        blocking_application = who.application.as_deref(),
        blocking_client = who.client.as_deref(),
        blocking_state = who.state.as_deref(),
        blocking_state_ms = who.state_ms,
        blocking_xact_ms = who.xact_ms,
        waited_ms = waited.as_millis() as u64,
        "{message}: {}",
        describe(h)
    );
}

/// The `CREATE INDEX CONCURRENTLY` statement `sql` is, on PostgreSQL.
pub(super) fn concurrent_build(backend: &Backend, sql: &str) -> Option<pglock::ConcurrentIndex> {
    (backend.engine() == Engine::Postgres)
        .then(|| pglock::concurrent_index(sql))
        .flatten()
}

/// Part 2: before statement `index` of migration `version`, a `CREATE INDEX CONCURRENTLY`
/// (`build`): when an INVALID index of its name sits in its schema (left by a failed or killed
/// build, or by this statement's own attempt that hit the lock timeout), drops that index
/// concurrently, logs it and writes an audit row. A valid index is left alone: the statement
/// then fails, or `IF NOT EXISTS` skips, as it would. Runs inside the statement's retried
/// attempt, so a lock timeout here is retried like the statement.
pub(super) async fn drop_invalid_in_the_way(
    backend: &mut Backend,
    build: &pglock::ConcurrentIndex,
    (version, index): (&Version, usize),
    t: Timeouts,
    deploy: &DeployInfo,
) -> Result<(), DbError> {
    let Some((schema, name)) = backend.invalid_index(build).await? else {
        return Ok(());
    };
    let qualified = format!("{schema}.{name}");
    tracing::warn!(
        migration_version = version.field(),
        statement = index + 1,
        index = %qualified,
        if_not_exists = build.if_not_exists,
        "INVALID index {qualified} (left by a failed or interrupted CREATE INDEX CONCURRENTLY) is in the way of the statement: dropping it concurrently, then building it again"
    );
    backend.drop_index_concurrently(&schema, &name, t).await?;
    let audit = Audit {
        action: "drop-invalid-index",
        version: Some(version.clone()),
        reason: Some("an INVALID index left by a failed or interrupted CREATE INDEX CONCURRENTLY, dropped before building it again"),
        before: Some(format!("{qualified} INVALID")),
        after: Some(format!("{qualified} dropped")),
        deploy,
    };
    if let Err(e) = backend.record_audit(&audit).await {
        tracing::warn!(index = %qualified, error = %e, "the INVALID index was dropped but its audit row could not be written");
    }
    Ok(())
}
