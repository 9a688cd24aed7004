//! JSON error responses shared by every endpoint.

use std::any::Any;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `{"error": message}` with `status`.
pub fn json_error(status: StatusCode, message: &str) -> impl IntoResponse {
    (
        status,
        Json(json!({ "error": message, "status": status.as_u16() })),
    )
}

pub async fn not_found() -> impl IntoResponse {
    json_error(
        StatusCode::NOT_FOUND,
        "no such endpoint: see /, /health, /health/ready, /migrations/status, /metrics",
    )
}

pub async fn method_not_allowed() -> impl IntoResponse {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "only GET is supported (and POST on /)",
    )
}

/// tower-http's body limit answers 413 in plain text: the same refusal in JSON. Every other
/// response passes through (its body boxed into axum's).
pub fn body_limit_as_json<B>(response: Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    }
    response.map(axum::body::Body::new)
}

/// The timeout's 408 as a JSON answer. Never an error (tower's `map_result` wants the stack's
/// error type back).
pub fn timeout_as_json(
    result: Result<Response, tower::BoxError>,
) -> Result<Response, tower::BoxError> {
    Ok(match result {
        Ok(response) => response,
        Err(e) if e.is::<tower::timeout::error::Elapsed>() => {
            json_error(StatusCode::REQUEST_TIMEOUT, "request timed out").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "request failed in the middleware");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    })
}

/// A handler panicked: a bug. Answer 500 and keep serving.
pub fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}
