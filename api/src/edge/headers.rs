//! What the edge's answers say in their headers: the key presented, rate limits, deprecation,
//! the key's identity for the upstream, and a refusal's body.

use super::check::Denied;
use super::limits;
use crate::error::{ApiError, ErrorCode};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use keyledger_projections::edge_cache::{EndpointEntry, KeyEntry};

/// The key a request presents: `Authorization: Bearer …` or `X-API-Key: …`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    crate::extract::bearer_token(headers)
        .or_else(|| headers.get(X_API_KEY).and_then(|v| v.to_str().ok()).map(str::trim))
}

pub(super) const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub(super) const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub(super) const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
pub(super) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(super) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(super) const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
pub(super) const SUNSET: HeaderName = HeaderName::from_static("sunset");
pub(super) const X_KEYLEDGER_KEY_ID: HeaderName = HeaderName::from_static("x-keyledger-key-id");
pub(super) const X_KEYLEDGER_TENANT: HeaderName = HeaderName::from_static("x-keyledger-tenant");
pub(super) const X_KEYLEDGER_SCOPES: HeaderName = HeaderName::from_static("x-keyledger-scopes");
pub(super) const X_KEYLEDGER_ENVIRONMENT: HeaderName = HeaderName::from_static("x-keyledger-environment");
pub(super) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// At most this many rate-limit and deprecation headers on one answer.
pub(super) const DECISION_HEADERS: usize = 8;
pub(super) const IDENTITY_HEADERS: usize = 4;

pub(super) fn set_text(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

/// Rate-limit headers (X-RateLimit-* and the IETF RateLimit / RateLimit-Policy fields), the
/// deprecation headers (RFC 9745 Deprecation, RFC 8594 Sunset), and on success the identity.
pub(super) fn decision_headers(
    headers: &mut HeaderMap,
    rate: Option<limits::RateState>,
    endpoint: Option<&EndpointEntry>,
) {
    if let Some((rate, current)) = rate.and_then(|r| {
        let current = r.current()?;
        Some((r, current))
    }) {
        headers.reserve(DECISION_HEADERS);
        headers.insert(X_RATELIMIT_LIMIT, rate.limit.into());
        headers.insert(X_RATELIMIT_REMAINING, rate.remaining.into());
        headers.insert(X_RATELIMIT_RESET, rate.reset.into());
        headers.insert(RATELIMIT_POLICY, rate.policy);
        headers.insert(RATELIMIT, current);
        if let Some(wait) = rate.retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, wait.into());
        }
    }
    if let Some(e) = endpoint {
        if let Some(since) = e.deprecated_at {
            set_text(headers, DEPRECATION, format!("@{}", since.timestamp()));
            if let Some(sunset) = e.sunset_at {
                set_text(headers, SUNSET, sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
            }
        }
    }
}

/// `X-Keyledger-Key-Id`, `-Tenant`, `-Scopes` and `-Environment`. The last three are the key's
/// profile's, made once for every key on the same settings; the key id is each key's own and is
/// made here (a million keys' precomputed ids would cost 70 bytes each, and building the values
/// per answer measured no slower than sharing them: README, "Tried and dropped").
pub(crate) fn identity_headers(headers: &mut HeaderMap, key: &KeyEntry) {
    let shared = &key.profile.headers;
    headers.reserve(IDENTITY_HEADERS);
    // A hyphenated UUID: always a valid header value.
    if let Ok(id) = HeaderValue::from_str(key.key_id.as_str()) {
        headers.insert(X_KEYLEDGER_KEY_ID, id);
    }
    headers.insert(X_KEYLEDGER_TENANT, shared.tenant.clone());
    headers.insert(X_KEYLEDGER_SCOPES, shared.scopes.clone());
    headers.insert(X_KEYLEDGER_ENVIRONMENT, shared.environment.clone());
}

/// Takes the denial: its message moves into the body rather than being copied on every refusal
/// (a flood of invalid keys is all refusals).
pub(super) fn denied_response(d: Denied) -> Response {
    // A denial never carries `Valid`; were one built by mistake, it still answers as an error.
    let code = super::check::Answer::refusal(d.code).unwrap_or(ErrorCode::InternalError);
    let mut response = ApiError::new(code, d.message).into_response();
    decision_headers(response.headers_mut(), d.rate, None);
    response
}
