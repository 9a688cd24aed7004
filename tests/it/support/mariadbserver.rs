//! A private MariaDB server for tests that stop and start the database: `mariadb-install-db`
//! into a temporary directory, `mariadbd` on a spare port on 127.0.0.1, `root` without a
//! password. The shared server on 3306 is never touched.
//!
//! Owns the data directory and the server process: dropping it kills the server and deletes
//! the directory. As root (CI), the server runs as the `mysql` user. Asserts nothing about
//! shipgate.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::scratch::{self, is_root, run};

/// A private MariaDB server.
pub struct MariaServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: TempDir,
    server: Option<Child>,
    /// More server options, given at every start.
    options: Vec<String>,
}

impl MariaServer {
    /// Creates a data directory and starts the server.
    pub fn start() -> MariaServer {
        MariaServer::start_with(&[])
    }

    /// [`MariaServer::start`] with more server options (`--performance-schema=ON`).
    pub fn start_with(options: &[&str]) -> MariaServer {
        let (dir, port) = scratch::dir_and_port("shipgate-mariadb-");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if is_root() {
            run(Command::new("chown").arg("mysql").arg(dir.path()));
            install.arg("--user=mysql");
        }
        run(&mut install);
        let mut server = MariaServer {
            port,
            dir,
            server: None,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        };
        server.up();
        server
    }

    /// Starts the server and waits (up to 60 s) until it accepts connections.
    pub fn up(&mut self) {
        let path = |name: &str| self.dir.path().join(name);
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", path("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", path("mysqld.sock").display()))
            .arg(format!("--pid-file={}", path("mysqld.pid").display()))
            .arg(format!("--log-error={}", path("error.log").display()))
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .args(&self.options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=mysql");
        }
        self.server = Some(cmd.spawn().expect("starting mariadbd"));
        let started = Instant::now();
        while !self.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd on {} did not start within 60 s: {}",
                self.port,
                std::fs::read_to_string(path("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server: `crash` kills it (SIGKILL), otherwise a clean shutdown (SIGTERM: it
    /// ends every session), waiting for the process to exit.
    pub fn down(&mut self, crash: bool) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        if crash {
            let _ = child.kill();
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL of database `db` on this server (root has no password here).
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL in database `db` (empty: none) with the `mariadb` client; returns its output,
    /// tab-separated without headers.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.client(db, sql).output().expect("running mariadb");
        assert!(
            out.status.success(),
            "mariadb {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn answers(&self) -> bool {
        self.client("", "SELECT 1")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn client(&self, db: &str, sql: &str) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "-h", "127.0.0.1", "-uroot", "-N", "-B"])
            .arg(format!("-P{}", self.port))
            .args(["-e", sql]);
        if !db.is_empty() {
            cmd.arg(db);
        }
        cmd
    }

    /// The server's error log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for MariaServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
