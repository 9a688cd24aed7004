//! `/migrations/status`: the cached snapshot plus the release running in this process.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::json_error;
use super::Shared;
use crate::config::Secret;

/// Whether `headers` carry `Authorization: Bearer <token>`: constant time in the token's
/// content (only lengths can differ observably).
pub(super) fn bearer_ok(headers: &HeaderMap, token: &Secret) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme name is case-insensitive (RFC 9110 §11.1); the token is not.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim_start());
    presented.as_bytes().ct_eq(token.expose().as_bytes()).into()
}

/// 401 without the configured bearer token; otherwise the status document.
pub async fn status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token {
        if !bearer_ok(&headers, token) {
            let mut response =
                json_error(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
                    .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let snapshot = state.cache.get();
    let migrating = state
        .phase
        .migrating
        .load(std::sync::atomic::Ordering::SeqCst);
    let in_progress = if migrating {
        serde_json::to_string(&state.progress.get()).unwrap_or_else(|_| "null".into())
    } else {
        "null".into()
    };
    super::typed(snapshot.to_json_with(&in_progress), "application/json")
}
