//! The HTTP middleware of `shipgate::http::serve`, over real TCP: the request timeout, panic
//! catching and the body limit answer in JSON, and the server keeps serving afterwards.
//!
//! shipgate's own endpoints answer at once and never panic, so these run `http::serve` — the
//! same function `shipgate serve` runs — around a router with a slow and a panicking route.

use std::io::Write;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;

use crate::support::{connect, http_get, read_response};

/// Serves a router with `/slow` (sleeps 30 s), `/panic`, `/ok` and `/echo` (reads the body,
/// answers its length) through `http::serve` with a
/// 300 ms request timeout, on a runtime of its own; returns the port.
fn serve_test_router() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("address").port())
                .expect("send port");
            let app = Router::new()
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        "late"
                    }),
                )
                .route(
                    "/panic",
                    get(|| async {
                        if std::hint::black_box(true) {
                            panic!("a handler bug");
                        }
                        "unreachable"
                    }),
                )
                .route("/ok", get(|| async { "ok" }))
                .route(
                    "/echo",
                    axum::routing::post(|body: String| async move { body.len().to_string() }),
                );
            shipgate::http::serve(
                listener,
                app,
                Duration::from_millis(300),
                std::future::pending(),
                Duration::from_secs(1),
            )
            .await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the test server did not start")
}

#[test]
fn a_slow_request_gets_a_json_408_at_the_request_timeout() {
    let port = serve_test_router();
    let started = Instant::now();
    let response = http_get(port, "/slow", &[]).expect("GET /slow");
    let took = started.elapsed();
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.json()["status"], 408, "{response:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "answered after {took:?}, expected just after the 300 ms request timeout"
    );
    assert_eq!(http_get(port, "/ok", &[]).expect("GET /ok").status, 200);
}

#[test]
fn a_panicking_handler_gets_a_json_500_and_the_server_keeps_serving() {
    let port = serve_test_router();
    let response = http_get(port, "/panic", &[]).expect("GET /panic");
    assert_eq!(response.status, 500, "{response:?}");
    assert_eq!(response.json()["error"], "internal error", "{response:?}");
    for _ in 0..3 {
        assert_eq!(http_get(port, "/ok", &[]).expect("GET /ok").status, 200);
    }
}

#[test]
fn a_declared_body_over_the_limit_gets_a_json_413_before_routing() {
    let port = serve_test_router();
    let mut stream = connect(port).expect("connect");
    let declared = shipgate::http::BODY_LIMIT + 1;
    write!(
        stream,
        "POST /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {declared}\r\n\r\n"
    )
    .expect("write the head");
    let response = read_response(&mut stream).expect("read the answer");
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(
        response.json()["error"],
        "request body too large",
        "{response:?}"
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );

    // At the limit the request is routed (and /ok takes GET only).
    let mut stream = connect(port).expect("connect");
    let body = "x".repeat(shipgate::http::BODY_LIMIT);
    write!(
        stream,
        "POST /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write the request");
    let response = read_response(&mut stream).expect("read the answer");
    assert_eq!(response.status, 405, "{response:?}");
}

/// A body sent in chunks declares no length: the limit stops it while it is read, and the
/// refusal is the same JSON 413; a small chunked body is read whole.
#[test]
fn a_chunked_body_over_the_limit_gets_a_json_413_while_it_is_read() {
    let port = serve_test_router();
    let chunked = |size: usize| {
        let mut stream = connect(port).expect("connect");
        write!(
            stream,
            "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .expect("write the head");
        let chunk = "y".repeat(1024);
        for _ in 0..size / 1024 {
            // The server may answer and close before the last chunk: later writes may fail.
            if write!(stream, "400\r\n{chunk}\r\n").is_err() {
                break;
            }
        }
        let _ = write!(stream, "0\r\n\r\n");
        read_response(&mut stream).expect("read the answer")
    };
    let response = chunked(shipgate::http::BODY_LIMIT + 4096);
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(
        response.json()["error"],
        "request body too large",
        "{response:?}"
    );
    let response = chunked(2048);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "2048", "{response:?}");
}
