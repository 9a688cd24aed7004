//! The HTTP service: [`router`] is the whole app, middleware included; [`serve`] runs it on a
//! listener the caller bound, until the caller's shutdown future fires.
//!
//! Handlers read the status cache and the in-process [`Progress`]; they never touch the
//! database and never start a migration.

mod error;
mod health;
mod metrics;
mod status;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::config::{Secret, ServiceSettings};
use crate::migrate::apply::Progress;
use crate::migrate::plan::Policy;
use crate::status::StatusCache;

pub use self::metrics::Metrics;

/// Largest request body accepted (every endpoint is a GET).
pub const BODY_LIMIT: usize = 16 * 1024;
/// Largest total size of request headers accepted.
pub const HEADER_LIMIT: usize = 16 * 1024;
/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the process stands, as readiness sees it.
#[derive(Debug, Default)]
pub struct Phase {
    /// A release runs in this process (`serve --migrate`, `release --serve`).
    pub migrating: AtomicBool,
    /// The release in this process failed; the message says why.
    pub release_error: std::sync::Mutex<Option<String>>,
    /// SIGTERM/SIGINT arrived: readiness turns 503 before anything else stops.
    pub shutting_down: AtomicBool,
}

/// Everything the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The database as of the last refresh.
    pub cache: StatusCache,
    /// The release running in this process, if any.
    pub progress: Progress,
    /// Readiness flags.
    pub phase: Arc<Phase>,
    /// `/migrations/status` bearer token.
    pub token: Option<Secret>,
    /// Planning policy (strict, out of order), for readiness.
    pub policy: Policy,
    /// The Prometheus registry.
    pub metrics: Metrics,
    /// When the process started.
    pub started: Instant,
}

/// The handlers' state: shared, so handing it to a request is one reference count.
pub type Shared = Arc<AppState>;

/// The whole HTTP app.
pub fn router(state: AppState, settings: &ServiceSettings) -> Router {
    Router::new()
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/migrations/status", get(status::status))
        .route("/metrics", get(metrics::render))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(error::panicked))
                .layer(
                    // A 503 from readiness is an answer, not a failure worth an error line on
                    // every probe; panics are logged by the panic handler.
                    TraceLayer::new_for_http()
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
                // tower's timeout polls the handler first: an immediate answer arms no timer.
                .layer(HandleErrorLayer::new(error::timed_out))
                .layer(tower::timeout::TimeoutLayer::new(settings.request_timeout))
                .layer(middleware::from_fn(limit_request)),
        )
        .with_state(Arc::new(state))
}

/// Header and body limits: too many header bytes → 431, a declared body over the limit → 413,
/// and any body is read through a limit so no handler can buffer more.
async fn limit_request(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > HEADER_LIMIT {
        return error::json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return error::json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            .into_response();
    }
    // No handler reads a body (every endpoint is a GET), so an undeclared one is never
    // buffered: hyper discards it.
    next.run(request).await
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets
/// in-flight requests finish for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(HEADER_LIMIT.max(8192));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                // Owned by `graceful`: shutdown waits for it, up to the drain bound.
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("HTTP server stopped; every in-flight request finished"),
        () = tokio::time::sleep(drain) => tracing::warn!(drain_ms = drain.as_millis() as u64, "HTTP server stopped at the shutdown bound; requests still in flight were cut"),
    }
}
