//! "Test" in the explorer: send a request to an endpoint as one of the tenant's keys, show
//! what the upstream answered, and what the edge answers the same request. The edge's answer
//! comes from the edge's own decision ([`crate::edge::check::decide`]), asked to look rather
//! than spend: a Test takes nothing from the key's rate limits and is not recorded as usage.
//! The request reaches the upstream whatever the edge would say, so that an admin can try an
//! endpoint before the key is ready for it.

use super::{require, ApiError, ErrorCode};
use crate::edge::check::{self, Ask, Credential, Denied};
use crate::edge::limits::{RateState, Spend};
use crate::edge::Seen;
use crate::state::AppState;
use async_graphql::{InputObject, SimpleObject};
use keyledger_commands::CommandContext;
use keyledger_domain::key_format::PresentedKey;
use keyledger_domain::route::{HttpMethod, PathTemplate, Segment};
use keyledger_domain::Permission;
use keyledger_projections::edge_cache::KeyEntry;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Upstream answers larger than this are cut (the explorer shows a preview, not a download).
const MAX_BODY_BYTES: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

/// RFC 3986 unreserved characters stay as they are in a path segment; everything else is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Debug, Default, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "TryEndpointInput")]
pub struct TryRequest {
    /// One of the endpoint's methods; may be left out when it has only one.
    pub method: Option<String>,
    /// A value for every `{param}` of the path.
    #[serde(default)]
    #[graphql(default)]
    pub path_params: BTreeMap<String, String>,
    #[serde(default)]
    #[graphql(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body, for POST, PUT and PATCH.
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
    /// Act as this key of your tenant…
    pub key_id: Option<String>,
    /// …or as the key you paste (checked, never forwarded).
    pub key: Option<String>,
    /// The client address the edge judges the key's IP rules by, as the verify API's `ip`; left
    /// out, IP rules are not judged (the answer warns when the key has some).
    pub client_ip: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "TryEndpointResult")]
pub struct TryResult {
    pub method: String,
    pub url: String,
    /// `upstream`: the Test went to the endpoint's upstream itself, whatever the edge would
    /// answer (which `edge` tells).
    pub via: String,
    pub status: u16,
    #[schema(value_type = Object)]
    pub headers: BTreeMap<String, String>,
    /// JSON when the answer was JSON, else text.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub truncated: bool,
    pub duration_ms: f64,
    /// What the edge answers the same request with the same key, now.
    pub edge: EdgeAnswer,
    /// What the edge would object to or warn of (a refusal, a deprecated endpoint, IP rules not
    /// judged), in words.
    pub warnings: Vec<String>,
}

/// The edge's decision for a Test's request, by the edge's own checks.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "TryEndpointEdgeAnswer")]
pub struct EdgeAnswer {
    /// The verify API's verdict: `VALID`, `INVALID_KEY`, `KEY_REVOKED`, `KEY_EXPIRED`,
    /// `IP_FORBIDDEN`, `ENDPOINT_NOT_FOUND`, `INSUFFICIENT_SCOPE` or `RATE_LIMITED`.
    pub verdict: String,
    /// Whether the edge passes the request on to the upstream.
    pub allowed: bool,
    /// A refusal's status, instead of the upstream's.
    pub status: Option<u16>,
    /// A refusal's error code.
    #[schema(value_type = Option<crate::error::ErrorCode>)]
    pub code: Option<String>,
    /// A refusal's message.
    pub message: Option<String>,
    /// The key's rate limit as the edge would report it after this request (absent without a
    /// key, or for a key without limits).
    pub ratelimit: Option<TryRateLimit>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "TryEndpointRateLimit")]
pub struct TryRateLimit {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window is full again.
    pub reset: u64,
}

impl TryRateLimit {
    fn of(rate: Option<&RateState>) -> Option<Self> {
        rate.filter(|r| r.window.is_some()).map(|r| TryRateLimit {
            limit: r.limit,
            remaining: r.remaining,
            reset: r.reset,
        })
    }
}

impl EdgeAnswer {
    fn of(decision: &Result<check::Allowed, Denied>) -> Self {
        match decision {
            Ok(allowed) => EdgeAnswer {
                verdict: check::Code::Valid.verdict().to_owned(),
                allowed: true,
                status: None,
                code: None,
                message: None,
                ratelimit: TryRateLimit::of(Some(&allowed.rate)),
            },
            Err(d) => EdgeAnswer {
                verdict: d.code.verdict().to_owned(),
                allowed: false,
                status: Some(d.status().as_u16()),
                code: crate::edge::check::Answer::refusal(d.code).map(|c| c.as_str().to_owned()),
                message: Some(d.message.clone()),
                ratelimit: TryRateLimit::of(d.rate.as_ref()),
            },
        }
    }
}

/// The key a Test acts as, and how the edge is to know it.
async fn chosen_key<'a>(
    state: &AppState,
    ctx: &CommandContext,
    req: &'a TryRequest,
) -> Result<(Option<Arc<KeyEntry>>, Credential<'a>), ApiError> {
    match (&req.key_id, &req.key) {
        (Some(_), Some(_)) => Err(ApiError::new(ErrorCode::InvalidTestKey, "give key_id or key, not both")),
        (Some(id), None) => {
            let entry = state
                .edge
                .cache
                .key_by_id(id)
                .await?
                .filter(|e| ctx.actor.may_access_named(&e.tenant))
                .ok_or_else(|| ApiError::not_found("key"))?;
            Ok((Some(entry.clone()), Credential::Chosen(entry)))
        }
        (None, Some(raw)) => {
            let parsed =
                PresentedKey::check(raw.trim()).map_err(|e| ApiError::new(ErrorCode::InvalidTestKey, e.to_string()))?;
            let entry = state
                .edge
                .cache
                .key(parsed.lookup_id)
                .filter(|e| ctx.actor.may_access_named(&e.tenant))
                .ok_or_else(refused_test_key)?;
            Ok((Some(entry), Credential::Presented(Some(raw))))
        }
        (None, None) => Ok((None, Credential::Presented(None))),
    }
}

fn refused_test_key() -> ApiError {
    ApiError::new(ErrorCode::InvalidTestKey, "the key is not one of your tenant's keys")
}

fn concrete_path(template: &PathTemplate, params: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let mut path = String::new();
    for segment in template.segments() {
        path.push('/');
        match segment {
            Segment::Static(text) => path.push_str(text),
            Segment::Param(name) => {
                let value = params.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                    ApiError::new(ErrorCode::MissingPathParam, format!("give a value for {{{name}}}"))
                })?;
                path.push_str(&utf8_percent_encode(value, SEGMENT).to_string());
            }
        }
    }
    Ok(if path.is_empty() { "/".to_owned() } else { path })
}

pub async fn try_endpoint(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    req: TryRequest,
) -> Result<TryResult, ApiError> {
    let endpoint = super::endpoints::get(state, ctx, id, None).await?;
    let method = match (&req.method, endpoint.methods.as_slice()) {
        (Some(m), _) => {
            HttpMethod::try_from(m.clone()).map_err(|e| ApiError::new(ErrorCode::InvalidMethods, e.to_string()))?
        }
        (None, [only]) => only.parse().map_err(|_| ApiError::internal("stored method"))?,
        (None, _) => {
            return Err(ApiError::new(
                ErrorCode::InvalidMethods,
                "choose one of the endpoint's methods",
            ))
        }
    };
    if !endpoint.methods.iter().any(|m| m == method.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidMethods,
            format!("the endpoint does not serve {method}"),
        ));
    }
    // Reading is harmless; anything else acts on real data.
    let needed = if matches!(method, HttpMethod::Get | HttpMethod::Head | HttpMethod::Options) {
        Permission::ApiManagementRead
    } else {
        Permission::ApiManagementWrite
    };
    require(ctx, needed)?;
    if req.body.is_some() && !method.has_body() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("{method} requests carry no body"),
        ));
    }
    let client_ip = match &req.client_ip {
        Some(ip) => Some(
            ip.trim()
                .parse::<IpAddr>()
                .map_err(|_| ApiError::new(ErrorCode::InvalidClientIp, format!("{ip:?} is not an IP address")))?,
        ),
        None => None,
    };
    let (key, credential) = chosen_key(state, ctx, &req).await?;
    let template = PathTemplate::try_from(endpoint.path.clone()).map_err(ApiError::internal)?;
    let path = concrete_path(&template, &req.path_params)?;
    let row = keyledger_projections::endpoints::get_endpoint(&state.db, &endpoint.id, ctx.actor.tenant.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    let mut url = url::Url::parse(&format!("{}{}", row.upstream_url, path)).map_err(ApiError::internal)?;
    if !req.query.is_empty() {
        url.query_pairs_mut().extend_pairs(req.query.iter());
    }

    let seen = Seen::new(&state.edge, Instant::now(), method.as_str(), &path, client_ip);
    let ask = Ask {
        key: credential,
        scopes: &[],
        spend: Spend::Look,
    };
    let decision = check::decide(&state.edge, &seen, ask).await;
    if let (Some(_), Err(d)) = (&req.key, &decision) {
        // A pasted key that is not what it claims is the Test's input error, not an edge answer.
        if d.code == check::Code::InvalidKey {
            return Err(refused_test_key());
        }
    }
    let edge = EdgeAnswer::of(&decision);
    let mut warnings = Vec::new();
    if let (Some(status), Some(code), Some(message)) = (edge.status, &edge.code, &edge.message) {
        warnings.push(format!("the edge would answer {status} {code}: {message}"));
    }
    if let Ok(allowed) = &decision {
        if allowed.endpoint.as_ref().is_some_and(|e| e.endpoint_id != endpoint.id) {
            warnings.push(format!("the edge routes {method} {path} to another endpoint"));
        }
    }
    if endpoint.deprecated {
        warnings.push("the endpoint is deprecated".to_owned());
    }
    if client_ip.is_none()
        && key
            .as_ref()
            .is_some_and(|k| !k.profile.ip_rules.allow().is_empty() || !k.profile.ip_rules.block().is_empty())
    {
        warnings.push("the key has IP rules, not judged: give client_ip".to_owned());
    }

    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(ApiError::internal)?;
    let method_header = reqwest::Method::from_bytes(method.as_str().as_bytes()).map_err(ApiError::internal)?;
    let mut request = client
        .request(method_header, url.clone())
        .header("user-agent", "keyledger-explorer");
    if let Some(key) = &key {
        let mut identity = axum::http::HeaderMap::new();
        crate::edge::headers::identity_headers(&mut identity, key);
        request = request.headers(identity);
    }
    if let Some(body) = &req.body {
        request = request.json(body);
    }
    let started = Instant::now();
    let response = request.send().await.map_err(|e| {
        ApiError::new(
            ErrorCode::UpstreamUnreachable,
            format!("the upstream did not answer: {e}"),
        )
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::new(
            ErrorCode::UpstreamUnreachable,
            format!("the upstream's answer broke off: {e}"),
        )
    })?;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let truncated = bytes.len() > MAX_BODY_BYTES;
    let shown = &bytes[..bytes.len().min(MAX_BODY_BYTES)];
    let body = serde_json::from_slice(shown)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(shown).into_owned()));
    Ok(TryResult {
        method: method.to_string(),
        url: url.to_string(),
        via: "upstream".to_owned(),
        status,
        headers,
        body,
        truncated,
        duration_ms,
        edge,
        warnings,
    })
}
