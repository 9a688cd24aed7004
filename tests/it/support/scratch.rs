//! What the private servers of the fault and pooler tests share: a scratch directory under
//! /tmp with a spare TCP port, running a command as the right user, and running a set-up
//! command that must succeed.

use std::process::Command;

use tempfile::TempDir;

/// A fresh directory under /tmp named `<prefix>…` and a TCP port on 127.0.0.1 that was free a
/// moment ago.
pub fn dir_and_port(prefix: &str) -> (TempDir, u16) {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a spare port")
        .port();
    (dir, port)
}

/// Whether the tests run as root (CI), where servers refuse to run and drop to their own user.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `cmd` and panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
