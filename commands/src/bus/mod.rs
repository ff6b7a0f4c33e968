//! The command bus: authorises the acting admin, scopes commands to tenants, stamps time and
//! metadata, and runs each command the same way: load the aggregate once, decide once, append
//! once with the version it was loaded at. One module per aggregate holds its commands.

mod cache;
mod endpoints;
mod keys;
mod tokens;
mod webhooks;

pub use keys::{ChangeKeyRequest, IssueKeyRequest, IssueOutcome};
pub use tokens::IssueTokenRequest;

use crate::append::Appender;
use crate::clock::Clock;
use crate::log::{self, EventMetadata};
use crate::secrets::{self, SecretHasher};
use crate::wake::LogWatch;
use crate::{CommandError, Database, StoreError};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use keyledger_domain::{Actor, Permission, TenantId};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Who is acting, and the request this command belongs to (for the audit trail).
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl CommandContext {
    pub fn system() -> Self {
        CommandContext {
            actor: Actor::system(),
            request_id: None,
        }
    }

    fn require(&self, permission: Permission) -> Result<(), CommandError> {
        if self.actor.has(permission) {
            Ok(())
        } else {
            Err(CommandError::Forbidden(format!(
                "this action needs the {permission} permission"
            )))
        }
    }

    /// The tenant a create acts on: the actor's own unless a superuser names another.
    pub fn target_tenant(&self, requested: Option<TenantId>) -> Result<TenantId, CommandError> {
        match requested {
            None => Ok(self.actor.tenant.clone()),
            Some(t) if self.actor.may_access(&t) => Ok(t),
            Some(t) => Err(CommandError::Forbidden(format!("you cannot act on tenant {t}"))),
        }
    }
}

/// A successful command: its result and a log position at or after its events, for callers
/// that want to wait until read models include it.
#[derive(Debug)]
pub struct Committed<T> {
    pub value: T,
    pub position: i64,
}

/// The plaintext of a new secret. Shown to the caller once; never stored or logged (`Debug`
/// leaves it out).
pub struct NewSecret<T> {
    pub id: Uuid,
    pub secret: T,
}

impl<T> std::fmt::Debug for NewSecret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("id", &self.id)
            .field("secret", &"***")
            .finish()
    }
}

/// One event of an aggregate's stream, as the history endpoint shows it.
#[derive(Debug, Clone)]
pub struct StoredEvent<E> {
    pub sequence: usize,
    pub event_type: String,
    pub event: E,
    pub metadata: EventMetadata,
}

/// The error for an event of `A`'s stream `id` that does not decode.
fn corrupt<A: Aggregate>(id: &str, sequence: usize) -> impl Fn(serde_json::Error) -> StoreError + Copy + '_ {
    move |e| StoreError::Corrupt(format!("{} {id} event {sequence}: {e}", A::TYPE))
}

/// One aggregate's events, oldest first, decoded with their metadata: what the history shows,
/// and what the edge folds again for a key whose state it no longer keeps.
pub async fn stream<A: Aggregate>(db: &Database, id: &str) -> Result<Vec<StoredEvent<A::Event>>, StoreError> {
    let serialized = db.events().get_events::<A>(id).await?;
    serialized
        .into_iter()
        .map(|s| {
            let corrupt = corrupt::<A>(id, s.sequence);
            let event = serde_json::from_value(s.payload).map_err(corrupt)?;
            let metadata = log::metadata_from_value(s.metadata).map_err(corrupt)?;
            Ok(StoredEvent {
                sequence: s.sequence,
                event_type: s.event_type,
                event,
                metadata,
            })
        })
        .collect()
}

/// An aggregate folded from its stream, and the version an append after it expects.
struct Loaded<A> {
    state: A,
    version: usize,
    /// Read up to the stream's end just now; `false`: this node's last copy, not checked
    /// against the stream (another node may have moved it on).
    checked: bool,
}

/// The state a command left, and where its events are in the log (`None`: it appended none).
struct Decided<A> {
    state: A,
    position: Option<i64>,
}

#[derive(Clone)]
pub struct CommandBus {
    db: Database,
    appender: Appender,
    states: cache::States,
    hasher: SecretHasher,
    clock: Arc<dyn Clock>,
    watch: LogWatch,
    pepper: Option<Arc<secrets::Pepper>>,
    sealer: Option<crate::sealing::SecretBox>,
}

impl CommandBus {
    pub fn new(db: Database, hasher: SecretHasher, clock: Arc<dyn Clock>, watch: LogWatch) -> Self {
        CommandBus {
            appender: Appender::spawn(db.clone(), watch.clone()),
            states: cache::States::default(),
            db,
            hasher,
            clock,
            watch,
            pepper: None,
            sealer: None,
        }
    }

    /// Issue and rotation also store the edge's fast verifier for the new secret.
    /// Webhook signing secrets are sealed with a key derived from it.
    pub fn with_pepper(mut self, pepper: Arc<secrets::Pepper>) -> Self {
        self.sealer = Some(crate::sealing::SecretBox::new(
            pepper.derive("keyledger webhook secrets v1"),
        ));
        self.pepper = Some(pepper);
        self
    }

    /// What seals and opens webhook signing secrets.
    pub fn sealer(&self) -> Result<&crate::sealing::SecretBox, CommandError> {
        self.sealer
            .as_ref()
            .ok_or_else(|| CommandError::Store(crate::StoreError::Corrupt("no key to seal webhook secrets".into())))
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn hasher(&self) -> SecretHasher {
        self.hasher
    }

    fn metadata(&self, ctx: &CommandContext, tenant: &TenantId, at: DateTime<Utc>) -> HashMap<String, String> {
        let mut m = HashMap::from([
            ("actor".to_owned(), ctx.actor.label()),
            ("tenant".to_owned(), tenant.to_string()),
            (
                "time".to_owned(),
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        ]);
        if let Some(id) = &ctx.request_id {
            m.insert("request_id".to_owned(), id.clone());
        }
        m
    }

    /// The answer of a command, with a position at or after its events (for one that appended
    /// none, the log's head), announced to this node's log readers.
    async fn committed<T>(&self, value: T, appended_at: Option<i64>) -> Result<Committed<T>, CommandError> {
        let position = match appended_at {
            Some(position) => position,
            None => log::head(self.db.pool()).await?,
        };
        self.watch.announce(position);
        Ok(Committed { value, position })
    }

    async fn hash(&self, secret: String) -> Result<keyledger_domain::key_format::SecretHash, CommandError> {
        let hasher = self.hasher;
        tokio::task::spawn_blocking(move || hasher.hash(&secret))
            .await
            .map_err(|e| CommandError::Store(StoreError::EventStore(format!("hashing task failed: {e}"))))
    }

    /// One aggregate's events, oldest first, decoded with their metadata.
    async fn stream<A: Aggregate>(&self, id: &str) -> Result<Vec<StoredEvent<A::Event>>, CommandError> {
        Ok(stream::<A>(&self.db, id).await?)
    }

    /// The aggregate as its events leave it (the one fold the domain defines): from this node's
    /// last sight of it plus the events appended since, or from the whole stream.
    async fn load<A: Aggregate + Clone + 'static>(&self, id: &str) -> Result<Loaded<A>, CommandError> {
        let (state, version) = self.states.get::<A>(id).unwrap_or_default();
        let mut loaded = Loaded {
            state,
            version,
            checked: true,
        };
        let later = self
            .db
            .events()
            .get_last_events::<A>(id, version)
            .await
            .map_err(|e| CommandError::Store(e.into()))?;
        if later.is_empty() {
            return Ok(loaded);
        }
        for s in later {
            let event = serde_json::from_value(s.payload).map_err(corrupt::<A>(id, s.sequence))?;
            loaded.version = s.sequence;
            loaded.state.apply(event);
        }
        self.states.put(id, &loaded.state, loaded.version);
        Ok(loaded)
    }

    /// For a command: this node's last copy of the aggregate without a read, if it has one
    /// ([`Self::decide`] confirms anything decided on it that the append did not check).
    async fn load_for_command<A: Aggregate + Clone + 'static>(&self, id: &str) -> Result<Loaded<A>, CommandError> {
        match self.states.get::<A>(id) {
            Some((state, version)) => Ok(Loaded {
                state,
                version,
                checked: false,
            }),
            None => self.load(id).await,
        }
    }

    /// Runs `command` against the loaded state and appends what it decided (possibly nothing),
    /// expecting the stream to be still at the version it was loaded at: a concurrent writer
    /// makes this a [`CommandError::Conflict`], never a lost update. On a copy that was not
    /// checked, the append's version check catches a stale copy; a refusal, a no-op or a
    /// conflict is confirmed by reading the stream, and decided again if it had moved on.
    async fn decide<A>(
        &self,
        id: &str,
        loaded: Loaded<A>,
        command: A::Command,
        metadata: HashMap<String, String>,
        refused: impl Fn(A::Error) -> CommandError + Copy,
    ) -> Result<Decided<A>, CommandError>
    where
        A: Aggregate<Services = ()> + Clone + 'static,
        A::Command: Clone,
    {
        if loaded.checked {
            return self.attempt(id, loaded, command, metadata, refused).await;
        }
        let version = loaded.version;
        let first = self
            .attempt(id, loaded, command.clone(), metadata.clone(), refused)
            .await;
        if matches!(&first, Ok(Decided { position: Some(_), .. })) {
            return first;
        }
        let conflicted = matches!(&first, Err(CommandError::Conflict));
        let fresh = self.load::<A>(id).await?;
        if !conflicted && fresh.version == version {
            return first;
        }
        self.attempt(id, fresh, command, metadata, refused).await
    }

    async fn attempt<A>(
        &self,
        id: &str,
        loaded: Loaded<A>,
        command: A::Command,
        metadata: HashMap<String, String>,
        refused: impl Fn(A::Error) -> CommandError,
    ) -> Result<Decided<A>, CommandError>
    where
        A: Aggregate<Services = ()> + Clone + 'static,
    {
        let Loaded { mut state, version, .. } = loaded;
        let sink = EventSink::default();
        state.handle(command, &(), &sink).await.map_err(refused)?;
        let events = sink.collect().await;
        if events.is_empty() {
            return Ok(Decided { state, position: None });
        }
        let corrupt = |e: serde_json::Error| StoreError::EventStore(format!("cannot serialise an event: {e}"));
        let metadata = serde_json::to_value(&metadata).map_err(corrupt)?;
        let serialized = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                Ok(SerializedEvent::new(
                    id.to_owned(),
                    version + i + 1,
                    A::TYPE.to_owned(),
                    event.event_type(),
                    event.event_version(),
                    serde_json::to_value(event).map_err(corrupt)?,
                    metadata.clone(),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let appended = self.appender.append(serialized).await;
        let position = match appended {
            Ok(position) => {
                self.states.put(id, &state, version + events.len());
                position
            }
            // Someone else appended first (or the store failed). The kept copy stays: events are
            // never changed, so it is still the stream up to its version, and the next load reads
            // only what came after it.
            Err(e) => return Err(e),
        };
        Ok(Decided {
            state,
            position: Some(position),
        })
    }
}
