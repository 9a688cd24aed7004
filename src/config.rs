//! Layered configuration → one validated [`Config`].
//!
//! Owns precedence (flag > environment > config file > built-in default, SPEC §2), validation
//! with errors that name the key and where its value came from, secret redaction, and the
//! platform's deploy metadata. This is the only module that reads the process environment
//! (clap reads the `SHIPGATE_*` flag variables while parsing, declared in `cli`) or config files.
//! The file layer goes through figment; every value is then checked here, once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;
use figment::providers::{Format as _, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::cli::Global;
pub use crate::engine::Engine;
use crate::lint::{self, Severity, Threshold};
use crate::migrate::layout::{self, Choice};
use crate::migrate::plan::Policy;
use crate::migrate::source::{MAX_SERVER_TIMEOUT, MAX_SERVER_TIMEOUT_TEXT};
use crate::notify::{WebhookSettings, WebhookUrl};

/// The embedded default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://shipgate.db";
/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/shipgate.toml";

/// Every setting shipgate runs with, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where migrations are applied.
    pub database: DatabaseUrl,
    /// True when no URL was configured and the embedded SQLite default is used.
    pub database_is_default: bool,
    /// The hosting platform detected from its own environment variables, if any. With one, a
    /// missing database URL is a configuration error rather than the embedded default.
    pub platform: Option<Platform>,
    /// The migrations directory.
    pub migrations: PathBuf,
    /// How to read it: the layout (detected, or the one configured) and Flyway's settings.
    pub layout: layout::Options,
    /// Log output format; `None` picks by whether stderr is a terminal.
    pub log_format: Option<LogFormat>,
    /// Bounds and names for the migration engine.
    pub engine: EngineSettings,
    /// Planning policy (strict, out of order); the target is set per command.
    pub policy: Policy,
    /// Deploy metadata recorded with every run and migration.
    pub deploy: DeployInfo,
    /// The HTTP service.
    pub service: ServiceSettings,
    /// Webhook receivers.
    pub webhooks: WebhookSettings,
    /// Whether an undelivered webhook fails the release.
    pub require_notify: bool,
    /// The safety lint and the release gate.
    pub lint: LintSettings,
    /// What `release` and `up` do on a database another tool migrated and shipgate has not.
    pub adopt: AdoptMode,
    /// What applies the migrations of `release`, `exec` and `serve --migrate`.
    pub runner: RunnerSettings,
    /// The drift check: its policy for `release` and what it leaves out.
    pub drift: DriftSettings,
}

/// What `release` does when the live schema drifted from the stored snapshot (`drift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftMode {
    /// Log each difference and apply.
    Warn,
    /// Refuse the release (exit 5) before the lock, naming each difference.
    Error,
    /// Do not compare at release time (`status`, `serve` and `shipgate drift` still do).
    Off,
}

/// Settings of the drift check (`drift`, `drift_ignore`, `drift_ignore_schemas`).
#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// The release policy.
    pub mode: DriftMode,
    /// Objects and schemas left out of every comparison.
    pub ignore: crate::migrate::drift::Ignore,
}

/// Which runner applies the migrations of a release (`runner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerKind {
    /// shipgate's own engine over the SQL files of the migrations directory.
    Sql,
    /// Alembic, with shipgate reading its state so that a no-op starts no Python.
    Alembic,
    /// Any command line, run under the lock as a supervised child process.
    Command,
}

impl RunnerKind {
    /// The name in the config file, flag and variable.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Sql => "sql",
            RunnerKind::Alembic => "alembic",
            RunnerKind::Command => "command",
        }
    }
}

/// The runner of a release and how its child process is supervised.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Which runner.
    pub kind: RunnerKind,
    /// The child's program and arguments (`command`, `alembic`), split like a POSIX shell
    /// splits words, without expansion; `None` for `sql`.
    pub command: Option<Vec<String>>,
    /// Wall-clock bound of the child process.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL when the child's process group is ended.
    pub grace: Duration,
    /// How long, after the child exits, its database sessions get to end on their own before
    /// the fence terminates them (PostgreSQL).
    pub fence_wait: Duration,
    /// The `PGOPTIONS` shipgate itself was given, kept after the child's own options so that an
    /// operator's explicit setting wins.
    pub inherited_pgoptions: Option<String>,
    /// `alembic_config`: the Alembic project's configuration file (`runner = "alembic"`).
    pub alembic_config: PathBuf,
    /// `alembic_version_table`: the table Alembic records revisions in, and its schema
    /// (`None`: the connection's default).
    pub alembic_version_table: (Option<String>, String),
}

/// `runner_command` of `runner = "alembic"` when none is configured.
pub const ALEMBIC_COMMAND: &str = "alembic upgrade heads";

/// `alembic_version_table`: `name` or `schema.name`, each a plain identifier (it is quoted, not
/// escaped, in SQL).
/// `Err` says what was expected.
fn version_table(text: Option<&str>) -> Result<(Option<String>, String), &'static str> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok((None, "alembic_version".to_owned()));
    };
    let plain = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    let (schema, name) = match text.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, text),
    };
    if !plain(name) || schema.is_some_and(|s| !plain(s)) {
        return Err("a table name or schema.name of letters, digits and _");
    }
    Ok((schema.map(str::to_owned), name.to_owned()))
}

/// What `release` and `up` do on a database another tool has migrated (its history table is
/// there) and shipgate has not (no shipgate history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdoptMode {
    /// Refuse before writing anything (exit 5), naming the tool and both ways forward.
    Manual,
    /// Take the other tool's history over as `shipgate adopt` would (same checks, same audit
    /// row, under the same lock), then apply what is pending, in one run.
    Auto,
}

/// Settings of the safety lint (`check`) and of the release gate (`up`, `release`).
#[derive(Debug, Clone)]
pub struct LintSettings {
    /// What the release gate does with unacknowledged errors.
    pub gate: GateMode,
    /// Severity per rule id, overriding the defaults.
    pub severities: BTreeMap<String, Severity>,
    /// When an existing table counts as large.
    pub threshold: Threshold,
    /// Apply migrations marked `-- shipgate:contract`.
    pub allow_contract: bool,
}

/// What the release gate does with unacknowledged lint errors in pending migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateMode {
    /// Refuse the run (exit 5) before the lock.
    Error,
    /// Log the findings and apply.
    Warn,
    /// Do not lint at release time.
    Off,
}

/// Settings of the HTTP service.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Port on `[::]`.
    pub port: u16,
    /// Bearer token for `/migrations/status`.
    pub status_token: Option<Secret>,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// After SIGTERM, how long readiness answers 503 while still accepting connections.
    pub shutdown_delay: Duration,
    /// Drain bound after SIGTERM.
    pub shutdown_timeout: Duration,
}

/// A secret string: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for comparing or signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Standard Webhooks signing key, from `whsec_<base64>`. `Debug` prints `***`.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Decodes `whsec_<base64>`.
    pub fn parse(s: &str) -> Result<WebhookSecret, String> {
        use base64::Engine as _;
        let encoded = s
            .trim()
            .strip_prefix("whsec_")
            .ok_or("a secret of the form whsec_<base64>")?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "whsec_ followed by base64")?;
        if key.is_empty() {
            return Err("a non-empty key after whsec_".into());
        }
        Ok(WebhookSecret(key))
    }

    /// The HMAC key.
    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl Config {
    /// The engine of the database URL, whose rules split the migration files. A URL that names
    /// none was refused while loading the config; PostgreSQL stands in for it.
    pub fn database_engine(&self) -> Engine {
        self.database.engine().unwrap_or(Engine::Postgres)
    }
}

/// Bounds and names the migration engine runs with.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Total wait for the database to accept a connection.
    pub connect_timeout: Duration,
    /// Total wait for the migration lock.
    pub lock_wait: Duration,
    /// Per-statement wait for table locks.
    pub lock_timeout: Duration,
    /// Retries of a whole migration that failed on a lock timeout.
    pub lock_retries: u32,
    /// Per-statement time limit; `None` is off.
    pub statement_timeout: Option<Duration>,
    /// Client-side bound on a silent connection (PostgreSQL, MySQL): beyond `lock_timeout` for
    /// shipgate's own statements, beyond `statement_timeout` (when set) for each migration
    /// statement. `None` is off.
    pub io_timeout: Option<Duration>,
    /// Prefix of shipgate's tables.
    pub table_prefix: String,
    /// PostgreSQL schema of shipgate's tables; `None` is the connection's current schema.
    pub schema: Option<String>,
    /// SQL run on every connection right after it opens.
    pub session_init: Option<String>,
    /// Look for sessions holding a conflicting lock before a statement that takes a strong
    /// lock on an existing table (PostgreSQL), and wait for them (`blocker_check`).
    pub blocker_check: bool,
    /// A conflicting holder whose transaction is younger than this (and not idle in
    /// transaction) is left to `lock_timeout` (`blocker_grace`).
    pub blocker_grace: Duration,
    /// The command only reads (status, history, check, dry runs): a SQLite database file that
    /// does not exist is read as an empty database instead of being created.
    pub read_only: bool,
    /// How a release's migrations are grouped into transactions (`transaction_mode`).
    pub transaction_mode: TransactionMode,
}

/// How a release's pending migrations are grouped into transactions (`transaction_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionMode {
    /// Each migration in its own transaction with its history row (the default): a failure
    /// keeps the migrations before it.
    #[default]
    File,
    /// Every pending migration and its history row in one transaction (PostgreSQL, SQLite):
    /// all commit or none. A no-transaction file in the batch is refused before anything runs.
    All,
}

impl TransactionMode {
    /// The name in the config file, flag and variable.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionMode::File => "file",
            TransactionMode::All => "all",
        }
    }
}

impl EngineSettings {
    /// The history table's name.
    pub fn migrations_table(&self) -> String {
        format!("{}_migrations", self.table_prefix)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Who is deploying what, from the platform's variables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployInfo {
    /// The platform's deploy/release id.
    pub deploy_id: Option<String>,
    /// The platform variable `deploy_id` came from (`None`: the flag, variable or file key).
    #[serde(skip)]
    pub deploy_id_source: Option<&'static str>,
    /// The application version: commit or image.
    pub app_version: Option<String>,
    /// The platform variable `app_version` came from.
    #[serde(skip)]
    pub app_version_source: Option<&'static str>,
    /// This host's name.
    pub host: String,
    /// This process's id.
    pub pid: u32,
}

impl DeployInfo {
    /// `host:pid`, as recorded in `applied_by`.
    pub fn applied_by(&self) -> String {
        format!("{}:{}", self.host, self.pid)
    }

    /// The `application_name` a database session shows: shipgate and the deploy id.
    pub fn application_name(&self) -> String {
        let mut name = match &self.deploy_id {
            Some(id) => format!("shipgate {id}"),
            None => "shipgate".to_owned(),
        };
        // PostgreSQL truncates at 63 bytes; cut on a character boundary ourselves.
        while name.len() > 63 {
            name.pop();
        }
        name
    }
}

/// A hosting platform, detected from a variable it sets in every deploy's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The platform's name.
    pub name: &'static str,
    /// The variable that gave it away.
    pub variable: &'static str,
}

/// Variables each platform sets in its deploys (and that a developer's machine does not).
const PLATFORM_VARIABLES: &[(&str, &str)] = &[
    ("Railway", "RAILWAY_ENVIRONMENT"),
    ("Railway", "RAILWAY_ENVIRONMENT_NAME"),
    ("Railway", "RAILWAY_PROJECT_ID"),
    ("Railway", "RAILWAY_SERVICE_ID"),
    ("Railway", "RAILWAY_DEPLOYMENT_ID"),
    ("Heroku", "DYNO"),
    ("Heroku", "HEROKU_APP_ID"),
    ("Heroku", "HEROKU_RELEASE_VERSION"),
    ("Fly.io", "FLY_APP_NAME"),
    ("Fly.io", "FLY_MACHINE_ID"),
    ("Render", "RENDER"),
    ("Render", "RENDER_SERVICE_ID"),
    ("Kubernetes", "KUBERNETES_SERVICE_HOST"),
];

/// The platform this process runs on, from the first of its variables that is set (non-empty).
fn detect_platform() -> Option<Platform> {
    PLATFORM_VARIABLES.iter().find_map(|&(name, variable)| {
        std::env::var_os(variable)
            .filter(|v| !v.is_empty())
            .map(|_| Platform { name, variable })
    })
}

/// The longest deploy id or app version shipgate records (MySQL's columns hold 512 characters;
/// real platform ids are UUIDs, numbers or image references far below this).
pub const MAX_DEPLOY_TEXT: usize = 255;

/// A database URL. Its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL; see [`DatabaseUrl::engine`] for validation.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The full URL, password included. Only backends call this, to connect.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL as shipgate's own driver reads it: SQLAlchemy's `dialect+driver://` scheme
    /// (`postgresql+psycopg://`, `mysql+pymysql://`, accepted by [`DatabaseUrl::engine`]) with
    /// the `+driver` part dropped; any other URL as given. A runner's child still gets the URL as
    /// configured (`expose`), for the app's own driver.
    pub fn for_driver(&self) -> std::borrow::Cow<'_, str> {
        let Some(scheme) = scheme_of(&self.0) else {
            return std::borrow::Cow::Borrowed(&self.0);
        };
        match scheme.split_once('+') {
            Some((base, _)) => {
                std::borrow::Cow::Owned(format!("{base}{}", &self.0[scheme.len()..]))
            }
            None => std::borrow::Cow::Borrowed(&self.0),
        }
    }

    /// The engine, from the scheme, once the URL is known to say what it means: a PostgreSQL or
    /// MySQL URL must be `scheme://…`, parse, and have no `@` after its host. Anything else
    /// (`postgres:user:pw@host/db`, a password with an unencoded `/`, `?`, `#` or `@`) would
    /// be read differently by the driver than written — the password sent as a database name,
    /// or part of it printed as a host — so it is refused before any connection.
    pub fn engine(&self) -> Result<Engine, String> {
        const EXPECTED: &str = "postgres://, mysql://, mariadb:// or sqlite://";
        let Some(scheme) = scheme_of(&self.0) else {
            return Err(format!("not a URL (expected {EXPECTED})"));
        };
        let rest = &self.0[scheme.len() + 1..];
        // SQLAlchemy's `dialect+driver` (`postgresql+psycopg`, `mysql+pymysql`): the variable
        // is shared with a Python app; the driver part names the app's driver, not shipgate's.
        let (base, driver) = match scheme.split_once('+') {
            Some((base, driver)) => (base, Some(driver)),
            None => (scheme, None),
        };
        let engine = match (base.to_ascii_lowercase().as_str(), driver) {
            (_, Some("")) if rest.starts_with("//") => {
                return Err(format!(
                    "unsupported scheme `{scheme}`: no driver after `+` (expected {EXPECTED})"
                ))
            }
            ("postgres" | "postgresql", _) => Engine::Postgres,
            ("sqlite", Some(_)) if rest.starts_with("//") => {
                return Err(format!(
                    "`{scheme}://` is SQLAlchemy's form of a SQLite URL, and SQLAlchemy and shipgate \
                     count the slashes before a SQLite path differently: give shipgate a sqlite:// URL \
                     (sqlite://app.db)"
                ))
            }
            ("sqlite", None) => return Ok(Engine::Sqlite),
            ("mysql" | "mariadb", _) => Engine::Mysql,
            // Without `//` the "scheme" may be a user name: print it only in a URL's shape.
            _ if rest.starts_with("//") => {
                return Err(format!(
                    "unsupported scheme `{}` (expected {EXPECTED})",
                    scheme.to_ascii_lowercase()
                ))
            }
            _ => return Err(format!("not a URL (expected {EXPECTED})")),
        };
        let shape = "scheme://user:password@host:port/database, with `@ : / ? #` in the user \
                     name or password percent-encoded (%40 %3A %2F %3F %23)";
        let Some(after) = rest.strip_prefix("//") else {
            return Err(format!("{shape}; the `//` after `{scheme}:` is missing"));
        };
        if let Err(e) = url::Url::parse(&self.0) {
            return Err(format!("{shape}; the URL does not parse ({e})"));
        }
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        if after[authority_end..].contains('@') {
            return Err(format!("{shape}; an `@` after the host is ambiguous"));
        }
        Ok(engine)
    }

    /// `text` (a driver's error message) with this URL's secrets masked wherever they appear:
    /// raw, percent-decoded or -encoded, or inside another URL or a `key=value` pair.
    pub fn scrub(&self, text: &str) -> String {
        let mut secrets = Vec::new();
        for span in secret_spans(&self.0) {
            let raw = &self.0[span];
            // Lenient readings end the secret at its last `@` (`pw@host/db` after `user:`),
            // and start it after the first `:` (`user:pw@host` with no scheme at all).
            let before_at = raw.rsplit_once('@').map(|(before, _)| before);
            let bases = [
                Some(raw),
                before_at,
                before_at.and_then(|b| b.split_once(':')).map(|(_, pw)| pw),
            ];
            for base in bases.into_iter().flatten() {
                let decoded = percent_decode(base);
                secrets.push(base.to_owned());
                secrets.push(base.replace('+', " "));
                secrets.push(percent_encode(base));
                secrets.push(percent_encode(&decoded));
                secrets.push(decoded);
            }
        }
        // A secret of one or two characters would mask half the message; it is no secret.
        secrets.retain(|s| s.chars().count() >= 3);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for secret in &secrets {
            out = out.replace(secret.as_str(), "***");
        }
        redact_message(&out)
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A database URL with every secret it can carry replaced by `***`.
///
/// `scheme://…` forms: the userinfo password is masked under both readings of the URL — the
/// strict one (the authority ends at the first `/`, `?` or `#`) and the lenient one (the
/// userinfo ends at the last `@`, as when a password holds an unencoded `/`, `?`, `#` or `@`) —
/// so neither can leak; so is the value of every query parameter whose name looks secret
/// ([`secret_key`]), case-insensitively and percent-decoded. A database URL without `//` prints
/// as its scheme and user name (`postgres:user:***`): nothing after that is known to be safe to
/// print. SQLite URLs (`sqlite:path`) keep their path; any other string prints as `***`.
pub fn redact(url: &str) -> String {
    mask(url, secret_spans(url))
}

/// The byte ranges of `url` that [`redact`] masks.
fn secret_spans(url: &str) -> Vec<std::ops::Range<usize>> {
    let Some(scheme) = scheme_of(url) else {
        return std::iter::once(0..url.len()).collect();
    };
    let after = scheme.len() + 1;
    let rest = &url[after..];
    if rest.starts_with("//") {
        return url_spans(url, after + 2);
    }
    if scheme.eq_ignore_ascii_case("sqlite") {
        return param_spans(url, after, false);
    }
    let known = matches!(
        scheme.to_ascii_lowercase().as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb"
    );
    // Without `//` an unknown "scheme" may be a user name or a password: print none of it.
    match rest.split_once(':') {
        _ if !known => std::iter::once(0..url.len()).collect(),
        Some((user, _)) if !user.is_empty() && !user.contains(['@', '/', '?', '#']) => {
            std::iter::once(after + user.len() + 1..url.len()).collect()
        }
        _ => std::iter::once(after..url.len()).collect(),
    }
}

/// Free text (a driver's error message) with secrets masked: in each word (text between
/// whitespace and quotes) that holds a `scheme://…` URL, what [`redact`] masks; in any word
/// with a `:` before its last `@` (`user:password@host`, with or without a scheme), what lies
/// between them; and the value of every secret-looking `key=value` pair. Unlike [`redact`],
/// text that holds none of these is kept as it is.
pub fn redact_message(text: &str) -> String {
    let mut spans = Vec::new();
    let is_break = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>');
    let mut offset = 0;
    for word in text.split(is_break) {
        let start = offset;
        offset += word.len()
            + text[start + word.len()..]
                .chars()
                .next()
                .map_or(0, char::len_utf8);
        if let Some(sep) = word.find("://") {
            let scheme_start = word[..sep]
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                .last()
                .map_or(sep, |(j, _)| j);
            if scheme_start < sep {
                let url = &word[scheme_start..];
                let shift = start + scheme_start;
                spans.extend(
                    url_spans(url, sep - scheme_start + 3)
                        .into_iter()
                        .map(|s| s.start + shift..s.end + shift),
                );
            }
        } else if let Some(at) = word.rfind('@') {
            if let Some(colon) = word[..at].find(':') {
                spans.push(start + colon + 1..start + at);
            }
        }
    }
    spans.extend(param_spans(text, 0, true));
    mask(text, spans)
}

/// Whether a URL query parameter (or `key=value` pair) with this name holds a secret:
/// `password`, `sslpassword`, `pass`, `passwd`, `pwd`, tokens, keys, secrets, signatures…,
/// in any case, ignoring `-`, `_` and `.`. Generous on purpose: masking `sslkey`'s file path
/// costs nothing, printing a passphrase costs a rotation.
pub fn secret_key(key: &str) -> bool {
    let key: String = percent_decode(key)
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
        "sig",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// The scheme of `url` (`[A-Za-z][A-Za-z0-9+.-]*` before the first `:`), if it has one.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// The byte ranges of `url`'s secrets, its authority starting at `start` (after `://`).
fn url_spans(url: &str, start: usize) -> Vec<std::ops::Range<usize>> {
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut spans = Vec::new();
    for at in [rest[..authority_end].rfind('@'), rest.rfind('@')]
        .into_iter()
        .flatten()
    {
        if let Some(colon) = rest[..at].find(':') {
            spans.push(start + colon + 1..start + at);
        }
    }
    spans.extend(param_spans(url, start, false));
    spans
}

/// The byte ranges of the values of secret-looking `key=value` pairs in `text[start..]`. In a
/// URL a value runs to the next `&` that starts another `key=`, else to the end (a password
/// may hold `#`); in free text it also stops at whitespace or a quote.
fn param_spans(text: &str, start: usize, free_text: bool) -> Vec<std::ops::Range<usize>> {
    let is_key =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '%');
    let starts_pair = |s: &str| {
        let key_len = s.find(|c: char| !is_key(c)).unwrap_or(s.len());
        key_len > 0 && s[key_len..].starts_with('=')
    };
    let mut spans = Vec::new();
    for (eq, _) in text.match_indices('=').filter(|(i, _)| *i >= start) {
        let key_start = text[start..eq]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_key(*c))
            .last()
            .map_or(eq, |(j, _)| start + j);
        if key_start == eq || !secret_key(&text[key_start..eq]) {
            continue;
        }
        let value = eq + 1;
        let mut end = text.len();
        for (i, c) in text[value..].char_indices() {
            let stop = match c {
                '&' => starts_pair(&text[value + i + 1..]),
                c if free_text => c.is_whitespace() || matches!(c, '"' | '\'' | '`'),
                _ => false,
            };
            if stop {
                end = value + i;
                break;
            }
        }
        spans.push(value..end);
    }
    spans
}

/// `text` with each non-empty span replaced by `***`; overlapping or touching spans merge.
fn mask(text: &str, mut spans: Vec<std::ops::Range<usize>>) -> String {
    spans.retain(|s| !s.is_empty());
    spans.sort_by_key(|s| s.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for span in merged {
        out.push_str(&text[done..span.start]);
        out.push_str("***");
        done = span.end;
    }
    out.push_str(&text[done..]);
    out
}

/// Every byte but ASCII letters and digits as `%XX`, as sqlx encodes a password it prints.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `%XX` sequences decoded (invalid UTF-8 replaced), for comparing names and secrets.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag(String),
    /// An environment variable.
    Env(String),
    /// A config file, with the line of the key when it could be found.
    File(PathBuf, Option<usize>),
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File(path, Some(line)) => write!(f, "{}:{line}", path.display()),
            Origin::File(path, None) => write!(f, "{}", path.display()),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

/// A configuration problem, reported before any connection is made.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value failed validation.
    #[error("invalid {key} = {value:?} (from {origin}): expected {expected}")]
    Invalid {
        /// The key.
        key: String,
        /// The offending value (redacted when secret).
        value: String,
        /// Where it came from.
        origin: Origin,
        /// What would be accepted.
        expected: String,
    },
    /// The config file could not be read or parsed.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, with the key and line where known.
        message: String,
    },
}

/// The config file's keys. Every field is optional so a file sets only what it needs; the
/// committed `config/shipgate.toml` lists each one at its default.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flyway: Option<LooseSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_retries: Option<LooseU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    io_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocker_check: Option<LooseBool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocker_grace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<LooseBool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_out_of_order: Option<LooseBool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_init: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<LooseU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_retries: Option<LooseU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_notify: Option<LooseBool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lint_gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lint_severity: Option<LooseMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    large_table_rows: Option<LooseU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    large_table_size: Option<LooseU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_contract: Option<LooseBool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    adopt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runner_command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runner_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runner_grace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runner_fence_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alembic_config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alembic_version_table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift_ignore: Option<LooseList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift_ignore_schemas: Option<LooseList>,
}

/// A list from TOML (`["a", "b"]`) or from a flag/env string (`"a,b"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum LooseList {
    List(Vec<String>),
    Text(String),
}

impl LooseList {
    /// The non-empty items, trimmed.
    fn items(&self) -> Vec<String> {
        let items: Vec<&str> = match self {
            LooseList::List(l) => l.iter().map(String::as_str).collect(),
            LooseList::Text(t) => t.split(',').collect(),
        };
        items
            .into_iter()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A map from TOML (`{ rule = "warning" }`) or from a flag/env string (`"rule=warning,…"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum LooseMap {
    Table(BTreeMap<String, String>),
    Text(String),
}

/// Settings of another tool from TOML (`{ mixed = true, sqlMigrationPrefix = "M" }`) or from
/// a flag/env string (`"mixed=true,sqlMigrationPrefix=M"`), checked later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum LooseSettings {
    Table(BTreeMap<String, LooseValue>),
    Text(String),
}

/// One value of [`LooseSettings`]: TOML's text, boolean or integer, read as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum LooseValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl LooseValue {
    fn text(&self) -> String {
        match self {
            LooseValue::Bool(b) => b.to_string(),
            LooseValue::Int(n) => n.to_string(),
            LooseValue::Text(t) => t.clone(),
        }
    }
}

/// The `key=value` pairs of a settings list. A comma separates pairs, except inside a value
/// that holds commas itself (`sqlMigrationSuffixes=.sql,.pgsql`): a piece without `=`
/// continues the value before it.
fn settings_pairs(settings: &LooseSettings) -> Vec<(String, String)> {
    match settings {
        LooseSettings::Table(t) => t.iter().map(|(k, v)| (k.clone(), v.text())).collect(),
        LooseSettings::Text(text) => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for piece in text.split(',') {
                match (piece.split_once('='), pairs.last_mut()) {
                    (Some((k, v)), _) => pairs.push((k.trim().to_owned(), v.trim().to_owned())),
                    (None, Some((_, v))) => {
                        v.push(',');
                        v.push_str(piece.trim());
                    }
                    (None, None) if piece.trim().is_empty() => {}
                    (None, None) => pairs.push((piece.trim().to_owned(), String::new())),
                }
            }
            pairs
        }
    }
}

/// A boolean from TOML (`true`) or from a flag/env string (`"true"`), checked later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum LooseBool {
    Bool(bool),
    Text(String),
}

/// An integer from TOML (`5`) or from a flag/env string (`"5"`), checked later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum LooseU32 {
    Int(i64),
    Text(String),
}

/// The flag names of the global settings, as clap ids, flags and env vars.
const KEYS: &[(&str, &str, &str)] = &[
    ("database_url", "--database-url", "DATABASE_URL"),
    ("migrations", "--migrations", "SHIPGATE_MIGRATIONS"),
    ("layout", "--layout", "SHIPGATE_LAYOUT"),
    ("flyway", "--flyway", "SHIPGATE_FLYWAY"),
    ("log_format", "--log-format", "SHIPGATE_LOG_FORMAT"),
    (
        "connect_timeout",
        "--connect-timeout",
        "SHIPGATE_CONNECT_TIMEOUT",
    ),
    ("lock_wait", "--lock-wait", "SHIPGATE_LOCK_WAIT"),
    ("lock_timeout", "--lock-timeout", "SHIPGATE_LOCK_TIMEOUT"),
    ("lock_retries", "--lock-retries", "SHIPGATE_LOCK_RETRIES"),
    (
        "statement_timeout",
        "--statement-timeout",
        "SHIPGATE_STATEMENT_TIMEOUT",
    ),
    ("io_timeout", "--io-timeout", "SHIPGATE_IO_TIMEOUT"),
    ("blocker_check", "--blocker-check", "SHIPGATE_BLOCKER_CHECK"),
    ("blocker_grace", "--blocker-grace", "SHIPGATE_BLOCKER_GRACE"),
    ("table_prefix", "--table-prefix", "SHIPGATE_TABLE_PREFIX"),
    ("schema", "--schema", "SHIPGATE_SCHEMA"),
    ("strict", "--strict", "SHIPGATE_STRICT"),
    (
        "allow_out_of_order",
        "--allow-out-of-order",
        "SHIPGATE_ALLOW_OUT_OF_ORDER",
    ),
    ("deploy_id", "--deploy-id", "SHIPGATE_DEPLOY_ID"),
    ("session_init", "--session-init", "SHIPGATE_SESSION_INIT"),
    ("port", "--port", "PORT"),
    ("status_token", "--status-token", "SHIPGATE_STATUS_TOKEN"),
    ("webhook_url", "--webhook-url", "SHIPGATE_WEBHOOK_URL"),
    (
        "webhook_secret",
        "--webhook-secret",
        "SHIPGATE_WEBHOOK_SECRET",
    ),
    (
        "webhook_timeout",
        "--webhook-timeout",
        "SHIPGATE_WEBHOOK_TIMEOUT",
    ),
    (
        "webhook_retries",
        "--webhook-retries",
        "SHIPGATE_WEBHOOK_RETRIES",
    ),
    (
        "require_notify",
        "--require-notify",
        "SHIPGATE_REQUIRE_NOTIFY",
    ),
    (
        "request_timeout",
        "--request-timeout",
        "SHIPGATE_REQUEST_TIMEOUT",
    ),
    (
        "shutdown_delay",
        "--shutdown-delay",
        "SHIPGATE_SHUTDOWN_DELAY",
    ),
    (
        "shutdown_timeout",
        "--shutdown-timeout",
        "SHIPGATE_SHUTDOWN_TIMEOUT",
    ),
    ("lint_gate", "--lint-gate", "SHIPGATE_LINT_GATE"),
    ("lint_severity", "--lint-severity", "SHIPGATE_LINT_SEVERITY"),
    (
        "large_table_rows",
        "--large-table-rows",
        "SHIPGATE_LARGE_TABLE_ROWS",
    ),
    (
        "large_table_size",
        "--large-table-size",
        "SHIPGATE_LARGE_TABLE_SIZE",
    ),
    (
        "allow_contract",
        "--allow-contract",
        "SHIPGATE_ALLOW_CONTRACT",
    ),
    ("adopt", "--adopt", "SHIPGATE_ADOPT"),
    (
        "transaction_mode",
        "--transaction-mode",
        "SHIPGATE_TRANSACTION_MODE",
    ),
    ("runner", "--runner", "SHIPGATE_RUNNER"),
    (
        "runner_command",
        "--runner-command",
        "SHIPGATE_RUNNER_COMMAND",
    ),
    (
        "runner_timeout",
        "--runner-timeout",
        "SHIPGATE_RUNNER_TIMEOUT",
    ),
    ("runner_grace", "--runner-grace", "SHIPGATE_RUNNER_GRACE"),
    (
        "runner_fence_wait",
        "--runner-fence-wait",
        "SHIPGATE_RUNNER_FENCE_WAIT",
    ),
    (
        "alembic_config",
        "--alembic-config",
        "SHIPGATE_ALEMBIC_CONFIG",
    ),
    (
        "alembic_version_table",
        "--alembic-version-table",
        "SHIPGATE_ALEMBIC_VERSION_TABLE",
    ),
    ("drift", "--drift", "SHIPGATE_DRIFT"),
    ("drift_ignore", "--drift-ignore", "SHIPGATE_DRIFT_IGNORE"),
    (
        "drift_ignore_schemas",
        "--drift-ignore-schemas",
        "SHIPGATE_DRIFT_IGNORE_SCHEMAS",
    ),
];

/// Builds the [`Config`] from parsed flags (with clap's matches, for value sources), the config
/// file and the platform's environment.
pub fn load(global: &Global, matches: &ArgMatches) -> Result<Config, ConfigError> {
    let (file, explicit) = match global.config.as_ref().filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => (Some(path.clone()), true),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG_FILE);
            (default.is_file().then_some(default), false)
        }
    };
    let file_text = match &file {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.clone(),
                message: if explicit {
                    format!("cannot read: {e}")
                } else {
                    format!("cannot read the default config file: {e}")
                },
            })?,
        ),
        None => None,
    };

    // An empty (or blank) flag or variable is unset: it never overrides the config file, so
    // `DATABASE_URL=` or `SHIPGATE_STATUS_TOKEN=` cannot empty a configured value.
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let cli = Layer {
        database_url: given(&global.database_url),
        migrations: global
            .migrations
            .as_ref()
            .map(|p| p.display().to_string())
            .filter(|s| !s.trim().is_empty()),
        layout: given(&global.layout),
        flyway: given(&global.flyway).map(LooseSettings::Text),
        log_format: given(&global.log_format),
        connect_timeout: given(&global.connect_timeout),
        lock_wait: given(&global.lock_wait),
        lock_timeout: given(&global.lock_timeout),
        lock_retries: given(&global.lock_retries).map(LooseU32::Text),
        statement_timeout: given(&global.statement_timeout),
        io_timeout: given(&global.io_timeout),
        blocker_check: given(&global.blocker_check).map(LooseBool::Text),
        blocker_grace: given(&global.blocker_grace),
        table_prefix: given(&global.table_prefix),
        schema: given(&global.schema),
        strict: given(&global.strict).map(LooseBool::Text),
        allow_out_of_order: given(&global.allow_out_of_order).map(LooseBool::Text),
        deploy_id: given(&global.deploy_id),
        session_init: given(&global.session_init),
        port: given(&global.port).map(LooseU32::Text),
        status_token: given(&global.status_token),
        webhook_url: given(&global.webhook_url),
        webhook_secret: given(&global.webhook_secret),
        webhook_timeout: given(&global.webhook_timeout),
        webhook_retries: given(&global.webhook_retries).map(LooseU32::Text),
        require_notify: given(&global.require_notify).map(LooseBool::Text),
        request_timeout: given(&global.request_timeout),
        shutdown_delay: given(&global.shutdown_delay),
        shutdown_timeout: given(&global.shutdown_timeout),
        lint_gate: given(&global.lint_gate),
        lint_severity: given(&global.lint_severity).map(LooseMap::Text),
        large_table_rows: given(&global.large_table_rows).map(LooseU32::Text),
        large_table_size: given(&global.large_table_size).map(LooseU32::Text),
        allow_contract: given(&global.allow_contract).map(LooseBool::Text),
        adopt: given(&global.adopt),
        transaction_mode: given(&global.transaction_mode),
        runner: given(&global.runner),
        runner_command: given(&global.runner_command),
        runner_timeout: given(&global.runner_timeout),
        runner_grace: given(&global.runner_grace),
        runner_fence_wait: given(&global.runner_fence_wait),
        alembic_config: given(&global.alembic_config),
        alembic_version_table: given(&global.alembic_version_table),
        drift: given(&global.drift),
        drift_ignore: given(&global.drift_ignore).map(LooseList::Text),
        drift_ignore_schemas: given(&global.drift_ignore_schemas).map(LooseList::Text),
    };
    let mut figment = Figment::new();
    if let Some(text) = &file_text {
        figment = figment.merge(Toml::string(text));
    }
    let figment = figment.merge(Serialized::defaults(&cli));
    let layer: Layer = figment
        .extract()
        .map_err(|e| file_error(e, file.as_deref(), file_text.as_deref()))?;

    let origin = |key: &str| -> Origin {
        let (id, flag, env) = KEYS
            .iter()
            .find(|(k, ..)| *k == key)
            .copied()
            .unwrap_or((key, key, key));
        // An empty flag or variable was dropped above: the value came from the file.
        let given = matches
            .get_raw(id)
            .is_some_and(|mut raw| raw.any(|v| !v.to_string_lossy().trim().is_empty()));
        match matches.value_source(id).filter(|_| given) {
            Some(ValueSource::CommandLine) => Origin::Flag(flag.to_owned()),
            Some(ValueSource::EnvVariable) => Origin::Env(env.to_owned()),
            _ => match (&file, &file_text) {
                (Some(path), Some(text)) => Origin::File(path.clone(), line_of(text, &[key])),
                _ => Origin::Default,
            },
        }
    };
    let invalid = |key: &str, value: &str, expected: &str| ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        origin: origin(key),
        expected: expected.to_owned(),
    };
    let duration =
        |key: &str, value: Option<&String>, default: Duration| -> Result<Duration, ConfigError> {
            match value {
                None => Ok(default),
                Some(v) => humantime::parse_duration(v.trim())
                    .map_err(|_| invalid(key, v, "a duration such as 500ms, 30s or 5m")),
            }
        };
    // Timeouts the database enforces must fit its 32-bit milliseconds: refused here (exit 2)
    // rather than by the server at connect time, where it would look like an outage.
    let server_duration =
        |key: &str, value: Option<&String>, default: Duration| -> Result<Duration, ConfigError> {
            let d = duration(key, value, default)?;
            match value {
                Some(v) if d > MAX_SERVER_TIMEOUT => Err(invalid(
                    key,
                    v,
                    &format!("a duration no longer than the {MAX_SERVER_TIMEOUT_TEXT}"),
                )),
                _ => Ok(d),
            }
        };
    let boolean = |key: &str, value: &Option<LooseBool>| -> Result<bool, ConfigError> {
        match value {
            None => Ok(false),
            Some(LooseBool::Bool(b)) => Ok(*b),
            Some(LooseBool::Text(t)) if t.trim().is_empty() => Ok(false),
            Some(LooseBool::Text(t)) => boolish(t.trim()).ok_or_else(|| {
                invalid(key, t, "true or false (also 1/0, yes/no, y/n, t/f, on/off)")
            }),
        }
    };

    let platform = detect_platform();
    let (database, database_is_default) = match layer.database_url.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => (DatabaseUrl::new(url), false),
        _ => (DatabaseUrl::new(DEFAULT_DATABASE_URL), true),
    };
    if let Err(why) = database.engine() {
        return Err(invalid(
            "database_url",
            &database.redacted(),
            &format!("a database URL: {why}"),
        ));
    }
    let log_format = match layer.log_format.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("text") => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(other) => return Err(invalid("log_format", other, "text or json")),
    };
    let whole =
        |key: &str, value: &Option<LooseU32>, default: u32, max: u32| -> Result<u32, ConfigError> {
            let expected = format!("a whole number from 0 to {max}");
            let n = match value {
                None => return Ok(default),
                Some(LooseU32::Int(n)) => {
                    u32::try_from(*n).map_err(|_| invalid(key, &n.to_string(), &expected))?
                }
                Some(LooseU32::Text(t)) => {
                    t.trim().parse().map_err(|_| invalid(key, t, &expected))?
                }
            };
            if n > max {
                return Err(invalid(key, &n.to_string(), &expected));
            }
            Ok(n)
        };
    let lock_retries = whole("lock_retries", &layer.lock_retries, 5, 1000)?;
    let statement_timeout = server_duration(
        "statement_timeout",
        layer.statement_timeout.as_ref(),
        Duration::ZERO,
    )?;
    let io_timeout = duration(
        "io_timeout",
        layer.io_timeout.as_ref(),
        Duration::from_secs(30),
    )?;
    let table_prefix = layer
        .table_prefix
        .clone()
        .unwrap_or_else(|| "shipgate".into());
    if !is_identifier(&table_prefix) {
        return Err(invalid(
            "table_prefix",
            &table_prefix,
            "lower-case letters, digits and _, starting with a letter, at most 40 characters",
        ));
    }
    let schema = layer.schema.clone().filter(|s| !s.trim().is_empty());
    if let Some(s) = &schema {
        if !is_identifier(s) {
            return Err(invalid(
                "schema",
                s,
                "lower-case letters, digits and _, starting with a letter",
            ));
        }
    }
    let transaction_mode = match layer.transaction_mode.as_deref().map(str::trim) {
        None | Some("") | Some("file") => TransactionMode::File,
        Some("all") => TransactionMode::All,
        Some(other) => return Err(invalid("transaction_mode", other, "file or all")),
    };
    // DDL commits implicitly on MySQL/MariaDB: a release there cannot be one transaction, and
    // one that is all data changes is too rare to be worth a mode that works only sometimes.
    if transaction_mode == TransactionMode::All && database.engine() == Ok(Engine::Mysql) {
        return Err(invalid(
            "transaction_mode",
            "all",
            "file on MySQL/MariaDB (DDL commits implicitly there, so a release cannot be one transaction)",
        ));
    }
    let engine = EngineSettings {
        connect_timeout: duration(
            "connect_timeout",
            layer.connect_timeout.as_ref(),
            Duration::from_secs(60),
        )?,
        lock_wait: duration(
            "lock_wait",
            layer.lock_wait.as_ref(),
            Duration::from_secs(300),
        )?,
        lock_timeout: server_duration(
            "lock_timeout",
            layer.lock_timeout.as_ref(),
            Duration::from_secs(5),
        )?,
        lock_retries,
        statement_timeout: (!statement_timeout.is_zero()).then_some(statement_timeout),
        io_timeout: (!io_timeout.is_zero()).then_some(io_timeout),
        table_prefix,
        schema,
        session_init: layer.session_init.clone().filter(|s| !s.trim().is_empty()),
        // On unless turned off.
        blocker_check: layer.blocker_check.is_none()
            || boolean("blocker_check", &layer.blocker_check)?,
        blocker_grace: duration(
            "blocker_grace",
            layer.blocker_grace.as_ref(),
            Duration::from_secs(5),
        )?,
        read_only: false,
        transaction_mode,
    };
    let policy = Policy {
        strict: boolean("strict", &layer.strict)?,
        allow_out_of_order: boolean("allow_out_of_order", &layer.allow_out_of_order)?,
        target: None,
    };
    let port = whole("port", &layer.port, 8080, 65535)? as u16;
    let secret_text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let status_token = secret_text(&layer.status_token).map(Secret::new);
    let webhook_secret = match secret_text(&layer.webhook_secret) {
        None => None,
        Some(s) => Some(
            WebhookSecret::parse(&s)
                .map_err(|expected| invalid("webhook_secret", "***", &expected))?,
        ),
    };
    let mut urls = Vec::new();
    for raw in layer
        .webhook_url
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        match WebhookUrl::parse(raw) {
            Ok(u) => urls.push(u),
            Err(shown) => {
                return Err(invalid(
                    "webhook_url",
                    &shown,
                    "comma-separated http:// or https:// URLs",
                ))
            }
        }
    }
    let webhooks = WebhookSettings {
        urls,
        secret: webhook_secret,
        timeout: duration(
            "webhook_timeout",
            layer.webhook_timeout.as_ref(),
            Duration::from_secs(5),
        )?,
        retries: whole("webhook_retries", &layer.webhook_retries, 3, 20)?,
    };
    let service = ServiceSettings {
        port,
        status_token,
        request_timeout: duration(
            "request_timeout",
            layer.request_timeout.as_ref(),
            Duration::from_secs(10),
        )?,
        shutdown_delay: duration(
            "shutdown_delay",
            layer.shutdown_delay.as_ref(),
            Duration::from_secs(2),
        )?,
        shutdown_timeout: duration(
            "shutdown_timeout",
            layer.shutdown_timeout.as_ref(),
            Duration::from_secs(10),
        )?,
    };
    let require_notify = boolean("require_notify", &layer.require_notify)?;
    let choice = match layer.layout.as_deref() {
        None => Choice::Auto,
        Some(key) => {
            Choice::from_key(key).ok_or_else(|| invalid("layout", key, Choice::EXPECTED))?
        }
    };
    let mut layout = layout::Options {
        choice,
        ..layout::Options::default()
    };
    for (key, value) in layer
        .flyway
        .as_ref()
        .map(settings_pairs)
        .unwrap_or_default()
    {
        layout
            .flyway
            .set(&key, &value)
            .map_err(|expected| invalid("flyway", &format!("{key}={value}"), &expected))?;
    }
    let gate = match layer.lint_gate.as_deref().map(str::trim) {
        None | Some("") | Some("error") => GateMode::Error,
        Some("warn" | "warning") => GateMode::Warn,
        Some("off") => GateMode::Off,
        Some(other) => return Err(invalid("lint_gate", other, "error, warn or off")),
    };
    let mut severities = BTreeMap::new();
    let pairs: Vec<(String, String)> = match &layer.lint_severity {
        None => Vec::new(),
        Some(LooseMap::Table(t)) => t.clone().into_iter().collect(),
        Some(LooseMap::Text(text)) => {
            let mut pairs = Vec::new();
            for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let Some((rule, level)) = item.split_once('=') else {
                    return Err(invalid(
                        "lint_severity",
                        item,
                        "comma-separated rule=error|warning|off pairs",
                    ));
                };
                pairs.push((rule.trim().to_owned(), level.trim().to_owned()));
            }
            pairs
        }
    };
    for (rule, level) in pairs {
        if lint::rules::find(&rule).is_none() {
            return Err(invalid(
                "lint_severity",
                &rule,
                &format!(
                    "a lint rule id ({})",
                    lint::RULES
                        .iter()
                        .map(|r| r.id)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let Some(severity) = Severity::parse(&level) else {
            return Err(invalid(
                "lint_severity",
                &format!("{rule}={level}"),
                "error, warning or off as the level",
            ));
        };
        severities.insert(rule, severity);
    }
    let default_threshold = Threshold::default();
    let rows = whole(
        "large_table_rows",
        &layer.large_table_rows,
        default_threshold.rows as u32,
        u32::MAX,
    )?;
    let bytes = match &layer.large_table_size {
        None => default_threshold.bytes,
        Some(LooseU32::Int(n)) if *n >= 0 => *n,
        Some(LooseU32::Int(n)) => {
            return Err(invalid(
                "large_table_size",
                &n.to_string(),
                "a size such as 10MB, 512kB or 1GB",
            ))
        }
        Some(LooseU32::Text(t)) => parse_size(t)
            .ok_or_else(|| invalid("large_table_size", t, "a size such as 10MB, 512kB or 1GB"))?,
    };
    let lint = LintSettings {
        gate,
        severities,
        threshold: Threshold {
            rows: i64::from(rows),
            bytes,
        },
        allow_contract: boolean("allow_contract", &layer.allow_contract)?,
    };
    let adopt = match layer.adopt.as_deref().map(str::trim) {
        None | Some("") | Some("manual") => AdoptMode::Manual,
        Some("auto") => AdoptMode::Auto,
        Some(other) => return Err(invalid("adopt", other, "manual or auto")),
    };
    let drift_mode = match layer.drift.as_deref().map(str::trim) {
        None | Some("") | Some("warn" | "warning") => DriftMode::Warn,
        Some("error") => DriftMode::Error,
        Some("off") => DriftMode::Off,
        Some(other) => return Err(invalid("drift", other, "warn, error or off")),
    };
    let globs = |key: &str, list: &Option<LooseList>| -> Result<Vec<String>, ConfigError> {
        let items = list.as_ref().map(LooseList::items).unwrap_or_default();
        match items.iter().find(|g| g.chars().any(char::is_whitespace)) {
            Some(bad) => Err(invalid(
                key,
                bad,
                "comma-separated name globs without spaces (audit_*, public.tmp_*)",
            )),
            None => Ok(items),
        }
    };
    let drift = DriftSettings {
        mode: drift_mode,
        ignore: crate::migrate::drift::Ignore {
            objects: globs("drift_ignore", &layer.drift_ignore)?,
            schemas: globs("drift_ignore_schemas", &layer.drift_ignore_schemas)?,
        },
    };
    let kind = match layer.runner.as_deref().map(str::trim) {
        None | Some("") | Some("sql") => RunnerKind::Sql,
        Some("alembic") => RunnerKind::Alembic,
        Some("command") => RunnerKind::Command,
        Some(other) => return Err(invalid("runner", other, "sql, alembic or command")),
    };
    let command_text = layer
        .runner_command
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let command = match (kind, command_text) {
        (RunnerKind::Sql, None) => None,
        (RunnerKind::Sql, Some(text)) => {
            // A command that would silently never run: most likely `runner` was forgotten.
            return Err(invalid(
                "runner_command",
                &redact_message(text),
                "no command with runner = \"sql\" (set runner = \"command\" to run it)",
            ));
        }
        (RunnerKind::Command, None) => {
            return Err(invalid(
                "runner_command",
                "",
                &format!(
                    "the command line to run: runner = \"command\" (from {}) needs one",
                    origin("runner")
                ),
            ));
        }
        (_, text) => {
            let text = text.unwrap_or(ALEMBIC_COMMAND);
            let words = split_words(text).map_err(|why| {
                invalid(
                    "runner_command",
                    &redact_message(text),
                    &format!("a command line split as a shell splits words ({why})"),
                )
            })?;
            if words.is_empty() {
                return Err(invalid("runner_command", text, "a command line"));
            }
            Some(words)
        }
    };
    // Every wait has a bound: a runner timeout of zero would be none.
    let bounded = |key: &str, value: Option<&String>, default: Duration| {
        let d = duration(key, value, default)?;
        match value {
            Some(v) if d.is_zero() => Err(invalid(key, v, "a duration above zero")),
            _ => Ok(d),
        }
    };
    let runner = RunnerSettings {
        kind,
        command,
        timeout: bounded(
            "runner_timeout",
            layer.runner_timeout.as_ref(),
            Duration::from_secs(3600),
        )?,
        grace: bounded(
            "runner_grace",
            layer.runner_grace.as_ref(),
            Duration::from_secs(5),
        )?,
        fence_wait: bounded(
            "runner_fence_wait",
            layer.runner_fence_wait.as_ref(),
            Duration::from_secs(5),
        )?,
        inherited_pgoptions: std::env::var("PGOPTIONS")
            .ok()
            .filter(|o| !o.trim().is_empty()),
        alembic_config: PathBuf::from(
            layer
                .alembic_config
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .unwrap_or("alembic.ini"),
        ),
        alembic_version_table: version_table(layer.alembic_version_table.as_deref()).map_err(
            |expected| {
                invalid(
                    "alembic_version_table",
                    layer.alembic_version_table.as_deref().unwrap_or_default(),
                    expected,
                )
            },
        )?,
    };
    let deploy = deploy_info(layer.deploy_id.clone());
    for (key, value, source) in [
        ("deploy_id", &deploy.deploy_id, deploy.deploy_id_source),
        (
            "app_version",
            &deploy.app_version,
            deploy.app_version_source,
        ),
    ] {
        let Some(value) = value else { continue };
        let problem = if value.chars().count() > MAX_DEPLOY_TEXT {
            Some(format!(
                "at most {MAX_DEPLOY_TEXT} characters (got {})",
                value.chars().count()
            ))
        } else if value.chars().any(char::is_control) {
            Some("text without control characters".to_owned())
        } else {
            None
        };
        if let Some(expected) = problem {
            let shown: String = value.chars().take(40).filter(|c| !c.is_control()).collect();
            let origin = match source {
                Some(variable) => Origin::Env(variable.to_owned()),
                None => origin(key),
            };
            return Err(ConfigError::Invalid {
                key: key.to_owned(),
                value: format!("{shown}…"),
                origin,
                expected,
            });
        }
    }
    Ok(Config {
        lint,
        adopt,
        drift,
        runner,
        service,
        webhooks,
        require_notify,
        database,
        database_is_default,
        platform,
        migrations: PathBuf::from(layer.migrations.unwrap_or_else(|| "migrations".into())),
        layout,
        log_format,
        engine,
        policy,
        deploy,
    })
}

/// A command line split into words as a POSIX shell splits them, without any expansion:
/// blanks separate words; `'…'` keeps everything literally; `"…"` keeps everything but `\"`,
/// `\\`, `\$` and `` \` ``; outside quotes `\` keeps the next character. No variables, globs,
/// pipes or `&&`: a command that needs them names a shell (`sh -c '…'`).
pub fn split_words(text: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a ' is not closed"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("a \" is not closed"),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a \" is not closed"),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("it ends with a lone \\"),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

/// `text` as clap reads a boolish flag value: `y`, `yes`, `t`, `true`, `on`, `1` and their
/// negatives, in any case.
fn boolish(text: &str) -> Option<bool> {
    use clap::builder::TypedValueParser as _;
    clap::builder::BoolishValueParser::new()
        .parse_ref(
            &clap::Command::new("shipgate"),
            None,
            std::ffi::OsStr::new(text),
        )
        .ok()
}

/// A size in bytes: a whole number with an optional unit (B, kB, MB, GB, TB; powers of 1024,
/// as PostgreSQL's `pg_size_pretty` prints them).
pub fn parse_size(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    let number: i64 = t[..split].replace('_', "").parse().ok()?;
    let factor: i64 = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 40
}

/// The line (from 1) on which `path` — a key, after the tables that lead to it — is written
/// in `text`, from the TOML parser's own spans: a commented-out key, a longer key with the same
/// start, one in another table, a quoted (`"lock_wait" = …`) or dotted one are told apart as
/// the parser tells them. `None` when `text` does not parse or holds no such key.
fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let (last, tables) = path.split_last()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    for name in tables {
        table = table.get(name)?.as_table_like()?;
    }
    let (key, _) = table.get_key_value(last)?;
    let start = key.span()?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

/// The config file's problems, named by file, key and line, never by value: a file holds the
/// database password and the tokens, and both the TOML parser's message (which quotes the
/// offending line) and serde's (`found string "…"`) would print them.
fn file_error(err: figment::Error, path: Option<&Path>, text: Option<&str>) -> ConfigError {
    let path = path.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_owned);
    if let Some(syntax) = text.and_then(syntax_error) {
        return ConfigError::File {
            path,
            message: syntax,
        };
    }
    let mut messages = Vec::new();
    for e in err {
        let key = e.path.last().cloned();
        let path: Vec<&str> = e.path.iter().map(String::as_str).collect();
        let message = match &e.kind {
            figment::error::Kind::UnknownField(field, _) => {
                // figment's path may or may not end with the unknown field itself.
                let mut path = path.clone();
                if path.last() != Some(&field.as_str()) {
                    path.push(field);
                }
                let line = text
                    .and_then(|t| line_of(t, &path))
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                format!("unknown key `{field}`{line}; see config/shipgate.toml for every key")
            }
            kind => {
                let line = text.and_then(|t| line_of(t, &path));
                let kind = kind_text(kind);
                match (key, line) {
                    (Some(k), Some(l)) => format!("key `{k}` (line {l}): {kind}"),
                    (Some(k), None) => format!("key `{k}`: {kind}"),
                    _ => kind,
                }
            }
        };
        messages.push(message);
    }
    ConfigError::File {
        path,
        message: messages.join("; "),
    }
}

/// A TOML syntax error as `TOML syntax error at line L, column C (key `k`): what`, without
/// the line's text. `None` when `text` parses.
fn syntax_error(text: &str) -> Option<String> {
    let e = text.parse::<toml::Table>().err()?;
    let mut at = String::new();
    if let Some(span) = e.span() {
        let offset = span.start.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        at = format!(" at line {line}, column {column}");
        let line_text = text.lines().nth(line - 1).unwrap_or("").trim_start();
        let key_len = line_text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(line_text.len());
        if key_len > 0 && line_text[key_len..].trim_start().starts_with('=') {
            at.push_str(&format!(" (key `{}`)", &line_text[..key_len]));
        }
    }
    // The parser's own description ("invalid basic string", "duplicate key `x`…") names
    // no value; its first line is kept, the quoted source snippet never.
    let what = e.message().lines().next().unwrap_or("").trim().to_owned();
    Some(format!("TOML syntax error{at}: {what}"))
}

/// A deserialization problem in words that name types, never the value found.
fn kind_text(kind: &figment::error::Kind) -> String {
    use figment::error::{Actual, Kind};
    let found = |a: &Actual| match a {
        Actual::Bool(_) => "a boolean".to_owned(),
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer".to_owned(),
        Actual::Float(_) => "a float".to_owned(),
        Actual::Char(_) | Actual::Str(_) => "a string".to_owned(),
        Actual::Bytes(_) => "bytes".to_owned(),
        Actual::Seq => "an array".to_owned(),
        Actual::Map => "a table".to_owned(),
        _ => "another type".to_owned(),
    };
    match kind {
        Kind::InvalidType(a, expected) => format!("expected {expected}, found {}", found(a)),
        Kind::InvalidValue(a, expected) => {
            format!("invalid value ({}): expected {expected}", found(a))
        }
        Kind::InvalidLength(n, expected) => format!("{n} items: expected {expected}"),
        Kind::UnknownVariant(_, expected) => format!("expected one of {}", expected.join(", ")),
        Kind::MissingField(field) => format!("missing key `{field}`"),
        Kind::DuplicateField(field) => format!("duplicate key `{field}`"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "number out of range".to_owned(),
        Kind::Unsupported(a) => format!("unsupported value ({})", found(a)),
        Kind::UnsupportedKey(a, expected) => {
            format!("unsupported key ({}): expected {expected}", found(a))
        }
        // Custom messages (untagged enums, figment's own) name types, not values; the first
        // line only, in case one ever quotes its input below.
        Kind::Message(m) => m.lines().next().unwrap_or("").to_owned(),
        Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
    }
}

/// Reads the platform's deploy variables. `explicit` (flag, env or file) wins.
fn deploy_info(explicit: Option<String>) -> DeployInfo {
    fn first(vars: &[&'static str]) -> Option<(String, &'static str)> {
        vars.iter().find_map(|&v| {
            std::env::var(v)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(|s| (s, v))
        })
    }
    let (deploy_id, deploy_id_source) = match explicit.filter(|s| !s.trim().is_empty()) {
        Some(id) => (Some(id), None),
        None => first(&[
            "RAILWAY_DEPLOYMENT_ID",
            "HEROKU_RELEASE_VERSION",
            "RENDER_DEPLOY_ID",
            "FLY_MACHINE_VERSION",
            "GITHUB_RUN_ID",
        ])
        .map_or((None, None), |(id, var)| (Some(id), Some(var))),
    };
    let (app_version, app_version_source) = first(&[
        "SHIPGATE_APP_VERSION",
        "RAILWAY_GIT_COMMIT_SHA",
        "HEROKU_SLUG_COMMIT",
        "SOURCE_VERSION",
        "RENDER_GIT_COMMIT",
        "FLY_IMAGE_REF",
        "GITHUB_SHA",
    ])
    .map_or((None, None), |(v, var)| (Some(v), Some(var)));
    let host = first(&["RAILWAY_REPLICA_ID", "HOSTNAME"])
        .map(|(h, _)| h)
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    DeployInfo {
        deploy_id,
        deploy_id_source,
        app_version,
        app_version_source,
        host,
        pid: std::process::id(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_read_as_clap_reads_boolish_flags() {
        for yes in ["y", "YES", "t", "True", "on", "1"] {
            assert_eq!(super::boolish(yes), Some(true), "{yes}");
        }
        for no in ["n", "No", "f", "FALSE", "off", "0"] {
            assert_eq!(super::boolish(no), Some(false), "{no}");
        }
        for neither in ["2", "enabled", "tru", ""] {
            assert_eq!(super::boolish(neither), None, "{neither}");
        }
    }

    use super::*;
    use crate::cli::Cli;
    use clap::{CommandFactory, FromArgMatches};

    fn load_args(args: &[&str]) -> Result<Config, ConfigError> {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .expect("valid arguments");
        let cli = Cli::from_arg_matches(&matches).expect("valid arguments");
        load(&cli.global, &matches)
    }

    #[test]
    fn the_driver_reads_sqlalchemy_urls_without_their_driver_part() {
        let cases = [
            ("postgresql+psycopg://u:p@h/db", "postgresql://u:p@h/db"),
            (
                "mysql+pymysql://root@h:3306/db?x=1",
                "mysql://root@h:3306/db?x=1",
            ),
            ("postgres://u:p+q@h/db", "postgres://u:p+q@h/db"),
            ("sqlite://app.db", "sqlite://app.db"),
        ];
        for (url, want) in cases {
            let url = DatabaseUrl::new(url);
            assert_eq!(url.for_driver(), want);
        }
        assert_eq!(
            DatabaseUrl::new("postgresql+psycopg://u:p@h/db").expose(),
            "postgresql+psycopg://u:p@h/db",
            "a runner's child gets the URL as configured"
        );
    }

    #[test]
    fn alembic_version_table_is_a_name_or_schema_dot_name() {
        let ok = [
            (None, (None, "alembic_version")),
            (Some("  "), (None, "alembic_version")),
            (Some("versions"), (None, "versions")),
            (
                Some(" app.alembic_version "),
                (Some("app"), "alembic_version"),
            ),
            (Some("s$1._v2"), (Some("s$1"), "_v2")),
        ];
        for (text, (schema, name)) in ok {
            let got = version_table(text).expect("valid");
            assert_eq!(
                got,
                (schema.map(str::to_owned), name.to_owned()),
                "{text:?}"
            );
        }
        let too_long = "a".repeat(64);
        for bad in [
            "a.b.c",
            ".v",
            "s.",
            "ver sion",
            "v;DROP TABLE x",
            "\"quoted\"",
            "sch-ema.v",
            too_long.as_str(),
        ] {
            assert!(version_table(Some(bad)).is_err(), "{bad:?} was accepted");
        }
        let err = load_args(&["shipgate", "--alembic-version-table", "a.b.c", "status"])
            .expect_err("three parts");
        assert!(err.to_string().contains("alembic_version_table"), "{err}");
    }

    #[test]
    fn the_committed_config_file_documents_every_key() {
        let text = include_str!("../config/shipgate.toml");
        for (key, ..) in KEYS {
            let documented = text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            assert!(documented, "config/shipgate.toml does not document `{key}`");
        }
    }

    #[test]
    fn every_shipped_config_file_loads() {
        for file in [
            "config/shipgate.toml",
            "config/examples/production.toml",
            "config/examples/staging.toml",
            "config/examples/local.toml",
        ] {
            let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
            let config = load_args(&["shipgate", "--config", &path, "status"]);
            assert!(config.is_ok(), "{file}: {:?}", config.err());
        }
    }

    #[test]
    fn file_errors_name_the_key_file_and_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cases = [
            (
                "lock_wait = \"soon\"\n",
                "invalid lock_wait = \"soon\" (from FILE:1): expected a duration",
            ),
            (
                "\nlock_retries = \"x\"\n",
                "invalid lock_retries = \"x\" (from FILE:2): expected a whole number",
            ),
            ("lock_wiat = \"1s\"\n", "unknown key `lock_wiat` (line 1)"),
            (
                "strict = \"perhaps\"\n",
                "invalid strict = \"perhaps\" (from FILE:1): expected true or false",
            ),
            ("table_prefix = \"x; DROP\"\n", "invalid table_prefix"),
            (
                "database_url = \"mysql2://u:pw@h/db\"\n",
                "unsupported scheme `mysql2`",
            ),
            ("lock_wait = [\n", "config file FILE"),
            (
                "\ndatabase_url = \"postgres://u:pw@h/db\n",
                "TOML syntax error at line 2, column 37 (key `database_url`): invalid basic string",
            ),
            (
                "status_token = pw@\n",
                "TOML syntax error at line 1, column 16",
            ),
            (
                "status_token = 1234\n",
                "key `status_token` (line 1): expected a string, found an integer",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("c{i}.toml"));
            std::fs::write(&path, text).expect("write config");
            let path_text = path.display().to_string();
            let err = load_args(&["shipgate", "--config", &path_text, "status"])
                .expect_err("must fail")
                .to_string();
            let want = want.replace("FILE", &path_text);
            assert!(err.contains(&want), "{text:?}: got {err:?}, want {want:?}");
            assert!(!err.contains("pw@"), "password leaked: {err}");
            assert!(!err.contains("1234"), "token leaked: {err}");
        }
    }

    #[test]
    fn transaction_mode_is_file_or_all_and_all_is_refused_on_mysql() {
        let mode = |args: &[&str]| load_args(args).map(|c| c.engine.transaction_mode);
        assert_eq!(
            mode(&["shipgate", "status"]).ok(),
            Some(TransactionMode::File)
        );
        let all = [
            "shipgate",
            "--database-url",
            "postgres://u@h/db",
            "--transaction-mode",
            "all",
            "status",
        ];
        assert_eq!(mode(&all).ok(), Some(TransactionMode::All));
        let err = mode(&["shipgate", "--transaction-mode", "each", "status"])
            .expect_err("not a mode")
            .to_string();
        assert!(
            err.contains("transaction_mode") && err.contains("file or all"),
            "{err}"
        );
        let err = mode(&[
            "shipgate",
            "--database-url",
            "mysql://u@h/db",
            "--transaction-mode",
            "all",
            "status",
        ])
        .expect_err("refused on MySQL")
        .to_string();
        assert!(
            err.contains("--transaction-mode") && err.contains("DDL commits implicitly"),
            "{err}"
        );
    }

    #[test]
    fn flags_override_the_file_and_are_named_in_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lock_wait = \"10s\"\nlock_retries = 2\n").expect("write config");
        let p = path.display().to_string();
        let config =
            load_args(&["shipgate", "--config", &p, "--lock-wait", "3s", "status"]).expect("valid");
        assert_eq!(config.engine.lock_wait, Duration::from_secs(3));
        assert_eq!(config.engine.lock_retries, 2);
        let err = load_args(&["shipgate", "--lock-timeout", "fast", "status"])
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("(from flag --lock-timeout)"), "{err}");
    }

    #[test]
    fn redacts_passwords_everywhere_they_hide() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            (
                "postgres://u:se%40cret@h/db?sslmode=require",
                "postgres://u:***@h/db?sslmode=require",
            ),
            (
                "postgres://u@h/db?password=secret&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            // Unencoded `?`, `#` and `/` in the password: the userinfo ends at the last `@`.
            (
                "postgres://u:S3cr?t#x/y@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("mysql://root:a/b?c@h/db", "mysql://root:***@h/db"),
            ("postgres://u:123/x@h/db", "postgres://u:***@h/db"),
            // Every secret-looking parameter, in any case, percent-encoded names too.
            (
                "postgres://u@h/db?sslpassword=k1&sslmode=require",
                "postgres://u@h/db?sslpassword=***&sslmode=require",
            ),
            (
                "postgres://u@h/db?PASSWORD=k2",
                "postgres://u@h/db?PASSWORD=***",
            ),
            (
                "postgres://u@h/db?Pwd=k3&pass=k4",
                "postgres://u@h/db?Pwd=***&pass=***",
            ),
            (
                "postgres://u@h/db?pass%77ord=k5",
                "postgres://u@h/db?pass%77ord=***",
            ),
            // A parameter value with `&` or `#`: masked up to the next `key=`, or to the end.
            (
                "postgres://u@h/db?password=a&b#c",
                "postgres://u@h/db?password=***",
            ),
            // An `@` in the query: both readings are masked.
            ("postgres://u@h:5432/db?password=p@ss", "postgres://u@h:***"),
            // Not `scheme://…`: the scheme and, for a known engine, the user name only.
            ("postgres:user:pw@host/db", "postgres:user:***"),
            ("postgresql:pw@host/db", "postgresql:***"),
            ("mysql:root:pw@host/db", "mysql:root:***"),
            ("user:pw@host/db", "***"),
            ("hunter2:", "***"),
            ("pw@host/db", "***"),
            ("not a url:secret@", "***"),
            ("sqlite://shipgate.db", "sqlite://shipgate.db"),
            ("sqlite:shipgate.db?mode=rwc", "sqlite:shipgate.db?mode=rwc"),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
        let url = DatabaseUrl::new("postgres://u:hunter2@h/db");
        assert!(!format!("{url:?} {url}").contains("hunter2"));
    }

    #[test]
    fn redacts_urls_and_secret_pairs_inside_messages() {
        for (text, want) in [
            (
                "cannot reach postgres://u:pw/x@h/db: refused",
                "cannot reach postgres://u:***@h/db: refused",
            ),
            (
                "bad option password=hunter2 given",
                "bad option password=*** given",
            ),
            (
                "error returned from database: timeout",
                "error returned from database: timeout",
            ),
            (
                "key \"sslpassword\" value \"x\"",
                "key \"sslpassword\" value \"x\"",
            ),
        ] {
            assert_eq!(redact_message(text), want, "{text}");
        }
        let url = DatabaseUrl::new("postgres://u:p%40ss%2Fword@h/db?sslpassword=k3y-phrase");
        let message = "database \"p@ss/word\" p%40ss%2Fword: k3y-phrase";
        assert_eq!(url.scrub(message), "database \"***\" ***: ***");
    }

    #[test]
    fn refuses_database_urls_the_driver_would_misread() {
        for (url, want) in [
            (
                "postgres:user:pw@host/db",
                Err("`//` after `postgres:` is missing"),
            ),
            (
                "mysql:root:pw@host/db",
                Err("`//` after `mysql:` is missing"),
            ),
            (
                "postgres://u:S3c?t@h/db",
                Err("does not parse (invalid port number)"),
            ),
            ("postgres://u:12/x@h/db", Err("an `@` after the host")),
            ("postgres://u:1#x@h/db", Err("an `@` after the host")),
            ("user:pw@host/db", Err("not a URL")),
            ("pw@host", Err("not a URL")),
            ("http://h/db", Err("unsupported scheme `http`")),
            (
                "postgres://u:p%3Fw@h:5432/db?sslmode=disable",
                Ok(Engine::Postgres),
            ),
            ("postgres://u:p@ss@h/db", Ok(Engine::Postgres)),
            (
                "postgres:///db?host=/var/run/postgresql",
                Ok(Engine::Postgres),
            ),
            ("mariadb://root@127.0.0.1:3306/db", Ok(Engine::Mysql)),
            ("sqlite:shipgate.db", Ok(Engine::Sqlite)),
            ("sqlite::memory:", Ok(Engine::Sqlite)),
            // SQLAlchemy's dialect+driver, as a Python app shares DATABASE_URL.
            ("postgresql+psycopg://u:p@h/db", Ok(Engine::Postgres)),
            ("postgresql+asyncpg://u:p@h:5432/db", Ok(Engine::Postgres)),
            ("mysql+pymysql://root@h/db", Ok(Engine::Mysql)),
            ("MariaDB+MariaDBConnector://root@h/db", Ok(Engine::Mysql)),
            ("postgresql+://u:pw@h/db", Err("no driver after `+`")),
            (
                "sqlite+pysqlite:///app.db",
                Err("SQLAlchemy's form of a SQLite URL"),
            ),
            ("redis+tls://h/0", Err("unsupported scheme `redis+tls`")),
            (
                "postgresql+psycopg:pw@h/db",
                Err("`//` after `postgresql+psycopg:`"),
            ),
        ] {
            let got = DatabaseUrl::new(url).engine();
            match (&got, want) {
                (Ok(e), Ok(w)) => assert_eq!(*e, w, "{url}"),
                (Err(e), Err(w)) => {
                    assert!(e.contains(w), "{url}: {e}");
                    assert!(!e.contains("pw") && !e.contains("S3c"), "{url}: {e}");
                }
                _ => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn reads_lint_settings_from_flags_and_files() {
        let config = load_args(&[
            "shipgate",
            "--lint-gate",
            "warn",
            "--lint-severity",
            "index-not-concurrent=off, missing-down=error",
            "--large-table-rows",
            "500",
            "--large-table-size",
            "1MB",
            "--allow-contract=true",
            "status",
        ])
        .expect("valid");
        assert_eq!(config.lint.gate, GateMode::Warn);
        assert_eq!(
            config.lint.severities,
            BTreeMap::from([
                ("index-not-concurrent".to_owned(), Severity::Off),
                ("missing-down".to_owned(), Severity::Error),
            ])
        );
        assert_eq!(
            config.lint.threshold,
            Threshold {
                rows: 500,
                bytes: 1 << 20
            }
        );
        assert!(config.lint.allow_contract);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "lint_gate = \"off\"\nlarge_table_size = 2048\n[lint_severity]\nopaque-sql = \"warning\"\n",
        )
        .expect("write config");
        let p = path.display().to_string();
        let config = load_args(&["shipgate", "--config", &p, "status"]).expect("valid");
        assert_eq!(config.lint.gate, GateMode::Off);
        assert_eq!(config.lint.threshold.bytes, 2048);
        assert_eq!(
            config.lint.severities.get("opaque-sql"),
            Some(&Severity::Warning)
        );
        for (args, want) in [
            (
                ["--lint-gate", "loud"],
                "invalid lint_gate = \"loud\" (from flag --lint-gate)",
            ),
            (
                ["--lint-severity", "no-such-rule=off"],
                "invalid lint_severity = \"no-such-rule\"",
            ),
            (
                ["--lint-severity", "opaque-sql=fatal"],
                "error, warning or off",
            ),
            (["--large-table-size", "ten"], "invalid large_table_size"),
        ] {
            let err = load_args(&["shipgate", args[0], args[1], "status"])
                .expect_err("must fail")
                .to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn reads_flyway_settings_from_a_table_or_a_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "layout = \"flyway\"\n[flyway]\nsqlMigrationPrefix = \"M\"\nmixed = true\n",
        )
        .expect("write config");
        let p = path.display().to_string();
        let config = load_args(&["shipgate", "--config", &p, "status"]).expect("valid");
        assert_eq!(config.layout.flyway.versioned_prefix, "M");
        assert!(config.layout.flyway.mixed);
        // A flag replaces the file's settings; a value with commas runs to the next `key=`.
        let config = load_args(&[
            "shipgate",
            "--config",
            &p,
            "--flyway",
            "sqlMigrationSuffixes=.sql,.pgsql, placeholderReplacement=false",
            "status",
        ])
        .expect("valid");
        assert_eq!(config.layout.flyway.suffixes, [".sql", ".pgsql"]);
        assert!(!config.layout.flyway.placeholder_replacement);
        std::fs::write(&path, "[flyway]\nmixed = \"perhaps\"\n").expect("write config");
        let err = load_args(&["shipgate", "--config", &p, "status"])
            .expect_err("invalid")
            .to_string();
        assert!(
            err.contains("invalid flyway = \"mixed=perhaps\"")
                && err.contains(":1)")
                && err.contains("true or false"),
            "{err}"
        );
        let err = load_args(&["shipgate", "--flyway", "cleanDisabled=false", "status"])
            .expect_err("unknown")
            .to_string();
        assert!(
            err.contains("--flyway") && err.contains("sqlMigrationPrefix"),
            "{err}"
        );
    }

    #[test]
    fn splits_command_lines_as_a_shell_splits_words() {
        let cases: &[(&str, &[&str])] = &[
            ("alembic upgrade heads", &["alembic", "upgrade", "heads"]),
            ("  a\tb  ", &["a", "b"]),
            (
                "sh -c 'psql -c \"SELECT 1\"'",
                &["sh", "-c", "psql -c \"SELECT 1\""],
            ),
            ("echo \"a \\\"b\\\" \\n $X\"", &["echo", "a \"b\" \\n $X"]),
            ("a\\ b c", &["a b", "c"]),
            ("x'y'\"z\"", &["xyz"]),
            ("''", &[""]),
            ("", &[]),
        ];
        for (text, want) in cases {
            let want: Vec<String> = want.iter().map(|w| (*w).to_owned()).collect();
            assert_eq!(split_words(text), Ok(want), "{text}");
        }
        for bad in ["'open", "\"open", "trailing\\"] {
            assert!(split_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_runner_settings_and_names_their_origin() {
        let c = load_args(&["shipgate", "release"]).expect("defaults load");
        assert_eq!(c.runner.kind, RunnerKind::Sql);
        assert_eq!(c.runner.command, None);
        assert_eq!(c.runner.timeout, Duration::from_secs(3600));

        let c = load_args(&["shipgate", "--runner", "alembic", "release"]).expect("loads");
        assert_eq!(c.runner.kind, RunnerKind::Alembic);
        assert_eq!(
            c.runner.command.as_deref(),
            Some(&["alembic".to_owned(), "upgrade".into(), "heads".into()][..])
        );

        let c = load_args(&[
            "shipgate",
            "--runner",
            "command",
            "--runner-command",
            "sh -c 'make migrate'",
            "--runner-timeout",
            "90s",
            "--runner-grace",
            "2s",
            "--runner-fence-wait",
            "1s",
            "release",
        ])
        .expect("loads");
        assert_eq!(c.runner.kind, RunnerKind::Command);
        assert_eq!(
            c.runner.command.as_deref(),
            Some(&["sh".to_owned(), "-c".into(), "make migrate".into()][..])
        );
        assert_eq!(
            (c.runner.timeout, c.runner.grace, c.runner.fence_wait),
            (
                Duration::from_secs(90),
                Duration::from_secs(2),
                Duration::from_secs(1)
            )
        );

        let cases: &[(&[&str], &[&str])] = &[
            (
                &["--runner", "flyway"],
                &["invalid runner", "flag --runner", "sql, alembic or command"],
            ),
            (
                &["--runner", "command"],
                &["invalid runner_command", "needs one", "flag --runner"],
            ),
            (
                &["--runner-command", "make migrate"],
                &[
                    "invalid runner_command",
                    "flag --runner-command",
                    "runner = \"sql\"",
                ],
            ),
            (
                &["--runner", "command", "--runner-command", "sh -c 'open"],
                &["invalid runner_command", "is not closed"],
            ),
            (
                &[
                    "--runner",
                    "command",
                    "--runner-command",
                    "x",
                    "--runner-timeout",
                    "0s",
                ],
                &[
                    "invalid runner_timeout",
                    "flag --runner-timeout",
                    "above zero",
                ],
            ),
            (
                &[
                    "--runner",
                    "command",
                    "--runner-command",
                    "psql postgres://u:hunter2@db/x",
                    "--runner-grace",
                    "soon",
                ],
                &["invalid runner_grace", "a duration"],
            ),
            (
                &["--runner-command", "psql postgres://u:hunter2@db/x"],
                &["invalid runner_command", "***"],
            ),
        ];
        for (args, fragments) in cases {
            let mut argv = vec!["shipgate"];
            argv.extend_from_slice(args);
            argv.push("release");
            let e = load_args(&argv).expect_err("refused").to_string();
            for f in *fragments {
                assert!(e.contains(f), "{args:?}: {e}");
            }
            assert!(!e.contains("hunter2"), "{args:?}: {e}");
        }
    }

    #[test]
    fn parses_sizes() {
        for (text, want) in [
            ("10MB", Some(10 << 20)),
            ("512kB", Some(512 << 10)),
            ("1 GB", Some(1 << 30)),
            ("4096", Some(4096)),
            ("ten", None),
            ("10XB", None),
        ] {
            assert_eq!(parse_size(text), want, "{text}");
        }
    }

    #[test]
    fn finds_the_line_of_a_key() {
        let text = "# lock_wait = \"1s\"\n\nlock_waiting = 1\nlock_wait = \"x\"\n\"schema\" = 2\ntls.mode = 3\n[extra]\nlock_wait = 4\n";
        assert_eq!(line_of(text, &["lock_wait"]), Some(4));
        assert_eq!(line_of(text, &["schema"]), Some(5));
        assert_eq!(line_of(text, &["tls", "mode"]), Some(6));
        assert_eq!(line_of(text, &["extra", "lock_wait"]), Some(8));
        assert_eq!(line_of(text, &["extra", "schema"]), None);
        assert_eq!(line_of(text, &["table"]), None);
        assert_eq!(line_of("lock_wait = ", &["lock_wait"]), None);
    }

    #[test]
    fn application_name_fits_postgres() {
        let d = DeployInfo {
            deploy_id: Some("é".repeat(40)),
            ..DeployInfo::default()
        };
        assert!(d.application_name().len() <= 63);
        assert!(d.application_name().starts_with("shipgate "));
    }
}

/// Property tests of the config loader: any file text either loads or is refused with an error
/// naming the file, never a panic; values written in the file come back validated, with the
/// file and line named when they are refused; secrets never appear in errors.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::cli::Cli;
    use clap::{CommandFactory, FromArgMatches};
    use proptest::prelude::*;

    fn load_file(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        let path = dir.join("shipgate.toml");
        std::fs::write(&path, text).expect("write config");
        let path = path.display().to_string();
        let args = ["shipgate", "--config", &path, "status"];
        let matches = Cli::command()
            .try_get_matches_from(args)
            .expect("valid arguments");
        let cli = Cli::from_arg_matches(&matches).expect("valid arguments");
        load(&cli.global, &matches)
    }

    fn config() -> ProptestConfig {
        // Bounded: each case writes and reads a file.
        ProptestConfig {
            cases: 256,
            // A failure prints its minimal input; no regression files in the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn key() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(KEYS.iter().map(|(k, ..)| *k).collect::<Vec<_>>())
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            "[0-9]{1,12}(ms|s|m|h|d)".prop_map(|s| format!("{s:?}")),
            Just("[1, 2]".to_owned()),
            Just("{ a = 1 }".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_loads_or_names_the_file(text in "\\PC{0,120}") {
            let dir = tempfile::tempdir().expect("temp dir");
            if let Err(e) = load_file(dir.path(), &text) {
                prop_assert!(e.to_string().contains("shipgate.toml"), "{}", e);
            }
        }

        #[test]
        fn any_key_with_any_value_loads_or_names_key_and_line(
            pairs in proptest::collection::vec((key(), value()), 1..5),
        ) {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut text = String::from("# generated\n");
            let mut seen = std::collections::HashSet::new();
            for (k, v) in &pairs {
                if seen.insert(*k) {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            if let Err(e) = load_file(dir.path(), &text) {
                let message = e.to_string();
                prop_assert!(message.contains("shipgate.toml"), "{}", message);
                if let ConfigError::Invalid { key, origin, .. } = &e {
                    let line = text.lines().position(|l| l.starts_with(&format!("{key} ="))).map(|i| i + 1);
                    prop_assert!(line.is_some(), "{} is not in the file", key);
                    prop_assert!(matches!(origin, Origin::File(_, l) if *l == line), "{:?}", origin);
                }
            }
        }

        #[test]
        fn durations_in_range_load_and_out_of_range_are_refused(ms in 0u64..=1_000_000_000_000) {
            let dir = tempfile::tempdir().expect("temp dir");
            let text = format!("lock_timeout = \"{ms}ms\"\nstatement_timeout = \"{ms}ms\"\n");
            let result = load_file(dir.path(), &text);
            if ms <= i32::MAX as u64 {
                let c = result.expect("in range");
                prop_assert_eq!(c.engine.lock_timeout, Duration::from_millis(ms));
                prop_assert_eq!(c.engine.statement_timeout, (ms > 0).then(|| Duration::from_millis(ms)));
            } else {
                let e = result.expect_err("out of range").to_string();
                prop_assert!(e.contains("at most 24d") && e.contains("_timeout = "), "{}", e);
            }
        }

        #[test]
        fn a_password_in_any_url_form_is_never_printed(
            tail in "[A-Za-z0-9?#/@:&=%+ ._~!$'()*,;-]{1,16}",
            form in 0usize..14,
        ) {
            // A distinctive prefix: the password can only appear in the output by leaking.
            let password = format!("Zq7{tail}");
            let encoded: String = password
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                .collect();
            let url = match form {
                0 => format!("postgres://u:{password}@db.example:5432/app"),
                1 => format!("postgres://u:{password}@db.example/app?sslmode=require"),
                2 => format!("postgresql://u:{password}@db.example"),
                3 => format!("mysql://u:{password}@db.example:3306/app"),
                4 => format!("mariadb://u:{password}@db.example/app"),
                5 => format!("postgres:u:{password}@db.example/app"),
                6 => format!("mysql:u:{password}@db.example/app"),
                7 => format!("u:{password}@db.example/app"),
                8 => format!("postgres://u@db.example/app?password={password}"),
                9 => format!("postgres://u@db.example/app?sslpassword={password}&sslmode=require"),
                10 => format!("postgres://u@db.example/app?PASSWORD={password}"),
                11 => format!("postgres://u:{encoded}@db.example/app"),
                12 => format!("postgres://u:{password}@[::1]:5432/app"),
                _ => password.clone(),
            };
            let db = DatabaseUrl::new(url.as_str());
            let message = format!("database \"{password}\" ({encoded}) refused {url}");
            let printed = [
                redact(&url),
                format!("{db} {db:?}"),
                db.engine().err().unwrap_or_default(),
                db.scrub(&message),
            ];
            // In free text a URL ends at whitespace or a quote: a password holding one is
            // masked up to there only; a bare password in a sentence is just a word.
            let one_word = !password.contains(|c: char| c.is_whitespace() || c == '\'');
            let printed = printed.into_iter().chain(
                (one_word && form < 13).then(|| redact_message(&format!("connecting to {url} failed"))),
            );
            for text in printed {
                prop_assert!(!text.contains(&password), "{} printed {}", url, text);
                prop_assert!(!text.contains(&encoded), "{} printed {}", url, text);
            }
        }

        #[test]
        fn a_secret_in_a_bad_value_is_never_echoed(secret in "[A-Za-z0-9]{12,24}") {
            let dir = tempfile::tempdir().expect("temp dir");
            let text = format!(
                "database_url = \"pg://u:{secret}@h/db\"\nwebhook_secret = \"{secret}\"\n"
            );
            let e = load_file(dir.path(), &text).expect_err("two bad values").to_string();
            prop_assert!(!e.contains(&secret), "{}", e);
            let text = format!("webhook_secret = \"x{secret}\"\n");
            let e = load_file(dir.path(), &text).expect_err("not whsec_").to_string();
            prop_assert!(!e.contains(&secret), "{}", e);
        }
    }
}
