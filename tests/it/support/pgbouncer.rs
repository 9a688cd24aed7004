//! A private PgBouncer in transaction mode in front of the shared PostgreSQL server (127.0.0.1
//! on `PGPORT`, default 5432), for the test that shipgate refuses to migrate through one. It
//! listens on a spare port, trusts every client, and hands out its server connections in turn
//! (`server_round_robin`), so consecutive transactions of one client land on different server
//! sessions once two exist. As root (CI) it runs as the `postgres` user, since PgBouncer refuses
//! to run as root. Dropping it stops the process and deletes its directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::scratch::{self, is_root, run};

/// A running PgBouncer.
pub struct PgBouncer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl PgBouncer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> PgBouncer {
        let bin = std::env::var("SHIPGATE_IT_PGBOUNCER")
            .map_or_else(|_| PathBuf::from("/usr/sbin/pgbouncer"), PathBuf::from);
        assert!(
            bin.is_file(),
            "{} missing: apt-get install pgbouncer (.ci/run installs it)",
            bin.display()
        );
        let (dir, port) = scratch::dir_and_port("shipgate-pgbouncer-");
        let upstream = std::env::var("PGPORT").unwrap_or_else(|_| "5432".into());
        let ini = dir.path().join("pgbouncer.ini");
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").expect("users file");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={upstream}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
                 server_round_robin = 1\ndefault_pool_size = 4\n\
                 ignore_startup_parameters = extra_float_digits,options,application_name\n\
                 logfile = {log}\n",
                users = users.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )
        .expect("config file");
        let mut cmd = Command::new(&bin);
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path()));
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting pgbouncer");
        let bouncer = PgBouncer {
            port,
            child,
            _dir: dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    /// The URL of database `db` through the pooler (no TLS: PgBouncer here has none).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
