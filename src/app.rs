//! The `shipgate` binary's front: parse the command line, load the config, install the
//! signal handlers and dispatch to the command's module (`commands`).

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::{self, Cli, Command};
use crate::commands;
use crate::config::{self, Config};
use crate::exit::{Exit, Failure};
use crate::migrate::{Interrupt, Signal};
use crate::telemetry;

/// Parses the process's arguments and runs the command.
pub fn main() -> Result<Exit, Failure> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Failure::new(Exit::Usage, e))?;
    // Completions describe the command line only: no config is read, nothing connects.
    if let Command::Completions(args) = &cli.command {
        return commands::completions::print(args.shell);
    }
    let json_default = telemetry::default_format() == config::LogFormat::Json;
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
        cli.global.color,
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
        Command::New(_) | Command::Completions(_) => false,
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
        Command::Drift(args) => !args.accept,
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
        Command::New(args) => commands::new::new(&args, config),
        Command::Check(args) => commands::check::check(&args, config, interrupt).await,
        Command::Up(args) => commands::up::up(&args, config, interrupt).await,
        Command::Down(args) => commands::down::down(&args, config, interrupt).await,
        Command::Status(args) => commands::status::status(&args, config, interrupt).await,
        Command::History(args) => commands::history::history(&args, config, interrupt).await,
        Command::Baseline(args) => commands::repair::baseline(&args, config, interrupt).await,
        Command::Adopt(args) => commands::adopt::adopt(&args, config, interrupt).await,
        Command::Repair(args) => commands::repair::repair(&args, config, interrupt).await,
        Command::Drift(args) => commands::drift::drift(&args, config, interrupt).await,
        Command::Release(args) => commands::release::command(&args, config, interrupt).await,
        Command::Serve(args) => commands::serve::serve(&args, config, interrupt).await,
        Command::Exec(args) => commands::exec::exec(&args, config, interrupt).await,
        Command::Completions(args) => commands::completions::print(args.shell),
    }
}
