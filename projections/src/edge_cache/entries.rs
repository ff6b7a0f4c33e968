//! What the edge keeps per presentable secret and per endpoint, derived from the folded states.

use chrono::{DateTime, Utc};
use http::HeaderValue;
use keyledger_commands::secrets::VerifierDigest;
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::endpoint::RegisteredEndpoint;
use keyledger_domain::ip_rules::IpRules;
use keyledger_domain::key_format::{Environment, SecretHash};
use keyledger_domain::rate_limits::RateLimits;
use keyledger_domain::route::HttpMethod;
use keyledger_domain::KeyStatus;
use std::collections::{BTreeSet, HashSet};

/// One presented secret of a key (a rotated key has two until the old one's grace ends).
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub lookup_id: String,
    pub key_id: String,
    pub tenant: String,
    pub environment: String,
    pub status: KeyStatus,
    pub scopes: BTreeSet<String>,
    pub rate_limits: RateLimits,
    pub ip_rules: IpRules,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set on the retired secret of a rotated key.
    pub valid_until: Option<DateTime<Utc>>,
    pub secret_hash: SecretHash,
    /// HMAC(pepper, key) for this node's pepper, as far as this node knows.
    pub verifier: Verifier,
    /// What the edge tells upstreams about this key, built when the entry changes rather than on
    /// every request.
    pub identity: IdentityHeaders,
}

/// What this node knows of a secret's peppered verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    /// Not looked for yet: `key_verifiers` may hold one (another node may have stored it).
    Unknown,
    /// `key_verifiers` holds none. A presented key goes straight to the bounded PBKDF2 path, so a
    /// flood of well-formed keys with real lookup ids and wrong secrets costs no query each.
    NotStored,
    Known(VerifierDigest),
}

impl Verifier {
    /// What `key_verifiers` holds for a secret. A stored verifier that is not 64 hex digits is
    /// treated as missing, with a warning: PBKDF2 decides once and stores a good one over it.
    pub fn stored(lookup_id: &str, text: Option<&str>) -> Self {
        match text.map(|t| (t, VerifierDigest::from_hex(t))) {
            None => Verifier::NotStored,
            Some((_, Some(digest))) => Verifier::Known(digest),
            Some((_, None)) => {
                tracing::warn!(
                    lookup_id,
                    "the stored verifier of this key is not 64 hex digits; PBKDF2 checks the key once and replaces it"
                );
                Verifier::NotStored
            }
        }
    }

    pub fn known(&self) -> Option<&VerifierDigest> {
        match self {
            Verifier::Known(v) => Some(v),
            Verifier::Unknown | Verifier::NotStored => None,
        }
    }
}

/// `X-Keyledger-Key-Id`, `-Tenant`, `-Scopes` (comma-separated) and `-Environment`.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub key_id: HeaderValue,
    pub tenant: HeaderValue,
    pub scopes: HeaderValue,
    pub environment: HeaderValue,
}

impl IdentityHeaders {
    pub(super) fn of(key_id: &str, tenant: &str, scopes: &BTreeSet<String>, environment: &str) -> Self {
        // Ids, tenants, scopes and environments are parsed ASCII tokens; the fallback is never hit.
        let value = |text: &str| HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""));
        let scopes = scopes.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        IdentityHeaders {
            key_id: value(key_id),
            tenant: value(tenant),
            scopes: value(&scopes),
            // Static text: no buffer of its own to share between answers.
            environment: environment
                .parse::<Environment>()
                .map_or_else(|_| value(environment), |e| HeaderValue::from_static(e.as_str())),
        }
    }
}

impl KeyEntry {
    /// The entry of one secret of `key` (see [`crate::read_models::key_secrets`]).
    pub(super) fn of(
        key: &IssuedKey,
        lookup_id: &str,
        secret_hash: &SecretHash,
        valid_until: Option<DateTime<Utc>>,
        verifier: Verifier,
    ) -> Self {
        let key_id = key.id.to_string();
        let scopes: BTreeSet<String> = key.scopes.iter().map(|s| s.to_string()).collect();
        KeyEntry {
            lookup_id: lookup_id.to_owned(),
            identity: IdentityHeaders::of(&key_id, key.tenant.as_str(), &scopes, key.environment.as_str()),
            key_id,
            tenant: key.tenant.to_string(),
            environment: key.environment.as_str().to_owned(),
            status: key.recorded_status,
            scopes,
            rate_limits: key.rate_limits,
            ip_rules: key.ip_rules.clone(),
            expires_at: key.expires_at,
            valid_until,
            secret_hash: secret_hash.clone(),
            verifier,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointEntry {
    pub endpoint_id: String,
    pub path: String,
    pub methods: BTreeSet<HttpMethod>,
    pub plugin: String,
    pub required_scopes: BTreeSet<String>,
    pub upstream_url: String,
    pub deprecated_at: Option<DateTime<Utc>>,
    pub sunset_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub disabled_tenants: HashSet<String>,
}

impl EndpointEntry {
    pub fn enabled_for(&self, tenant: &str) -> bool {
        self.active && !self.disabled_tenants.contains(tenant)
    }

    pub(super) fn of(e: &RegisteredEndpoint) -> Self {
        EndpointEntry {
            endpoint_id: e.id.to_string(),
            path: e.spec.path.to_string(),
            methods: e.spec.methods.clone(),
            plugin: e.spec.plugin.to_string(),
            required_scopes: e.spec.required_scopes.iter().map(|s| s.to_string()).collect(),
            upstream_url: e.spec.upstream_url.as_str().to_owned(),
            deprecated_at: e.deprecation.as_ref().map(|d| d.since),
            sunset_at: e.deprecation.as_ref().and_then(|d| d.sunset),
            active: e.active,
            disabled_tenants: e.disabled_tenants.iter().map(|t| t.to_string()).collect(),
        }
    }
}
