//! One function per command: wires config, files and the engine, prints results, and maps
//! every outcome to an exit code in one place ([`exit_for`]).
//!
//! Command output (summaries, `--json` documents, tables) goes to stdout; logs go to stderr
//! through `telemetry`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};
use serde_json::json;

use crate::cli::{self, Cli, Command, Format};

use crate::config::{self, Config, DatabaseUrl, Engine};
use crate::gitref;
use crate::lint::{self, Catalog, Finding, LintOptions, Severity};
use crate::migrate::apply::{self, DownRange};
use crate::migrate::backend::Backend;
use crate::migrate::layout::{self, Choice, Layout};
use crate::migrate::plan::{Plan, Policy};
use crate::migrate::repair::{self, Action};
use crate::migrate::source::{self, MigrationSet, SourceError};
use crate::migrate::{self, Interrupt, Signal};
use crate::telemetry;
use crate::version::Version;

/// The documented exit codes (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Applied, or nothing to do.
    Success = 0,
    /// A migration failed.
    MigrationFailed = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// Database unreachable after the wait.
    Unreachable = 3,
    /// Lock not acquired in time.
    LockTimeout = 4,
    /// Validation failed.
    Invalid = 5,
    /// Pending migrations (`status --exit-code`).
    Pending = 10,
    /// SIGINT.
    Interrupted = 130,
    /// `exec` could not start its command.
    CannotExec = 127,
    /// SIGTERM.
    Terminated = 143,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A failed command: the error to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Documented exit code.
    pub exit: Exit,
    /// The error chain, printed with `{:#}`.
    pub error: anyhow::Error,
    /// Print as one JSON log line (logs are JSON) rather than text.
    pub json: bool,
}

impl Failure {
    pub(crate) fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit,
            error: error.into(),
            json: false,
        }
    }

    /// Prints the error on stderr in the log format: `shipgate: error: …` or one JSON object.
    pub fn report(&self) {
        if self.json {
            let line = json!({
                "timestamp": migrate::now_rfc3339(),
                "level": "error",
                "message": format!("{:#}", self.error),
                "exit_code": self.exit as u8,
                "target": "shipgate",
            });
            eprintln!("{line}");
        } else {
            eprintln!("shipgate: error: {:#}", self.error);
        }
    }
}

/// The exit code of every engine error, in one place.
pub fn exit_for(e: &migrate::Error) -> Exit {
    use migrate::Error as E;
    match e {
        E::Source(_) | E::Blocked(_) | E::Gate(_) | E::Contract(_) => Exit::Invalid,
        E::Refused(_) => Exit::Invalid,
        E::Config { .. } => Exit::Usage,
        E::Unreachable { .. } => Exit::Unreachable,
        E::LockTimeout { .. } => Exit::LockTimeout,
        E::Failed { .. }
        | E::RepeatableFailed { .. }
        | E::RevertFailed { .. }
        | E::LockLost { .. }
        | E::Database { .. } => Exit::MigrationFailed,
        E::Interrupted(Signal::Interrupt, _) => Exit::Interrupted,
        E::Interrupted(Signal::Terminate, _) => Exit::Terminated,
    }
}

/// The exit code of every release error: the engine's as [`exit_for`] maps them; a runner
/// that is not available or a request it cannot meet is a configuration error (2); a command
/// that failed or timed out is a failed migration (1); a signal is 130/143.
pub fn exit_for_release(e: &crate::runner::Error) -> Exit {
    use crate::runner::Error as E;
    match e {
        E::Engine(e) => exit_for(e),
        E::Refused(_) => Exit::Usage,
        E::Invalid(_) => Exit::Invalid,
        E::Command(_) => Exit::MigrationFailed,
        E::Interrupted {
            signal: Signal::Interrupt,
            ..
        } => Exit::Interrupted,
        E::Interrupted {
            signal: Signal::Terminate,
            ..
        } => Exit::Terminated,
    }
}

impl From<migrate::Error> for Failure {
    fn from(e: migrate::Error) -> Failure {
        Failure::new(exit_for(&e), e)
    }
}

/// Parses the process's arguments and runs the command.
pub fn main() -> Result<Exit, Failure> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Failure::new(Exit::Usage, e))?;
    let json_default = !std::io::stdout().is_terminal();
    let config = config::load(&cli.global, &matches).map_err(|e| Failure {
        json: cli
            .global
            .log_format
            .as_deref()
            .map_or(json_default, |f| f.trim() == "json"),
        ..Failure::new(Exit::Usage, e)
    })?;
    let json = config
        .log_format
        .map_or(json_default, |f| f == config::LogFormat::Json);
    telemetry::init(
        config.log_format,
        cli.global.verbose as i8 - cli.global.quiet as i8,
    );
    // The HTTP service gets both cores; one-shot commands start faster on one thread.
    let serving = matches!(
        cli.command,
        Command::Serve(_) | Command::Release(cli::Release { serve: true, .. })
    );
    let mut builder = if serving {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(|e| Failure::new(Exit::MigrationFailed, e))?;
    runtime
        .block_on(run(cli.command, config))
        .map_err(|f| Failure { json, ..f })
}

/// Runs one command with a validated config.
pub async fn run(command: Command, config: Config) -> Result<Exit, Failure> {
    let (tx, interrupt) = Interrupt::channel();
    let signals = tokio::spawn(forward_signals(tx));
    let result = dispatch(command, &config, interrupt).await;
    signals.abort();
    result
}

async fn forward_signals(tx: tokio::sync::watch::Sender<Option<Signal>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("could not install signal handlers; SIGINT/SIGTERM end the process at once");
        return;
    };
    let s = tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    };
    tracing::warn!(signal = %s, "signal received: stopping");
    let _ = tx.send(Some(s));
}

async fn dispatch(
    command: Command,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let uses_database = match &command {
        Command::New(_) => false,
        Command::Check(args) => args.database.is_some(),
        _ => true,
    };
    if config.database_is_default && uses_database {
        if let Some(platform) = config.platform {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "no database URL: DATABASE_URL is not set (or is empty), and this is a {} deploy ({} is set). \
                     The embedded default ({}) is for a developer's machine: a deploy must never migrate a throwaway file. \
                     Set DATABASE_URL (or --database-url, or database_url in the config file); to use SQLite here on purpose, set it to a sqlite:// URL",
                    platform.name,
                    platform.variable,
                    config::DEFAULT_DATABASE_URL,
                ),
            ));
        }
        tracing::info!(database = %config.database, "no DATABASE_URL set; using the embedded default");
    }
    let read_only = match &command {
        Command::Status(_) | Command::History(_) | Command::Check(_) => true,
        Command::Adopt(args) => args.dry_run,
        Command::Up(args) => args.dry_run,
        Command::Down(args) => args.dry_run,
        Command::Release(args) => args.dry_run,
        _ => false,
    };
    let read_only_config;
    let config = if read_only {
        let mut c = config.clone();
        c.engine.read_only = true;
        read_only_config = c;
        &read_only_config
    } else {
        config
    };
    match command {
        Command::New(args) => new(&args, config),
        Command::Check(args) => check(&args, config, interrupt).await,
        Command::Up(args) => up(&args, config, interrupt).await,
        Command::Down(args) => down(&args, config, interrupt).await,
        Command::Status(args) => status(&args, config, interrupt).await,
        Command::History(args) => history(&args, config, interrupt).await,
        Command::Baseline(args) => baseline(&args, config, interrupt).await,
        Command::Adopt(args) => adopt(&args, config, interrupt).await,
        Command::Repair(args) => repair(&args, config, interrupt).await,
        Command::Release(args) => crate::release::command(&args, config, interrupt).await,
        Command::Serve(args) => crate::release::serve_command(&args, config, interrupt).await,
        Command::Exec(args) => crate::release::exec_command(&args, config, interrupt).await,
    }
}

fn load_set(config: &Config) -> Result<MigrationSet, Failure> {
    source::load(&config.migrations, &config.layout, config.database_engine())
        .map_err(|e| migrate::Error::Source(e).into())
}

/// The migration files and a connection to the configured database, read and made at once.
async fn load_and_connect(
    config: &Config,
    interrupt: &mut Interrupt,
) -> Result<(MigrationSet, Backend, apply::PlanHistory), Failure> {
    Ok(apply::load_and_connect(
        &config.migrations,
        &config.layout,
        &config.database,
        &config.engine,
        &config.deploy,
        interrupt,
    )
    .await?)
}

async fn connect(
    config: &Config,
    url: &DatabaseUrl,
    interrupt: &mut Interrupt,
) -> Result<Backend, Failure> {
    Ok(apply::connect(url, &config.engine, &config.deploy, interrupt).await?)
}

/// Finishes a run that used `backend`: on interruption end the server session so the lock and
/// the transaction go with it, otherwise close cleanly.
pub(crate) async fn finish<T>(
    backend: Backend,
    result: Result<T, migrate::Error>,
) -> Result<T, Failure> {
    match result {
        Err(e @ migrate::Error::Interrupted(..)) => {
            backend.abort(Duration::from_secs(5)).await;
            Err(e.into())
        }
        other => {
            backend.close().await;
            Ok(other?)
        }
    }
}

pub(crate) fn out(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.as_ref());
}

fn json_out(value: &serde_json::Value) {
    out(serde_json::to_string_pretty(value).unwrap_or_default());
}

fn version_text(v: Option<&Version>) -> String {
    v.map_or_else(|| "none".into(), Version::to_string)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

async fn up(args: &cli::Up, config: &Config, mut interrupt: Interrupt) -> Result<Exit, Failure> {
    let started = Instant::now();
    let policy = Policy {
        target: args.to.clone(),
        ..config.policy
    };
    let (set, mut backend, history) = load_and_connect(config, &mut interrupt).await?;
    if let Err(e) = apply::check_target(&set, &policy) {
        return finish(backend, Err(e)).await;
    }
    if args.dry_run {
        // A dry run prints and lints what would run: every script read.
        let versions: Vec<Version> = set.migrations.iter().map(|m| m.version.clone()).collect();
        let rules = match backend.split_rules().await {
            Ok(rules) => rules,
            Err(e) => {
                let e = migrate::Error::db("reading the session's sql_mode")(e);
                return finish(backend, Err(e)).await;
            }
        };
        let names: Vec<String> = set.repeatables.iter().map(|r| r.name.clone()).collect();
        let set = match set.read(versions, names.iter().map(String::as_str), rules) {
            Ok(set) => set,
            Err(e) => return finish(backend, Err(migrate::Error::Source(e))).await,
        };
        let result = dry_run_plan(&mut backend, &set, history, &policy, config).await;
        let (plan, refusal) = finish(backend, result).await?;
        print_dry_run(&plan, &set, &policy);
        if let Some(e) = refusal {
            out(format!("release gate: {e}"));
            return Ok(Exit::Invalid);
        }
        return Ok(Exit::Success);
    }
    let result = apply::up(
        &mut backend,
        &set,
        history,
        &policy,
        &config.engine,
        &config.deploy,
        &mut interrupt,
        &apply::UpOptions {
            gate: Some(std::sync::Arc::new(crate::gate::ReleaseGate(
                config.lint.clone(),
            ))),
            auto_adopt: config.adopt == crate::config::AdoptMode::Auto,
            ..apply::UpOptions::default()
        },
    )
    .await;
    let report = finish(backend, result).await?;
    if let Some(adopted) = &report.adopted {
        out(format!("adopt = auto: {adopted}"));
    }
    if report.applied.is_empty() && report.repeatables.is_empty() {
        out(format!(
            "nothing to do: at version {} (head {}), {} applied",
            version_text(report.plan.current.as_ref()),
            version_text(report.plan.head.as_ref()),
            report.plan.applied.len()
        ));
    } else {
        for a in &report.applied {
            out(format!(
                "applied {} {} ({} ms)",
                a.version, a.name, a.duration_ms
            ));
        }
        for r in &report.repeatables {
            out(format!("ran repeatable {} ({} ms)", r.name, r.duration_ms));
        }
        let reran = match report.repeatables.len() {
            0 => String::new(),
            n => format!(" and ran {n} repeatable migration(s)"),
        };
        out(format!(
            "applied {} migration(s){reran} in {}; now at version {}",
            report.applied.len(),
            ms(started.elapsed()),
            version_text(report.plan.current.as_ref())
        ));
    }
    if !report.plan.beyond_target.is_empty() {
        out(format!(
            "{} migration(s) beyond --to left pending",
            report.plan.beyond_target.len()
        ));
    }
    Ok(Exit::Success)
}

/// The plan of a dry run from `history` (as `load_and_connect` read it), and the refusal the
/// release gate would answer with, if any.
pub(crate) async fn dry_run_plan(
    backend: &mut Backend,
    set: &MigrationSet,
    history: apply::PlanHistory,
    policy: &Policy,
    config: &Config,
) -> Result<(Plan, Option<migrate::Error>), migrate::Error> {
    let plan = migrate::plan::compute(&history.unwrap_or_default(), set, policy);
    if !plan.has_pending() {
        return Ok((plan, None));
    }
    match crate::gate::check(backend, set, &plan, &config.lint).await {
        Ok(()) => Ok((plan, None)),
        Err(e @ (migrate::Error::Gate(_) | migrate::Error::Contract(_))) => Ok((plan, Some(e))),
        Err(e) => Err(e),
    }
}

pub(crate) fn print_dry_run(plan: &Plan, set: &MigrationSet, policy: &Policy) {
    let blockers = plan.blockers(policy);
    for b in &blockers {
        out(format!("would refuse: {b}"));
    }
    if !plan.has_pending() {
        out(format!(
            "dry run: nothing to do: at version {}",
            version_text(plan.current.as_ref())
        ));
        return;
    }
    let repeatables = match plan.pending_repeatables.len() {
        0 => String::new(),
        n => format!(" and run {n} repeatable migration(s)"),
    };
    out(format!(
        "dry run: would apply {} migration(s){repeatables}; nothing was changed",
        plan.pending.len()
    ));
    let mode = |script: &source::Script| {
        if script.directives.no_transaction {
            "no transaction, statement by statement"
        } else {
            "one transaction"
        }
    };
    for e in &plan.pending {
        let Some(m) = set.get(&e.version) else {
            continue;
        };
        out(format!(
            "\n-- {} {} ({}; {})",
            m.version,
            m.name,
            m.up.path.display(),
            mode(&m.up)
        ));
        out(m.up.sql.trim_end());
    }
    for e in &plan.pending_repeatables {
        let Some(r) = set.repeatable(&e.name) else {
            continue;
        };
        let why = if e.recorded_checksum.is_some() {
            "changed since it last ran"
        } else {
            "never ran"
        };
        out(format!(
            "\n-- repeatable {} ({}; {why}; {})",
            r.name,
            r.script.path.display(),
            mode(&r.script)
        ));
        out(r.script.sql.trim_end());
    }
}

fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Whether the operator agreed to revert `list`: `--yes`, or a yes on a terminal. Without a
/// terminal and without `--yes` it is a usage error, never a silent yes.
fn revert_confirmed(yes: bool, prompt: &str, list: &[String]) -> Result<bool, Failure> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "refusing to revert {} without --yes: stdin is not a terminal",
                list.join(", ")
            ),
        ));
    }
    Ok(confirm(prompt))
}

/// `down` for an Alembic project: `alembic downgrade <rev>` under the lock, confirmed first,
/// with a `down` run row and an audit row (`runner::alembic::downgrade`).
async fn alembic_down(
    args: &cli::Down,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    use crate::runner::alembic;
    let fail = |e: crate::runner::Error| Failure::new(exit_for_release(&e), e);
    let Some(target) = args.to.as_deref() else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "down with runner alembic needs --to REVISION (a revision id, or base); --steps is for shipgate's own files"
            ),
        ));
    };
    let default = ["alembic".to_owned()];
    let argv = config.runner.command.as_deref().unwrap_or(&default);
    let prepared = alembic::prepare(config, argv).map_err(fail)?;
    let mut backend = crate::runner::command::connect(config, &mut interrupt)
        .await
        .map_err(fail)?;
    let rows = alembic::read_rows(&mut backend, config).await;
    backend.close().await;
    let rows = rows.map_err(fail)?;
    let (target, steps) = alembic::to_revert(&prepared.project, &rows, target).map_err(fail)?;
    if steps.is_empty() {
        out(format!("nothing to revert: the database is at {target}"));
        return Ok(Exit::Success);
    }
    let list: Vec<String> = steps
        .iter()
        .map(|s| format!("{} ({})", s.revision, s.message))
        .collect();
    if args.dry_run {
        out(format!(
            "dry run: alembic downgrade {target} would revert {} revision(s), newest first: {}; nothing was changed",
            steps.len(),
            list.join(", ")
        ));
        return Ok(Exit::Success);
    }
    let prompt = format!(
        "alembic downgrade {target}: revert {} revision(s): {}?",
        list.len(),
        list.join(", ")
    );
    if !revert_confirmed(args.yes, &prompt, &list)? {
        out("nothing reverted");
        return Ok(Exit::Success);
    }
    let expected: Vec<String> = steps.iter().map(|s| s.revision.clone()).collect();
    let reverted = alembic::downgrade(
        &prepared,
        config,
        &target,
        &expected,
        args.reason.as_deref(),
        &mut interrupt,
    )
    .await
    .map_err(fail)?;
    out(format!(
        "reverted {} revision(s) with alembic downgrade {target}",
        reverted.len()
    ));
    Ok(Exit::Success)
}

async fn down(
    args: &cli::Down,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if config.runner.kind == config::RunnerKind::Alembic {
        return alembic_down(args, config, interrupt).await;
    }
    let range = match (&args.to, args.steps) {
        (Some(v), _) => DownRange::To(v.parse::<Version>().map_err(|why| {
            Failure::new(
                Exit::Usage,
                anyhow::anyhow!("invalid value '{v}' for '--to <VERSION>': {why}"),
            )
        })?),
        (None, Some(n)) => DownRange::Steps(n),
        (None, None) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("down needs --to VERSION or --steps N"),
            ))
        }
    };
    let set = load_set(config)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = apply::plan(&mut backend, &set, &Policy::default()).await;
    let history = match result {
        Ok((history, _)) => history,
        Err(e) => return finish(backend, Err(e)).await,
    };
    if let Some(r) = history
        .iter()
        .find(|r| r.state == migrate::plan::State::Running)
    {
        tracing::info!(
            migration_version = r.version.field(),
            "migration {} is recorded as running: another run may be applying it; the revert waits for the migration lock and decides under it",
            r.version
        );
    }
    let targets = match apply::select_down(&history, &set, &range, apply::Seen::Unlocked) {
        Ok(t) => t,
        Err(e) => return finish(backend, Err(e)).await,
    };
    if targets.is_empty() {
        backend.close().await;
        out("nothing to revert");
        return Ok(Exit::Success);
    }
    let list: Vec<String> = targets
        .iter()
        .map(|m| format!("{} {}", m.version, m.name))
        .collect();
    if args.dry_run {
        backend.close().await;
        out(format!(
            "dry run: would revert {} migration(s), newest first; nothing was changed",
            targets.len()
        ));
        for m in &targets {
            let Some(down) = &m.down else { continue };
            out(format!(
                "\n-- {} {} ({})",
                m.version,
                m.name,
                down.path.display()
            ));
            out(down.sql.trim_end());
        }
        return Ok(Exit::Success);
    }
    let prompt = format!("revert {} migration(s): {}?", list.len(), list.join(", "));
    match revert_confirmed(args.yes, &prompt, &list) {
        Ok(true) => {}
        Ok(false) => {
            backend.close().await;
            out("nothing reverted");
            return Ok(Exit::Success);
        }
        Err(e) => {
            backend.close().await;
            return Err(e);
        }
    }
    let expected: Vec<Version> = targets.iter().map(|m| m.version.clone()).collect();
    let result = apply::down(
        &mut backend,
        &set,
        range,
        &expected,
        args.reason.as_deref(),
        &config.engine,
        &config.deploy,
        &mut interrupt,
    )
    .await;
    let reverted = finish(backend, result).await?;
    for r in &reverted {
        out(format!(
            "reverted {} {} ({} ms)",
            r.version, r.name, r.duration_ms
        ));
    }
    out(format!("reverted {} migration(s)", reverted.len()));
    Ok(Exit::Success)
}

async fn status(
    args: &cli::Status,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if config.runner.kind == config::RunnerKind::Alembic {
        return alembic_status(args, config, interrupt).await;
    }
    let set = load_set(config)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let engine = backend.engine();
    let result = async {
        let (version, holder) = server_and_holder(&mut backend).await?;
        let (_, plan) = apply::plan(&mut backend, &set, &config.policy).await?;
        Ok::<_, migrate::Error>((version, plan, holder))
    }
    .await;
    let (server_version, plan, lock_holder) = finish(backend, result).await?;
    // A `running` row while the lock is held is a live run's migration in progress, not a
    // crash: it blocks nothing (the next run waits for the lock, then sees the outcome).
    let in_progress: Vec<_> = plan
        .dirty
        .iter()
        .filter(|d| lock_holder.is_some() && d.state == migrate::plan::State::Running)
        .collect();
    let blockers: Vec<_> = plan
        .blockers(&config.policy)
        .into_iter()
        .filter(|b| {
            !matches!(b, migrate::plan::Blocker::Dirty(d)
                if lock_holder.is_some() && d.state == migrate::plan::State::Running)
        })
        .collect();
    if args.json {
        json_out(&json!({
            "engine": engine,
            "server_version": server_version,
            "database": config.database.redacted(),
            "migrations_dir": config.migrations.display().to_string(),
            "layout": set.layout.key(),
            "current_version": plan.current,
            "head_version": plan.head,
            "applied": plan.applied,
            "pending": plan.pending,
            "pending_repeatables": plan.pending_repeatables,
            "modified": plan.modified,
            "missing": plan.missing,
            "out_of_order": plan.out_of_order,
            "dirty": plan.dirty,
            "lock_holder": lock_holder,
            "in_progress": in_progress,
            "problems": blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else {
        out(format!(
            "database      {} ({engine} {server_version})",
            config.database.redacted()
        ));
        out(format!(
            "migrations    {} ({} layout)",
            config.migrations.display(),
            set.layout.key()
        ));
        out(format!(
            "current       {}",
            version_text(plan.current.as_ref())
        ));
        out(format!(
            "head          {}",
            version_text(plan.head.as_ref())
        ));
        out(format!("applied       {}", plan.applied.len()));
        out(format!("pending       {}", plan.pending.len()));
        for e in &plan.pending {
            out(format!("  pending     {} {}", e.version, e.name));
        }
        if !plan.pending_repeatables.is_empty() {
            out(format!(
                "repeatables   {} to run again",
                plan.pending_repeatables.len()
            ));
        }
        for r in &plan.pending_repeatables {
            let why = if r.recorded_checksum.is_some() {
                "changed since it last ran"
            } else {
                "never ran"
            };
            out(format!("  run again   {} ({why})", r.name));
        }
        let problems = [
            ("modified", plan.modified.len()),
            ("missing", plan.missing.len()),
            ("out of order", plan.out_of_order.len()),
            ("dirty", plan.dirty.len()),
        ];
        for (label, n) in problems {
            if n > 0 {
                out(format!("{label:<14}{n}"));
            }
        }
        for e in &plan.missing {
            out(format!(
                "  missing     {} {} (applied, no file in this build)",
                e.version, e.name
            ));
        }
        for d in &in_progress {
            out(format!(
                "  in progress {} {} (being applied by the lock holder)",
                d.version, d.name
            ));
        }
        for b in &blockers {
            out(format!("problem: {b}"));
        }
    }
    if args.exit_code {
        if !blockers.is_empty() {
            return Ok(Exit::Invalid);
        }
        if plan.has_pending() {
            return Ok(Exit::Pending);
        }
    }
    Ok(Exit::Success)
}

/// The server's version and the migration lock's holder, for `status`.
async fn server_and_holder(
    backend: &mut Backend,
) -> Result<(String, Option<migrate::backend::LockHolder>), migrate::Error> {
    let version = backend
        .server_version()
        .await
        .map_err(migrate::Error::db("reading the server version"))?;
    let holder = backend
        .lock_holder()
        .await
        .map_err(migrate::Error::db("reading the lock holder"))?;
    Ok((version, holder))
}

/// `status` of an Alembic project: `alembic_version`'s rows against the revision graph.
async fn alembic_status(
    args: &cli::Status,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    use crate::runner::alembic::{load, read_rows, relative, revisions_text};
    let fail = |e: crate::runner::Error| Failure::new(exit_for_release(&e), e);
    let (project, sources) = load(config).map_err(fail)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let engine = backend.engine();
    let result = async {
        let (version, holder) = server_and_holder(&mut backend).await?;
        let rows = read_rows(&mut backend, config).await;
        Ok::<_, migrate::Error>((version, rows, holder))
    }
    .await;
    let (server_version, rows, lock_holder) = finish(backend, result).await?;
    let rows = rows.map_err(fail)?;
    let state = project.state(&rows);
    let mut problems = Vec::new();
    if !state.unknown.is_empty() {
        problems.push(format!(
            "the database is ahead of this build: {} not among its revisions",
            state.unknown.join(", ")
        ));
    }
    if !state.overlapping.is_empty() {
        problems.push(format!(
            "{} overlap with other rows of the version table (alembic upgrade refuses them)",
            state.overlapping.join(", ")
        ));
    }
    let pending: Vec<_> = state
        .pending
        .iter()
        .map(|s| json!({"revision": s.revision, "message": s.message, "file": relative(&s.file, &sources.cwd)}))
        .collect();
    if args.json {
        json_out(&json!({
            "engine": engine,
            "server_version": server_version,
            "database": config.database.redacted(),
            "runner": "alembic",
            "alembic_config": sources.ini.display().to_string(),
            "version_table": config.runner.alembic_version_table.1,
            "current_revisions": rows,
            "head_revisions": state.effective_heads,
            "applied": state.applied,
            "pending": pending,
            "unknown": state.unknown,
            "overlapping": state.overlapping,
            "lock_holder": lock_holder,
            "problems": problems,
        }));
    } else {
        out(format!(
            "database      {} ({engine} {server_version})",
            config.database.redacted()
        ));
        out(format!(
            "alembic       {} ({} revisions)",
            sources.ini.display(),
            project.graph.revisions().len()
        ));
        out(format!("current       {}", revisions_text(&rows)));
        out(format!(
            "head          {}",
            revisions_text(&state.effective_heads)
        ));
        out(format!("applied       {}", state.applied.len()));
        out(format!("pending       {}", state.pending.len()));
        for s in &state.pending {
            out(format!("  pending     {} {}", s.revision, s.message));
        }
        for r in &state.unknown {
            out(format!(
                "  unknown     {r} (in the version table, not in this build)"
            ));
        }
        for p in &problems {
            out(format!("problem: {p}"));
        }
    }
    if args.exit_code {
        if !problems.is_empty() {
            return Ok(Exit::Invalid);
        }
        if !state.pending.is_empty() {
            return Ok(Exit::Pending);
        }
    }
    Ok(Exit::Success)
}

async fn history(
    args: &cli::History,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = backend
        .read_history()
        .await
        .map_err(migrate::Error::db("reading migration history"));
    let rows = finish(backend, result).await?.unwrap_or_default();
    if args.json {
        json_out(&serde_json::to_value(&rows).unwrap_or_default());
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        out("no migrations applied");
    }
    for r in &rows {
        out(format!(
            "{:<16} {:<8} {:<25} {:>7} ms  {}  deploy {}  by {}  {}",
            r.version,
            r.state.as_str(),
            r.applied_at.as_deref().unwrap_or("-"),
            r.execution_ms,
            &r.checksum[..r.checksum.len().min(12)],
            r.deploy_id.as_deref().unwrap_or("-"),
            r.applied_by.as_deref().unwrap_or("-"),
            r.name
        ));
    }
    Ok(Exit::Success)
}

/// `name` in snake_case: lower-case ASCII letters and digits, runs of anything else as one `_`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        }
    }
    out.trim_end_matches('_').to_owned()
}

fn new(args: &cli::New, config: &Config) -> Result<Exit, Failure> {
    let name = snake_case(&args.name);
    if name.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("migration name {:?} has no letters or digits", args.name),
        ));
    }
    let dir = &config.migrations;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating migrations directory {}", dir.display()))
        .map_err(|e| Failure::new(Exit::Usage, e))?;
    // The directory's layout (detected, or the configured one); an empty or unreadable
    // directory gets the configured layout, or shipgate's own.
    let loaded = source::load_unread(dir, &config.layout);
    let layout = match (&loaded, config.layout.choice) {
        (Ok(set), _) => set.layout,
        (Err(_), Choice::Forced(layout)) => layout,
        (Err(_), Choice::Auto) => Layout::Native,
    };
    // A layout whose own file `new` rewrites (Atlas's sum) must validate first: rewriting the
    // sum over an edited file would bless the edit.
    if let Err(errors) = &loaded {
        let rewritten = layout::CHECKS
            .iter()
            .filter(|c| c.rewrite.is_some())
            .find(|c| c.layout == layout || dir.join(c.own).exists());
        if let Some(c) = rewritten {
            return Err(Failure::new(
                Exit::Invalid,
                anyhow::anyhow!(
                    "{errors}\n`shipgate new` rewrites {} after adding a migration, so the directory must validate first (a rewritten sum would accept every problem above): fix it, then run `shipgate new` again",
                    c.own
                ),
            ));
        }
    }
    let loaded = loaded.ok();
    let taken = existing_versions(dir);
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let stamp = now
        .format(&format)
        .map_err(|e| Failure::new(Exit::MigrationFailed, e))?;
    let mut version: i64 = stamp
        .parse()
        .map_err(|e| Failure::new(Exit::MigrationFailed, anyhow::Error::new(e)))?;
    // Two `new` in one second: take the next free number rather than fail.
    while taken.contains(&version) {
        version += 1;
    }
    let next = loaded
        .as_ref()
        .and_then(|set| set.head())
        .and_then(|v| v.to_string().split('.').next()?.parse::<u64>().ok())
        .map_or(1, |n| n + 1);
    let stamp = version.to_string();
    let files: Vec<_> = layout
        .template(&layout::New {
            stamp: &stamp,
            next,
            name: &name,
            down: !args.no_down,
            options: &config.layout,
        })
        .into_iter()
        .map(|(file, text)| (dir.join(file), text))
        .collect();
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))
                .map_err(|e| Failure::new(Exit::Usage, e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))
            .map_err(|e| Failure::new(Exit::Usage, e))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
            .map_err(|e| Failure::new(Exit::Usage, e))?;
        out(format!("created {}", path.display()));
    }
    if let Some(checks) = layout.checks().filter(|c| c.rewrite.is_some()) {
        let path =
            rewrite_own_file(dir, checks).map_err(|e| Failure::new(Exit::MigrationFailed, e))?;
        out(format!("updated {}", path.display()));
    }
    Ok(Exit::Success)
}

/// Rewrites a layout's own file for the files now in `dir` (Atlas's `atlas.sum`, as `atlas
/// migrate hash` would), through a temporary file renamed over it.
fn rewrite_own_file(dir: &Path, checks: &layout::Checks) -> anyhow::Result<PathBuf> {
    let rewrite = checks
        .rewrite
        .context("only layouts that rewrite their own file get here")?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Hidden entries are skipped as `source` skips them.
        if !name.starts_with('.') && (checks.reads)(&name) && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort_unstable();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((name, bytes));
    }
    let listed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let path = dir.join(checks.own);
    let temporary = dir.join(format!(".{}.shipgate-new", checks.own));
    std::fs::write(&temporary, rewrite(&listed))
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

fn existing_versions(dir: &Path) -> std::collections::HashSet<i64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // diesel's directories write the timestamp with dashes.
            let version: String = name
                .split_once('_')?
                .0
                .chars()
                .filter(|&c| c != '-')
                .collect();
            version.parse().ok()
        })
        .collect()
}

/// A file or history problem as a `check` finding (not a lint rule: no why/instead).
fn problem(rule: &str, file: Option<String>, line: Option<usize>, message: String) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        file,
        line,
        column: None,
        message,
        why: String::new(),
        instead: String::new(),
        acknowledged: None,
    }
}

fn source_finding(e: &SourceError) -> Finding {
    let (file, line) = match e {
        SourceError::UnreadableDir { dir, .. } => (Some(dir), None),
        SourceError::UnreadableFile { file, .. }
        | SourceError::BadFileName { file, .. }
        | SourceError::DuplicateVersion { file, .. }
        | SourceError::DuplicateRepeatable { file, .. }
        | SourceError::DownWithoutUp { file, .. }
        | SourceError::NotUtf8 { file, .. }
        | SourceError::NotRegularFile { file, .. }
        | SourceError::DanglingLink { file, .. }
        | SourceError::TooLarge { file, .. }
        | SourceError::Layout { file, .. }
        | SourceError::DownNotPaired { file, .. } => (Some(file), None),
        SourceError::ForeignMarker { file, line, .. }
        | SourceError::LayoutFile { file, line, .. }
        | SourceError::NulByte { file, line, .. }
        | SourceError::UnknownDirective { file, line, .. }
        | SourceError::BadDirective { file, line, .. }
        | SourceError::TransactionControl { file, line, .. } => (Some(file), Some(*line)),
    };
    problem(
        "invalid-file",
        file.map(|f| f.display().to_string()),
        line,
        e.to_string(),
    )
}

/// The engine whose dialect and hazards `check` applies: the `--database` URL's, else the
/// configured URL's — the embedded SQLite default included, which is the database `up` would
/// migrate (a CI job for another engine names its URL; `check` does not connect without
/// `--database`).
fn check_engine(args: &cli::Check, config: &Config) -> Engine {
    let url = match args.database.as_deref() {
        Some("") | None => config.database.clone(),
        Some(url) => DatabaseUrl::new(url),
    };
    url.engine().unwrap_or(Engine::Postgres)
}

async fn check(
    args: &cli::Check,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let mut findings: Vec<Finding> = Vec::new();
    let mut count = 0;
    let mut linted = 0;
    let mut layout = None;
    let engine = check_engine(args, config);
    let mut catalog = Catalog::Assumed;
    match source::load(&config.migrations, &config.layout, engine) {
        Err(errors) => findings.extend(errors.0.iter().map(source_finding)),
        Ok(set) => {
            count = set.migrations.len() + set.repeatables.len();
            layout = Some(set.layout);
            if let Some(order) = &set.order_warning {
                findings.push(Finding {
                    severity: Severity::Warning,
                    ..problem("layout-order", None, None, order.clone())
                });
            }
            let mut only: Option<lint::Only> = None;
            if let Some(reference) = &args.against_git {
                let changes = gitref::changes(&config.migrations, reference).map_err(|e| {
                    Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!("check --against-git {reference}: {e}"),
                    )
                })?;
                let (changed, edits) = gitref::compare(&set, &changes);
                findings.extend(edits);
                only = Some(changed);
            }
            if let Some(url) = &args.database {
                let url = if url.is_empty() {
                    config.database.clone()
                } else {
                    DatabaseUrl::new(url.clone())
                };
                if let Err(e) = url.engine() {
                    return Err(Failure::new(
                        Exit::Usage,
                        anyhow::anyhow!("check --database {}: {e}", url.redacted()),
                    ));
                }
                let mut backend = connect(config, &url, &mut interrupt).await?;
                let result = match apply::plan(&mut backend, &set, &config.policy).await {
                    // The catalog exactly as the release gate reads it.
                    Ok((_, plan)) => crate::gate::catalog(&mut backend, config.lint.threshold)
                        .await
                        .map(|c| (plan, c))
                        .map_err(migrate::Error::db("reading the catalog")),
                    Err(e) => Err(e),
                };
                let (plan, live) = finish(backend, result).await?;
                catalog = live;
                for b in plan.blockers(&config.policy) {
                    let file = match &b {
                        migrate::plan::Blocker::Modified(m) => Some(m.file.clone()),
                        _ => None,
                    };
                    findings.push(problem("history", file, None, b.to_string()));
                }
                // Applied files are history: lint what is still to come.
                let pending = crate::gate::pending(&plan);
                only = Some(match only {
                    Some(o) => o.intersection(&pending),
                    None => pending,
                });
            }
            linted = only.as_ref().map_or(count, lint::Only::len);
            let options = LintOptions {
                engine,
                severities: config.lint.severities.clone(),
                only,
                verdict: lint::Verdict::Check,
            };
            findings.extend(lint::lint(&set, &options, &catalog));
        }
    }
    let (acknowledged, findings): (Vec<Finding>, Vec<Finding>) =
        findings.into_iter().partition(|f| f.acknowledged.is_some());
    let failed = findings.iter().any(Finding::blocks);
    let warnings = findings.iter().filter(|f| !f.blocks()).count();
    match args.format {
        Format::Human => {
            for f in &findings {
                if f.why.is_empty() {
                    out(format!("{}: {}", f.severity, f.message));
                } else {
                    out(format!(
                        "{f}\n    why: {}\n    instead: {}",
                        f.why, f.instead
                    ));
                }
            }
            for f in &acknowledged {
                tracing::info!(rule = %f.rule, "acknowledged: {f} ({})", f.acknowledged.as_deref().unwrap_or_default());
            }
            let mut notes = Vec::new();
            // Another tool's layout, detected or forced, is named: what was read is said.
            if let Some(layout) = layout.filter(|l| *l != Layout::Native) {
                notes.push(format!("read as {layout}"));
            }
            if warnings > 0 {
                notes.push(format!("{warnings} warning(s)"));
            }
            if !acknowledged.is_empty() {
                notes.push(format!("{} acknowledged finding(s)", acknowledged.len()));
            }
            if config.database_is_default && args.database.is_none() {
                notes.push(
                    "the embedded SQLite default; set DATABASE_URL to lint for PostgreSQL or MySQL"
                        .to_owned(),
                );
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            if !failed {
                let against = if args.database.is_some() {
                    " and consistent with history"
                } else {
                    ""
                };
                out(format!(
                    "ok: {count} migration(s) in {} are valid{against}; {linted} linted for {engine}{notes}",
                    config.migrations.display()
                ));
            } else {
                let errors = findings.iter().filter(|f| f.blocks()).count();
                out(format!("failed: {errors} error(s){notes}"));
            }
        }
        Format::Json => {
            let finding = |f: &Finding| {
                json!({
                    "rule": f.rule,
                    "severity": f.severity,
                    "file": f.file,
                    "line": f.line,
                    "column": f.column,
                    "message": f.message,
                    "why": (!f.why.is_empty()).then_some(&f.why),
                    "instead": (!f.instead.is_empty()).then_some(&f.instead),
                    "acknowledged": f.acknowledged,
                })
            };
            json_out(&json!({
                "ok": !failed,
                "engine": engine,
                "migrations": count,
                "linted": linted,
                "findings": findings.iter().map(finding).collect::<Vec<_>>(),
                "acknowledged": acknowledged.iter().map(finding).collect::<Vec<_>>(),
            }))
        }
        Format::Github => {
            for f in &findings {
                out(github_annotation(f));
            }
        }
    }
    Ok(if failed { Exit::Invalid } else { Exit::Success })
}

/// One GitHub Actions workflow command (`::error file=…,line=…,col=…,title=…::message`), with
/// properties and data escaped as the runner expects.
fn github_annotation(f: &Finding) -> String {
    let command = if f.severity == Severity::Error {
        "error"
    } else {
        "warning"
    };
    let mut props = Vec::new();
    if let Some(file) = &f.file {
        props.push(format!("file={}", gh_escape_property(file)));
    }
    if let Some(line) = f.line {
        props.push(format!("line={line}"));
    }
    if let Some(column) = f.column {
        props.push(format!("col={column}"));
    }
    let mut message = f.message.clone();
    if !f.why.is_empty() {
        props.push(format!(
            "title={}",
            gh_escape_property(&format!("shipgate [{}]", f.rule))
        ));
        message = format!("{message}\nwhy: {}\ninstead: {}", f.why, f.instead);
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{command}{props}::{}", gh_escape_data(&message))
}

fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_escape_property(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

async fn baseline(
    args: &cli::Baseline,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    locked_change(config, interrupt, async |backend, set, interrupt| {
        repair::baseline(
            backend,
            set,
            args.version.clone(),
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            interrupt,
        )
        .await
    })
    .await
}

async fn adopt(args: &cli::Adopt, config: &Config, interrupt: Interrupt) -> Result<Exit, Failure> {
    if !args.dry_run && matches!(args.reason.as_deref().map(str::trim), None | Some("")) {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "adopt needs --reason \"why\" (written to the audit table); nothing was changed"
            ),
        ));
    }
    locked_change(config, interrupt, async |backend, set, interrupt| {
        migrate::adopt::adopt(
            backend,
            set,
            args.from.as_deref(),
            args.dry_run,
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            interrupt,
        )
        .await
    })
    .await
}

/// `baseline` and `repair`: the files, a connection, one change made under the lock (by
/// `change`), its summary printed.
async fn locked_change(
    config: &Config,
    mut interrupt: Interrupt,
    change: impl AsyncFnOnce(
        &mut Backend,
        &MigrationSet,
        &mut Interrupt,
    ) -> Result<repair::Change, migrate::Error>,
) -> Result<Exit, Failure> {
    let set = load_set(config)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = change(&mut backend, &set, &mut interrupt).await;
    let change = finish(backend, result).await?;
    out(change.summary);
    Ok(Exit::Success)
}

async fn repair(
    args: &cli::Repair,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let action = match (
        &args.mark_applied,
        &args.mark_rolled_back,
        &args.accept_checksum,
    ) {
        (Some(v), None, None) => Action::MarkApplied(v.clone()),
        (None, Some(v), None) => Action::MarkRolledBack(v.clone()),
        (None, None, Some(v)) => Action::AcceptChecksum(v.clone()),
        _ => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                "repair takes exactly one of --mark-applied, --mark-rolled-back, --accept-checksum"
            ),
            ))
        }
    };
    // Every repair rewrites history by hand: the audit row must say why.
    if matches!(args.reason.as_deref().map(str::trim), None | Some("")) {
        let (flag, why) = match action {
            Action::AcceptChecksum(_) => ("--accept-checksum", "why the edit is safe"),
            Action::MarkApplied(_) => ("--mark-applied", "how the migration was finished"),
            Action::MarkRolledBack(_) => ("--mark-rolled-back", "how its changes were undone"),
        };
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "{flag} needs --reason \"{why}\" (written to the audit table); nothing was changed"
            ),
        ));
    }
    // An edited file is what accept-checksum is for; other problems in the set still stop it.
    locked_change(config, interrupt, async |backend, set, interrupt| {
        repair::repair(
            backend,
            set,
            action,
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            interrupt,
        )
        .await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_names() {
        let cases = [
            ("add users email", "add_users_email"),
            ("AddUsersEmail", "add_users_email"),
            ("add-users.v2", "add_users_v2"),
            ("  --Hello World!! ", "hello_world"),
            ("!!!", ""),
        ];
        for (input, want) in cases {
            assert_eq!(snake_case(input), want, "{input}");
        }
    }

    #[test]
    fn every_engine_error_has_its_documented_exit_code() {
        use crate::migrate::backend::{DbError, ErrorKind};
        let db = DbError {
            kind: ErrorKind::Query,
            message: "x".into(),
            code: None,
        };
        let cases = [
            (migrate::Error::Refused("x".into()), Exit::Invalid),
            (migrate::Error::Blocked(vec![]), Exit::Invalid),
            (
                migrate::Error::Unreachable {
                    url: "u".into(),
                    waited: Duration::ZERO,
                    error: db.clone(),
                },
                Exit::Unreachable,
            ),
            (
                migrate::Error::LockTimeout {
                    waited: Duration::ZERO,
                    holder: None,
                },
                Exit::LockTimeout,
            ),
            (
                migrate::Error::Failed {
                    version: Version::from_int(1),
                    file: "f".into(),
                    error: db.clone(),
                    statements: None,
                },
                Exit::MigrationFailed,
            ),
            (
                migrate::Error::Config {
                    url: "u".into(),
                    error: db,
                },
                Exit::Usage,
            ),
            (
                migrate::Error::Interrupted(Signal::Terminate, migrate::Stage::Running),
                Exit::Terminated,
            ),
            (
                migrate::Error::Interrupted(Signal::Interrupt, migrate::Stage::Running),
                Exit::Interrupted,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(exit_for(&e), want, "{e}");
        }
    }
}
