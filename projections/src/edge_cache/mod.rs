//! The node-local copy of the key lookup and the endpoint catalogue (for the auth edge) and of
//! the admin tokens (for authenticating admin requests).
//!
//! Every node loads a snapshot of the shared read models at start (rows and their checkpoints,
//! read in one consistent transaction), then applies the global log from there itself, woken at
//! once by new events. So a revocation reaches every node's edge without waiting for the shared
//! projection, and a restarted node serves known keys at once.

mod entries;
mod tokens;
pub use entries::{EndpointEntry, IdentityHeaders, KeyEntry, Verifier};

use crate::catalogue::{RouteTable, RouteTarget};
use crate::read_models::{admin_tokens, decode, key_secrets, Decoded};
use crate::{ProjectionError, ReadModel};
use cqrs_es::Aggregate;
use futures::future::BoxFuture;
use keyledger_commands::auth::{TokenDirectory, TokenEntry};
use keyledger_commands::log::{self, LoggedEvent};
use keyledger_commands::verifiers;
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{Backend, Database, StoreError};
use keyledger_domain::endpoint::RegisteredEndpoint;
use keyledger_domain::route::HttpMethod;
use keyledger_domain::{ApiKey, ApiKeyEvent, EndpointEvent};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

#[derive(Default)]
struct Keys {
    // Arc: a request takes its entry with a reference count, not a deep copy.
    by_lookup: HashMap<String, Arc<KeyEntry>>,
    /// Each key's state, folded by the domain's fold, and the lookup ids of its entries.
    by_key: HashMap<String, (ApiKey, Vec<String>)>,
}

impl Keys {
    /// Derives `key_id`'s entries from its state again, keeping what is known of verifiers.
    /// `stored`: every verifier `key_verifiers` holds for this node's pepper, when just read.
    fn refresh(&mut self, key_id: &str, stored: Option<&HashMap<String, String>>) {
        let Some((state, lookups)) = self.by_key.get_mut(key_id) else {
            return;
        };
        let mut previous: HashMap<String, Arc<KeyEntry>> = lookups
            .drain(..)
            .filter_map(|l| self.by_lookup.remove(&l).map(|e| (l, e)))
            .collect();
        let Some(key) = state.issued() else { return };
        for (lookup_id, hash, valid_until) in key_secrets(key) {
            let lookup_id = lookup_id.as_str();
            let verifier = match previous.remove(lookup_id) {
                Some(entry) => entry.verifier.clone(),
                // With the snapshot, a missing verifier is known to be missing.
                None => match stored {
                    Some(all) => Verifier::stored(lookup_id, all.get(lookup_id).map(String::as_str)),
                    None => Verifier::Unknown,
                },
            };
            let entry = KeyEntry::of(key, lookup_id, hash, valid_until, verifier);
            lookups.push(lookup_id.to_owned());
            self.by_lookup.insert(lookup_id.to_owned(), Arc::new(entry));
        }
    }
}

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
        let mut tx = db.pool().begin().await?;
        if db.backend() == Backend::Postgres {
            // Rows and checkpoints must come from one snapshot.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let snapshot = Snapshot {
            keys: checkpoint(&mut tx, ReadModel::KeyLookup).await?,
            endpoints: checkpoint(&mut tx, ReadModel::Endpoints).await?,
            tokens: checkpoint(&mut tx, ReadModel::AdminTokens).await?,
        };
        let live_tokens = admin_tokens::live_tokens(&mut tx).await?;
        // A rotated key has a row per secret, each with the key's state: the current secret's
        // row (no deadline) stands for the key.
        let key_rows = sqlx::query("SELECT key_id, state FROM key_lookup WHERE valid_until_ms IS NULL")
            .fetch_all(&mut *tx)
            .await?;
        let endpoint_rows = sqlx::query("SELECT endpoint_id, state FROM endpoints")
            .fetch_all(&mut *tx)
            .await?;
        tx.rollback().await?;
        let verifiers = verifiers::all_for(&db, pepper_id).await?;

        let mut keys = Keys::default();
        for r in &key_rows {
            let key_id: String = r.try_get("key_id")?;
            let state: ApiKey = serde_json::from_str(&r.try_get::<String, _>("state")?)
                .map_err(|e| corrupt(&format!("key {key_id} state"), e))?;
            keys.by_key.insert(key_id.clone(), (state, Vec::new()));
            keys.refresh(&key_id, Some(&verifiers));
        }
        let mut endpoints = Endpoints::default();
        for r in &endpoint_rows {
            let id: String = r.try_get("endpoint_id")?;
            let state: Option<RegisteredEndpoint> = serde_json::from_str(&r.try_get::<String, _>("state")?)
                .map_err(|e| corrupt(&format!("endpoint {id} state"), e))?;
            if let Some(state) = state {
                endpoints.by_id.insert(id.clone(), Arc::new(EndpointEntry::of(&state)));
                endpoints.states.insert(id, state);
            }
        }
        endpoints.routes = Arc::new(build_routes(&endpoints.by_id));
        let mut tokens = tokens::Tokens::default();
        for (fingerprint, entry) in live_tokens {
            tokens.insert(fingerprint, entry);
        }
        let start = snapshot.keys.min(snapshot.endpoints).min(snapshot.tokens);
        let (position, _) = watch::channel(start);
        let cache = Arc::new(EdgeCache {
            db,
            pepper_id: pepper_id.to_owned(),
            keys: RwLock::new(keys),
            endpoints: RwLock::new(endpoints),
            tokens: RwLock::new(tokens),
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

    pub fn key(&self, lookup_id: &str) -> Option<Arc<KeyEntry>> {
        self.keys.read().ok()?.by_lookup.get(lookup_id).cloned()
    }

    /// The entry of the key's current secret (not a rotated one in its grace period), for acting
    /// as the key without presenting it.
    pub fn key_by_id(&self, key_id: &str) -> Option<Arc<KeyEntry>> {
        let keys = self.keys.read().ok()?;
        let (_, lookups) = keys.by_key.get(key_id)?;
        let entries = lookups.iter().filter_map(|l| keys.by_lookup.get(l));
        let mut fallback = None;
        for entry in entries {
            if entry.valid_until.is_none() {
                return Some(entry.clone());
            }
            fallback.get_or_insert(entry);
        }
        fallback.cloned()
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
                    Decoded::Key(e) if event.position > skip.keys => self.apply_key(event, &e),
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

    fn apply_key(&self, logged: &LoggedEvent, event: &ApiKeyEvent) {
        let Ok(mut keys) = self.keys.write() else { return };
        let key_id = logged.aggregate_id.as_str();
        let (state, _) = keys.by_key.entry(key_id.to_owned()).or_default();
        state.apply(event.clone());
        // Secrets new to this node: their verifier is looked for on first use.
        keys.refresh(key_id, None);
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

/// A read model's checkpoint, as the snapshot's transaction sees it.
async fn checkpoint(tx: &mut sqlx::AnyConnection, model: ReadModel) -> Result<i64, ProjectionError> {
    let row = sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1")
        .bind(model.name())
        .fetch_optional(tx)
        .await?;
    Ok(match row {
        Some(r) => r.try_get("position")?,
        None => 0,
    })
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
