//! A TCP proxy inside the test process, between shipgate and a database server, that cuts or
//! stalls its connections on command: the network faults of the fault suite.
//!
//! Owns a listener on `127.0.0.1:0` and two pump threads per connection. [`Proxy::cut`] shuts
//! every open connection down on both sides (the server sees the client go, shipgate sees the
//! server go); [`Proxy::stall`] stops forwarding on every open connection while keeping it
//! open (a hung network: nothing arrives, nothing fails); [`Proxy::stall_new`] does the same
//! to connections accepted from then on. It asserts nothing about shipgate.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often blocked threads look at the stop and stall flags.
const TICK: Duration = Duration::from_millis(20);

struct Link {
    client: TcpStream,
    server: TcpStream,
    stalled: Arc<AtomicBool>,
}

#[derive(Default)]
struct Shared {
    links: Mutex<Vec<Link>>,
    stop: AtomicBool,
    stall_new: AtomicBool,
    accepted: AtomicUsize,
}

/// A running proxy; stops (and closes every connection) when dropped.
pub struct Proxy {
    /// The port shipgate connects to.
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("the proxy's address").port();
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(&listener, upstream, &shared))
        };
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Starts a proxy to the host and port of `url` and returns it with `url` rewritten to go
    /// through it (user, password, database and parameters kept).
    pub fn for_url(url: &str) -> (Proxy, String) {
        let mut parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let host = parsed.host_str().expect("a URL with a host").to_owned();
        let port = parsed.port().expect("a URL with a port");
        let upstream: SocketAddr = format!("{host}:{port}")
            .parse()
            .unwrap_or_else(|e| panic!("{host}:{port} is not an address: {e}"));
        let proxy = Proxy::start(upstream);
        parsed
            .set_port(Some(proxy.port))
            .expect("the URL takes a port");
        (proxy, parsed.to_string())
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Shuts every open connection down on both sides, as a network cut with resets would.
    pub fn cut(&self) {
        let links = std::mem::take(&mut *lock(&self.shared.links));
        for link in links {
            let _ = link.client.shutdown(Shutdown::Both);
            let _ = link.server.shutdown(Shutdown::Both);
        }
    }

    /// Stops forwarding on every open connection, keeping it open: bytes sent either way are
    /// held, so each side waits for an answer that never comes.
    pub fn stall(&self) {
        for link in lock(&self.shared.links).iter() {
            link.stalled.store(true, Ordering::SeqCst);
        }
    }

    /// Whether connections accepted from now on are stalled from their first byte.
    pub fn stall_new(&self, on: bool) {
        self.shared.stall_new.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(_) => continue,
        };
        let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nonblocking(false);
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let stalled = Arc::new(AtomicBool::new(shared.stall_new.load(Ordering::SeqCst)));
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        lock(&shared.links).push(Link {
            client,
            server,
            stalled: stalled.clone(),
        });
        // The pump threads end when their connection does; the proxy's Drop cuts them all.
        let (stop_a, stop_b) = (shared.clone(), shared.clone());
        let stalled_b = stalled.clone();
        std::thread::spawn(move || pump(c2, s2, &stalled, &stop_a));
        std::thread::spawn(move || pump(s3, c3, &stalled_b, &stop_b));
    }
}

/// Copies `from` to `to` until either ends, holding data while the link is stalled.
fn pump(mut from: TcpStream, mut to: TcpStream, stalled: &AtomicBool, shared: &Shared) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        if stalled.load(Ordering::SeqCst) {
            // Read nothing, send nothing: the kernel buffers fill and both sides wait.
            std::thread::sleep(TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                while stalled.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(TICK);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
