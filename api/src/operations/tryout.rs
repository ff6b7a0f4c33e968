//! "Test" in the explorer: send a request to an endpoint as one of the tenant's keys and show
//! what came back. Until the auth edge exists the request goes straight to the plugin's
//! upstream, carrying the identity headers the edge will set (never the key itself).

use super::{require, ApiError, ErrorCode};
use crate::state::AppState;
use async_graphql::{InputObject, SimpleObject};
use keyledger_commands::secrets::SecretHasher;
use keyledger_commands::CommandContext;
use keyledger_domain::key_format::PlaintextKey;
use keyledger_domain::route::{HttpMethod, PathTemplate, Segment};
use keyledger_domain::Permission;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "TryEndpointResult")]
pub struct TryResult {
    pub method: String,
    pub url: String,
    /// `upstream` until the auth edge exists.
    pub via: String,
    pub status: u16,
    #[schema(value_type = Object)]
    pub headers: BTreeMap<String, String>,
    /// JSON when the answer was JSON, else text.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub truncated: bool,
    pub duration_ms: f64,
    /// What the edge would object to (missing scope, inactive key, disabled endpoint, …).
    pub warnings: Vec<String>,
}

/// The identity a test request carries.
struct Identity {
    key_id: String,
    tenant: String,
    status: String,
    scopes: Vec<String>,
}

async fn identity_by_id(state: &AppState, ctx: &CommandContext, key_id: &str) -> Result<Identity, ApiError> {
    let row = keyledger_projections::key_list::get_key(&state.db, key_id, state.clock.now())
        .await?
        .filter(|row| ctx.actor.may_access(&row.key.tenant))
        .ok_or_else(|| ApiError::not_found("key"))?;
    let key = row.key;
    Ok(Identity {
        key_id: key.id.to_string(),
        tenant: key.tenant.to_string(),
        status: key.status_at(state.clock.now()).as_str().to_owned(),
        scopes: key.scopes.iter().map(|s| s.to_string()).collect(),
    })
}

async fn identity_by_key(state: &AppState, ctx: &CommandContext, raw: &str) -> Result<Identity, ApiError> {
    let refused = || ApiError::new(ErrorCode::InvalidTestKey, "the key is not one of your tenant's keys");
    let key = PlaintextKey::parse(raw.trim()).map_err(|e| ApiError::new(ErrorCode::InvalidTestKey, e.to_string()))?;
    // This node's copy of the key lookup: current once the command that made the key answered.
    let entry = state.edge.key(key.lookup_id().as_str()).ok_or_else(refused)?;
    if !SecretHasher::verify_off_runtime(&entry.secret_hash, key.expose()).await {
        return Err(refused());
    }
    identity_by_id(state, ctx, &entry.key_id).await.map_err(|_| refused())
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
    let identity = match (&req.key_id, &req.key) {
        (Some(_), Some(_)) => return Err(ApiError::new(ErrorCode::InvalidTestKey, "give key_id or key, not both")),
        (Some(id), None) => Some(identity_by_id(state, ctx, id).await?),
        (None, Some(key)) => Some(identity_by_key(state, ctx, key).await?),
        (None, None) => None,
    };
    let template = PathTemplate::try_from(endpoint.path.clone()).map_err(ApiError::internal)?;
    let path = concrete_path(&template, &req.path_params)?;
    let row = keyledger_projections::endpoints::get_endpoint(&state.db, &endpoint.id, ctx.actor.tenant.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    let mut url = url::Url::parse(&format!("{}{}", row.upstream_url, path)).map_err(ApiError::internal)?;
    if !req.query.is_empty() {
        url.query_pairs_mut().extend_pairs(req.query.iter());
    }

    let mut warnings = Vec::new();
    match &identity {
        None => warnings.push("no key chosen: the edge will answer 401 invalid_key".to_owned()),
        Some(who) => {
            if who.status != "active" {
                warnings.push(format!("the key is {}: the edge will refuse it", who.status));
            }
            let missing: Vec<&String> = endpoint
                .required_scopes
                .iter()
                .filter(|s| !who.scopes.contains(s))
                .collect();
            if !missing.is_empty() {
                warnings.push(format!(
                    "the key lacks {missing:?}: the edge will answer 403 insufficient_scope"
                ));
            }
        }
    }
    if !endpoint.enabled {
        warnings.push("the endpoint is not enabled for this tenant: the edge will answer 404".to_owned());
    }
    if endpoint.deprecated {
        warnings.push("the endpoint is deprecated".to_owned());
    }

    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(ApiError::internal)?;
    let method_header = reqwest::Method::from_bytes(method.as_str().as_bytes()).map_err(ApiError::internal)?;
    let mut request = client
        .request(method_header, url.clone())
        .header("user-agent", "keyledger-explorer");
    if let Some(who) = &identity {
        request = request
            .header("x-keyledger-key-id", &who.key_id)
            .header("x-keyledger-tenant", &who.tenant)
            .header("x-keyledger-scopes", who.scopes.join(","));
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
        warnings,
    })
}
