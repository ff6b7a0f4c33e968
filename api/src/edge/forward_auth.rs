//! Forward auth: a proxy (nginx, Traefik, Envoy) asks the edge about each request before it
//! passes it on, and forwards the identity headers of the answer.

use super::check::{self, deny, Allowed, Ask, Code};
use super::headers::{
    decision_headers, denied_response, identity_headers, presented_key, DECISION_HEADERS, IDENTITY_HEADERS,
};
use super::{Edge, Seen};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");

/// Forward-auth: nginx `auth_request` (X-Original-Method, X-Original-URI), Traefik ForwardAuth
/// (X-Forwarded-Method, X-Forwarded-Uri), Envoy ext_authz (the original request under /auth/).
///
/// Its span is at debug level: disabled by default it costs one check per request, and
/// `RUST_LOG=keyledger_api::edge=debug` shows every decision. The usage log has them all anyway.
#[tracing::instrument(level = "debug", name = "edge_forward_auth", skip_all)]
pub(super) async fn forward_auth(
    State(edge): State<Arc<Edge>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let headers = req.headers();
    // Borrowed from the request: this runs for every request a proxy asks about.
    let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    // Only the path is checked: the query, wherever it comes from, is the upstream's business.
    let uri = header(&X_ORIGINAL_URI)
        .or_else(|| header(&X_FORWARDED_URI))
        .or_else(|| req.uri().path().strip_prefix("/auth").filter(|p| p.starts_with('/')))
        .unwrap_or("/");
    let method_text = header(&X_ORIGINAL_METHOD)
        .or_else(|| header(&X_FORWARDED_METHOD))
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/auth/") {
                req.method().as_str()
            } else {
                "GET"
            }
        });
    let path = uri.split(['?', '#']).next().unwrap_or("/");
    let seen = Seen::new(
        &edge,
        started,
        method_text,
        path,
        Some(edge.client_ip(peer.ip(), headers)),
    );
    if seen.method.is_none() {
        let d = deny(Code::EndpointNotFound, format!("unsupported method {method_text}"));
        edge.refused(&seen, &d).await;
        return denied_response(d);
    };
    match check::decide(&edge, &seen, Ask::request(presented_key(headers))).await {
        Ok(Allowed { key, endpoint, rate }) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            // Sized once for the identity and rate-limit headers: growing the map on the way
            // cost as much as filling it.
            headers.reserve(DECISION_HEADERS + IDENTITY_HEADERS);
            identity_headers(headers, &key);
            decision_headers(headers, Some(rate), endpoint.as_deref());
            edge.record(&seen, StatusCode::NO_CONTENT, Code::Valid, Some(key), endpoint)
                .await;
            response
        }
        Err(d) => {
            edge.refused(&seen, &d).await;
            denied_response(d)
        }
    }
}
