//! The node-local copy of the key lookup and the endpoint catalogue (for the auth edge) and of
//! the admin tokens (for authenticating admin requests).
//!
//! Every node loads a snapshot of the shared read models at start (rows and their checkpoints,
//! read in one consistent transaction), then applies the global log from there itself, woken at
//! once by new events. So a revocation reaches every node's edge without waiting for the shared
//! projection, and a restarted node serves known keys at once.

mod entries;
mod keys;
mod load;
mod profile;
mod stored;
#[cfg(test)]
mod tests;
mod tokens;
pub use entries::{EndpointEntry, KeyEntry, KeyIdText, LookupKey, TenantName, Verifier};
pub use profile::{KeyProfile, ProfileHeaders, Scopes};

use crate::catalogue::{RouteTable, RouteTarget};
use crate::read_models::{admin_tokens, decode, key_secrets, Decoded};
use crate::ProjectionError;
use cqrs_es::Aggregate;
use futures::future::BoxFuture;
use keyledger_commands::auth::{TokenDirectory, TokenEntry};
use keyledger_commands::log::{self, LoggedEvent};
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{Database, StoreError};
use keyledger_domain::endpoint::RegisteredEndpoint;
use keyledger_domain::key_format::SecretHash;
use keyledger_domain::route::HttpMethod;
use keyledger_domain::{ApiKey, ApiKeyEvent, EndpointEvent};
use keys::{secrets_of, Keys, States, STATES_KEPT};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

#[derive(Default)]
struct Endpoints {
    states: HashMap<String, RegisteredEndpoint>,
    by_id: HashMap<String, Arc<EndpointEntry>>,
    routes: Arc<RouteTable>,
}

/// Shared by the edge's request handlers and the tailing task.
pub struct EdgeCache {
    db: Database,
    pepper_id: String,
    keys: RwLock<Keys>,
    /// Touched only by the task applying the log.
    states: Mutex<States>,
    endpoints: RwLock<Endpoints>,
    tokens: RwLock<tokens::Tokens>,
    position: watch::Sender<i64>,
}

/// Where each part of the snapshot stands: events up to there are in it already.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    keys: i64,
    endpoints: i64,
    tokens: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Store(keyledger_commands::StoreError::Corrupt(format!("{what}: {e}")))
}

impl EdgeCache {
    /// Loads the snapshot; call [`EdgeCache::spawn_tail`] to keep it current.
    pub async fn load(db: Database, pepper_id: &str) -> Result<Arc<Self>, ProjectionError> {
        Self::load_keeping(db, pepper_id, STATES_KEPT).await
    }

    /// [`EdgeCache::load`], keeping at most `kept` folded key states (tests keep one).
    async fn load_keeping(db: Database, pepper_id: &str, kept: usize) -> Result<Arc<Self>, ProjectionError> {
        let loaded = load::snapshot(&db, pepper_id).await?;
        let snapshot = loaded.snapshot;
        let start = snapshot.keys.min(snapshot.endpoints).min(snapshot.tokens);
        let (position, _) = watch::channel(start);
        let cache = Arc::new(EdgeCache {
            db,
            pepper_id: pepper_id.to_owned(),
            keys: RwLock::new(loaded.keys),
            states: Mutex::new(States::new(kept)),
            endpoints: RwLock::new(loaded.endpoints),
            tokens: RwLock::new(loaded.tokens),
            position,
        });
        // Events between the checkpoints belong to some of the tables only.
        cache.catch_up(snapshot, None).await?;
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

    /// The entry of the secret with this lookup id: looked up by the presented text, copied
    /// into a key of fixed size without an allocation.
    pub fn key(&self, lookup_id: &str) -> Option<Arc<KeyEntry>> {
        let lookup = LookupKey::new(lookup_id)?;
        self.keys.read().ok()?.by_lookup.get(&lookup).cloned()
    }

    /// The entry of the key's current secret as this node's edge holds it (not a rotated one in
    /// its grace period), for acting as the key without presenting it: an admin's question (the
    /// explorer's Test), never the edge's. Which secrets the key has is read from its stream, so
    /// the edge keeps no table by key id (a million keys' ids took 61 bytes each and a tenth of
    /// a restart). When the stream is ahead of this cache (a rotation not applied yet), the
    /// secret the cache still holds as current answers.
    pub async fn key_by_id(&self, key_id: &str) -> Result<Option<Arc<KeyEntry>>, ProjectionError> {
        let Ok(id) = Uuid::parse_str(key_id) else {
            return Ok(None);
        };
        let state = self.replay(&id.to_string(), i64::MAX).await?;
        let Some(key) = state.issued() else { return Ok(None) };
        let keys = self
            .keys
            .read()
            .map_err(|_| corrupt("the edge's keys", "a lock poisoned"))?;
        let held: Vec<&Arc<KeyEntry>> = key_secrets(key)
            .filter_map(|(lookup_id, _, _)| keys.by_lookup.get(&LookupKey::new(lookup_id.as_str())?))
            .filter(|e| e.key_id.uuid() == id)
            .collect();
        let current = held.iter().find(|e| e.valid_until.is_none()).or(held.first());
        Ok(current.map(|e| Arc::clone(e)))
    }

    /// Presentable secrets (a rotated key has two for a while).
    pub fn key_count(&self) -> usize {
        self.keys.read().map(|k| k.by_lookup.len()).unwrap_or(0)
    }

    /// Distinct key settings the entries share.
    pub fn profile_count(&self) -> usize {
        self.keys.read().map(|k| k.profiles.len()).unwrap_or(0)
    }

    /// Remembers what the edge learnt of a secret's verifier (from the database or PBKDF2).
    pub fn set_verifier(&self, lookup_id: &LookupKey, verifier: Verifier) {
        if let Ok(mut keys) = self.keys.write() {
            keys.set_verifier(lookup_id, verifier);
        }
    }

    /// The PBKDF2 hash of the entry's secret, which the edge does not keep: read from the key's
    /// stream, which is never behind this cache (the shared `key_lookup` table may be). Only a
    /// key whose verifier is unknown to this node's pepper needs it, a rare and bounded path.
    /// `None` when the key no longer accepts that secret.
    pub async fn secret_hash(&self, entry: &KeyEntry) -> Result<Option<SecretHash>, ProjectionError> {
        let state = self.replay(entry.key_id.as_str(), i64::MAX).await?;
        let hash = state.issued().and_then(|key| {
            key_secrets(key)
                .find(|(lookup_id, _, _)| lookup_id.as_str() == entry.lookup_id.as_str())
                .map(|(_, hash, _)| hash.clone())
        });
        Ok(hash)
    }

    /// A key's state folded from its stream, up to and including event `through`: by the
    /// domain's fold, from the events the history reads.
    async fn replay(&self, key_id: &str, through: i64) -> Result<ApiKey, ProjectionError> {
        let events = keyledger_commands::bus::stream::<ApiKey>(&self.db, key_id).await?;
        let mut state = ApiKey::default();
        for e in events.into_iter().take_while(|e| e.sequence as i64 <= through) {
            state.apply(e.event);
        }
        Ok(state)
    }

    /// The endpoint serving `method` on `path`: the edge's question, under one read of the
    /// catalogue and without taking a count of the route table. Both would be shared counters
    /// that every request on every core writes.
    pub fn endpoint_for(&self, method: HttpMethod, path: &str) -> Option<Arc<EndpointEntry>> {
        let endpoints = self.endpoints.read().ok()?;
        let target = endpoints.routes.target(method, path)?;
        endpoints.by_id.get(&target.endpoint_id).cloned()
    }

    /// Applies the log up to its head, skipping what the snapshot already holds. With
    /// `announced`, events this node appended are taken from memory, and the log is not read
    /// once the position announced to the watch is reached; without, the log is read until it
    /// has nothing more.
    async fn catch_up(&self, skip: Snapshot, announced: Option<&LogWatch>) -> Result<(), ProjectionError> {
        loop {
            let from = self.position();
            let recent = announced.map(|w| w.recent_after(from, 1_000)).unwrap_or_default();
            let events = match announced {
                _ if !recent.is_empty() => recent,
                Some(watch) if watch.head() <= from => return Ok(()),
                _ => log::read_after(self.db.pool(), from, 1_000).await?,
            };
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(());
            };
            let mut routes_changed = false;
            for event in &events {
                match decode(event)? {
                    Decoded::Key(e) if event.position > skip.keys => self.apply_key(event, e).await?,
                    Decoded::Token(e) if event.position > skip.tokens => {
                        if let Ok(mut tokens) = self.tokens.write() {
                            tokens.apply(&e);
                        }
                    }
                    Decoded::Endpoint(e) if event.position > skip.endpoints => {
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

    /// Folds a key's event into its state (kept, or folded again from its stream up to the event
    /// before) and puts the entries of the state it leaves in place of the old ones.
    async fn apply_key(&self, logged: &LoggedEvent, event: ApiKeyEvent) -> Result<(), ProjectionError> {
        let key_id = Uuid::parse_str(&logged.aggregate_id)
            .map_err(|e| corrupt(&format!("key id {}", logged.aggregate_id), e))?;
        let kept = self.states.lock().ok().and_then(|mut s| s.take(&key_id));
        let mut state = match kept {
            // Applied already: a batch that failed half-way is read again.
            Some((state, folded)) if folded >= logged.sequence => {
                self.keep(key_id, state, folded);
                return Ok(());
            }
            Some((state, _)) => state,
            // A stream's first event starts from nothing.
            None if logged.sequence <= 1 => ApiKey::default(),
            None => self.replay(&logged.aggregate_id, logged.sequence - 1).await?,
        };
        let before = secrets_of(&state);
        state.apply(event);
        if let Ok(mut keys) = self.keys.write() {
            keys.put(&before, &state);
        }
        self.keep(key_id, state, logged.sequence);
        Ok(())
    }

    fn keep(&self, key_id: Uuid, state: ApiKey, sequence: i64) {
        if let Ok(mut states) = self.states.lock() {
            states.keep(key_id, state, sequence);
        }
    }

    fn apply_endpoint(&self, event: &EndpointEvent) {
        let Ok(mut endpoints) = self.endpoints.write() else {
            return;
        };
        let id = event.endpoint_id().to_string();
        if let Some(registered) = RegisteredEndpoint::registered(event) {
            endpoints.states.insert(id.clone(), registered);
        } else if let Some(state) = endpoints.states.get_mut(&id) {
            state.apply(event.clone());
        }
        if let Some(entry) = endpoints.states.get(&id).map(EndpointEntry::of) {
            endpoints.by_id.insert(id, Arc::new(entry));
        }
    }

    /// Follows the log until the task is aborted.
    pub fn spawn_tail(self: &Arc<Self>, wake: LogWatch) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(
            async move {
                let mut woken = wake.subscribe();
                // Whether the position announced to the watch can be trusted to be the log's
                // head: not at start, nor after a nudge (a lost listener connection) or the
                // safety-net timeout, when the log itself is read.
                let mut trusted = false;
                loop {
                    let heard = *woken.borrow_and_update();
                    let applied = cache.catch_up(Snapshot::default(), trusted.then_some(&wake)).await;
                    if let Err(e) = applied {
                        tracing::error!(error = %e, "edge cache could not apply the log; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        trusted = false;
                        continue;
                    }
                    // The watch wakes us at once; the timeout is a safety net.
                    let changed = tokio::time::timeout(Duration::from_secs(2), woken.changed()).await;
                    trusted = matches!(changed, Ok(Ok(()))) && *woken.borrow() > heard;
                }
            }
            .instrument(tracing::info_span!("edge_cache")),
        )
    }
}

impl TokenDirectory for EdgeCache {
    fn token<'a>(&'a self, fingerprint: &'a str) -> BoxFuture<'a, Result<Option<Arc<TokenEntry>>, StoreError>> {
        let known = self.tokens.read().ok().and_then(|t| t.get(fingerprint));
        Box::pin(async move {
            if known.is_some() {
                return Ok(known);
            }
            // Made on another node a moment ago, or no token at all.
            match admin_tokens::live_token(&self.db, fingerprint).await {
                Ok(token) => Ok(token.map(Arc::new)),
                Err(ProjectionError::Store(e)) => Err(e),
                Err(e) => Err(StoreError::Corrupt(e.to_string())),
            }
        })
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
