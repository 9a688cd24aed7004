//! Fixtures shared by every integration test: a fresh database per test, a temporary project
//! with a migrations directory, and running the real `shipgate` binary against them.
//!
//! Owns the test databases' lifecycle (a uniquely named PostgreSQL or MariaDB database dropped
//! on `Drop`, or a SQLite file in a temporary directory) and the child process environment
//! (cleared, so a developer's `DATABASE_URL` or `SHIPGATE_*` variables never leak into a test).
//! It must not assert anything about shipgate's behaviour: the test modules do that. A server
//! that is down is a failure, never a reason to skip: every engine listed in [`Engine`] is
//! tested on every run.
//!
//! For the release and HTTP tests: [`Project::platform_command`] runs shipgate as a platform
//! does (JSON logs, `PORT=0`, secrets that must never be printed), `service` keeps a serving
//! process and speaks HTTP/1.1 to it, and `receiver` plays a webhook receiver.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};
use tempfile::TempDir;

pub mod mariadbserver;
pub mod pgbouncer;
pub mod pgcluster;
pub mod proxy;
mod receiver;
mod scratch;
mod service;

pub use receiver::{Delivery, Receiver, Reply};
pub use service::{
    connect, eventually, finish_within, http_get, read_response, send_signal, terminate,
    HttpResponse, Service,
};

/// The database password the release and HTTP tests put in their URLs (trust auth ignores it).
/// It must appear in no output: logs, command output, HTTP bodies, webhook payloads.
pub const DB_PASSWORD: &str = "s3cret-pw";
/// The Standard Webhooks secret of those tests (key: `shipgate-it-webhook-key-0123456789`).
/// It must appear in no output either, encoded or decoded.
pub const WEBHOOK_SECRET: &str = "whsec_c2hpcGdhdGUtaXQtd2ViaG9vay1rZXktMDEyMzQ1Njc4OQ==";
/// The `/migrations/status` bearer token of those tests; never printed either.
pub const STATUS_TOKEN: &str = "it-status-token-7f3a9c";

/// Panics when `text` contains the database password, the webhook secret (encoded or its
/// decoded key) or the status token.
#[track_caller]
pub fn assert_secret_free(what: &str, text: &str) {
    let key = WEBHOOK_SECRET
        .trim_start_matches("whsec_")
        .trim_end_matches('=');
    for (name, secret) in [
        ("database password", DB_PASSWORD),
        ("webhook secret", key),
        ("webhook key", "shipgate-it-webhook-key"),
        ("status token", STATUS_TOKEN),
    ] {
        assert!(
            !text.contains(secret),
            "{what} contains the {name}:\n{text}"
        );
    }
}

/// The server the PostgreSQL tests create their databases on (trust auth, local).
/// `SHIPGATE_IT_POSTGRES_URL` overrides it; the value must point at a maintenance database.
fn pg_admin_url() -> String {
    std::env::var("SHIPGATE_IT_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The server the MariaDB tests create their databases on (root, no password, local).
/// `SHIPGATE_IT_MARIADB_URL` overrides it; the value names no database.
fn mariadb_admin_url() -> String {
    std::env::var("SHIPGATE_IT_MARIADB_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
        .trim_end_matches('/')
        .to_owned()
}

/// How long the suite's own connections (creating, querying, dropping databases) may take.
const CONNECT_BOUND: Duration = Duration::from_secs(10);

/// Generates one `#[test]` per engine for a test body `fn name(engine: Engine)`, as a module
/// named after the body: `name::postgres`, `name::sqlite` and `name::mariadb`. One body, every
/// engine: where an engine legitimately behaves differently, the body says so.
macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn postgres() {
                    super::$name($crate::support::Engine::Postgres)
                }
                #[test]
                fn sqlite() {
                    super::$name($crate::support::Engine::Sqlite)
                }
                #[test]
                fn mariadb() {
                    super::$name($crate::support::Engine::Mariadb)
                }
            }
        )+
    };
}

/// Runs `future` to completion on a small runtime of its own (tests are synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime always builds")
        .block_on(future)
}

/// The database engines under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL on the local server.
    Postgres,
    /// A SQLite file.
    Sqlite,
    /// MariaDB on the local server, through shipgate's MySQL backend.
    Mariadb,
}

impl Engine {
    /// The name `status --json` reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
            Engine::Mariadb => "mysql",
        }
    }

    /// Whether a migration and its history row commit atomically. Not on MySQL/MariaDB, where
    /// DDL commits implicitly: there every migration runs statement by statement, and a failure
    /// leaves the statements before it committed and a dirty history row.
    pub fn atomic_ddl(self) -> bool {
        self != Engine::Mariadb
    }
}

/// A fresh, empty database for one test; dropped (PostgreSQL, MariaDB) or deleted (SQLite)
/// afterwards.
pub enum Db {
    /// A uniquely named database on the local server.
    Postgres {
        /// The database's name.
        name: String,
        /// Its URL (no password: trust auth).
        url: String,
    },
    /// A uniquely named database on the local MariaDB server.
    Mariadb {
        /// The database's name.
        name: String,
        /// Its `mysql://` URL (no password).
        url: String,
    },
    /// A file in a temporary directory that does not exist until shipgate creates it.
    Sqlite {
        /// Keeps the directory alive.
        _dir: TempDir,
        /// The database file.
        path: PathBuf,
        /// `sqlite://<path>`.
        url: String,
    },
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    format!(
        "sg_it_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

impl Db {
    /// Creates a fresh database of `engine`.
    pub fn new(engine: Engine) -> Db {
        match engine {
            Engine::Postgres => {
                let name = unique_name();
                let admin = pg_admin_url();
                block_on(async {
                    let mut conn =
                        connect_or_panic::<sqlx::PgConnection>("PostgreSQL", &admin).await;
                    // Concurrent CREATE DATABASE from one template can collide; retry briefly.
                    let mut attempt = 0;
                    loop {
                        match sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                            .execute(&mut conn)
                            .await
                        {
                            Ok(_) => break,
                            Err(e) if attempt < 10 => {
                                attempt += 1;
                                eprintln!("CREATE DATABASE {name} failed ({e}); retrying");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Err(e) => panic!("CREATE DATABASE {name}: {e}"),
                        }
                    }
                    let _ = conn.close().await;
                });
                let base = admin
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .expect("the admin URL ends in /<database>");
                let url = format!("{base}/{name}");
                Db::Postgres { name, url }
            }
            Engine::Mariadb => {
                let name = unique_name();
                let admin = mariadb_admin_url();
                block_on(async {
                    let mut conn =
                        connect_or_panic::<sqlx::MySqlConnection>("MariaDB", &admin).await;
                    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                        .execute(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
                    let _ = conn.close().await;
                });
                let url = format!("{admin}/{name}");
                Db::Mariadb { name, url }
            }
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("creating a temporary directory");
                let path = dir.path().join("test.db");
                let url = format!("sqlite://{}", path.display());
                Db::Sqlite {
                    _dir: dir,
                    path,
                    url,
                }
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        match self {
            Db::Postgres { .. } => Engine::Postgres,
            Db::Mariadb { .. } => Engine::Mariadb,
            Db::Sqlite { .. } => Engine::Sqlite,
        }
    }

    /// The URL shipgate connects to.
    pub fn url(&self) -> &str {
        match self {
            Db::Postgres { url, .. } | Db::Mariadb { url, .. } | Db::Sqlite { url, .. } => url,
        }
    }

    /// The URL with [`DB_PASSWORD`] as the password (PostgreSQL; trust auth ignores it).
    pub fn url_with_password(&self) -> String {
        match self {
            Db::Postgres { url, .. } => {
                let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
                match rest.split_once('@') {
                    Some((user, host)) if !user.contains(':') => {
                        format!("{scheme}://{user}:{DB_PASSWORD}@{host}")
                    }
                    _ => url.clone(),
                }
            }
            Db::Mariadb { url, .. } | Db::Sqlite { url, .. } => url.clone(),
        }
    }

    /// The single integer a query on the server's maintenance database returns (for
    /// statistics about this database that must not be disturbed by the query itself).
    pub fn admin_int(&self, sql: &str) -> i64 {
        let admin = pg_admin_url();
        let cell: Option<String> = block_on(async {
            let mut c = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
            let row = sqlx::raw_sql(sql)
                .fetch_one(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = c.close().await;
            row.try_get_unchecked::<Option<String>, usize>(0)
                .expect("cast the column to text")
        });
        let cell = cell.unwrap_or_else(|| panic!("{sql}: NULL"));
        cell.parse()
            .unwrap_or_else(|e| panic!("{sql}: {cell:?} is not an integer: {e}"))
    }

    /// The PostgreSQL database name (panics for SQLite).
    pub fn pg_name(&self) -> &str {
        self.name()
    }

    /// The server-side database name (panics for SQLite).
    pub fn name(&self) -> &str {
        match self {
            Db::Postgres { name, .. } | Db::Mariadb { name, .. } => name,
            Db::Sqlite { .. } => panic!("name on a SQLite database"),
        }
    }

    /// The SQLite file (panics for the server engines).
    pub fn sqlite_path(&self) -> &Path {
        match self {
            Db::Sqlite { path, .. } => path,
            Db::Postgres { .. } | Db::Mariadb { .. } => {
                panic!("sqlite_path on a server database")
            }
        }
    }

    /// Runs `sql` (one or more statements).
    pub fn exec(&self, sql: &str) {
        self.query(sql);
    }

    /// A PostgreSQL session named `held-by-test`, idle in transaction after reading `users`
    /// (it holds ACCESS SHARE on it until it ends), and its backend pid.
    pub fn idle_reader_of_users(&self) -> (Session, i64) {
        let mut session = self.session();
        session.exec("SET application_name = 'held-by-test'");
        let pid: i64 = session.query("SELECT CAST(pg_backend_pid() AS TEXT)")[0][0]
            .as_deref()
            .and_then(|p| p.parse().ok())
            .expect("a pid");
        session.exec("BEGIN; SELECT count(*) FROM users");
        (session, pid)
    }

    /// Runs a query (one or more statements) on a fresh connection and returns every column as
    /// optional text. No casts are needed: the simple-query (PostgreSQL) and text (MySQL)
    /// protocols send text, and SQLite converts on request.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut session = self.session();
        session.query(sql)
    }

    /// A connection of the test's own, kept open until dropped: to hold a lock or a
    /// transaction while shipgate runs.
    pub fn session(&self) -> Session {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime always builds");
        let conn = runtime.block_on(async {
            match self {
                Db::Postgres { url, .. } => {
                    AnyConn::Postgres(connect_or_panic("PostgreSQL", url).await)
                }
                Db::Mariadb { url, .. } => AnyConn::Mariadb(connect_or_panic("MariaDB", url).await),
                Db::Sqlite { url, .. } => AnyConn::Sqlite(connect_or_panic("SQLite", url).await),
            }
        });
        Session {
            runtime,
            conn: Some(conn),
        }
    }

    /// A quoted identifier, for column names that are keywords (`before`, `after`).
    pub fn ident(&self, name: &str) -> String {
        match self {
            Db::Mariadb { .. } => format!("`{name}`"),
            Db::Postgres { .. } | Db::Sqlite { .. } => format!("\"{name}\""),
        }
    }

    /// The single integer a query such as `SELECT count(*) …` returns.
    pub fn int(&self, sql: &str) -> i64 {
        let rows = self.query(sql);
        let cell = rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            .unwrap_or_else(|| panic!("{sql}: no value"));
        cell.parse()
            .unwrap_or_else(|e| panic!("{sql}: {cell:?} is not an integer: {e}"))
    }

    /// Whether a table exists. A SQLite file that was never created has no tables.
    pub fn table_exists(&self, table: &str) -> bool {
        let sql = match self {
            Db::Postgres { .. } => format!(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '{table}'"
            ),
            Db::Mariadb { .. } => format!(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
            Db::Sqlite { path, .. } => {
                if !path.exists() {
                    return false;
                }
                format!(
                    "SELECT count(*) FROM sqlite_master \
                     WHERE type = 'table' AND name = '{table}'"
                )
            }
        };
        self.int(&sql) == 1
    }

    /// The rows of `shipgate_migrations`, oldest version first (sorted here: the column is
    /// text, which the server would sort `10` before `9`).
    pub fn history(&self) -> Vec<HistoryRow> {
        let mut rows: Vec<HistoryRow> = self
            .query(
                "SELECT version, name, checksum, state, statements_done FROM shipgate_migrations",
            )
            .into_iter()
            .map(|r| HistoryRow {
                version: r[0]
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .expect("version"),
                name: r[1].clone().expect("name"),
                checksum: r[2].clone().expect("checksum"),
                state: r[3].clone().expect("state"),
                statements_done: r[4]
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .expect("statements_done"),
            })
            .collect();
        rows.sort_by_key(|r| r.version);
        rows
    }

    /// The versions in `shipgate_migrations`, ascending.
    pub fn versions(&self) -> Vec<i64> {
        self.history().iter().map(|r| r.version).collect()
    }

    /// The rows of `shipgate_audit`, oldest first.
    pub fn audit(&self) -> Vec<AuditRow> {
        self.query(&format!(
            "SELECT action, version, reason, {}, {} FROM shipgate_audit ORDER BY id",
            self.ident("before"),
            self.ident("after")
        ))
        .into_iter()
        .map(|r| AuditRow {
            action: r[0].clone().expect("action"),
            version: r[1].as_deref().and_then(|v| v.parse().ok()),
            reason: r[2].clone(),
            before: r[3].clone(),
            after: r[4].clone(),
        })
        .collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let result = match self {
            Db::Postgres { name, .. } => {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let admin = pg_admin_url();
                block_on(bounded(&sql, async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await?;
                    sqlx::raw_sql(&sql).execute(&mut conn).await?;
                    conn.close().await
                }))
            }
            Db::Mariadb { name, .. } => {
                // A metadata lock left by a killed session must not hang the drop.
                let sql =
                    format!("SET SESSION lock_wait_timeout = 20; DROP DATABASE IF EXISTS {name}");
                let admin = mariadb_admin_url();
                block_on(bounded(&sql, async {
                    let mut conn = sqlx::MySqlConnection::connect(&admin).await?;
                    sqlx::raw_sql(&sql).execute(&mut conn).await?;
                    conn.close().await
                }))
            }
            Db::Sqlite { .. } => Ok(()),
        };
        if let Err(e) = result {
            eprintln!("dropping the test database: {e}");
        }
    }
}

/// Runs `work` for at most 30 s.
async fn bounded<T>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(30), work).await {
        Ok(result) => result.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within 30s")),
    }
}

/// Connects within [`CONNECT_BOUND`], or panics saying which server is down. A server that is
/// down fails the test: the suite never skips an engine.
async fn connect_or_panic<C: Connection>(engine: &str, url: &str) -> C {
    match tokio::time::timeout(CONNECT_BOUND, C::connect(url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "{engine} at {url} is not reachable: {e}. The integration suite tests every engine \
             and never skips one: make sure it runs (.ci/run starts PostgreSQL and MariaDB)"
        ),
        Err(_) => panic!(
            "{engine} at {url} did not answer within {CONNECT_BOUND:?}. The integration suite \
             tests every engine and never skips one: make sure it runs (.ci/run starts \
             PostgreSQL and MariaDB)"
        ),
    }
}

/// An open connection of one engine.
enum AnyConn {
    Postgres(sqlx::PgConnection),
    Mariadb(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

/// A connection of the test's own, with the runtime it lives on, closed when dropped.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    conn: Option<AnyConn>,
}

impl Session {
    /// Runs `sql` (one or more statements); panics when it fails.
    pub fn exec(&mut self, sql: &str) {
        self.query(sql);
    }

    /// Runs a query (one or more statements) and returns every column as optional text.
    pub fn query(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`Session::query`] for a statement expected to fail: the server's error as text.
    pub fn try_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        fn texts<R: Row>(row: &R) -> Vec<Option<String>>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            (0..row.len())
                .map(|i| {
                    row.try_get_unchecked::<Option<String>, usize>(i)
                        .unwrap_or_else(|e| panic!("column {i} does not decode as text: {e}"))
                })
                .collect()
        }
        let conn = self.conn.as_mut().expect("open until dropped");
        let work = async {
            match conn {
                AnyConn::Postgres(c) => sqlx::raw_sql(sql)
                    .fetch_all(c)
                    .await
                    .map(|rows| rows.iter().map(texts).collect()),
                AnyConn::Mariadb(c) => sqlx::raw_sql(sql)
                    .fetch_all(c)
                    .await
                    .map(|rows| rows.iter().map(texts).collect()),
                AnyConn::Sqlite(c) => sqlx::raw_sql(sql)
                    .fetch_all(c)
                    .await
                    .map(|rows| rows.iter().map(texts).collect()),
            }
        };
        match self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), work).await })
        {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => panic!("{sql}: no answer within 60s"),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let close = async {
            let _ = match conn {
                AnyConn::Postgres(c) => c.close().await,
                AnyConn::Mariadb(c) => c.close().await,
                AnyConn::Sqlite(c) => c.close().await,
            };
        };
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), close).await });
    }
}

/// One row of `shipgate_migrations`, as the tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub state: String,
    pub statements_done: i64,
}

/// One row of `shipgate_audit`, as the tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub action: String,
    pub version: Option<i64>,
    pub reason: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Lower-case hex SHA-256 of a file's text, as shipgate records it (LF line endings, no BOM).
pub fn checksum(text: &str) -> String {
    let normal = text.replace("\r\n", "\n");
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// A temporary project: the working directory shipgate runs in, with `migrations/` inside.
pub struct Project {
    dir: TempDir,
}

impl Project {
    /// An empty project with an empty `migrations/` directory.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        std::fs::create_dir(dir.path().join("migrations")).expect("creating migrations/");
        Project { dir }
    }

    /// The project directory (shipgate's working directory).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The migrations directory.
    pub fn migrations(&self) -> PathBuf {
        self.root().join("migrations")
    }

    /// Writes `migrations/<file>`.
    pub fn write(&self, file: &str, text: &str) -> &Project {
        self.write_bytes(file, text.as_bytes())
    }

    /// Writes `migrations/<file>` byte for byte.
    pub fn write_bytes(&self, file: &str, bytes: &[u8]) -> &Project {
        std::fs::write(self.migrations().join(file), bytes)
            .unwrap_or_else(|e| panic!("writing {file}: {e}"));
        self
    }

    /// Writes a file anywhere under the project (config files).
    pub fn write_root(&self, file: &str, text: &str) -> PathBuf {
        let path = self.root().join(file);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {file}: {e}"));
        path
    }

    /// The file names in `migrations/`, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.migrations())
            .expect("listing migrations/")
            .map(|e| {
                e.expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// A project whose first migration, `1_users.up.sql`, creates table `users`.
    pub fn with_users() -> Project {
        let p = Project::new();
        p.write(
            "1_users.up.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY);\n",
        );
        p
    }

    /// A `shipgate` command in this project: environment cleared, text logs, bounded waits,
    /// `DATABASE_URL` set when `db` is given. Arguments and variables can still be added.
    pub fn command(&self, db: Option<&Db>, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipgate"));
        cmd.env_clear()
            .current_dir(self.root())
            .env("SHIPGATE_LOG_FORMAT", "text")
            .env("SHIPGATE_CONNECT_TIMEOUT", "10s")
            .env("SHIPGATE_LOCK_WAIT", "60s")
            .env("HOSTNAME", "it-host")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(db) = db {
            cmd.env("DATABASE_URL", db.url());
        }
        cmd
    }

    /// `shipgate <args>` as a platform runs it: JSON logs, `PORT=0`, the database URL with a
    /// password, a webhook signing secret and a status token (see [`assert_secret_free`]).
    /// Webhook URLs and deploy variables can be added.
    pub fn platform_command(&self, db: &Db, args: &[&str]) -> Command {
        let mut cmd = self.command(None, args);
        cmd.env("DATABASE_URL", db.url_with_password())
            .env("SHIPGATE_LOG_FORMAT", "json")
            .env("PORT", "0")
            .env("SHIPGATE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SHIPGATE_STATUS_TOKEN", STATUS_TOKEN);
        cmd
    }

    /// Runs `shipgate <args>` against `db` and waits for it.
    pub fn run(&self, db: &Db, args: &[&str]) -> Run {
        Run::wait(self.command(Some(db), args))
    }

    /// Runs `shipgate <args>` with no database configured.
    pub fn run_offline(&self, args: &[&str]) -> Run {
        Run::wait(self.command(None, args))
    }
}

/// A fresh database of `engine` with `users` applied and `2_email` (an `ALTER TABLE users`)
/// pending: a migration that needs a strong lock on a table the app reads.
pub fn email_pending(engine: Engine) -> (Db, Project) {
    let db = Db::new(engine);
    let p = Project::with_users();
    p.run(&db, &["up"]).code(0);
    p.write(
        "2_email.up.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    (db, p)
}

/// A finished `shipgate` process.
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Command output.
    pub stdout: String,
    /// Logs and the error line.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// The process id.
    pub pid: u32,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?} (pid {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.elapsed, self.pid, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Spawns `cmd` and waits for it.
    pub fn wait(mut cmd: Command) -> Run {
        Run::finish(spawn(&mut cmd), Instant::now())
    }

    /// Spawns `cmd` and waits at most `bound` for it; a process still running then is killed
    /// and the test fails (for runs whose failure mode is hanging).
    #[track_caller]
    pub fn wait_within(mut cmd: Command, bound: Duration) -> Run {
        let started = Instant::now();
        let mut child = spawn(&mut cmd);
        loop {
            match child.try_wait().expect("polling shipgate") {
                Some(_) => return Run::finish(child, started),
                None if started.elapsed() >= bound => {
                    // Kill by this child's own pid; the output collected so far explains it.
                    let _ = child.kill();
                    let run = Run::finish(child, started);
                    panic!("still running after {bound:?}, killed: {run:?}");
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Waits for a spawned child started at `started`.
    pub fn finish(child: Child, started: Instant) -> Run {
        let pid = child.id();
        let out = child.wait_with_output().expect("waiting for shipgate");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
            pid,
        }
    }

    /// Panics with the whole run unless it exited with `code`.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:?}");
        self
    }

    /// Panics unless stderr contains every fragment.
    #[track_caller]
    pub fn stderr_has(&self, fragments: &[&str]) -> &Run {
        for f in fragments {
            assert!(self.stderr.contains(f), "stderr lacks {f:?}: {self:?}");
        }
        self
    }

    /// Panics unless stdout contains every fragment.
    #[track_caller]
    pub fn stdout_has(&self, fragments: &[&str]) -> &Run {
        for f in fragments {
            assert!(self.stdout.contains(f), "stdout lacks {f:?}: {self:?}");
        }
        self
    }

    /// Panics when stdout or stderr contains a secret (see [`assert_secret_free`]).
    #[track_caller]
    pub fn secret_free(&self) -> &Run {
        assert_secret_free("stdout", &self.stdout);
        assert_secret_free("stderr", &self.stderr);
        self
    }

    /// Stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The JSON log lines on stderr (run with `--log-format json`).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Spawns `cmd`, panicking with the reason when it cannot start.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.spawn().expect("starting the shipgate binary")
}

/// The sorted keys of a JSON object.
#[track_caller]
pub fn keys(value: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `bound`.
#[track_caller]
pub fn wait_for<T>(what: &str, bound: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(started.elapsed() < bound, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
