//! The verify API: a service asks whether a key may make a request, and always gets 200 with a
//! verdict.

use super::check::{self, Allowed, Ask, Code};
use super::headers::presented_key;
use super::{Edge, Seen};
use crate::error::{ApiError, ErrorCode};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyledger_domain::route::HttpMethod;
use keyledger_domain::Permission;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

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
pub(super) async fn verify(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
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
        scopes: &body.scopes,
        ..Ask::request(Some(&body.key))
    };
    let verdict = match check::decide(&edge, &seen, ask).await {
        Ok(Allowed { key, endpoint, rate }) if caller.may_access_named(&key.tenant) => {
            edge.record(&seen, StatusCode::OK, Code::Valid, Some(key.clone()), endpoint)
                .await;
            json!({
                "valid": true,
                "code": Code::Valid.verdict(),
                "key_id": key.key_id,
                "tenant": key.tenant,
                "scopes": key.profile.scopes,
                "expires_at": key.expires_at,
                "ratelimit": { "limit": rate.limit, "remaining": rate.remaining, "reset": rate.reset },
            })
        }
        // Another tenant's key is, to this caller, an unknown key.
        Ok(_) => json!({ "valid": false, "code": Code::InvalidKey.verdict() }),
        Err(d) => {
            edge.refused(&seen, &d).await;
            let visible = d.key.as_ref().filter(|k| caller.may_access_named(&k.tenant));
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
        assert!(service.may_access_named("acme"));
        assert!(!service.may_access_named("globex"));
        assert!(
            !service.may_access_named("Not A Tenant"),
            "no fallback to the caller's tenant"
        );
        assert!(actor(Permission::Superuser).may_access_named("globex"));
    }
}
