//! A webhook receiver for the release tests: an axum server on `127.0.0.1:0` inside the test
//! process that records every delivery and answers as scripted (accept, fail the first N
//! attempts of each message, always fail, or hang).
//!
//! Owns its runtime and its log of deliveries; the signature check here is written from the
//! Standard Webhooks specification, independently of shipgate's `notify` module. It asserts
//! nothing itself: the tests do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// 200 to everything.
    Accept,
    /// 500 to the first N attempts of each message (by `webhook-id`), then 200.
    FailFirst(usize),
    /// 500 to everything.
    AlwaysFail,
    /// Never answers within any sane timeout (a minute).
    Hang,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When it arrived.
    pub at: Instant,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Delivery {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The `webhook-id` header.
    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The payload's `type`.
    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// Whether `webhook-signature` holds a `v1` signature of `{id}.{timestamp}.{body}` under
    /// `secret` (`whsec_<base64 key>`), per the Standard Webhooks specification.
    pub fn signature_valid(&self, secret: &str) -> bool {
        signature_valid(
            secret,
            self.id(),
            self.header("webhook-timestamp"),
            &self.body,
            self.header("webhook-signature"),
        )
    }

    /// Whether `webhook-timestamp` is a Unix time within five minutes of now (the
    /// specification's replay tolerance).
    pub fn timestamp_fresh(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.header("webhook-timestamp")
            .parse::<i64>()
            .is_ok_and(|t| (t - now).abs() <= 300)
    }
}

/// The Standard Webhooks check: some space-separated `v1,<base64>` entry of `signatures`
/// equals base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn signature_valid(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| BASE64.decode(k).ok())
    else {
        return false;
    };
    if id.is_empty() || timestamp.is_empty() {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = BASE64.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[derive(Clone)]
struct Shared {
    reply: Reply,
    log: Arc<Mutex<Vec<Delivery>>>,
}

/// A running receiver; stopped when dropped.
pub struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
    /// Where to send webhooks: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    log: Arc<Mutex<Vec<Delivery>>>,
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delivery = Delivery {
        at: Instant::now(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let attempt = {
        let mut log = shared
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.push(delivery.clone());
        log.iter().filter(|d| d.id() == delivery.id()).count()
    };
    match shared.reply {
        Reply::Accept => StatusCode::OK,
        Reply::FailFirst(n) if attempt <= n => StatusCode::INTERNAL_SERVER_ERROR,
        Reply::FailFirst(_) => StatusCode::OK,
        Reply::AlwaysFail => StatusCode::INTERNAL_SERVER_ERROR,
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
    }
}

impl Receiver {
    /// Starts a receiver answering as `reply`.
    pub fn start(reply: Reply) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a one-thread runtime builds");
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("binding the webhook receiver");
        let port = listener.local_addr().expect("a bound address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new().fallback(receive).with_state(Shared {
            reply,
            log: log.clone(),
        });
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            runtime: Some(runtime),
            url: format!("http://127.0.0.1:{port}/hook"),
            log,
        }
    }

    /// Every delivery so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The deliveries of payload type `kind`, in arrival order.
    pub fn of_type(&self, kind: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.kind() == kind)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
