//! `GET /` and `POST /`: the status page and its sign-in.
//!
//! With a status token configured, the page needs the same `Authorization: Bearer` header as
//! `/migrations/status`, or the session cookie that `POST /` sets after checking the token from
//! a form field. A browser without either gets the sign-in form with 401. The token never
//! travels in a URL and is never logged; the cookie holds an HMAC of the token under a key
//! drawn when the process starts (so a restart signs every browser out), compared in constant
//! time. Cross-site requests carry no `SameSite=Strict` cookie, and the only state change
//! (signing in) is a POST. Without a token the page is open, like `/migrations/status`.
//!
//! Reads the status cache and this process's release; never the database.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::{page, Shared, BODY_LIMIT};
use crate::config::Secret;

/// The session cookie's name.
pub const COOKIE: &str = "shipgate_status";

const HTML: &str = "text/html; charset=utf-8";

/// The cookie value that stands for `token` in this process: hex HMAC-SHA256 of the token
/// under a random key that lives only in this call (the value is all that is kept).
pub fn session_cookie(token: &Secret) -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(token.expose().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The status page, or the sign-in form (401) without the token or the cookie.
pub async fn show(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !allowed(&state, &headers) {
        return html(StatusCode::UNAUTHORIZED, page::login(None));
    }
    let snapshot = state.cache.get();
    let live = page::Live {
        in_progress: state
            .phase
            .migrating
            .load(Ordering::SeqCst)
            .then(|| state.progress.get()),
        release_error: state.phase.release_error(),
        not_ready: super::health::not_ready(&state, &snapshot),
        now: crate::migrate::now_rfc3339(),
    };
    html(StatusCode::OK, page::status(&snapshot, &live))
}

/// The sign-in form's post: the right token sets the cookie and redirects to `/` (303); a
/// wrong one gets the form again with an error (401). No lockout and no delay: the comparison
/// is constant time and each attempt costs the same.
pub async fn sign_in(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let (Some(token), Some(session)) = (&state.token, &state.session) else {
        // No token configured: nothing to sign in to.
        return redirect_home();
    };
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return html(
            StatusCode::BAD_REQUEST,
            page::login(Some("the form could not be read")),
        );
    };
    let presented = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let ok: bool = presented.as_bytes().ct_eq(token.expose().as_bytes()).into();
    if !ok {
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(Some("that is not the status token")),
        );
    }
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = redirect_home();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether the request may see the page: no token configured, the bearer header, or the
/// session cookie.
fn allowed(state: &Shared, headers: &HeaderMap) -> bool {
    let (Some(token), Some(session)) = (&state.token, &state.session) else {
        return true;
    };
    if super::status::bearer_ok(headers, token) {
        return true;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .any(|(_, value)| bool::from(value.as_bytes().ct_eq(session.as_bytes())))
}

fn redirect_home() -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    response
}

/// An HTML answer that no cache keeps, no frame embeds and that loads nothing from elsewhere.
fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = super::typed(markup.into_string(), HTML);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
