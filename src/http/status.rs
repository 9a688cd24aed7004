//! `/migrations/status`: the cached snapshot plus the release running in this process.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::json_error;
use super::AppState;

/// 401 without the configured bearer token; otherwise the status document.
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            // The scheme name is case-insensitive (RFC 9110 §11.1); the token is not.
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim_start());
        // Constant time in the token's content; only lengths can differ observably.
        let ok: bool = presented.as_bytes().ct_eq(token.expose().as_bytes()).into();
        if !ok {
            let mut response =
                json_error(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
                    .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    let snapshot = state.cache.get();
    let progress = state.progress.get();
    let in_progress = state
        .phase
        .migrating
        .load(std::sync::atomic::Ordering::SeqCst)
        .then_some(&progress);
    let mut body = serde_json::to_value(&*snapshot).unwrap_or_else(|_| json!({}));
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "in_progress".into(),
            serde_json::to_value(in_progress).unwrap_or_default(),
        );
    }
    Json(body).into_response()
}
