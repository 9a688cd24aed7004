//! Webhooks: payloads, Standard Webhooks signing, bounded retries.
//!
//! Owns `release.started`, `release.succeeded` and `release.failed` notifications. Each is sent
//! to every configured URL concurrently; each delivery makes up to `1 + retries` attempts with a
//! per-attempt timeout and jittered exponential backoff, and keeps one `webhook-id` across its
//! attempts so receivers can deduplicate. It never decides an exit code: callers get a
//! [`NotifyError`] and decide (`--require-notify`).

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::config::{redact_message, WebhookSecret};
use crate::retry::Backoff;

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Between attempts: 500 ms doubling to 8 s, jittered.
const BACKOFF: Backoff = Backoff::new(BACKOFF_START, BACKOFF_MAX);

/// Webhook settings, validated by `config`.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Receivers.
    pub urls: Vec<WebhookUrl>,
    /// Signing secret (`whsec_…`); unsigned when absent.
    pub secret: Option<WebhookSecret>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
}

/// A receiver's URL. Hook services put their token in the path (`/services/T0/B0/XXXX`) or the
/// query (`?token=…`), so `Display` and `Debug` print the scheme, host and port only, with the
/// path and query masked: `https://hooks.example.com/***`. Only [`WebhookUrl::expose`] gives
/// the whole URL, to send a request.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// An `http://` or `https://` URL with a host; otherwise the text to print in the error,
    /// masked the same way.
    pub fn parse(raw: &str) -> Result<WebhookUrl, String> {
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Ok(WebhookUrl(u))
            }
            Ok(u) => Err(WebhookUrl(u).to_string()),
            Err(_) => Err(match raw.split_once("://") {
                Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    format!("{scheme}://***")
                }
                _ => "***".to_owned(),
            }),
        }
    }

    /// The whole URL, token included: only for sending.
    pub fn expose(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.0;
        write!(f, "{}://{}", u.scheme(), u.host_str().unwrap_or("***"))?;
        if let Some(port) = u.port() {
            write!(f, ":{port}")?;
        }
        let bare = u.path() == "/"
            && u.query().is_none()
            && u.fragment().is_none()
            && u.username().is_empty()
            && u.password().is_none();
        f.write_str(if bare { "/" } else { "/***" })
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({self})")
    }
}

/// One notification in the Standard Webhooks payload shape.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `release.started`, `release.succeeded` or `release.failed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    /// What happened.
    pub data: serde_json::Value,
}

/// A delivery that did not succeed after every attempt.
#[derive(Debug, thiserror::Error)]
#[error("webhook {event} to {url} failed after {attempts} attempt(s): {last}")]
pub struct NotifyError {
    /// The event type.
    pub event: &'static str,
    /// The receiver, printed without its path, query or userinfo ([`WebhookUrl`]).
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's problem.
    pub last: String,
}

/// Sends events to the configured receivers.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Notifier {
    /// A notifier for `settings`; `None` when no URL is configured.
    pub fn new(settings: &WebhookSettings) -> Result<Option<Notifier>, reqwest::Error> {
        if settings.urls.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("shipgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Notifier {
            client,
            settings: settings.clone(),
        }))
    }

    /// Delivers `event` to every receiver; returns the failed deliveries.
    pub async fn send(&self, event: &Event) -> Vec<NotifyError> {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                return vec![NotifyError {
                    event: event.kind,
                    url: "-".into(),
                    attempts: 0,
                    last: e.to_string(),
                }];
            }
        };
        let id: std::sync::Arc<str> =
            format!("msg_{}", hex::encode(rand::random::<[u8; 12]>())).into();
        let body: std::sync::Arc<[u8]> = body.into();
        // One task per receiver, owned here: dropping `send` cancels them.
        let mut tasks = tokio::task::JoinSet::new();
        let kind = event.kind;
        for url in self.settings.urls.clone() {
            let (this, id, body) = (self.clone(), id.clone(), body.clone());
            tasks.spawn(async move { this.deliver(&url, kind, &id, &body).await });
        }
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(NotifyError {
                    event: event.kind,
                    url: "-".into(),
                    attempts: 0,
                    last: e.to_string(),
                }),
            }
        }
        failures
    }

    #[tracing::instrument(skip_all, fields(event = kind, url = %url))]
    async fn deliver(
        &self,
        url: &WebhookUrl,
        kind: &'static str,
        id: &str,
        body: &[u8],
    ) -> Result<(), NotifyError> {
        let attempts = self.settings.retries + 1;
        let mut delays = BACKOFF.delays();
        let mut last = String::new();
        for attempt in 1..=attempts {
            let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
            let mut request = self
                .client
                .post(url.expose().clone())
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .body(body.to_vec());
            if let Some(secret) = &self.settings.secret {
                request = request.header("webhook-signature", sign(secret, id, timestamp, body));
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(attempt, status = r.status().as_u16(), "webhook delivered");
                    return Ok(());
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) if e.is_timeout() => {
                    last = format!(
                        "no answer within {}",
                        crate::migrate::human(self.settings.timeout)
                    )
                }
                Err(e) => last = redact_message(&e.without_url().to_string()),
            }
            if attempt < attempts {
                let wait = delays.next().unwrap_or(BACKOFF_MAX);
                tracing::warn!(attempt, of = attempts, error = %last, retry_in_ms = wait.as_millis() as u64, "webhook attempt failed");
                tokio::time::sleep(wait).await;
            }
        }
        Err(NotifyError {
            event: kind,
            url: url.to_string(),
            attempts,
            last,
        })
    }

    /// The longest a [`Notifier::send`] can take: every attempt timing out, plus the backoff.
    pub fn bound(&self) -> Duration {
        self.settings.timeout * (self.settings.retries + 1)
            + BACKOFF.longest(self.settings.retries)
            + Duration::from_secs(1)
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, per Standard Webhooks.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.key()).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_a_webhook_url_without_its_path_query_or_userinfo() {
        for (raw, want) in [
            (
                "https://hooks.example.com/services/T0/B0/Xtok3n?token=q7",
                Ok("https://hooks.example.com/***"),
            ),
            (
                "http://u:pw@127.0.0.1:9/hook#frag",
                Ok("http://127.0.0.1:9/***"),
            ),
            (
                "https://hooks.example.com/",
                Ok("https://hooks.example.com/"),
            ),
            (
                "https://hooks.example.com?token=q7",
                Ok("https://hooks.example.com/***"),
            ),
            (
                "ftp://hooks.example.com/Xtok3n",
                Err("ftp://hooks.example.com/***"),
            ),
            ("https://[Xtok3n/", Err("https://***")),
            ("Xtok3n", Err("***")),
        ] {
            let got = WebhookUrl::parse(raw).map(|u| {
                assert_eq!(format!("{u:?}"), format!("WebhookUrl({u})"));
                u.to_string()
            });
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{raw}");
        }
    }

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        // The example from the Standard Webhooks specification's reference implementation.
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid secret");
        let body = br#"{"test": 2432232314}"#;
        let got = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
