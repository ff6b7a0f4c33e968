//! The auth edge's node-local copy of the key lookup and the endpoint catalogue.
//!
//! Every node loads a snapshot of the shared read models at start (rows and their checkpoints,
//! read in one consistent transaction), then applies the global log from there itself, woken at
//! once by new events. So a revocation reaches every node's edge without waiting for the shared
//! projection, and a restarted node serves known keys at once.

use crate::catalogue::{RouteTable, RouteTarget};
use crate::read_models::{decode, Decoded};
use crate::ProjectionError;
use chrono::{DateTime, TimeZone, Utc};
use http::HeaderValue;
use keyledger_commands::log::{self, LoggedEvent};
use keyledger_commands::secrets::VerifierDigest;
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{Backend, Database};
use keyledger_domain::ip_rules::{CidrRule, IpRules};
use keyledger_domain::key_format::{Environment, SecretHash};
use keyledger_domain::rate_limits::RateLimits;
use keyledger_domain::route::HttpMethod;
use keyledger_domain::{ApiKeyEvent, EndpointEvent, KeyStatus};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

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
    fn of(key_id: &str, tenant: &str, scopes: &BTreeSet<String>, environment: &str) -> Self {
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
    fn set_scopes(&mut self, scopes: BTreeSet<String>) {
        self.scopes = scopes;
        self.identity = IdentityHeaders::of(&self.key_id, &self.tenant, &self.scopes, &self.environment);
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
}

#[derive(Default)]
struct Keys {
    // Arc: a request takes its entry with a reference count, not a deep copy.
    by_lookup: HashMap<String, Arc<KeyEntry>>,
    by_key: HashMap<String, Vec<String>>,
}

#[derive(Default)]
struct Endpoints {
    by_id: HashMap<String, Arc<EndpointEntry>>,
    routes: Arc<RouteTable>,
}

/// Shared by the edge's request handlers and the tailing task.
pub struct EdgeCache {
    db: Database,
    pepper_id: String,
    keys: RwLock<Keys>,
    endpoints: RwLock<Endpoints>,
    position: watch::Sender<i64>,
}

fn ms_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Store(keyledger_commands::StoreError::Corrupt(format!("{what}: {e}")))
}

fn parse_rules(allow: &str, block: &str) -> Result<IpRules, ProjectionError> {
    let allow: Vec<CidrRule> = serde_json::from_str(allow).map_err(|e| corrupt("ip_allow", e))?;
    let block: Vec<CidrRule> = serde_json::from_str(block).map_err(|e| corrupt("ip_block", e))?;
    IpRules::new(allow, block).map_err(|e| corrupt("ip rules", e))
}

impl EdgeCache {
    /// Loads the snapshot; call [`EdgeCache::spawn_tail`] to keep it current.
    pub async fn load(db: Database, pepper_id: &str) -> Result<Arc<Self>, ProjectionError> {
        let mut tx = db.pool().begin().await?;
        if db.backend() == Backend::Postgres {
            // Rows and checkpoints must come from one snapshot.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let checkpoint =
            |name: &'static str| sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1").bind(name);
        let key_position: i64 = match checkpoint("key_lookup").fetch_optional(&mut *tx).await? {
            Some(r) => r.try_get("position")?,
            None => 0,
        };
        let endpoint_position: i64 = match checkpoint("endpoints").fetch_optional(&mut *tx).await? {
            Some(r) => r.try_get("position")?,
            None => 0,
        };
        let key_rows = sqlx::query(
            "SELECT k.lookup_id, k.key_id, k.tenant, k.environment, k.secret_hash, k.valid_until_ms, k.status, \
             k.scopes, k.rate_limits, k.ip_allow, k.ip_block, k.expires_at_ms, v.verifier \
             FROM key_lookup k LEFT JOIN key_verifiers v ON v.lookup_id = k.lookup_id AND v.pepper_id = $1",
        )
        .bind(pepper_id)
        .fetch_all(&mut *tx)
        .await?;
        let endpoint_rows = sqlx::query(
            "SELECT endpoint_id, path, methods, plugin, required_scopes, upstream_url, deprecated, deprecated_at_ms, \
             sunset_at_ms, active FROM endpoints",
        )
        .fetch_all(&mut *tx)
        .await?;
        let disabled_rows = sqlx::query("SELECT endpoint_id, tenant FROM endpoint_tenant_settings WHERE enabled = 0")
            .fetch_all(&mut *tx)
            .await?;
        tx.rollback().await?;

        let mut keys = Keys::default();
        for r in &key_rows {
            let status: String = r.try_get("status")?;
            let (key_id, tenant, environment): (String, String, String) =
                (r.try_get("key_id")?, r.try_get("tenant")?, r.try_get("environment")?);
            let scopes: BTreeSet<String> =
                serde_json::from_str(&r.try_get::<String, _>("scopes")?).map_err(|e| corrupt("scopes", e))?;
            let lookup_id: String = r.try_get("lookup_id")?;
            let entry = KeyEntry {
                // The snapshot joined key_verifiers: a missing one is known to be missing.
                verifier: Verifier::stored(&lookup_id, r.try_get::<Option<String>, _>("verifier")?.as_deref()),
                lookup_id,
                identity: IdentityHeaders::of(&key_id, &tenant, &scopes, &environment),
                key_id,
                tenant,
                environment,
                status: status.parse().map_err(|e: String| corrupt("status", e))?,
                scopes,
                rate_limits: serde_json::from_str(&r.try_get::<String, _>("rate_limits")?)
                    .map_err(|e| corrupt("rate_limits", e))?,
                ip_rules: parse_rules(
                    &r.try_get::<String, _>("ip_allow")?,
                    &r.try_get::<String, _>("ip_block")?,
                )?,
                expires_at: ms_time(r.try_get("expires_at_ms")?),
                valid_until: ms_time(r.try_get("valid_until_ms")?),
                secret_hash: SecretHash::from_phc(r.try_get("secret_hash")?),
            };
            keys.by_key
                .entry(entry.key_id.clone())
                .or_default()
                .push(entry.lookup_id.clone());
            keys.by_lookup.insert(entry.lookup_id.clone(), Arc::new(entry));
        }
        let mut endpoints = Endpoints::default();
        for r in &endpoint_rows {
            let methods: BTreeSet<HttpMethod> =
                serde_json::from_str(&r.try_get::<String, _>("methods")?).map_err(|e| corrupt("methods", e))?;
            let entry = EndpointEntry {
                endpoint_id: r.try_get("endpoint_id")?,
                path: r.try_get("path")?,
                methods,
                plugin: r.try_get("plugin")?,
                required_scopes: serde_json::from_str(&r.try_get::<String, _>("required_scopes")?)
                    .map_err(|e| corrupt("required_scopes", e))?,
                upstream_url: r.try_get("upstream_url")?,
                deprecated_at: match r.try_get::<i64, _>("deprecated")? {
                    1 => ms_time(r.try_get("deprecated_at_ms")?).or(Some(DateTime::<Utc>::UNIX_EPOCH)),
                    _ => None,
                },
                sunset_at: ms_time(r.try_get("sunset_at_ms")?),
                active: r.try_get::<i64, _>("active")? == 1,
                disabled_tenants: HashSet::new(),
            };
            endpoints.by_id.insert(entry.endpoint_id.clone(), Arc::new(entry));
        }
        for r in &disabled_rows {
            let id: String = r.try_get("endpoint_id")?;
            if let Some(e) = endpoints.by_id.get_mut(&id) {
                Arc::make_mut(e).disabled_tenants.insert(r.try_get("tenant")?);
            }
        }
        endpoints.routes = Arc::new(build_routes(&endpoints.by_id));
        let start = key_position.min(endpoint_position);
        let (position, _) = watch::channel(start);
        let cache = Arc::new(EdgeCache {
            db,
            pepper_id: pepper_id.to_owned(),
            keys: RwLock::new(keys),
            endpoints: RwLock::new(endpoints),
            position,
        });
        // Events between the two checkpoints belong to one table only.
        cache.catch_up(Some((key_position, endpoint_position))).await?;
        Ok(cache)
    }

    pub fn pepper_id(&self) -> &str {
        &self.pepper_id
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The log position this node's edge has applied.
    pub fn position(&self) -> i64 {
        *self.position.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.position.subscribe()
    }

    pub fn key(&self, lookup_id: &str) -> Option<Arc<KeyEntry>> {
        self.keys.read().ok()?.by_lookup.get(lookup_id).cloned()
    }

    pub fn key_count(&self) -> usize {
        self.keys.read().map(|k| k.by_lookup.len()).unwrap_or(0)
    }

    /// Remembers what the edge learnt of a secret's verifier (from the database or PBKDF2).
    pub fn set_verifier(&self, lookup_id: &str, verifier: Verifier) {
        if let Ok(mut keys) = self.keys.write() {
            if let Some(entry) = keys.by_lookup.get_mut(lookup_id) {
                Arc::make_mut(entry).verifier = verifier;
            }
        }
    }

    /// The endpoint serving `method` on `path`: the edge's question, under one read of the
    /// catalogue and without taking a count of the route table. Both would be shared counters
    /// that every request on every core writes.
    pub fn endpoint_for(&self, method: HttpMethod, path: &str) -> Option<Arc<EndpointEntry>> {
        let endpoints = self.endpoints.read().ok()?;
        let target = endpoints.routes.target(method, path)?;
        endpoints.by_id.get(&target.endpoint_id).cloned()
    }

    /// Applies the log up to its head. `skip_until` = (keys, endpoints) positions already in the
    /// snapshot.
    async fn catch_up(&self, skip_until: Option<(i64, i64)>) -> Result<(), ProjectionError> {
        loop {
            let from = self.position();
            let events = log::read_after(self.db.pool(), from, 1_000).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(());
            };
            let mut routes_changed = false;
            for event in &events {
                let (keys_at, endpoints_at) = skip_until.unwrap_or((0, 0));
                match decode(event)? {
                    Decoded::Key(e) if event.position > keys_at => self.apply_key(event, &e),
                    Decoded::Endpoint(e) if event.position > endpoints_at => {
                        self.apply_endpoint(&e);
                        routes_changed = true;
                    }
                    _ => {}
                }
            }
            if routes_changed {
                if let Ok(mut endpoints) = self.endpoints.write() {
                    endpoints.routes = Arc::new(build_routes(&endpoints.by_id));
                }
            }
            self.position.send_replace(last);
        }
    }

    fn apply_key(&self, logged: &LoggedEvent, event: &ApiKeyEvent) {
        use ApiKeyEvent::*;
        let Ok(mut keys) = self.keys.write() else { return };
        let key_id = logged.aggregate_id.clone();
        let lookups = keys.by_key.get(&key_id).cloned().unwrap_or_default();
        let mut each = |f: &dyn Fn(&mut KeyEntry)| {
            for l in &lookups {
                if let Some(e) = keys.by_lookup.get_mut(l) {
                    f(Arc::make_mut(e));
                }
            }
        };
        match event {
            KeyIssued {
                tenant,
                environment,
                lookup_id,
                secret_hash,
                scopes,
                rate_limits,
                ip_rules,
                expires_at,
                ..
            } => {
                let scopes: BTreeSet<String> = scopes.iter().map(|s| s.to_string()).collect();
                let entry = KeyEntry {
                    lookup_id: lookup_id.to_string(),
                    identity: IdentityHeaders::of(&key_id, tenant.as_str(), &scopes, environment.as_str()),
                    key_id: key_id.clone(),
                    tenant: tenant.to_string(),
                    environment: environment.as_str().to_owned(),
                    status: KeyStatus::Active,
                    scopes,
                    rate_limits: *rate_limits,
                    ip_rules: ip_rules.clone(),
                    expires_at: *expires_at,
                    valid_until: None,
                    secret_hash: secret_hash.clone(),
                    verifier: Verifier::Unknown,
                };
                keys.by_key.entry(key_id).or_default().push(entry.lookup_id.clone());
                keys.by_lookup.insert(entry.lookup_id.clone(), Arc::new(entry));
            }
            KeyScopesChanged { scopes, .. } => {
                let scopes: BTreeSet<String> = scopes.iter().map(|s| s.to_string()).collect();
                each(&|e| e.set_scopes(scopes.clone()));
            }
            KeyRateLimitsChanged { rate_limits, .. } => each(&|e| e.rate_limits = *rate_limits),
            KeyIpRulesChanged { ip_rules, .. } => each(&|e| e.ip_rules = ip_rules.clone()),
            KeyRevoked { .. } => each(&|e| e.status = KeyStatus::Revoked),
            KeyExpired { .. } => each(&|e| e.status = KeyStatus::Expired),
            KeyRenamed { .. } | KeyExpiryWarned { .. } => {}
            KeyRotated {
                lookup_id,
                secret_hash,
                previous_lookup_id,
                previous_valid_until,
                ..
            } => {
                let template = keys
                    .by_lookup
                    .get(previous_lookup_id.as_str())
                    .map(|e| KeyEntry::clone(e));
                // Only the latest retired secret survives.
                for l in lookups.iter().filter(|l| l.as_str() != previous_lookup_id.as_str()) {
                    keys.by_lookup.remove(l);
                }
                let Some(mut new) = template else { return };
                if let Some(old) = keys.by_lookup.get_mut(previous_lookup_id.as_str()) {
                    Arc::make_mut(old).valid_until = Some(*previous_valid_until);
                }
                new.lookup_id = lookup_id.to_string();
                new.secret_hash = secret_hash.clone();
                new.verifier = Verifier::Unknown;
                new.valid_until = None;
                keys.by_lookup.insert(new.lookup_id.clone(), Arc::new(new));
                keys.by_key
                    .insert(key_id, vec![previous_lookup_id.to_string(), lookup_id.to_string()]);
            }
        }
    }

    fn apply_endpoint(&self, event: &EndpointEvent) {
        use EndpointEvent::*;
        let Ok(mut endpoints) = self.endpoints.write() else {
            return;
        };
        let id = event.endpoint_id().to_string();
        if let EndpointRegistered { spec, .. } = event {
            endpoints.by_id.insert(
                id.clone(),
                Arc::new(EndpointEntry {
                    endpoint_id: id,
                    path: spec.path.to_string(),
                    methods: spec.methods.clone(),
                    plugin: spec.plugin.to_string(),
                    required_scopes: spec.required_scopes.iter().map(|s| s.to_string()).collect(),
                    upstream_url: spec.upstream_url.as_str().to_owned(),
                    deprecated_at: None,
                    sunset_at: None,
                    active: true,
                    disabled_tenants: HashSet::new(),
                }),
            );
            return;
        }
        let Some(e) = endpoints.by_id.get_mut(&id) else { return };
        let e = Arc::make_mut(e);
        match event {
            EndpointRegistered { .. } | EndpointSchemasChanged { .. } => {}
            EndpointChanged {
                methods,
                path,
                plugin,
                required_scopes,
                upstream_url,
                ..
            } => {
                if let Some(v) = methods {
                    e.methods = v.clone();
                }
                if let Some(v) = path {
                    e.path = v.to_string();
                }
                if let Some(v) = plugin {
                    e.plugin = v.to_string();
                }
                if let Some(v) = required_scopes {
                    e.required_scopes = v.iter().map(|s| s.to_string()).collect();
                }
                if let Some(v) = upstream_url {
                    e.upstream_url = v.as_str().to_owned();
                }
            }
            EndpointDeprecated { sunset, at, .. } => {
                e.deprecated_at = Some(*at);
                e.sunset_at = *sunset;
            }
            EndpointUndeprecated { .. } => {
                e.deprecated_at = None;
                e.sunset_at = None;
            }
            EndpointActivated { .. } => e.active = true,
            EndpointDeactivated { .. } => e.active = false,
            EndpointEnabledForTenant { tenant, .. } => {
                e.disabled_tenants.remove(tenant.as_str());
            }
            EndpointDisabledForTenant { tenant, .. } => {
                e.disabled_tenants.insert(tenant.to_string());
            }
        }
    }

    /// Follows the log until the task is aborted.
    pub fn spawn_tail(self: &Arc<Self>, wake: LogWatch) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(
            async move {
                let mut woken = wake.subscribe();
                loop {
                    woken.mark_unchanged();
                    if let Err(e) = cache.catch_up(None).await {
                        tracing::error!(error = %e, "edge cache could not apply the log; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    // The watch wakes us at once; the timeout is a safety net.
                    let _ = tokio::time::timeout(Duration::from_secs(2), woken.changed()).await;
                }
            }
            .instrument(tracing::info_span!("edge_cache")),
        )
    }
}

fn build_routes(endpoints: &HashMap<String, Arc<EndpointEntry>>) -> RouteTable {
    let mut table = RouteTable::new();
    let mut sorted: Vec<&Arc<EndpointEntry>> = endpoints.values().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path).then(a.endpoint_id.cmp(&b.endpoint_id)));
    for e in sorted {
        let Ok(path) = e.path.parse() else { continue };
        let target = RouteTarget {
            endpoint_id: e.endpoint_id.clone(),
            path,
            methods: e.methods.clone(),
        };
        if let Err(err) = table.insert(target) {
            tracing::warn!(endpoint = %e.endpoint_id, error = %err, "route not added to the edge's table");
        }
    }
    table
}
