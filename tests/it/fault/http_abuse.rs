//! HTTP under abuse: while a serving process is hit with oversized headers and bodies, slow
//! clients holding connections, idle connections, unknown methods and paths, malformed
//! requests and wrong tokens, `/health` keeps answering quickly (its latency is measured
//! throughout), every abusive request gets its documented status (never a 5xx, never a
//! panic), slow and idle connections are closed by the header read timeout, and the
//! process's memory (VmRSS) stays bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Tally;
use crate::support::{
    assert_secret_free, connect, http_get, read_response, Db, Engine, Project, Run, Service,
    STATUS_TOKEN,
};

const SLOW_CLIENTS: usize = 200;
const IDLE_CLIENTS: usize = 100;

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Sends raw bytes on a fresh connection and reads the response (the server closes it);
/// status 0 when the server closed the connection without answering.
fn raw(port: u16, request: &[u8]) -> std::io::Result<u16> {
    let mut stream = connect(port)?;
    // The server may answer and close before all of an oversized request is written.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    if bytes.is_empty() {
        return Ok(0);
    }
    Ok(read_response(&mut bytes.as_slice())?.status)
}

/// `/health` probed every 20 ms on its own thread until stopped: latencies and failures.
struct Prober {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Result<Duration, String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(port: u16) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let sample = match http_get(port, "/health", &[]) {
                        Ok(r) if r.status == 200 => Ok(t.elapsed()),
                        Ok(r) => Err(format!("status {}", r.status)),
                        Err(e) => Err(e.to_string()),
                    };
                    samples
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(sample);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Prober {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Result<Duration, String>> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(
            &mut self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Whether the server closed `stream` (EOF or reset) within `bound`.
fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(bound));
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or 400 before the close is fine
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn health_stays_responsive_and_memory_bounded_under_abuse() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    let service = Service::start(p.platform_command(&db, &["serve"]));
    service.wait_ready(Duration::from_secs(15));
    let port = service.port;
    let rss_before = rss_kib(service.pid);
    let mut problems = Vec::new();
    let prober = Prober::start(port);
    let abuse_started = Instant::now();

    // Slow clients: a request line and a header, then nothing; idle clients: nothing at all.
    let mut slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .filter_map(|_| {
            let mut s = connect(port).ok()?;
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .ok()?;
            Some(s)
        })
        .collect();
    let mut idle: Vec<TcpStream> = (0..IDLE_CLIENTS)
        .filter_map(|_| connect(port).ok())
        .collect();
    let held_at = Instant::now();
    assert_eq!(slow.len() + idle.len(), SLOW_CLIENTS + IDLE_CLIENTS);

    // Every abusive request gets its status; count them.
    let mut requests = 0;
    let mut expect = |what: &str, want: &[u16], request: &[u8]| {
        requests += 1;
        match raw(port, request) {
            Ok(s) if want.contains(&s) => {}
            Ok(s) => problems.push(format!("{what}: status {s}, want {want:?}")),
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    };
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
        (0..400)
            .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(60)))
            .collect::<String>()
    );
    let big_body = format!(
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        1024 * 1024,
        "c".repeat(64 * 1024)
    );
    for _ in 0..20 {
        expect("a 64 KiB header", &[431], big_header.as_bytes());
        expect("400 headers", &[431], many_headers.as_bytes());
        expect("a 1 MiB body", &[413], big_body.as_bytes());
    }
    let odd: &[(&str, &[u16], &str)] = &[
        (
            "an unknown method",
            &[405],
            "BREW /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "DELETE",
            &[405],
            "DELETE /migrations/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "an unknown path",
            &[404],
            "GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "a traversal",
            &[404, 400],
            "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "a path of 8 KiB",
            &[404, 414, 431],
            "GET /aaaaaaaa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        ("garbage", &[400], "GARBAGE\r\n\r\n"),
        (
            "a bad version",
            &[400, 505],
            "GET /health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "a bad content length",
            &[400],
            "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\nConnection: close\r\n\r\n",
        ),
        (
            "an HTTP/2 preface",
            &[0, 400, 505],
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
    ];
    for (what, want, request) in odd {
        let request = if what.contains("8 KiB") {
            request.replace("/aaaaaaaa", &format!("/{}", "a".repeat(8 * 1024)))
        } else {
            (*request).to_owned()
        };
        for _ in 0..20 {
            expect(what, want, request.as_bytes());
        }
    }
    for i in 0..500 {
        let wrong = format!("Bearer {STATUS_TOKEN}{i}");
        let auth = if i % 3 == 0 {
            "Basic Zm9vOmJhcg=="
        } else {
            wrong.as_str()
        };
        requests += 1;
        match http_get(port, "/migrations/status", &[("Authorization", auth)]) {
            Ok(r) if r.status == 401 => {
                if r.body.contains(STATUS_TOKEN) {
                    problems.push("a 401 echoed the token".into());
                }
            }
            Ok(r) => problems.push(format!("a wrong token: status {}", r.status)),
            Err(e) => problems.push(format!("a wrong token: {e}")),
        }
    }
    let rss_during = rss_kib(service.pid);
    // The status document (with the right token) names the database without its password.
    let status = service.get("/migrations/status");
    assert_eq!(status.status, 200, "{status:?}");
    assert_secret_free("/migrations/status", &status.body);

    // The header read timeout (10 s) closes slow and idle connections.
    let remaining = Duration::from_secs(13).saturating_sub(held_at.elapsed());
    let deadline = Instant::now() + remaining;
    let mut still_open = 0;
    for s in slow.iter_mut().chain(idle.iter_mut()) {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        if !closed_within(s, left) {
            still_open += 1;
        }
    }
    if still_open > 0 {
        problems.push(format!(
            "{still_open} slow or idle connection(s) still open {:?} after they stalled",
            held_at.elapsed()
        ));
    }
    drop(slow);
    drop(idle);

    let samples = prober.finish();
    let abuse = abuse_started.elapsed();
    let rss_after = rss_kib(service.pid);
    let failures: Vec<&String> = samples.iter().filter_map(|s| s.as_ref().err()).collect();
    let mut latencies: Vec<Duration> = samples
        .iter()
        .filter_map(|s| s.as_ref().ok().copied())
        .collect();
    latencies.sort();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    if !failures.is_empty() {
        problems.push(format!(
            "/health failed {} time(s): {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        ));
    }
    if latencies.len() < 50 {
        problems.push(format!(
            "only {} /health probes answered in {abuse:?}",
            latencies.len()
        ));
    }
    // Bounds with room for a loaded 2-core machine running the rest of the suite alongside
    // (alone, the maximum is a few milliseconds): the point is that abuse never starves it.
    if pct(0.5) > Duration::from_millis(200)
        || pct(0.99) > Duration::from_secs(2)
        || pct(1.0) > Duration::from_secs(5)
    {
        problems.push(format!(
            "/health took p50 {:?}, p99 {:?}, max {:?}",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        ));
    }
    // Bounded memory: a few MiB of buffers for hundreds of connections, returned after.
    if rss_during > rss_before + 64 * 1024 || rss_after > rss_before + 64 * 1024 {
        problems.push(format!(
            "VmRSS grew from {rss_before} KiB to {rss_during} KiB (after: {rss_after} KiB)"
        ));
    }
    let run = {
        service.terminate();
        service.wait(Duration::from_secs(20))
    };
    run.secret_free();
    if run.stderr.contains("panicked") {
        problems.push("the server panicked".into());
    }
    if run.code != Some(0) {
        problems.push(format!("serve exited {:?} after SIGTERM", run.code));
    }

    let mut tally = Tally::new("HTTP abuse while serving", "postgres");
    tally.trials = 1;
    tally.survived = usize::from(problems.is_empty());
    tally.failures = problems;
    tally.note = format!(
        "{requests} abusive requests, {SLOW_CLIENTS} slow + {IDLE_CLIENTS} idle connections over {} s; \
         /health p50 {} ms, p99 {} ms, max {} ms over {} probes; VmRSS {} → {} → {} MiB",
        abuse.as_secs(),
        pct(0.5).as_millis(),
        pct(0.99).as_millis(),
        pct(1.0).as_millis(),
        latencies.len(),
        rss_before / 1024,
        rss_during / 1024,
        rss_after / 1024
    );
    tally.finish();
}
