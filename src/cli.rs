//! The command line: clap derive only. Doc comments here are the `--help` text.
//!
//! Every flag names its environment variable (`[env: …]` in `--help`); clap reads those as it
//! parses, and `config` tells them apart from flags by their value source. Values whose syntax
//! shipgate checks itself (durations, URLs, booleans in the config file) stay strings here so
//! that `config` can report the key and where the value came from.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::version::Version;

const EXIT_CODES: &str = "\
Exit codes:
  0    applied, or nothing to do
  1    a migration failed (its transaction rolled back; a no-transaction file is left dirty),
       or the runner's command failed or ran past runner_timeout
  2    usage or configuration error
  3    database unreachable after the connect wait
  4    migration lock not acquired within the lock wait
  5    validation failed: file problems, edited checksum, missing, out of order, dirty,
       an unacknowledged lint error (check, and the release gate of up/release)
  10   pending migrations (status --exit-code only)
  127  exec could not start its command (nothing was released)
  130  interrupted (SIGINT), 143 terminated (SIGTERM)";

/// A switch's environment variable: the spellings clap's boolish parser takes (true/false,
/// 1/0, yes/no, y/n, on/off), and empty as unset (false), so `SHIPGATE_DRY_RUN=` is not an error.
fn boolish(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(false),
        v => clap::builder::TypedValueParser::parse_ref(
            &clap::builder::BoolishValueParser::new(),
            &clap::Command::new("shipgate"),
            None,
            std::ffi::OsStr::new(v),
        )
        .map_err(|_| format!("{value:?} is not a boolean (true/false, 1/0, yes/no, on/off)")),
    }
}

/// A path; empty is accepted here and treated as unset by `config` (an empty variable never
/// overrides the config file).
fn path(value: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(value))
}

/// shipgate: apply database migrations safely before every rollout.
#[derive(Debug, Parser)]
#[command(name = "shipgate", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command (also settable in the config file).
#[derive(Args)]
pub struct Global {
    /// Database URL: postgres://…, mysql://… (or mariadb://…), sqlite://path.db. Without one,
    /// shipgate uses sqlite://shipgate.db.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Global options: database and files"
    )]
    pub database_url: Option<String>,

    /// Directory of migration files [default: migrations]
    #[arg(long, global = true, env = "SHIPGATE_MIGRATIONS", value_name = "DIR", value_parser = path, help_heading = "Global options: database and files")]
    pub migrations: Option<PathBuf>,

    /// Layout of the migrations directory: auto (detected from its files), native (sqlx,
    /// golang-migrate), atlas, dbmate, goose, diesel, prisma or flyway [default: auto]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LAYOUT",
        value_name = "NAME",
        help_heading = "Global options: database and files"
    )]
    pub layout: Option<String>,

    /// Flyway's settings for a Flyway directory, comma separated, as Flyway names them:
    /// sqlMigrationPrefix=V, undoSqlMigrationPrefix=U, repeatableSqlMigrationPrefix=R,
    /// baselineMigrationPrefix=B, sqlMigrationSeparator=__, sqlMigrationSuffixes=.sql,
    /// mixed=false, placeholderReplacement=true, placeholderPrefix=${, placeholderSuffix=}
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_FLYWAY",
        value_name = "LIST",
        help_heading = "Global options: database and files"
    )]
    pub flyway: Option<String>,

    /// Config file [default: config/shipgate.toml when present]
    #[arg(long, global = true, env = "SHIPGATE_CONFIG", value_name = "PATH", value_parser = path, help_heading = "Global options: database and files")]
    pub config: Option<PathBuf>,

    /// Log format [default: json when stderr, where logs go, is not a terminal, else text]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LOG_FORMAT",
        value_name = "FORMAT",
        help_heading = "Global options: output"
    )]
    pub log_format: Option<String>,

    /// How long to wait for the database to accept connections [default: 60s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_CONNECT_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: waits and timeouts"
    )]
    pub connect_timeout: Option<String>,

    /// How long to wait for the migration lock [default: 300s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LOCK_WAIT",
        value_name = "DURATION",
        help_heading = "Global options: waits and timeouts"
    )]
    pub lock_wait: Option<String>,

    /// Per-statement wait for table locks (PostgreSQL lock_timeout) [default: 5s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LOCK_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: waits and timeouts"
    )]
    pub lock_timeout: Option<String>,

    /// Retries of a whole migration that failed on a lock timeout [default: 5]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LOCK_RETRIES",
        value_name = "N",
        help_heading = "Global options: waits and timeouts"
    )]
    pub lock_retries: Option<String>,

    /// Per-statement time limit, 0 for none (PostgreSQL statement_timeout) [default: 0]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_STATEMENT_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: waits and timeouts"
    )]
    pub statement_timeout: Option<String>,

    /// How long a database connection may stay silent before shipgate treats it as lost, 0 for
    /// never: beyond lock_timeout for shipgate's own statements, and beyond statement_timeout
    /// (when set) for each migration statement [default: 30s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_IO_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: waits and timeouts"
    )]
    pub io_timeout: Option<String>,

    /// Before a statement that takes a strong lock on an existing table (PostgreSQL), look for
    /// sessions holding a conflicting lock on it and wait (up to lock_wait) for those past
    /// blocker_grace or idle in transaction to go, naming them [default: true]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_BLOCKER_CHECK",
        value_name = "BOOL",
        help_heading = "Global options: waits and timeouts"
    )]
    pub blocker_check: Option<String>,

    /// How long a session may hold a conflicting lock (its transaction's age) before the
    /// blocker check waits for it; an idle-in-transaction session is waited for at once
    /// [default: 5s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_BLOCKER_GRACE",
        value_name = "DURATION",
        help_heading = "Global options: waits and timeouts"
    )]
    pub blocker_grace: Option<String>,

    /// Prefix of shipgate's tables: <prefix>_migrations, _runs, _audit [default: shipgate]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_TABLE_PREFIX",
        value_name = "PREFIX",
        help_heading = "Global options: database and files"
    )]
    pub table_prefix: Option<String>,

    /// PostgreSQL schema of shipgate's tables [default: the connection's current schema]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_SCHEMA",
        value_name = "SCHEMA",
        help_heading = "Global options: database and files"
    )]
    pub schema: Option<String>,

    /// Fail when the database has applied migrations this build does not have
    #[arg(long, global = true, env = "SHIPGATE_STRICT", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Global options: what a run may do")]
    pub strict: Option<String>,

    /// Apply pending migrations older than the newest applied one instead of failing
    #[arg(long, global = true, env = "SHIPGATE_ALLOW_OUT_OF_ORDER", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Global options: what a run may do")]
    pub allow_out_of_order: Option<String>,

    /// SQL run on every database connection before anything else (e.g. SET FOREIGN_KEY_CHECKS = 0)
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_SESSION_INIT",
        value_name = "SQL",
        help_heading = "Global options: database and files"
    )]
    pub session_init: Option<String>,

    /// Deploy id recorded with every migration [default: from the platform, e.g. RAILWAY_DEPLOYMENT_ID]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_DEPLOY_ID",
        value_name = "ID",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub deploy_id: Option<String>,

    /// HTTP port of `serve` and `release --serve`, on all interfaces [default: 8080]
    #[arg(
        long,
        global = true,
        env = "PORT",
        value_name = "PORT",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub port: Option<String>,

    /// Bearer token required by /migrations/status [default: none, open]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_STATUS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub status_token: Option<String>,

    /// Webhook receivers of release events, comma separated
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_WEBHOOK_URL",
        hide_env_values = true,
        value_name = "URLS",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub webhook_url: Option<String>,

    /// Standard Webhooks signing secret, whsec_<base64>
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub webhook_secret: Option<String>,

    /// Per-attempt timeout of a webhook delivery [default: 5s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_WEBHOOK_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub webhook_timeout: Option<String>,

    /// Retries of a failed webhook delivery [default: 3]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_WEBHOOK_RETRIES",
        value_name = "N",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub webhook_retries: Option<String>,

    /// Fail the release (exit 1) when a webhook cannot be delivered
    #[arg(long, global = true, env = "SHIPGATE_REQUIRE_NOTIFY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Global options: service, webhooks and deploy")]
    pub require_notify: Option<String>,

    /// Time limit of one HTTP request [default: 10s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_REQUEST_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub request_timeout: Option<String>,

    /// After SIGTERM, how long readiness answers 503 before the listener closes [default: 2s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_SHUTDOWN_DELAY",
        value_name = "DURATION",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub shutdown_delay: Option<String>,

    /// How long in-flight HTTP requests may take to finish after SIGTERM [default: 10s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_SHUTDOWN_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: service, webhooks and deploy"
    )]
    pub shutdown_timeout: Option<String>,

    /// What the release gate does with unacknowledged lint errors in pending migrations:
    /// error (refuse, exit 5), warn (log and apply) or off [default: error]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LINT_GATE",
        value_name = "MODE",
        help_heading = "Global options: what a run may do"
    )]
    pub lint_gate: Option<String>,

    /// Lint severities per rule, comma separated: rule=error|warning|off
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LINT_SEVERITY",
        value_name = "LIST",
        help_heading = "Global options: what a run may do"
    )]
    pub lint_severity: Option<String>,

    /// Rows (planner estimate) above which an existing table counts as large for the release
    /// gate [default: 10000]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LARGE_TABLE_ROWS",
        value_name = "N",
        help_heading = "Global options: what a run may do"
    )]
    pub large_table_rows: Option<String>,

    /// Size above which an existing table counts as large for the release gate [default: 10MB]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_LARGE_TABLE_SIZE",
        value_name = "SIZE",
        help_heading = "Global options: what a run may do"
    )]
    pub large_table_size: Option<String>,

    /// Apply migrations marked `-- shipgate:contract` (destructive steps held back by default)
    #[arg(long, global = true, env = "SHIPGATE_ALLOW_CONTRACT", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Global options: what a run may do")]
    pub allow_contract: Option<String>,

    /// On a database another tool migrated and shipgate has not: manual (refuse, exit 5, until
    /// `shipgate adopt`) or auto (take its history over, then apply) [default: manual]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_ADOPT",
        value_name = "MODE",
        help_heading = "Global options: what a run may do"
    )]
    pub adopt: Option<String>,

    /// What a release does when the live schema drifted from the snapshot stored after the last
    /// release: warn (log each difference and apply), error (refuse, exit 5) or off
    /// [default: warn]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_DRIFT",
        value_name = "MODE",
        help_heading = "Global options: what a run may do"
    )]
    pub drift: Option<String>,

    /// Objects the drift check leaves out, comma separated globs (`audit_*`, `public.tmp_*`,
    /// `users.legacy_*`); a table's covers its columns, indexes and triggers
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_DRIFT_IGNORE",
        value_name = "GLOBS",
        help_heading = "Global options: what a run may do"
    )]
    pub drift_ignore: Option<String>,

    /// Schemas the drift check leaves out, comma separated globs (PostgreSQL)
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_DRIFT_IGNORE_SCHEMAS",
        value_name = "GLOBS",
        help_heading = "Global options: what a run may do"
    )]
    pub drift_ignore_schemas: Option<String>,

    /// How a release's migrations are grouped into transactions: file (each migration with its
    /// history row) or all (every pending migration in one transaction: all commit or none;
    /// PostgreSQL and SQLite) [default: file]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_TRANSACTION_MODE",
        value_name = "MODE",
        help_heading = "Global options: what a run may do"
    )]
    pub transaction_mode: Option<String>,

    /// Which runner applies the migrations of a release: sql (shipgate's own engine), command
    /// (runner_command, run under the migration lock) or alembic [default: sql]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_RUNNER",
        value_name = "RUNNER",
        help_heading = "Global options: runner"
    )]
    pub runner: Option<String>,

    /// The command line of runner = command (alembic: default "alembic upgrade heads"), split
    /// into words as a shell does, without expansion
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_RUNNER_COMMAND",
        hide_env_values = true,
        value_name = "COMMAND",
        allow_hyphen_values = true,
        help_heading = "Global options: runner"
    )]
    pub runner_command: Option<String>,

    /// Wall-clock bound of the runner's command; then its process group is ended and the
    /// release fails (exit 1) [default: 1h]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_RUNNER_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Global options: runner"
    )]
    pub runner_timeout: Option<String>,

    /// Between SIGTERM and SIGKILL when the runner's process group is ended [default: 5s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_RUNNER_GRACE",
        value_name = "DURATION",
        help_heading = "Global options: runner"
    )]
    pub runner_grace: Option<String>,

    /// After the runner's command exits, how long its database sessions may take to end before
    /// they are terminated, ahead of the unlock (PostgreSQL) [default: 5s]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_RUNNER_FENCE_WAIT",
        value_name = "DURATION",
        help_heading = "Global options: runner"
    )]
    pub runner_fence_wait: Option<String>,

    /// runner = alembic: the Alembic configuration file (an alembic.ini, or a pyproject.toml
    /// with [tool.alembic]) read for the revision graph and given to `alembic` as
    /// ALEMBIC_CONFIG [default: alembic.ini]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_ALEMBIC_CONFIG",
        value_name = "FILE",
        help_heading = "Global options: runner"
    )]
    pub alembic_config: Option<String>,

    /// runner = alembic: the table Alembic records revisions in, `name` or `schema.name`, as
    /// env.py's context.configure(version_table=…, version_table_schema=…) sets it
    /// [default: alembic_version]
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_ALEMBIC_VERSION_TABLE",
        value_name = "TABLE",
        help_heading = "Global options: runner"
    )]
    pub alembic_version_table: Option<String>,

    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet", env = "SHIPGATE_VERBOSE", help_heading = "Global options: output")]
    pub verbose: u8,

    /// Less log output (-q warnings only, -qq errors only)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "SHIPGATE_QUIET", help_heading = "Global options: output")]
    pub quiet: u8,

    /// Colour in text logs: auto (when stderr is a terminal and NO_COLOR is not set), always,
    /// never
    #[arg(
        long,
        global = true,
        env = "SHIPGATE_COLOR",
        value_name = "WHEN",
        value_enum,
        default_value_t = Color::Auto,
        help_heading = "Global options: output"
    )]
    pub color: Color,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// When stderr is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always, even into a file or a pipe.
    Always,
    /// Never.
    Never,
}

/// The database URL (with its password), the status token and the webhook URLs and secret are
/// raw strings here, so `Debug` shows only settings that cannot hold a secret. Once layered,
/// `config::Config` holds every value in redacting types.
impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("migrations", &self.migrations)
            .field("config", &self.config)
            .field("log_format", &self.log_format)
            .field("verbose", &self.verbose)
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations (alembic upgrade head)
    #[command(after_help = EXIT_CODES)]
    Up(Up),
    /// Revert applied migrations with their .down.sql files, newest first (alembic downgrade)
    #[command(after_help = EXIT_CODES)]
    Down(Down),
    /// Show current version, head, and what is applied, pending, modified, missing or dirty
    #[command(after_help = EXIT_CODES)]
    Status(Status),
    /// List applied migrations with time, duration, checksum, deploy id and host
    #[command(after_help = EXIT_CODES)]
    History(History),
    /// Create a new migration file pair named <UTC timestamp>_<name>
    #[command(after_help = EXIT_CODES)]
    New(New),
    /// Validate migration files; with --database also compare them with history (CI gate)
    #[command(after_help = EXIT_CODES)]
    Check(Check),
    /// Record every migration up to --version as applied without running it (alembic stamp)
    #[command(after_help = EXIT_CODES)]
    Baseline(Baseline),
    /// Take over another tool's history: record exactly what it applied (sqlx, golang-migrate,
    /// dbmate, goose, diesel, Prisma, Flyway, Atlas)
    #[command(after_help = EXIT_CODES)]
    Adopt(Adopt),
    /// Resolve a dirty migration or accept an edited checksum; every repair is audited
    #[command(after_help = EXIT_CODES)]
    Repair(Repair),
    /// Compare the live schema with the snapshot stored after the last release; print each
    /// difference; exit 5 on drift (--accept stores the live schema as the snapshot, audited)
    #[command(after_help = EXIT_CODES)]
    Drift(Drift),
    /// The pre-deploy hook: validate, wait for the database, lock, apply, record, notify
    #[command(after_help = EXIT_CODES)]
    Release(Release),
    /// Serve /health, /health/ready, /migrations/status and /metrics until SIGTERM
    #[command(after_help = EXIT_CODES)]
    Serve(Serve),
    /// Run the release flow, then replace this process with CMD (platforms without a release phase)
    #[command(after_help = EXIT_CODES)]
    Exec(Exec),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell) to stdout
    #[command(after_help = EXIT_CODES)]
    Completions(Completions),
}

/// `shipgate release`.
#[derive(Debug, Args)]
pub struct Release {
    /// Stop after this version
    #[arg(long, env = "SHIPGATE_TO", value_name = "VERSION")]
    pub to: Option<Version>,
    /// Print the plan and the SQL that would run; change nothing
    #[arg(long, env = "SHIPGATE_DRY_RUN", value_parser = boolish)]
    pub dry_run: bool,
    /// Serve the HTTP endpoints while the release runs
    #[arg(long, env = "SHIPGATE_SERVE", value_parser = boolish)]
    pub serve: bool,
}

/// `shipgate serve`.
#[derive(Debug, Args)]
pub struct Serve {
    /// Run the release flow first, answering 503 on /health/ready until it succeeds
    #[arg(long, env = "SHIPGATE_MIGRATE", value_parser = boolish)]
    pub migrate: bool,
}

/// `shipgate exec`.
#[derive(Debug, Args)]
pub struct Exec {
    /// The command to run after a successful release, with its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// `shipgate completions`.
#[derive(Debug, Args)]
pub struct Completions {
    /// The shell, e.g. `shipgate completions bash > /etc/bash_completion.d/shipgate`, or
    /// `shipgate completions zsh > "${fpath[1]}/_shipgate"`
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `shipgate up`.
#[derive(Debug, Args)]
pub struct Up {
    /// Stop after this version
    #[arg(long, env = "SHIPGATE_TO", value_name = "VERSION")]
    pub to: Option<Version>,
    /// Print the plan and the SQL that would run; change nothing
    #[arg(long, env = "SHIPGATE_DRY_RUN", value_parser = boolish)]
    pub dry_run: bool,
}

/// `shipgate down`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("range").required(true).args(["to", "steps"])))]
pub struct Down {
    /// Revert every migration newer than this version (it stays applied); with the alembic
    /// runner, a revision id (or a unique prefix of one), or `base` for everything
    #[arg(long, env = "SHIPGATE_DOWN_TO", value_name = "VERSION")]
    pub to: Option<String>,
    /// Revert this many migrations
    #[arg(long, env = "SHIPGATE_STEPS", value_name = "N")]
    pub steps: Option<u32>,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, env = "SHIPGATE_YES", value_parser = boolish)]
    pub yes: bool,
    /// Print what would be reverted and the SQL; change nothing
    #[arg(long, env = "SHIPGATE_DRY_RUN", value_parser = boolish)]
    pub dry_run: bool,
    /// Why (written to the audit table with each reverted migration)
    #[arg(long, env = "SHIPGATE_REASON")]
    pub reason: Option<String>,
}

/// `shipgate status`.
#[derive(Debug, Args)]
pub struct Status {
    /// Print JSON
    #[arg(long, env = "SHIPGATE_JSON", value_parser = boolish)]
    pub json: bool,
    /// Exit 10 when migrations are pending
    #[arg(long, env = "SHIPGATE_EXIT_CODE", value_parser = boolish)]
    pub exit_code: bool,
}

/// `shipgate history`.
#[derive(Debug, Args)]
pub struct History {
    /// Print JSON
    #[arg(long, env = "SHIPGATE_JSON", value_parser = boolish)]
    pub json: bool,
}

/// `shipgate new`.
#[derive(Debug, Args)]
pub struct New {
    /// What the migration does, e.g. "add users email"; written in snake_case
    pub name: String,
    /// Create only the up file (an irreversible migration)
    #[arg(long, env = "SHIPGATE_NO_DOWN", value_parser = boolish)]
    pub no_down: bool,
}

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// file: message lines
    Human,
    /// one JSON document
    Json,
    /// GitHub Actions workflow annotations
    Github,
}

/// `shipgate check`.
#[derive(Debug, Args)]
pub struct Check {
    /// Also compare checksums and order with the history in this database (default: the
    /// configured database URL)
    #[arg(long, env = "SHIPGATE_CHECK_DATABASE", value_name = "URL", num_args = 0..=1, default_missing_value = "", hide_env_values = true)]
    pub database: Option<String>,
    /// Output format
    #[arg(long, env = "SHIPGATE_FORMAT", value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Lint only the files added or changed since this git ref (e.g. origin/main), and fail on
    /// edits to files that exist at the ref
    #[arg(long, env = "SHIPGATE_AGAINST_GIT", value_name = "REF")]
    pub against_git: Option<String>,
}

/// `shipgate baseline`.
#[derive(Debug, Args)]
pub struct Baseline {
    /// Record every migration up to and including this version as applied
    #[arg(long, env = "SHIPGATE_BASELINE_VERSION", value_name = "VERSION")]
    pub version: Version,
    /// Why (written to the audit table)
    #[arg(long, env = "SHIPGATE_REASON")]
    pub reason: Option<String>,
}

/// `shipgate drift`.
#[derive(Debug, Args)]
pub struct Drift {
    /// Print JSON
    #[arg(long, env = "SHIPGATE_JSON", value_parser = boolish)]
    pub json: bool,
    /// Store the live schema as the snapshot of the applied version (the differences become
    /// what later checks compare against), under the lock, with an audit row
    #[arg(long, env = "SHIPGATE_DRIFT_ACCEPT", value_parser = boolish)]
    pub accept: bool,
    /// Why (written to the audit table with --accept)
    #[arg(long, env = "SHIPGATE_REASON", requires = "accept")]
    pub reason: Option<String>,
}

/// `shipgate adopt`.
#[derive(Debug, Args)]
pub struct Adopt {
    /// The tool whose history to take over (default: the one whose table this database has)
    #[arg(long, env = "SHIPGATE_ADOPT_FROM", value_name = "TOOL")]
    pub from: Option<String>,
    /// Read and check the other tool's history; change nothing
    #[arg(long, env = "SHIPGATE_DRY_RUN", value_parser = boolish)]
    pub dry_run: bool,
    /// Why (written to the audit table)
    #[arg(long, env = "SHIPGATE_REASON")]
    pub reason: Option<String>,
}

/// `shipgate repair`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").required(true).args(["mark_applied", "mark_rolled_back", "accept_checksum"])))]
pub struct Repair {
    /// Mark a dirty migration as applied (you finished it by hand)
    #[arg(long, env = "SHIPGATE_MARK_APPLIED", value_name = "VERSION")]
    pub mark_applied: Option<Version>,
    /// Forget a dirty migration so the next run applies it again (you undid it by hand)
    #[arg(long, env = "SHIPGATE_MARK_ROLLED_BACK", value_name = "VERSION")]
    pub mark_rolled_back: Option<Version>,
    /// Record the edited file's checksum for an applied migration
    #[arg(long, env = "SHIPGATE_ACCEPT_CHECKSUM", value_name = "VERSION")]
    pub accept_checksum: Option<Version>,
    /// Why (required; written to the audit table)
    #[arg(long, env = "SHIPGATE_REASON")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn debug_output_holds_no_secret() {
        let cli = Cli::try_parse_from([
            "shipgate",
            "--database-url",
            "postgres://app:hunter2-db@db/app",
            "--status-token",
            "tok-hunter2",
            "--webhook-url",
            "https://hooks.example/hunter2-path",
            "--webhook-secret",
            "whsec_aHVudGVyMg==",
            "status",
        ])
        .expect("parses");
        let debug = format!("{cli:?}");
        for secret in ["hunter2", "aHVudGVyMg"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("Status"), "{debug}");
    }
}
