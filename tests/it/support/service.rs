//! A long-running `shipgate` process that serves HTTP (`serve`, `serve --migrate`,
//! `release --serve`), a minimal HTTP/1.1 client for it, and signals.
//!
//! Owns the child process: reader threads collect its output, its port is read from the JSON
//! `listening` log line (the tests run it with `PORT=0`), and a process still running when the
//! test ends is killed. It asserts nothing about shipgate's behaviour beyond having started.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{spawn, wait_for, Run, STATUS_TOKEN};

/// How long a service may take to log that it listens.
const START_BOUND: Duration = Duration::from_secs(20);
/// Connect, read and write bound of one HTTP request.
const HTTP_BOUND: Duration = Duration::from_secs(10);

/// A running shipgate process with an HTTP port.
pub struct Service {
    child: Option<Child>,
    /// The process id.
    pub pid: u32,
    /// The port it listens on (from its `listening` log line).
    pub port: u16,
    started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// Appends every line of `from` to `into`; hands `listening`'s port to `port` once.
fn collect(
    from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
    port: Option<mpsc::Sender<u16>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut port = port;
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &port {
                let found = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .filter(|v| v["message"] == "listening")
                    .and_then(|v| v["port"].as_u64())
                    .and_then(|p| u16::try_from(p).ok());
                if let Some(p) = found {
                    let _ = tx.send(p);
                    port = None;
                }
            }
            let mut buffer = into
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            buffer.push_str(&line);
            buffer.push('\n');
        }
    })
}

impl Service {
    /// Spawns `cmd` (JSON logs, `PORT=0`) and waits until it logs the port it listens on.
    pub fn start(mut cmd: Command) -> Service {
        let started = Instant::now();
        let mut child = spawn(&mut cmd);
        let pid = child.id();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let readers = vec![
            collect(
                child.stdout.take().expect("stdout is piped"),
                stdout.clone(),
                None,
            ),
            collect(
                child.stderr.take().expect("stderr is piped"),
                stderr.clone(),
                Some(tx),
            ),
        ];
        let mut service = Service {
            child: Some(child),
            pid,
            port: 0,
            started,
            stdout,
            stderr,
            readers,
        };
        match rx.recv_timeout(START_BOUND) {
            Ok(port) => service.port = port,
            Err(_) => {
                // Exited, or never said where it listens: show everything it printed.
                let run = service.kill();
                panic!("shipgate never logged a `listening` line with its port: {run:?}");
            }
        }
        service
    }

    /// What it has logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `GET path` with the status token.
    #[track_caller]
    pub fn get(&self, path: &str) -> HttpResponse {
        let auth = format!("Bearer {STATUS_TOKEN}");
        self.get_as(path, Some(&auth))
    }

    /// `GET path` with this `Authorization` header, or none.
    #[track_caller]
    pub fn get_as(&self, path: &str, authorization: Option<&str>) -> HttpResponse {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        http_get(self.port, path, &headers).unwrap_or_else(|e| {
            panic!(
                "GET {path} on port {}: {e}\n--- stderr ---\n{}",
                self.port,
                self.stderr()
            )
        })
    }

    /// Polls `GET path` (with the token) until `accept` takes the response, or panics after
    /// `bound` with the last response and the process's logs.
    #[track_caller]
    pub fn poll(
        &self,
        what: &str,
        path: &str,
        bound: Duration,
        mut accept: impl FnMut(&HttpResponse) -> bool,
    ) -> HttpResponse {
        let started = Instant::now();
        loop {
            let response = self.get(path);
            if accept(&response) {
                return response;
            }
            assert!(
                started.elapsed() < bound,
                "timed out after {bound:?} waiting for {what}; last GET {path}: {response:?}\n\
                 --- stderr ---\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `/health/ready` until it answers 200, within `bound`.
    #[track_caller]
    pub fn wait_ready(&self, bound: Duration) -> HttpResponse {
        self.poll("/health/ready to answer 200", "/health/ready", bound, |r| {
            r.status == 200
        })
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        terminate(self.pid);
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the process to exit within `bound`; kills it and panics otherwise.
    #[track_caller]
    pub fn wait(mut self, bound: Duration) -> Run {
        let deadline = Instant::now() + bound;
        while self.running() {
            if Instant::now() >= deadline {
                let run = self.kill();
                panic!("shipgate did not exit within {bound:?}; killed: {run:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish()
    }

    /// Kills the process (if running) and returns what it printed.
    fn kill(&mut self) -> Run {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
        self.finish()
    }

    fn finish(&mut self) -> Run {
        let status = self
            .child
            .take()
            .and_then(|mut c| c.wait().ok())
            .and_then(|s| s.code());
        let elapsed = self.started.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let take = |s: &Arc<Mutex<String>>| {
            std::mem::take(&mut *s.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        };
        Run {
            code: status,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
            elapsed,
            pid: self.pid,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

/// Sends SIGTERM to `pid` with kill(1).
pub fn terminate(pid: u32) {
    send_signal(pid, "TERM");
}

/// Sends signal `name` (`TERM`, `INT`, …) to process `pid`.
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{name} {pid} failed: {status}");
}

/// Waits for a spawned child started at `started` to exit within `bound`; kills it and panics
/// with its output otherwise.
#[track_caller]
pub fn finish_within(mut child: Child, started: Instant, bound: Duration) -> Run {
    let exited = wait_for_exit(&mut child, bound);
    if !exited {
        let _ = child.kill();
    }
    let run = Run::finish(child, started);
    assert!(
        exited,
        "shipgate did not exit within {bound:?}; killed: {run:?}"
    );
    run
}

fn wait_for_exit(child: &mut Child, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP response, read to the end of the connection.
#[derive(Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: String,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {:?} {}", self.status, self.headers, self.body)
    }
}

impl HttpResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }
}

/// `GET path` on `127.0.0.1:port` over a fresh connection (`Connection: close`).
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<HttpResponse> {
    let mut stream = connect(port)?;
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    read_response(&mut stream)
}

/// A connection to `127.0.0.1:port` with read and write timeouts.
pub fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, HTTP_BOUND)?;
    stream.set_read_timeout(Some(HTTP_BOUND))?;
    stream.set_write_timeout(Some(HTTP_BOUND))?;
    Ok(stream)
}

/// Reads one response up to the end of the stream (the request said `Connection: close`).
pub fn read_response(stream: &mut impl Read) -> std::io::Result<HttpResponse> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad(format!("no end of headers in {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad(format!("bad chunked body {body:?}")))?
    } else {
        body.to_owned()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// Polls `probe` every 50 ms until it is true, or panics after `bound`.
#[track_caller]
pub fn eventually(what: &str, bound: Duration, mut probe: impl FnMut() -> bool) {
    wait_for(what, bound, || probe().then_some(()));
}
