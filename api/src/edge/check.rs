//! The edge's decision for one request, in the order DESIGN.md §7 fixes: key (format, known,
//! secret), revoked, expired, IP rules, endpoint, scopes, endpoint enabled, rate limits.

use super::limits::{RateState, Spend};
use super::{Edge, Seen};
use crate::error::ErrorCode;
use axum::http::StatusCode;
use keyledger_commands::secrets::{SecretHasher, VerifierDigest};
use keyledger_commands::verifiers;
use keyledger_domain::key_format::PresentedKey;
use keyledger_domain::KeyStatus;
use keyledger_projections::edge_cache::{EndpointEntry, KeyEntry, Verifier};
use std::net::IpAddr;
use std::sync::Arc;

/// What is being asked of the request in `Seen`, which gives its time, client address and (when
/// it has a method) the endpoint to match.
pub struct Ask<'a> {
    pub key: Credential<'a>,
    /// Scopes to require instead of (or besides) an endpoint's.
    pub scopes: &'a [String],
    /// Whether the decision takes from the key's rate limits.
    pub spend: Spend,
}

/// Who the request says it is.
pub enum Credential<'a> {
    /// A key as a request carries it (when it carries one): parsed, found, and its secret checked.
    Presented(Option<&'a str>),
    /// A key chosen by someone who may act as it (an admin testing an endpoint as one of the
    /// tenant's keys): every rule but the secret applies.
    Chosen(Arc<KeyEntry>),
}

impl<'a> Ask<'a> {
    /// The edge's question: the request's own key, its endpoint's scopes, the quota spent.
    pub fn request(key: Option<&'a str>) -> Self {
        Ask {
            key: Credential::Presented(key),
            scopes: &[],
            spend: Spend::Take,
        }
    }
}

pub struct Allowed {
    pub key: Arc<KeyEntry>,
    pub endpoint: Option<Arc<EndpointEntry>>,
    pub rate: RateState,
}

/// How a decision ended (DESIGN.md §7, and the proxy's own `upstream_unreachable`): the
/// domain's outcome, the one list that usage records, analytics and streams also speak.
pub use keyledger_domain::usage::Outcome as Code;

/// What an outcome answers with at the edge. One code has one refusal status, so a refusal
/// carries only its code.
pub trait Answer {
    /// The error a refusal with this code answers with; `None` for `Valid`, which refuses nothing.
    fn refusal(self) -> Option<ErrorCode>;
    /// The status a refusal with this code answers with (200 for `Valid`).
    fn status(self) -> StatusCode;
}

impl Answer for Code {
    fn refusal(self) -> Option<ErrorCode> {
        match self {
            Code::Valid => None,
            Code::InvalidKey => Some(ErrorCode::InvalidKey),
            Code::KeyRevoked => Some(ErrorCode::KeyRevoked),
            Code::KeyExpired => Some(ErrorCode::KeyExpired),
            Code::IpForbidden => Some(ErrorCode::IpForbidden),
            Code::EndpointNotFound => Some(ErrorCode::EndpointNotFound),
            Code::InsufficientScope => Some(ErrorCode::InsufficientScope),
            Code::RateLimited => Some(ErrorCode::RateLimited),
            Code::UpstreamUnreachable => Some(ErrorCode::UpstreamUnreachable),
        }
    }

    fn status(self) -> StatusCode {
        match self.refusal() {
            Some(refusal) => refusal.status(),
            None => StatusCode::OK,
        }
    }
}

pub struct Denied {
    pub code: Code,
    pub message: String,
    pub key: Option<Arc<KeyEntry>>,
    pub endpoint: Option<Arc<EndpointEntry>>,
    pub rate: Option<RateState>,
}

pub fn deny(code: Code, message: impl Into<String>) -> Denied {
    Denied {
        code,
        message: message.into(),
        key: None,
        endpoint: None,
        rate: None,
    }
}

fn invalid() -> Denied {
    deny(Code::InvalidKey, "the API key is malformed or unknown")
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    fn with_key(mut self, key: &Arc<KeyEntry>) -> Self {
        self.key = Some(key.clone());
        self
    }
}

/// The verifier `key_verifiers` holds for this secret and pepper, remembered either way. `None`
/// also when the database cannot answer: PBKDF2 then decides, and the next request asks again.
async fn stored_verifier(edge: &Edge, entry: &KeyEntry) -> Option<VerifierDigest> {
    let lookup_id = entry.lookup_id.as_str();
    match verifiers::find(edge.cache.db(), lookup_id, edge.pepper.id()).await {
        Ok(found) => {
            let learnt = Verifier::stored(lookup_id, found.as_deref());
            edge.cache.set_verifier(&entry.lookup_id, learnt.clone());
            learnt.known().cloned()
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read a key verifier");
            None
        }
    }
}

/// Checks the presented secret against the key: the peppered verifier when known (microseconds),
/// else PBKDF2 once on the bounded pool, after which the verifier is remembered.
async fn check_secret(edge: &Edge, entry: &KeyEntry, presented: &str, ip: Option<IpAddr>) -> Result<(), Denied> {
    let verifier = match &entry.verifier {
        Verifier::Known(v) => Some(v.clone()),
        Verifier::NotStored => None,
        Verifier::Unknown => stored_verifier(edge, entry).await,
    };
    if let Some(verifier) = verifier {
        return if edge.pepper.matches(presented, &verifier) {
            Ok(())
        } else {
            Err(invalid())
        };
    }
    // PBKDF2 is deliberately slow: an address gets only so many attempts, and only a few run at
    // once, so a flood of made-up keys cannot starve real traffic.
    if let Some(ip) = ip {
        if edge.failures.check_key(&ip).is_err() {
            return Err(deny(
                Code::RateLimited,
                "too many key checks from this address; slow down",
            ));
        }
    }
    let Ok(_permit) = edge.pbkdf2.clone().acquire_owned().await else {
        return Err(invalid());
    };
    // The hash is not kept in memory (a million keys would hold 100 bytes each for this rare
    // path): read from the key's stream, within the permit, so that this too is bounded.
    let hash = match edge.cache.secret_hash(entry).await {
        Ok(Some(hash)) => hash,
        // Rotated away twice since this entry was made: the secret is no longer accepted.
        Ok(None) => return Err(invalid()),
        Err(e) => {
            tracing::warn!(error = %e, "could not read a key's hash to check it; refused");
            return Err(invalid());
        }
    };
    metrics::counter!("keyledger_edge_pbkdf2_total").increment(1);
    if !SecretHasher::verify_off_runtime(&hash, presented).await {
        return Err(invalid());
    }
    let verifier = edge.pepper.digest(presented);
    // Stored for restarts and other nodes with this pepper; this path is rare, so it may wait.
    // PBKDF2 has just proved the key, so what it stores replaces a damaged verifier.
    let stored = verifiers::store(edge.cache.db(), entry.lookup_id.as_str(), edge.pepper.id(), &verifier).await;
    edge.cache.set_verifier(&entry.lookup_id, Verifier::Known(verifier));
    if let Err(e) = stored {
        tracing::warn!(error = %e, "could not store a key verifier");
    }
    Ok(())
}

/// The key a presented secret proves.
async fn authenticate(edge: &Edge, presented: Option<&str>, ip: Option<IpAddr>) -> Result<Arc<KeyEntry>, Denied> {
    let presented = presented.map(str::trim).filter(|k| !k.is_empty()).ok_or_else(|| {
        deny(
            Code::InvalidKey,
            "send the key as Authorization: Bearer <key> or X-API-Key: <key>",
        )
    })?;
    let parsed = PresentedKey::check(presented).map_err(|_| invalid())?;
    let entry = edge.cache.key(parsed.lookup_id).ok_or_else(invalid)?;
    check_secret(edge, &entry, parsed.full, ip)
        .await
        .map_err(|d| d.with_key(&entry))?;
    Ok(entry)
}

/// The one decision: the edge's proxy, forward-auth and verify API, and the explorer's Test.
pub async fn decide(edge: &Edge, seen: &Seen<'_>, ask: Ask<'_>) -> Result<Allowed, Denied> {
    let entry = match ask.key {
        // A look must not count against the address's allowance of key checks.
        Credential::Presented(presented) => {
            authenticate(edge, presented, seen.ip.filter(|_| ask.spend == Spend::Take)).await?
        }
        Credential::Chosen(entry) => entry,
    };
    let now = seen.at;
    match entry.status {
        KeyStatus::Revoked => return Err(deny(Code::KeyRevoked, "the API key was revoked").with_key(&entry)),
        KeyStatus::Expired => return Err(deny(Code::KeyExpired, "the API key has expired").with_key(&entry)),
        KeyStatus::Active => {}
    }
    if entry.expires_at.is_some_and(|e| e <= now) {
        return Err(deny(Code::KeyExpired, "the API key has expired").with_key(&entry));
    }
    if entry.valid_until.is_some_and(|v| v <= now) {
        return Err(deny(Code::KeyExpired, "this secret was rotated and its grace period is over").with_key(&entry));
    }
    if let Some(ip) = seen.ip {
        if !entry.profile.ip_rules.permits(ip) {
            return Err(deny(
                Code::IpForbidden,
                format!("requests from {ip} are not allowed for this key"),
            )
            .with_key(&entry));
        }
    }
    let endpoint = match seen.target() {
        None => None,
        Some((method, path)) => Some(edge.cache.endpoint_for(method, path).ok_or_else(|| {
            deny(Code::EndpointNotFound, format!("no endpoint serves {method} {path}")).with_key(&entry)
        })?),
    };
    let required = || {
        ask.scopes
            .iter()
            .chain(endpoint.iter().flat_map(|e| e.required_scopes.iter()))
    };
    // The list of what is missing is built only for a refusal.
    let scopes = &entry.profile.scopes;
    if !required().all(|s| scopes.contains(s)) {
        let missing: Vec<&String> = required().filter(|s| !scopes.contains(s)).collect();
        let mut d = deny(Code::InsufficientScope, format!("the API key lacks {missing:?}")).with_key(&entry);
        d.endpoint = endpoint;
        return Err(d);
    }
    if let Some(e) = &endpoint {
        if !e.enabled_for(&entry.tenant) {
            let mut d = deny(Code::EndpointNotFound, "this endpoint is not available").with_key(&entry);
            d.endpoint = endpoint;
            return Err(d);
        }
    }
    match edge.limits.decide(entry.key_id, &entry.profile.rate_limits, ask.spend) {
        Ok(rate) => Ok(Allowed {
            key: entry,
            endpoint,
            rate,
        }),
        Err(rate) => {
            let wait = rate.retry_after.unwrap_or(1);
            let mut d = deny(Code::RateLimited, format!("rate limit exceeded; retry in {wait} s")).with_key(&entry);
            d.endpoint = endpoint;
            d.rate = Some(rate);
            Err(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Answer, Code};

    /// A usage record keeps the refusal's error code, so that the error body, the record and
    /// the metrics name a refusal alike.
    #[test]
    fn every_outcome_is_recorded_as_its_refusals_error_code() {
        for code in Code::ALL {
            let named = code.refusal().map_or("VALID", |refusal| refusal.as_str());
            assert_eq!(code.recorded(), named);
            assert_eq!(code.verdict(), named.to_ascii_uppercase());
        }
    }
}
