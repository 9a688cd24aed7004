//! The HTTP service: [`router`] is the routes; [`serve`] wraps them in the middleware and runs
//! them on a listener the caller bound, until the caller's shutdown future fires.
//!
//! Handlers read the status cache and the in-process [`Progress`]; they never touch the
//! database and never start a migration.

mod error;
mod health;
pub mod home;
mod metrics;
mod page;
mod status;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::timeout::TimeoutLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::config::Secret;
use crate::migrate::apply::Progress;
use crate::migrate::plan::Policy;
use crate::status::StatusCache;

pub use self::metrics::Metrics;

/// Largest request body accepted (the only body read is the status page's sign-in form).
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

impl Phase {
    /// Why this process's release failed, if it did.
    pub fn release_error(&self) -> Option<String> {
        self.release_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
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
    /// `/migrations/status` bearer token (and the status page's).
    pub token: Option<Secret>,
    /// The status page's session cookie value, derived from `token` (see
    /// [`home::session_cookie`]).
    pub session: Option<String>,
    /// Planning policy (strict, out of order), for readiness.
    pub policy: Policy,
    /// The Prometheus registry.
    pub metrics: Metrics,
    /// When the process started.
    pub started: Instant,
}

/// The handlers' state: shared, so handing it to a request is one reference count.
pub type Shared = Arc<AppState>;

/// The routes and their state. [`serve`] puts the middleware around the whole router once:
/// `Router::layer` would wrap every route, and each request would clone and box the stack.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home::show).post(home::sign_in))
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/migrations/status", get(status::status))
        .route("/metrics", get(metrics::render))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(Arc::new(state))
}

/// A 200 with `body` and a static Content-Type, built directly (no `IntoResponse` tuple, which
/// would insert `text/plain` first and then copy the type over it).
fn typed(
    body: impl Into<axum::body::Body>,
    content_type: &'static str,
) -> Response<axum::body::Body> {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets
/// in-flight requests finish for at most `drain`.
///
/// Middleware around the whole router, outermost first: panic catching (500), request tracing,
/// the body limit (tower-http's: 413 for a declared length over [`BODY_LIMIT`], and a streamed
/// body stops at it) and the request timeout (408), every refusal in JSON. The header limit is
/// hyper's: a request head over [`HEADER_LIMIT`] bytes, or with more than 100 headers, gets 431
/// before any of this runs.
///
/// The timeout is tower's, not tower-http's: tower's polls the handler first, so an immediate
/// answer (every endpoint here) never arms a timer; tower-http's polls its timer first and
/// registers one with the runtime on every request.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    request_timeout: Duration,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let service = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(
            // A 503 from readiness is an answer, not a failure worth an error line on every
            // probe; panics are logged by the panic handler.
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .map_result(error::timeout_as_json)
        .map_response(error::body_limit_as_json)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::new(request_timeout))
        .service(app);
    serve_service(listener, service, shutdown, drain).await
}

/// The accept loop, for any service that answers hyper's requests.
async fn serve_service<S, B>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<tower::BoxError>,
{
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
