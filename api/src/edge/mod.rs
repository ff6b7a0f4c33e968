//! The auth edge (its own listener): every protected request is checked against this node's
//! in-memory key lookup and endpoint catalogue, then proxied to the plugin's upstream
//! (`proxy.rs`), answered for a service (`POST /v1/keys/verify`), or answered for a proxy's
//! sub-request (`/auth`: nginx auth_request, Traefik ForwardAuth, Envoy ext_authz).

pub mod check;
mod forward_auth;
pub(crate) mod headers;
pub mod limits;
mod proxy;
pub use proxy::{streamed_back, HOP_BY_HOP};
mod verify;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{any, post};
use axum::Router;
use check::{Code, Denied};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use keyledger_commands::auth::Authenticator;
use keyledger_commands::clock::Clock;
use keyledger_commands::secrets::Pepper;
use keyledger_domain::route::HttpMethod;
use keyledger_projections::edge_cache::{EdgeCache, EndpointEntry, KeyEntry};
use keyledger_projections::usage::{UsageRecord, UsageRecorder};
use serde_json::json;
use std::borrow::Cow;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use keyledger_projections::usage::DECISIONS;

/// PBKDF2 checks (verifier misses) one address may cause per minute.
const PBKDF2_PER_IP_PER_MINUTE: u32 = 30;

pub struct Edge {
    pub cache: Arc<EdgeCache>,
    pub pepper: Arc<Pepper>,
    pub limits: limits::RateLimiters,
    pub usage: UsageRecorder,
    pub trusted_proxies: Vec<IpNet>,
    /// Bounds concurrent PBKDF2 work.
    pub pbkdf2: Arc<tokio::sync::Semaphore>,
    pub failures: DefaultKeyedRateLimiter<IpAddr>,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub admins: Authenticator,
}

impl Edge {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cache: Arc<EdgeCache>,
        pepper: Arc<Pepper>,
        usage: UsageRecorder,
        trusted_proxies: Vec<IpNet>,
        pbkdf2_concurrency: usize,
        clock: Arc<dyn Clock>,
        admins: Authenticator,
    ) -> Result<Self, reqwest::Error> {
        let per_minute = NonZeroU32::new(PBKDF2_PER_IP_PER_MINUTE).expect("positive");
        // Every code from the start, at zero: a rate over a series that appears only with its
        // first decision misses that decision.
        for code in Code::ALL {
            metrics::counter!(DECISIONS, "code" => code.recorded()).increment(0);
        }
        Ok(Edge {
            cache,
            pepper,
            limits: limits::RateLimiters::default(),
            usage,
            trusted_proxies,
            pbkdf2: Arc::new(tokio::sync::Semaphore::new(pbkdf2_concurrency.max(1))),
            failures: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            // Upstreams answer redirects to the client, not to us.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            clock,
            admins,
        })
    }

    /// The client's address: the peer, or when the peer is a trusted proxy the right-most
    /// untrusted address of X-Forwarded-For (else X-Real-IP).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if let Some(ip) = forwarded.iter().rev().find(|ip| !trusted(ip)) {
            return *ip;
        }
        if let Some(ip) = headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        forwarded.first().copied().unwrap_or(peer)
    }

    /// Records a refusal: its code, status, and the key and endpoint it was about.
    async fn refused(&self, seen: &Seen<'_>, d: &Denied) {
        self.record(seen, d.status(), d.code, d.key.clone(), d.endpoint.clone())
            .await;
    }

    /// Takes the entries rather than counting another reference: the counts are shared by
    /// every request for that key on every core.
    ///
    /// The usage writer counts `keyledger_edge_decisions_total{code}` as it takes the records:
    /// one counter per code, incremented here on every request from both cores, cost more than
    /// the record itself. Latency per decision is in the usage records; a histogram here would
    /// cost a lock per request.
    async fn record(
        &self,
        seen: &Seen<'_>,
        status: StatusCode,
        code: Code,
        key: Option<Arc<KeyEntry>>,
        endpoint: Option<Arc<EndpointEntry>>,
    ) {
        let latency = seen.started.elapsed();
        tracing::debug!(
            code = code.recorded(),
            status = status.as_u16(),
            key_id = key.as_ref().map(|k| k.key_id.as_str()),
            path = seen.path,
            latency_us = latency.as_micros() as u64,
            "edge decision"
        );
        self.usage
            .record(UsageRecord {
                at: seen.at,
                key,
                endpoint,
                method: seen.method_name.clone(),
                path: stored_path(seen.path),
                status: status.as_u16(),
                code: code.recorded(),
                latency_us: latency.as_micros().min(i64::MAX as u128) as i64,
                client_ip: seen.ip,
            })
            .await;
    }
}

/// The request a decision is about: what the checks judge and what its usage record keeps.
pub struct Seen<'a> {
    pub started: Instant,
    /// When the request arrived: the usage record's time and the time the checks use (one clock
    /// read per request).
    pub at: DateTime<Utc>,
    /// The method, when it is one an endpoint can have.
    pub method: Option<HttpMethod>,
    /// The method's name as the usage record keeps it, parsed or not.
    pub method_name: Cow<'static, str>,
    pub path: &'a str,
    pub ip: Option<IpAddr>,
}

impl<'a> Seen<'a> {
    /// The request as it arrived; its method is parsed here, once.
    pub fn new(edge: &Edge, started: Instant, method: &str, path: &'a str, ip: Option<IpAddr>) -> Self {
        let parsed = method.parse::<HttpMethod>().ok();
        Seen {
            started,
            at: edge.clock.now(),
            method: parsed,
            // The known methods without an allocation.
            method_name: parsed.map_or_else(|| Cow::Owned(method.to_owned()), |m| Cow::Borrowed(m.as_str())),
            path,
            ip,
        }
    }

    /// The method and path to match against the endpoint registry, when the method is one.
    pub fn target(&self) -> Option<(HttpMethod, &'a str)> {
        self.method.map(|m| (m, self.path))
    }
}

/// Paths longer than this many characters are cut in usage records.
const STORED_PATH_CHARS: usize = 512;

/// The path as a usage record keeps it: at most [`STORED_PATH_CHARS`] characters.
fn stored_path(path: &str) -> String {
    // A path of at most that many bytes has at most that many characters: one copy, no scan.
    if path.len() <= STORED_PATH_CHARS {
        path.to_owned()
    } else {
        path.chars().take(STORED_PATH_CHARS).collect()
    }
}

pub fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/v1/keys/verify", post(verify::verify))
        .route("/auth", any(forward_auth::forward_auth))
        .route("/auth/{*rest}", any(forward_auth::forward_auth))
        .route(
            "/_keyledger/healthz",
            axum::routing::get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        // A bare 204: the baseline the edge benchmark compares /auth against, and a cheap probe.
        // Under /_keyledger/ so that no registered endpoint is shadowed.
        .route(
            "/_keyledger/ping",
            axum::routing::get(|| async { StatusCode::NO_CONTENT }),
        )
        .fallback(proxy::forward)
        .with_state(edge)
}
