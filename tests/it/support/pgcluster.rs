//! A private PostgreSQL server for tests that stop and start the database: `initdb` into a
//! temporary directory, `pg_ctl` on a spare port on 127.0.0.1, trust authentication. The
//! shared server on 5432 is never touched.
//!
//! Owns the data directory and the server process: dropping the cluster stops it (immediate
//! mode) and deletes the directory. As root (CI), the server runs as the `postgres` user,
//! since PostgreSQL refuses to run as root. Asserts nothing about shipgate.

use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

use super::scratch::{self, is_root, run};

/// Where Debian puts the server binaries; `SHIPGATE_IT_PG_BIN` overrides it.
fn bin(tool: &str) -> PathBuf {
    let dir = std::env::var("SHIPGATE_IT_PG_BIN").unwrap_or_else(|_| {
        // The newest installed major version.
        let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort_unstable();
        let v = versions.last().expect(
            "PostgreSQL server binaries under /usr/lib/postgresql (apt install postgresql)",
        );
        format!("/usr/lib/postgresql/{v}/bin")
    });
    Path::new(&dir).join(tool)
}

/// A private PostgreSQL server.
pub struct PgCluster {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: TempDir,
    running: bool,
}

impl PgCluster {
    /// Creates a cluster and starts it.
    pub fn start() -> PgCluster {
        let (dir, port) = scratch::dir_and_port("shipgate-pg-");
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let mut cluster = PgCluster {
            port,
            dir,
            running: false,
        };
        let data = cluster.data();
        run(cluster
            .as_owner(&bin("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data));
        cluster.up();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command run as the data directory's owner.
    fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_owner(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]));
        self.running = true;
    }

    /// Stops the server: `fast` ends sessions cleanly (what a restart does), `immediate`
    /// is a crash.
    pub fn down(&mut self, mode: &str) {
        run(self
            .as_owner(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "60", "-m", mode, "stop"]));
        self.running = false;
    }

    /// The URL of database `db` on this server, with a password (trust ignores it).
    pub fn url(&self, db: &str, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Runs SQL on the maintenance database with psql.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-Atqc",
                sql,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Runs SQL on database `db` with psql.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let out = Command::new(bin("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-Atqc", sql, "-d", db])
            .arg("-p")
            .arg(self.port.to_string())
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .as_owner(&bin("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "30", "-m", "immediate", "stop"])
                .output();
        }
    }
}
