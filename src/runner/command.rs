//! The `command` runner: a command line run under the migration lock as a supervised child.
//!
//! Owns the child from spawn to reaping and its database sessions from spawn to the fence:
//! wait for the database → the drift check (against the snapshot of the newest run that
//! succeeded) → lock (`migrate::lock`, holder reports included) → open the run row →
//! spawn the command in its own process group → stream its output into the log line by line →
//! wait for it (bounded by `runner_timeout`; SIGTERM/SIGINT to shipgate forwarded to its group;
//! the lock checked every few seconds) → end whatever is left of its group → **fence** → store
//! the schema snapshot (exit 0 only, keyed by this run) → close the run row → unlock. The fence: on PostgreSQL the child's sessions carry
//! `application_name = shipgate-<run id>` (`PGAPPNAME`), and the lock is released only once
//! none is left in `pg_stat_activity` — after `runner_fence_wait` the stragglers are ended with
//! `pg_terminate_backend`, so a transaction of a killed child can never commit after the lock
//! is gone. MySQL/MariaDB clients take no application name from the environment, and SQLite
//! has no sessions to find: there the fence is the process group, ended before the unlock.
//!
//! It never decides what is pending (the command does) and never picks an exit code.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal as Sig};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::Error;
use crate::config::{Config, DatabaseUrl, DriftMode, Engine};
use crate::migrate::apply::{self, Progress};
use crate::migrate::backend::{Backend, DbError, RunOutcome};
use crate::migrate::schema::{self, Key, Keyed};
use crate::migrate::{self, lock, Interrupt, Signal};

/// How often the lock is checked while the command runs (a lost session would let another
/// release start beside it).
const LOCK_CHECK_EVERY: Duration = Duration::from_secs(5);
/// How often the fence and the group's end are polled.
const POLL: Duration = Duration::from_millis(100);
/// After SIGKILL, how long the child may take to be reaped.
const KILL_BOUND: Duration = Duration::from_secs(5);
/// How long a terminated session may take to leave `pg_stat_activity`.
const TERMINATE_BOUND: Duration = Duration::from_secs(5);
/// After the child's group is gone, how long its output may take to drain (a process that left
/// the group may still hold the pipes).
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);
/// How long an interrupted run may take to end its server session.
const ABORT_BOUND: Duration = Duration::from_secs(5);
/// The longest output line logged as one; longer ones are cut into several.
const MAX_LINE: usize = 16 * 1024;
/// `client_connection_check_interval` of the child's PostgreSQL sessions, in milliseconds.
const CONNECTION_CHECK_MS: u32 = 1000;

/// A command run that succeeded.
#[derive(Debug)]
pub struct Done {
    /// The run's `shipgate_runs` row.
    pub run_id: i64,
    /// The program, as configured.
    pub program: String,
    /// How long the command ran.
    pub duration: Duration,
}

/// A command run that failed, in words: what the command did, what the fence found, what
/// PostgreSQL indexes it left INVALID. Recorded in the run row as it reads.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// The child a runner supervises: its program, arguments and what it gets beyond the
/// environment every runner child gets.
#[derive(Debug)]
pub(crate) struct Spawn<'a> {
    /// The program's file, found before anything ran.
    pub path: &'a Path,
    /// The program and its arguments, as configured.
    pub argv: &'a [String],
    /// More variables for the child.
    pub env: Vec<(&'static str, OsString)>,
    /// Its working directory; `None`: shipgate's.
    pub dir: Option<&'a Path>,
    /// The runner's name in its output's log lines.
    pub runner: &'static str,
}

/// Runs `argv` (its program found at `path`) as a `release`: connect within the wait, lock,
/// record, supervise, fence, unlock.
pub async fn release(
    argv: &[String],
    path: &Path,
    config: &Config,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<Done, Error> {
    let spawn = Spawn {
        path,
        argv,
        env: Vec::new(),
        dir: None,
        runner: "command",
    };
    in_session(config, interrupt, async |backend, interrupt| {
        locked(backend, &spawn, config, interrupt, progress).await
    })
    .await
}

/// Connects within the wait, does `work` on that session, and ends it as [`end_session`] says:
/// the one shape of every runner's run.
pub(super) async fn in_session<T>(
    config: &Config,
    interrupt: &mut Interrupt,
    work: impl AsyncFnOnce(&mut Backend, &mut Interrupt) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut backend = connect(config, interrupt).await?;
    let result = work(&mut backend, interrupt).await;
    end_session(backend, &result).await;
    result
}

/// Connects within the wait for the database, as every release does.
pub(crate) async fn connect(config: &Config, interrupt: &mut Interrupt) -> Result<Backend, Error> {
    Ok(apply::connect(&config.database, &config.engine, &config.deploy, interrupt).await?)
}

/// Ends the runner's own session: aborted when it was stopped while one of shipgate's own
/// statements may be in flight, closed otherwise.
pub(super) async fn end_session<T>(backend: Backend, result: &Result<T, Error>) {
    match result {
        Err(Error::Engine(e)) if matches!(**e, migrate::Error::Interrupted(..)) => {
            backend.abort(ABORT_BOUND).await
        }
        _ => backend.close().await,
    }
}

/// The drift check, then under the lock: open the run row, supervise the command, store the
/// schema snapshot when it succeeded (keyed by this run), record its outcome, unlock.
async fn locked(
    backend: &mut Backend,
    spawn: &Spawn<'_>,
    config: &Config,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<Done, Error> {
    if config.drift.mode != DriftMode::Off {
        let key = schema::head(backend, Keyed::Command)
            .await
            .map_err(migrate::Error::db("reading shipgate's runs"))?;
        check_drift(backend, Keyed::Command, key.as_ref(), config).await?;
    }
    lock(backend, config, interrupt).await?;
    let run_id = open_run(backend, "release", config, interrupt, progress).await?;
    let result = supervise(backend, spawn, run_id, config, interrupt).await;
    if result.is_ok() {
        schema::record_as(backend, Keyed::Command, &Key::Run(run_id), Some(run_id)).await;
    }
    close_run(backend, run_id, result.as_ref().err(), 0, progress).await;
    lock::release(backend).await;
    result
}

/// A runner's drift check before its lock (`gate::drift_at`, the `sql` runner's, with the same
/// `drift` settings): the live schema against the snapshot of `key`. A refusal (or a failed
/// read) is recorded as a failed run, as the `sql` runner records its gate's.
pub(super) async fn check_drift(
    backend: &mut Backend,
    keyed: Keyed<'_>,
    key: Option<&Key>,
    config: &Config,
) -> Result<(), Error> {
    let Err(e) = crate::gate::drift_at(backend, keyed, key, &config.drift).await else {
        return Ok(());
    };
    let message = e.to_string();
    if let Err(error) = backend
        .record_closed_run(
            "release",
            &config.deploy,
            RunOutcome::Failed,
            Some(&message),
        )
        .await
    {
        tracing::warn!(error = %error, "could not record the refused run");
    }
    Err(e.into())
}

/// Takes the migration lock within `lock_wait` (holder reports included).
pub(super) async fn lock(
    backend: &mut Backend,
    config: &Config,
    interrupt: &mut Interrupt,
) -> Result<(), Error> {
    let waited = lock::acquire(backend, config.engine.lock_wait, interrupt).await?;
    metrics::histogram!("shipgate_lock_wait_seconds").record(waited.as_secs_f64());
    Ok(())
}

/// Under the lock: opens the release's run row and publishes its id. On an error other than a
/// signal the lock is released (a signal leaves the session to be aborted).
pub(super) async fn open_run(
    backend: &mut Backend,
    command: &'static str,
    config: &Config,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<i64, Error> {
    let opened = apply::open_run(
        backend,
        Some(command),
        &config.deploy,
        config.engine.lock_retries,
        interrupt,
    )
    .await;
    match opened {
        Ok(id) => {
            let id = id.expect("open_run returns the id of the row it was asked to open");
            progress.set_run_id(Some(id));
            Ok(id)
        }
        Err(e @ migrate::Error::Interrupted(..)) => Err(e.into()),
        Err(e) => {
            lock::release(backend).await;
            Err(e.into())
        }
    }
}

/// Closes the run row: succeeded with `applied` migrations, or failed/aborted with `error`.
pub(super) async fn close_run(
    backend: &mut Backend,
    run_id: i64,
    error: Option<&Error>,
    applied: usize,
    progress: &Progress,
) {
    let outcome = match error {
        None => RunOutcome::Succeeded,
        Some(Error::Interrupted { .. }) => RunOutcome::Aborted,
        Some(_) => RunOutcome::Failed,
    };
    if matches!(error, Some(Error::Command(_))) {
        metrics::counter!("shipgate_migration_failures_total").increment(1);
    }
    let text = error.map(ToString::to_string);
    match backend
        .finish_run(run_id, outcome, applied, text.as_deref())
        .await
    {
        // Recorded: the flow must not record it again from another connection.
        Ok(()) => progress.set_run_id(None),
        Err(e) => tracing::warn!(error = %e, run_id, "could not record the run's outcome"),
    }
}

/// How the wait for the child ended.
enum Ended {
    Exited(ExitStatus),
    Signal(Signal),
    TimedOut,
    LockLost(DbError),
    WaitFailed(std::io::Error),
}

/// Spawns the command, waits for it, ends its group and fences its sessions.
pub(super) async fn supervise(
    backend: &mut Backend,
    spawn: &Spawn<'_>,
    run_id: i64,
    config: &Config,
    interrupt: &mut Interrupt,
) -> Result<Done, Error> {
    let Spawn {
        path, argv, runner, ..
    } = *spawn;
    let settings = &config.runner;
    let program = argv.first().cloned().unwrap_or_default();
    let full = config.database.scrub(&argv.join(" "));
    // Messages and the run row name the command short; the start line logs it whole.
    let shown = match full.char_indices().nth(60) {
        Some((cut, _)) => format!("`{}…`", &full[..cut]),
        None => format!("`{full}`"),
    };
    let postgres = backend.engine() == Engine::Postgres;
    let app_name = format!("shipgate-{run_id}");
    let invalid_before = if postgres {
        backend.invalid_indexes().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut cmd = Command::new(path);
    cmd.args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env("DATABASE_URL", config.database.expose())
        .env("PGAPPNAME", &app_name)
        .env("SHIPGATE_RUN_ID", run_id.to_string())
        .env("SHIPGATE_LOCK_HELD", "1")
        // Python buffers a pipe to the end: its lines would reach the log only at exit.
        .env("PYTHONUNBUFFERED", "1")
        .envs(spawn.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = spawn.dir {
        cmd.current_dir(dir);
    }
    if postgres {
        cmd.env("PGOPTIONS", pg_options(backend, config).await);
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Err(Failed(format!("runner command {shown}: cannot start it: {e}")).into())
        }
    };
    let pid = child.id().unwrap_or_default();
    let group = i32::try_from(pid).ok().and_then(Pid::from_raw);
    // The start of the run's progress: on a terminal the display (with its elapsed time and
    // the heartbeats from `watch`) in place of this line, elsewhere this line.
    tracing::info!(
        target: "shipgate::progress::start",
        run_id,
        pid,
        command = %full,
        timeout_ms = settings.timeout.as_millis() as u64,
        application_name = %app_name,
        "running {shown} under the migration lock (pid {pid})"
    );
    let output = [
        child
            .stdout
            .take()
            .map(|o| tokio::spawn(stream(o, "stdout", runner, config.database.clone()))),
        child
            .stderr
            .take()
            .map(|o| tokio::spawn(stream(o, "stderr", runner, config.database.clone()))),
    ];

    let beats = Beats {
        shown: &shown,
        app: &app_name,
        postgres,
        started,
    };
    let ended = watch(
        &mut child,
        Some((&mut *backend, &beats)),
        settings.timeout,
        interrupt,
    )
    .await;
    let status = match &ended {
        Ended::Exited(status) => Some(*status),
        Ended::Signal(signal) => {
            let forward = match signal {
                Signal::Interrupt => Sig::INT,
                Signal::Terminate => Sig::TERM,
            };
            tracing::warn!(signal = %signal, pid, "forwarding the signal to the runner command's process group");
            stop(&mut child, group, forward, settings.grace).await
        }
        Ended::TimedOut => {
            tracing::error!(
                pid,
                timeout_ms = settings.timeout.as_millis() as u64,
                "runner command did not finish within runner_timeout; ending its process group"
            );
            stop(&mut child, group, Sig::TERM, settings.grace).await
        }
        Ended::LockLost(e) => {
            tracing::error!(pid, error = %e, "the migration lock was lost while the runner command ran; ending its process group");
            stop(&mut child, group, Sig::TERM, settings.grace).await
        }
        Ended::WaitFailed(e) => {
            tracing::error!(pid, error = %e, "waiting for the runner command failed; ending its process group");
            stop(&mut child, group, Sig::TERM, settings.grace).await
        }
    };
    let duration = started.elapsed();
    // After a clean exit the group gets the full treatment; after `stop` its grace is spent.
    match ended {
        Ended::Exited(_) => end_group(group, settings.grace).await,
        _ => end_group(group, Duration::ZERO).await,
    }
    for task in output.into_iter().flatten() {
        let abort = task.abort_handle();
        if tokio::time::timeout(OUTPUT_DRAIN, task).await.is_err() {
            // A process outside the group still holds the pipe: stop reading it.
            abort.abort();
            tracing::debug!(
                "runner command output still open after its group ended; stopped reading it"
            );
        }
    }
    let exited = describe(status);
    tracing::info!(target: "shipgate::progress::end", pid, duration_ms = duration.as_millis() as u64, exit = %exited, "runner command ended");

    let fence = if postgres {
        fence(backend, &app_name, settings.fence_wait).await
    } else {
        Ok(Vec::new())
    };
    let mut problems = Vec::new();
    let ok = matches!(ended, Ended::Exited(_)) && status.is_some_and(|s| s.success());
    match &fence {
        Ok(terminated) => {
            let in_transaction: Vec<String> = terminated
                .iter()
                .filter(|s| s.in_transaction)
                .map(|s| s.pid.to_string())
                .collect();
            if ok && !in_transaction.is_empty() {
                problems.push(format!(
                    "the command exited 0 but left {} database session(s) in a transaction (pid {}); the fence terminated them, so their uncommitted work rolled back",
                    in_transaction.len(),
                    in_transaction.join(", ")
                ));
            }
        }
        Err(e) => problems.push(e.clone()),
    }
    if ok && problems.is_empty() {
        return Ok(Done {
            run_id,
            program,
            duration,
        });
    }
    let what = match &ended {
        Ended::Exited(_) if ok => format!("runner command {shown} exited 0"),
        Ended::Exited(_) => format!("runner command {shown} failed: {exited}"),
        Ended::Signal(_) => {
            format!("forwarded to the process group of runner command {shown}, which {exited}")
        }
        Ended::TimedOut => format!(
            "runner command {shown} did not finish within runner_timeout ({}): its process group was sent SIGTERM, then SIGKILL after {}; it {exited}",
            migrate::human(settings.timeout),
            migrate::human(settings.grace)
        ),
        Ended::LockLost(e) => format!(
            "the migration lock was lost while runner command {shown} ran ({e}): its process group was ended; it {exited}"
        ),
        Ended::WaitFailed(e) => format!(
            "waiting for runner command {shown} failed ({e}): its process group was ended; it {exited}"
        ),
    };
    let mut text = what;
    for p in problems {
        text.push_str("; ");
        text.push_str(&p);
    }
    if postgres {
        match backend.invalid_indexes().await {
            Ok(now) => {
                let left: Vec<String> = now
                    .into_iter()
                    .filter(|i| !invalid_before.contains(i))
                    .collect();
                for index in &left {
                    tracing::error!(index = %index, "the failed run left an INVALID index behind");
                }
                if !left.is_empty() {
                    text.push_str(&format!(
                        "; it left {} INVALID index(es) behind: {} (an interrupted CREATE INDEX CONCURRENTLY): drop them with DROP INDEX CONCURRENTLY before deploying again",
                        left.len(),
                        left.join(", ")
                    ));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look for INVALID indexes the run left")
            }
        }
    }
    match ended {
        Ended::Signal(signal) => Err(Error::Interrupted {
            signal,
            detail: text,
        }),
        _ => Err(Failed(text).into()),
    }
}

/// What a child run by [`capture`] printed and how it ended.
#[derive(Debug)]
pub struct Captured {
    /// Its standard output, whole (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8), the database URL's secrets masked.
    pub stderr: String,
    /// Whether it exited 0.
    pub success: bool,
    /// How it ended, in words (`exited with code 1`).
    pub exited: String,
}

/// The most of a captured child's output kept per stream; the rest is read and dropped.
const MAX_CAPTURE: usize = 64 << 20;

/// Runs `spawn` outside any lock and with no session of shipgate's (a child that only renders,
/// such as Alembic's offline mode) and collects what it prints: in its own process group, with
/// `DATABASE_URL` = `url` and `PYTHONUNBUFFERED`, bounded by `runner_timeout`, a forwarded
/// SIGINT/SIGTERM ending its group as [`supervise`] does. A non-zero exit is `Ok` with
/// `success: false` (the caller reads why); a timeout, an output past the bound or a child
/// that cannot start is [`Failed`], a signal is [`Error::Interrupted`].
pub(crate) async fn capture(
    spawn: &Spawn<'_>,
    url: &DatabaseUrl,
    config: &Config,
    interrupt: &mut Interrupt,
) -> Result<Captured, Error> {
    let settings = &config.runner;
    let shown = format!("`{}`", url.scrub(&spawn.argv.join(" ")));
    let mut cmd = Command::new(spawn.path);
    cmd.args(&spawn.argv[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env("DATABASE_URL", url.expose())
        .env("PYTHONUNBUFFERED", "1")
        .envs(spawn.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = spawn.dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Failed(format!("{shown}: cannot start it: {e}")))?;
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw);
    tracing::debug!(command = %shown, runner = spawn.runner, "started");
    let readers = [
        child.stdout.take().map(|o| tokio::spawn(read_all(o))),
        child.stderr.take().map(|o| tokio::spawn(read_all(o))),
    ];
    let ended = watch(&mut child, None, settings.timeout, interrupt).await;
    let status = match &ended {
        Ended::Exited(status) => Some(*status),
        Ended::Signal(Signal::Interrupt) => stop(&mut child, group, Sig::INT, settings.grace).await,
        _ => stop(&mut child, group, Sig::TERM, settings.grace).await,
    };
    end_group(group, settings.grace).await;
    let mut output = Vec::new();
    for reader in readers {
        let Some(task) = reader else {
            output.push((Vec::new(), false));
            continue;
        };
        let abort = task.abort_handle();
        match tokio::time::timeout(OUTPUT_DRAIN, task).await {
            Ok(Ok(read)) => output.push(read),
            _ => {
                abort.abort();
                output.push((Vec::new(), false));
            }
        }
    }
    let exited = describe(status);
    let [(stdout, cut), (stderr, _)] = <[_; 2]>::try_from(output).expect("two streams were read");
    match ended {
        Ended::Exited(_) if cut => Err(Failed(format!(
            "{shown} printed more than {} MiB; shipgate reads no more",
            MAX_CAPTURE >> 20
        ))
        .into()),
        Ended::Exited(s) => Ok(Captured {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: url.scrub(&String::from_utf8_lossy(&stderr)),
            success: s.success(),
            exited,
        }),
        Ended::Signal(signal) => Err(Error::Interrupted {
            signal,
            detail: format!("forwarded to the process group of {shown}, which {exited}"),
        }),
        Ended::TimedOut => Err(Failed(format!(
            "{shown} did not finish within runner_timeout ({}): its process group was ended; it {exited}",
            migrate::human(settings.timeout)
        ))
        .into()),
        Ended::LockLost(_) | Ended::WaitFailed(_) => Err(Failed(format!(
            "waiting for {shown} failed: its process group was ended; it {exited}"
        ))
        .into()),
    }
}

/// Reads a stream to its end, keeping up to [`MAX_CAPTURE`] bytes; `true` when it cut.
async fn read_all(mut reader: impl AsyncRead + Unpin) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cut = false;
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) if kept.len() + n <= MAX_CAPTURE => kept.extend_from_slice(&buf[..n]),
            Ok(_) => cut = true,
        }
    }
}

/// What a supervised child's heartbeat says: which command, since when, and (PostgreSQL)
/// which of its sessions to look at.
struct Beats<'a> {
    /// The command as messages name it.
    shown: &'a str,
    /// The `application_name` of its sessions.
    app: &'a str,
    postgres: bool,
    started: Instant,
}

impl Beats<'_> {
    /// One heartbeat (target `shipgate::progress::beat`, which the terminal display shows in
    /// place): the elapsed time and, on PostgreSQL, what a session of the child waits for,
    /// read on the run's own connection, which is idle while the child runs.
    async fn beat(&self, backend: &mut Backend) {
        let waiting = if self.postgres {
            match child_wait(backend, self.app).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(error = %e, "heartbeat: could not read what the runner command's sessions wait for");
                    None
                }
            }
        } else {
            None
        };
        let waiting_for = waiting.as_ref().map(|(_, w)| w.to_string());
        let holder = waiting.as_ref().and_then(|(_, w)| w.holder.as_ref());
        let suffix = waiting
            .as_ref()
            .map(|(pid, w)| format!(": its session pid {pid} is waiting for {w}"))
            .unwrap_or_default();
        let elapsed = self.started.elapsed();
        tracing::info!(
            target: "shipgate::progress::beat",
            elapsed_ms = elapsed.as_millis() as u64,
            waiting_for,
            waiting_pid = waiting.as_ref().map(|(pid, _)| *pid),
            blocking_pid = holder.map(|h| h.pid),
            blocking_application = holder.and_then(|h| h.application.as_deref()),
            blocking_state = holder.and_then(|h| h.state.as_deref()),
            "still running {} ({}){suffix}",
            self.shown,
            migrate::human(elapsed)
        );
    }
}

/// The first of the child's sessions (`application_name` = `app`) that waits for a lock, and
/// what it waits for (`Backend::wait_of`, as a migration's heartbeat reads it).
async fn child_wait(
    backend: &mut Backend,
    app: &str,
) -> Result<Option<(i64, migrate::heartbeat::Wait)>, DbError> {
    // `app` is `shipgate-<digits>`: nothing in it needs quoting.
    let sql = format!(
        "SELECT CAST(pid AS TEXT) FROM pg_catalog.pg_stat_activity \
         WHERE application_name = '{app}' AND datname = current_database() \
         AND wait_event_type = 'Lock' ORDER BY pid LIMIT 1"
    );
    let rows = backend.rows(&sql).await?;
    let Some(pid) = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|p| p.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    Ok(backend.wait_of(pid).await?.map(|w| (pid, w)))
}

/// Waits for the child, a signal, the timeout or (with a backend) a lost lock, checking the
/// lock and beating (see [`Beats`]) every few seconds.
async fn watch(
    child: &mut Child,
    mut backend: Option<(&mut Backend, &Beats<'_>)>,
    timeout: Duration,
    interrupt: &mut Interrupt,
) -> Ended {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut next_check = tokio::time::Instant::now() + LOCK_CHECK_EVERY;
    loop {
        tokio::select! {
            status = child.wait() => return match status {
                Ok(s) => Ended::Exited(s),
                Err(e) => Ended::WaitFailed(e),
            },
            signal = interrupt.wait() => return Ended::Signal(signal),
            () = tokio::time::sleep_until(deadline) => return Ended::TimedOut,
            () = tokio::time::sleep_until(next_check), if backend.is_some() => {
                // Not raced with the child: a statement cut off mid-flight would leave the
                // connection's protocol state unknown. It is bounded by io_timeout.
                if let Some((backend, beats)) = backend.as_mut() {
                    if let Err(e) = backend.verify_lock().await {
                        return Ended::LockLost(e);
                    }
                    beats.beat(backend).await;
                }
                next_check = tokio::time::Instant::now() + LOCK_CHECK_EVERY;
            }
        }
    }
}

/// Sends `first` to the child's process group, waits `grace` for the child, then SIGKILLs the
/// group; returns the child's status once reaped.
async fn stop(
    child: &mut Child,
    group: Option<Pid>,
    first: Sig,
    grace: Duration,
) -> Option<ExitStatus> {
    signal_group(group, first);
    if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
        return Some(status);
    }
    tracing::warn!(
        grace_ms = grace.as_millis() as u64,
        "runner command still running after the grace period; sending SIGKILL to its process group"
    );
    signal_group(group, Sig::KILL);
    match tokio::time::timeout(KILL_BOUND, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            tracing::error!("runner command not reaped after SIGKILL");
            None
        }
    }
}

/// Ends what is left of the child's process group after the child itself was reaped (background
/// processes it started): SIGTERM, `grace`, SIGKILL. With no grace (the group was already sent
/// SIGTERM), SIGKILL at once.
async fn end_group(group: Option<Pid>, grace: Duration) {
    let Some(group) = group else { return };
    // Just-killed members may still be on their way out.
    if group_gone(group, POLL).await {
        return;
    }
    tracing::warn!(
        group = group.as_raw_pid(),
        "the runner command left processes running in its process group; ending them"
    );
    if !grace.is_zero() {
        signal_group(Some(group), Sig::TERM);
        if group_gone(group, grace).await {
            return;
        }
    }
    signal_group(Some(group), Sig::KILL);
    if !group_gone(group, KILL_BOUND).await {
        tracing::error!(
            group = group.as_raw_pid(),
            "processes of the runner command's group survived SIGKILL (zombies without a reaper?)"
        );
    }
}

/// Whether the group is empty within `bound`.
async fn group_gone(group: Pid, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if test_kill_process_group(group).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn signal_group(group: Option<Pid>, signal: Sig) {
    if let Some(group) = group {
        // ESRCH: the group is already gone, which is what was wanted.
        let _ = kill_process_group(group, signal);
    }
}

/// "exited with code 3", "was killed by signal 9 (SIGKILL)", "was not reaped".
fn describe(status: Option<ExitStatus>) -> String {
    match status {
        None => "was not reaped".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(9)) => "was killed by signal 9 (SIGKILL)".into(),
            (None, Some(15)) => "was killed by signal 15 (SIGTERM)".into(),
            (None, Some(2)) => "was killed by signal 2 (SIGINT)".into(),
            (None, Some(n)) => format!("was killed by signal {n}"),
            (None, None) => format!("ended ({s})"),
        },
    }
}

/// Logs each line of the child's `stream` as it comes, its secrets masked.
async fn stream(
    reader: impl AsyncRead + Unpin,
    stream: &'static str,
    runner: &'static str,
    url: DatabaseUrl,
) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line_capped(&mut reader, &mut line, MAX_LINE).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(stream, error = %e, "reading the runner command's output failed");
                return;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        tracing::info!(stream, runner, "{}", url.scrub(text));
    }
}

/// Reads up to and including the next newline, or `cap` bytes, whichever comes first; 0 at EOF.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(total);
        }
        let room = cap.saturating_sub(out.len()).max(1);
        let window = &buf[..buf.len().min(room)];
        let (n, done) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (window.len(), window.len() == room),
        };
        out.extend_from_slice(&buf[..n]);
        reader.consume(n);
        total += n;
        if done {
            return Ok(total);
        }
    }
}

/// `PGOPTIONS` for the child's libpq sessions: shipgate's lock timeout, and (14+) the server
/// checking that the client is still there, then whatever `PGOPTIONS` shipgate was given.
async fn pg_options(backend: &mut Backend, config: &Config) -> String {
    let mut options = format!("-c lock_timeout={}", config.engine.lock_timeout.as_millis());
    let version = backend
        .rows("SELECT current_setting('server_version_num')")
        .await
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.into_iter().next().flatten())
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    // Older servers refuse a connection that names a setting they do not have.
    if version >= 140_000 {
        options.push_str(&format!(
            " -c client_connection_check_interval={CONNECTION_CHECK_MS}"
        ));
    }
    if let Some(inherited) = &config.runner.inherited_pgoptions {
        options.push(' ');
        options.push_str(inherited);
    }
    options
}

/// A server session of the child's, as the fence saw it.
#[derive(Debug, Clone)]
struct Session {
    pid: i64,
    state: String,
    in_transaction: bool,
}

/// The child's sessions in this database (`application_name` = `app`), shipgate's own excluded.
async fn sessions(backend: &mut Backend, app: &str) -> Result<Vec<Session>, DbError> {
    // `app` is `shipgate-<digits>`: nothing in it needs quoting.
    let sql = format!(
        "SELECT CAST(pid AS TEXT), COALESCE(state, ''), CASE WHEN xact_start IS NULL THEN 'f' ELSE 't' END \
         FROM pg_catalog.pg_stat_activity \
         WHERE application_name = '{app}' AND datname = current_database() AND pid <> pg_catalog.pg_backend_pid()"
    );
    Ok(backend
        .rows(&sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            let pid = r.first().cloned().flatten()?.parse().ok()?;
            Some(Session {
                pid,
                state: r.get(1).cloned().flatten().unwrap_or_default(),
                in_transaction: r.get(2).cloned().flatten().as_deref() == Some("t"),
            })
        })
        .collect())
}

/// Waits up to `wait` for the child's sessions to end, then terminates the rest and waits for
/// them to go. Returns the sessions it terminated; an error when it could not make sure none
/// is left.
async fn fence(backend: &mut Backend, app: &str, wait: Duration) -> Result<Vec<Session>, String> {
    let unseen = |e: DbError| {
        format!("the fence could not read pg_stat_activity ({e}): sessions of the command may still be open")
    };
    let deadline = Instant::now() + wait;
    let stragglers = loop {
        let open = sessions(backend, app).await.map_err(unseen)?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        if Instant::now() >= deadline {
            break open;
        }
        tokio::time::sleep(POLL).await;
    };
    for s in &stragglers {
        tracing::warn!(
            pid = s.pid,
            state = %s.state,
            in_transaction = s.in_transaction,
            application_name = app,
            "fence: terminating a database session the runner command left open"
        );
        if let Err(e) = backend
            .rows(&format!(
                "SELECT pg_catalog.pg_terminate_backend({})",
                s.pid
            ))
            .await
        {
            tracing::error!(pid = s.pid, error = %e, "fence: could not terminate the session");
        }
    }
    let deadline = Instant::now() + TERMINATE_BOUND;
    loop {
        let open = sessions(backend, app).await.map_err(unseen)?;
        if open.is_empty() {
            return Ok(stragglers);
        }
        if Instant::now() >= deadline {
            let pids: Vec<String> = open.iter().map(|s| s.pid.to_string()).collect();
            return Err(format!(
                "the fence could not end the command's session(s) (pid {}; shipgate's role may lack the right to pg_terminate_backend them)",
                pids.join(", ")
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `program` names a file this process may execute: a path as given, or a name found
/// in `PATH` the way `execvp` looks it up.
pub fn executable(program: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return Err("the command is empty".into());
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if runnable(&path) {
            Ok(path)
        } else if path.exists() {
            Err("not an executable file".into())
        } else {
            Err("no such file".into())
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
        .ok_or_else(|| "not found in PATH".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_lines_at_newlines_and_at_the_cap() {
        type Case<'a> = (&'a [u8], usize, &'a [&'a [u8]]);
        let cases: &[Case] = &[
            (b"a\nbc\n", 10, &[b"a\n", b"bc\n"]),
            (b"abc", 10, &[b"abc"]),
            (b"abcdef\n", 4, &[b"abcd", b"ef\n"]),
            (b"", 4, &[]),
            (b"\n\n", 4, &[b"\n", b"\n"]),
        ];
        for (input, cap, want) in cases {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime builds");
            let got = runtime.block_on(async {
                let mut reader = BufReader::with_capacity(3, *input);
                let mut lines = Vec::new();
                loop {
                    let mut line = Vec::new();
                    if read_line_capped(&mut reader, &mut line, *cap)
                        .await
                        .expect("reads")
                        == 0
                    {
                        break;
                    }
                    lines.push(line);
                }
                lines
            });
            let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
            assert_eq!(got, want, "{input:?} cap {cap}");
        }
    }

    #[test]
    fn describes_how_the_child_ended() {
        assert_eq!(
            describe(Some(ExitStatus::from_raw(3 << 8))),
            "exited with code 3"
        );
        assert_eq!(
            describe(Some(ExitStatus::from_raw(9))),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(describe(None), "was not reaped");
    }
}
