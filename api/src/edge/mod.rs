//! The auth edge (its own listener): every protected request is checked against this node's
//! in-memory key lookup and endpoint catalogue, then proxied to the plugin's upstream
//! (`proxy.rs`), answered for a service (`POST /v1/keys/verify`), or answered for a proxy's
//! sub-request (`/auth`: nginx auth_request, Traefik ForwardAuth, Envoy ext_authz).

pub mod check;
pub mod limits;
mod proxy;

use crate::error::{ApiError, ErrorCode};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use check::{deny, Allowed, Ask, Code, Denied};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use keyledger_commands::auth::Authenticator;
use keyledger_commands::clock::Clock;
use keyledger_commands::secrets::Pepper;
use keyledger_domain::route::HttpMethod;
use keyledger_domain::Permission;
use keyledger_projections::edge_cache::{EdgeCache, EndpointEntry, KeyEntry};
use keyledger_projections::usage::{UsageRecord, UsageRecorder};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
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
            metrics::counter!(DECISIONS, "code" => code.as_str()).increment(0);
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
    fn refused(&self, seen: &Seen<'_>, d: &Denied) {
        self.record(seen, d.status(), d.code, d.key.clone(), d.endpoint.clone());
    }

    /// Takes the entries rather than counting another reference: the counts are shared by
    /// every request for that key on every core.
    ///
    /// The usage writer counts `keyledger_edge_decisions_total{code}` as it takes the records:
    /// one counter per code, incremented here on every request from both cores, cost more than
    /// the record itself. Latency per decision is in the usage records; a histogram here would
    /// cost a lock per request.
    fn record(
        &self,
        seen: &Seen<'_>,
        status: StatusCode,
        code: Code,
        key: Option<Arc<KeyEntry>>,
        endpoint: Option<Arc<EndpointEntry>>,
    ) {
        let latency = seen.started.elapsed();
        tracing::debug!(
            code = code.as_str(),
            status = status.as_u16(),
            key_id = key.as_ref().map(|k| k.key_id.as_str()),
            path = seen.path,
            latency_us = latency.as_micros() as u64,
            "edge decision"
        );
        self.usage.record(UsageRecord {
            at: seen.at,
            key,
            endpoint,
            method: seen.method_name.clone(),
            path: stored_path(seen.path),
            status: status.as_u16(),
            code: code.as_str(),
            latency_us: latency.as_micros().min(i64::MAX as u128) as i64,
            client_ip: seen.ip,
        });
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

/// The key a request presents: `Authorization: Bearer …` or `X-API-Key: …`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim());
            }
        }
    }
    headers.get(X_API_KEY).and_then(|v| v.to_str().ok()).map(str::trim)
}

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
const SUNSET: HeaderName = HeaderName::from_static("sunset");
const X_KEYLEDGER_KEY_ID: HeaderName = HeaderName::from_static("x-keyledger-key-id");
const X_KEYLEDGER_TENANT: HeaderName = HeaderName::from_static("x-keyledger-tenant");
const X_KEYLEDGER_SCOPES: HeaderName = HeaderName::from_static("x-keyledger-scopes");
const X_KEYLEDGER_ENVIRONMENT: HeaderName = HeaderName::from_static("x-keyledger-environment");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// At most this many rate-limit and deprecation headers on one answer.
const DECISION_HEADERS: usize = 8;
const IDENTITY_HEADERS: usize = 4;

fn set_text(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

/// Rate-limit headers (X-RateLimit-* and the IETF RateLimit / RateLimit-Policy fields), the
/// deprecation headers (RFC 9745 Deprecation, RFC 8594 Sunset), and on success the identity.
fn decision_headers(headers: &mut HeaderMap, rate: Option<limits::RateState>, endpoint: Option<&EndpointEntry>) {
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

fn identity_headers(headers: &mut HeaderMap, key: &KeyEntry) {
    let identity = &key.identity;
    headers.reserve(IDENTITY_HEADERS);
    headers.insert(X_KEYLEDGER_KEY_ID, identity.key_id.clone());
    headers.insert(X_KEYLEDGER_TENANT, identity.tenant.clone());
    headers.insert(X_KEYLEDGER_SCOPES, identity.scopes.clone());
    headers.insert(X_KEYLEDGER_ENVIRONMENT, identity.environment.clone());
}

fn denied_response(d: &Denied) -> Response {
    // A denial never carries `Valid`; were one built by mistake, it still answers as an error.
    let code = d.code.refusal().unwrap_or(ErrorCode::InternalError);
    let mut response = ApiError::new(code, d.message.clone()).into_response();
    decision_headers(response.headers_mut(), d.rate.clone(), None);
    response
}

pub fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/v1/keys/verify", post(verify))
        .route("/auth", any(forward_auth))
        .route("/auth/{*rest}", any(forward_auth))
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

/// Forward-auth: nginx `auth_request` (X-Original-Method, X-Original-URI), Traefik ForwardAuth
/// (X-Forwarded-Method, X-Forwarded-Uri), Envoy ext_authz (the original request under /auth/).
///
/// Its span is at debug level: disabled by default it costs one check per request, and
/// `RUST_LOG=keyledger_api::edge=debug` shows every decision. The usage log has them all anyway.
#[tracing::instrument(level = "debug", name = "edge_forward_auth", skip_all)]
async fn forward_auth(
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
        edge.refused(&seen, &d);
        return denied_response(&d);
    };
    let ask = Ask {
        key: presented_key(headers),
        scopes: &[],
    };
    match check::decide(&edge, &seen, ask).await {
        Ok(Allowed { key, endpoint, rate }) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            // Sized once for the identity and rate-limit headers: growing the map on the way
            // cost as much as filling it.
            headers.reserve(DECISION_HEADERS + IDENTITY_HEADERS);
            identity_headers(headers, &key);
            decision_headers(headers, Some(rate), endpoint.as_deref());
            edge.record(&seen, StatusCode::NO_CONTENT, Code::Valid, Some(key), endpoint);
            response
        }
        Err(d) => {
            edge.refused(&seen, &d);
            denied_response(&d)
        }
    }
}

/// Whether a verifying service may learn about a key of `tenant`. A tenant that does not parse
/// is nobody's: it must never fall back to the caller's own.
fn visible_to(caller: &keyledger_domain::Actor, tenant: &str) -> bool {
    tenant
        .parse::<keyledger_domain::TenantId>()
        .is_ok_and(|t| caller.may_access(&t))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub key: String,
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The end client's address, to apply the key's IP rules.
    pub ip: Option<IpAddr>,
}

/// For services: is this key good for this request? Always 200 with a verdict (`valid`, `code`);
/// callers authenticate with an admin token that has API_MANAGEMENT_READ.
#[tracing::instrument(level = "debug", name = "edge_verify", skip_all)]
async fn verify(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let started = Instant::now();
    let caller = match presented_key(&headers) {
        Some(token) => edge.admins.authenticate(token).await.map_err(ApiError::from),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <admin token>",
        )),
    };
    let caller = match caller {
        Ok(actor) if actor.has(Permission::ApiManagementRead) => actor,
        Ok(_) => return ApiError::new(ErrorCode::Forbidden, "verifying needs API_MANAGEMENT_READ").into_response(),
        Err(e) => return e.into_response(),
    };
    let body: VerifyBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ApiError::new(ErrorCode::InvalidJson, format!("invalid body: {e}")).into_response(),
    };
    let seen = Seen::new(
        &edge,
        started,
        body.method.as_deref().unwrap_or_default(),
        body.path.as_deref().unwrap_or_default(),
        body.ip,
    );
    match (&body.method, &body.path) {
        (Some(m), Some(_)) => {
            if let Err(e) = m.parse::<HttpMethod>() {
                return ApiError::new(ErrorCode::InvalidMethods, e.to_string()).into_response();
            }
        }
        (None, None) => {}
        _ => return ApiError::new(ErrorCode::InvalidRequest, "give both method and path, or neither").into_response(),
    }
    let ask = Ask {
        key: Some(&body.key),
        scopes: &body.scopes,
    };
    let verdict = match check::decide(&edge, &seen, ask).await {
        Ok(Allowed { key, endpoint, rate }) if visible_to(&caller, &key.tenant) => {
            edge.record(&seen, StatusCode::OK, Code::Valid, Some(key.clone()), endpoint);
            json!({
                "valid": true,
                "code": Code::Valid.verdict(),
                "key_id": key.key_id,
                "tenant": key.tenant,
                "scopes": key.scopes,
                "expires_at": key.expires_at,
                "ratelimit": { "limit": rate.limit, "remaining": rate.remaining, "reset": rate.reset },
            })
        }
        // Another tenant's key is, to this caller, an unknown key.
        Ok(_) => json!({ "valid": false, "code": Code::InvalidKey.verdict() }),
        Err(d) => {
            edge.refused(&seen, &d);
            let visible = d.key.as_ref().filter(|k| visible_to(&caller, &k.tenant));
            let mut v = json!({ "valid": false, "code": d.code.verdict(), "message": d.message });
            if let Some(k) = visible {
                v["key_id"] = json!(k.key_id);
                v["tenant"] = json!(k.tenant);
            } else if d.key.is_some() {
                v = json!({ "valid": false, "code": Code::InvalidKey.verdict() });
            }
            if let Some(rate) = &d.rate {
                v["ratelimit"] = json!({ "limit": rate.limit, "remaining": rate.remaining, "reset": rate.reset });
            }
            v
        }
    };
    axum::Json(verdict).into_response()
}

#[cfg(test)]
mod tests {
    use super::visible_to;
    use keyledger_domain::{Actor, Permission, ScopeGrant};

    fn actor(p: Permission) -> Actor {
        Actor {
            token_id: None,
            tenant: "acme".parse().unwrap(),
            permissions: [p].into(),
            scopes: ScopeGrant::All,
        }
    }

    #[test]
    fn a_service_sees_only_its_own_tenants_keys_and_never_an_unparsable_tenant() {
        let service = actor(Permission::ApiManagementRead);
        assert!(visible_to(&service, "acme"));
        assert!(!visible_to(&service, "globex"));
        assert!(
            !visible_to(&service, "Not A Tenant"),
            "no fallback to the caller's tenant"
        );
        assert!(visible_to(&actor(Permission::Superuser), "globex"));
    }
}
