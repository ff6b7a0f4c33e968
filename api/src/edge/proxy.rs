//! The reverse proxy: a checked request goes to its plugin's upstream and the answer streams back.

use super::check::{self, Ask, Code};
use super::headers::{decision_headers, denied_response, identity_headers, presented_key};
use super::{Edge, Seen};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Connection-scoped headers (RFC 9110 §7.6.1) are never forwarded.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

fn forwardable(name: &HeaderName) -> bool {
    let name = name.as_str();
    // The key stays here; identity headers are ours to set, never the client's.
    !HOP_BY_HOP.contains(&name) && name != "authorization" && name != "x-api-key" && !name.starts_with("x-keyledger-")
}

#[tracing::instrument(level = "debug", name = "edge_proxy", skip_all)]
pub async fn forward(
    State(edge): State<Arc<Edge>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let ip = edge.client_ip(peer.ip(), &parts.headers);
    let seen = Seen::new(&edge, started, parts.method.as_str(), &path, Some(ip));
    if seen.method.is_none() {
        let d = check::deny(Code::EndpointNotFound, format!("unsupported method {}", parts.method));
        edge.refused(&seen, &d).await;
        return denied_response(d);
    };
    let allowed = match check::decide(&edge, &seen, Ask::request(presented_key(&parts.headers))).await {
        Ok(allowed) => allowed,
        Err(d) => {
            edge.refused(&seen, &d).await;
            return denied_response(d);
        }
    };
    let Some(endpoint) = allowed.endpoint.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("{}{path}{query}", endpoint.upstream_url);

    let mut headers = HeaderMap::new();
    for (name, value) in parts.headers.iter().filter(|(n, _)| forwardable(n)) {
        headers.append(name.clone(), value.clone());
    }
    identity_headers(&mut headers, &allowed.key);
    let forwarded_for = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if edge.trusted_proxies.iter().any(|n| n.contains(&peer.ip())) => format!("{prior}, {}", peer.ip()),
        _ => ip.to_string(),
    };
    if let Ok(v) = forwarded_for.parse() {
        headers.insert("x-forwarded-for", v);
    }
    if let Some(host) = parts.headers.get("host") {
        headers.insert("x-forwarded-host", host.clone());
    }
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let upstream = edge
        .http
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, %url, "upstream unreachable");
            let d = check::Denied {
                key: Some(allowed.key.clone()),
                endpoint: allowed.endpoint.clone(),
                rate: Some(allowed.rate.clone()),
                ..check::deny(
                    Code::UpstreamUnreachable,
                    "the service behind this endpoint did not answer",
                )
            };
            edge.refused(&seen, &d).await;
            return denied_response(d);
        }
    };
    let status = upstream.status();
    edge.record(
        &seen,
        status,
        Code::Valid,
        Some(allowed.key.clone()),
        allowed.endpoint.clone(),
    )
    .await;
    streamed_back(upstream, |h| decision_headers(h, Some(allowed.rate), Some(endpoint)))
}

/// An upstream's answer streamed back to the client, without its hop-by-hop headers; `add` puts
/// the edge's own headers on it.
pub fn streamed_back(upstream: reqwest::Response, add: impl FnOnce(&mut HeaderMap)) -> Response {
    let mut response = Response::builder().status(upstream.status());
    if let Some(h) = response.headers_mut() {
        for (name, value) in upstream
            .headers()
            .iter()
            .filter(|(n, _)| !HOP_BY_HOP.contains(&n.as_str()))
        {
            h.append(name.clone(), value.clone());
        }
        add(h);
    }
    let stream = upstream.bytes_stream().map_err(std::io::Error::other);
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
