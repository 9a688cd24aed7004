//! `/health` (liveness: no database call) and `/health/ready` (readiness).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{AppState, Shared};
use crate::status::Snapshot;

const HEALTH_JSON: &str = "application/health+json";

/// 200 while the process runs.
///
/// The hottest endpoint (every liveness probe): the body is written by hand into one buffer and
/// the response built directly, with no JSON tree, no formatting machinery and a static header.
pub async fn live(State(state): State<Shared>) -> Response {
    const PREFIX: &str = concat!(
        "{\"status\":\"pass\",\"version\":\"",
        env!("CARGO_PKG_VERSION"),
        "\",\"uptime_seconds\":"
    );
    let mut uptime = itoa::Buffer::new();
    let uptime = uptime.format(state.started.elapsed().as_secs());
    let mut body = Vec::with_capacity(PREFIX.len() + uptime.len() + 1);
    body.extend_from_slice(PREFIX.as_bytes());
    body.extend_from_slice(uptime.as_bytes());
    body.push(b'}');
    super::typed(body, HEALTH_JSON)
}

/// 200 only when the database answers, nothing is pending, dirty or modified, no release runs
/// in this process and it is not shutting down; 503 with the reasons otherwise.
pub async fn ready(State(state): State<Shared>) -> impl IntoResponse {
    let snapshot = state.cache.get();
    let reasons = not_ready(&state, &snapshot);
    // `current_version` (runner `sql`, `command`) or `current_revisions` (`alembic`).
    let (key, current) = snapshot.current();
    let (status, mut body) = if reasons.is_empty() {
        (StatusCode::OK, json!({ "status": "pass" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "fail", "reasons": reasons }),
        )
    };
    body[key] = current;
    // An INVALID index slows nothing down and the next release of its file rebuilds it: a
    // warning for whoever looks, not a reason to take the instance out of rotation.
    if !snapshot.invalid_indexes.is_empty() {
        body["warnings"] = json!(snapshot
            .invalid_indexes
            .iter()
            .map(|i| format!(
                "INVALID index {i} (a failed or interrupted CREATE INDEX CONCURRENTLY)"
            ))
            .collect::<Vec<_>>());
    }
    (status, [(header::CONTENT_TYPE, HEALTH_JSON)], Json(body))
}

/// Why readiness answers 503 (empty when it answers 200): this process's phase, then the
/// database's side from `snapshot`. The status page shows the same list.
pub(super) fn not_ready(state: &AppState, snapshot: &Snapshot) -> Vec<String> {
    let mut reasons = Vec::new();
    if state.phase.shutting_down.load(Ordering::SeqCst) {
        reasons.push("shutting down".to_owned());
    }
    if state.phase.migrating.load(Ordering::SeqCst) {
        reasons.push("a release is running in this process".to_owned());
    }
    if let Some(e) = state.phase.release_error() {
        reasons.push(format!("the release failed: {e}"));
    }
    reasons.extend(snapshot.not_ready_reasons(&state.policy));
    reasons
}
