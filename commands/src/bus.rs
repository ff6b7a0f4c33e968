//! The command bus: authorises the acting admin, scopes commands to tenants, stamps time and
//! metadata, and runs the aggregate through the event store.

use crate::clock::Clock;
use crate::error::from_aggregate;
use crate::log::{self, EventMetadata};
use crate::secrets::{self, SecretHasher};
use crate::store::EventRepo;
use crate::wake::LogWatch;
use crate::{CommandError, Database, StoreError};
use chrono::{DateTime, Utc};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::CqrsFramework;
use keyledger_domain::admin_token::{token_stream_id, IssueAdminToken};
use keyledger_domain::api_key::{ChangeKey, IssueKey, RevokeKey, RotateKey};
use keyledger_domain::ip_rules::IpRules;
use keyledger_domain::key_format::{Environment, PlaintextKey};
use keyledger_domain::name::Name;
use keyledger_domain::rate_limits::RateLimits;
use keyledger_domain::{
    Actor, AdminToken, AdminTokenCommand, ApiKey, ApiKeyCommand, ApiKeyError, ApiKeyEvent, Endpoint, EndpointCommand,
    EndpointEvent, Permission, Scope, TenantId,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

type Framework<A> = CqrsFramework<A, PersistedEventStore<EventRepo, A>>;

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

/// Namespace of key ids derived from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6b65_796c_6564_6765_722d_6964_656d_706f);

#[derive(Debug, Clone)]
pub struct IssueKeyRequest {
    /// Retrying a create with the same idempotency key never makes a second key.
    pub idempotency_key: Option<String>,
    pub tenant: Option<TenantId>,
    pub name: Name,
    pub environment: Environment,
    pub scopes: BTreeSet<Scope>,
    pub rate_limits: RateLimits,
    pub ip_rules: IpRules,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct ChangeKeyRequest {
    pub name: Option<Name>,
    pub scopes: Option<BTreeSet<Scope>>,
    pub rate_limits: Option<RateLimits>,
    pub ip_rules: Option<IpRules>,
}

#[derive(Debug, Clone)]
pub struct IssueTokenRequest {
    pub tenant: Option<TenantId>,
    pub name: Name,
    pub permissions: BTreeSet<Permission>,
    pub scopes: Option<BTreeSet<Scope>>,
    pub expires_at: Option<DateTime<Utc>>,
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

/// What a create did: made a new key (its plaintext shown now, once), or found the key an
/// earlier request with the same idempotency key made (its plaintext cannot be shown again).
#[derive(Debug)]
pub enum IssueOutcome {
    Created(NewSecret<PlaintextKey>),
    Replayed(Uuid),
}

/// One event of an aggregate's stream, as the history endpoint shows it.
#[derive(Debug, Clone)]
pub struct StoredEvent<E> {
    pub sequence: usize,
    pub event_type: String,
    pub event: E,
    pub metadata: EventMetadata,
}

#[derive(Clone)]
pub struct CommandBus {
    db: Database,
    keys: Arc<Framework<ApiKey>>,
    tokens: Arc<Framework<AdminToken>>,
    endpoints: Arc<Framework<Endpoint>>,
    hasher: SecretHasher,
    clock: Arc<dyn Clock>,
    watch: LogWatch,
    pepper: Option<Arc<secrets::Pepper>>,
}

impl CommandBus {
    pub fn new(db: Database, hasher: SecretHasher, clock: Arc<dyn Clock>, watch: LogWatch) -> Self {
        let keys = CqrsFramework::new(PersistedEventStore::new_event_store(db.events().clone()), vec![], ());
        let tokens = CqrsFramework::new(PersistedEventStore::new_event_store(db.events().clone()), vec![], ());
        let endpoints = CqrsFramework::new(PersistedEventStore::new_event_store(db.events().clone()), vec![], ());
        CommandBus {
            db,
            keys: Arc::new(keys),
            tokens: Arc::new(tokens),
            endpoints: Arc::new(endpoints),
            hasher,
            clock,
            watch,
            pepper: None,
        }
    }

    /// Issue and rotation also store the edge's fast verifier for the new secret.
    pub fn with_pepper(mut self, pepper: Arc<secrets::Pepper>) -> Self {
        self.pepper = Some(pepper);
        self
    }

    /// Stores HMAC(pepper, key) beside the key's lookup id. Best effort: without it the edge
    /// runs PBKDF2 once and stores it then.
    async fn store_verifier(&self, key: &PlaintextKey) {
        let Some(pepper) = &self.pepper else { return };
        let result = sqlx::query(
            "INSERT INTO key_verifiers (lookup_id, pepper_id, verifier) VALUES ($1, $2, $3) \
             ON CONFLICT (lookup_id, pepper_id) DO NOTHING",
        )
        .bind(key.lookup_id().as_str())
        .bind(pepper.id())
        .bind(pepper.verifier(key.expose()))
        .execute(self.db.pool())
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not store a key verifier; the edge will compute it lazily");
        }
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

    async fn committed<T>(&self, value: T) -> Result<Committed<T>, CommandError> {
        let position = log::head(self.db.pool()).await?;
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
    async fn stream<A: cqrs_es::Aggregate>(&self, id: Uuid) -> Result<Vec<StoredEvent<A::Event>>, CommandError> {
        let serialized = self
            .db
            .events()
            .get_events::<A>(&id.to_string())
            .await
            .map_err(|e| CommandError::Store(StoreError::EventStore(e.to_string())))?;
        serialized
            .into_iter()
            .map(|s| {
                let corrupt =
                    |e: serde_json::Error| StoreError::Corrupt(format!("{} {id} event {}: {e}", A::TYPE, s.sequence));
                let event = serde_json::from_value(s.payload.clone()).map_err(corrupt)?;
                let metadata = log::metadata_from_value(s.metadata.clone()).map_err(corrupt)?;
                Ok(StoredEvent {
                    sequence: s.sequence,
                    event_type: s.event_type,
                    event,
                    metadata,
                })
            })
            .collect()
    }

    // ---- API keys ----

    /// The key's stream, if the actor may see it. Keys of other tenants look exactly like keys
    /// that do not exist.
    pub async fn key_events(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
    ) -> Result<Vec<StoredEvent<ApiKeyEvent>>, CommandError> {
        ctx.require(Permission::ApiManagementRead)?;
        let events = self.stream::<ApiKey>(key_id).await?;
        match events.first().map(|e| &e.event) {
            Some(ApiKeyEvent::KeyIssued { tenant, .. }) if ctx.actor.may_access(tenant) => Ok(events),
            _ => Err(CommandError::NotFound("key")),
        }
    }

    async fn execute_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        tenant: &TenantId,
        command: ApiKeyCommand,
        at: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        self.keys
            .execute_with_metadata(&key_id.to_string(), command, self.metadata(ctx, tenant, at))
            .await
            .map_err(|e| from_aggregate(e, CommandError::Key))
    }

    async fn key_tenant(&self, ctx: &CommandContext, key_id: Uuid) -> Result<TenantId, CommandError> {
        let events = self.key_events(ctx, key_id).await?;
        match events.into_iter().next().map(|e| e.event) {
            Some(ApiKeyEvent::KeyIssued { tenant, .. }) => Ok(tenant),
            _ => Err(CommandError::NotFound("key")),
        }
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label()), err)]
    pub async fn issue_key(
        &self,
        ctx: &CommandContext,
        req: IssueKeyRequest,
    ) -> Result<Committed<IssueOutcome>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let tenant = ctx.target_tenant(req.tenant)?;
        let key_id = match &req.idempotency_key {
            // The same (tenant, admin, idempotency key) always names the same key stream, so a
            // retried create can only ever find the key its first attempt made.
            Some(idem) => {
                let seed = format!("{tenant}\u{0}{}\u{0}{idem}", ctx.actor.label());
                let id = Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, seed.as_bytes());
                if self.key_exists(id).await? {
                    return self.committed(IssueOutcome::Replayed(id)).await;
                }
                id
            }
            None => Uuid::new_v4(),
        };
        let key = secrets::generate_key(req.environment);
        let secret_hash = self.hash(key.expose().to_owned()).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Issue(IssueKey {
            key_id,
            tenant: tenant.clone(),
            name: req.name,
            environment: req.environment,
            lookup_id: key.lookup_id().clone(),
            secret_hash,
            scopes: req.scopes,
            rate_limits: req.rate_limits,
            ip_rules: req.ip_rules,
            expires_at: req.expires_at,
            granter: ctx.actor.scopes.clone(),
            at,
        });
        match self.execute_key(ctx, key_id, &tenant, command, at).await {
            Ok(()) => {
                self.store_verifier(&key).await;
                self.committed(IssueOutcome::Created(NewSecret {
                    id: key_id,
                    secret: key,
                }))
                .await
            }
            // A concurrent retry with the same idempotency key won the race.
            Err(CommandError::Key(ApiKeyError::KeyAlreadyIssued) | CommandError::Conflict)
                if req.idempotency_key.is_some() =>
            {
                self.committed(IssueOutcome::Replayed(key_id)).await
            }
            Err(e) => Err(e),
        }
    }

    async fn key_exists(&self, key_id: Uuid) -> Result<bool, CommandError> {
        let events = self
            .db
            .events()
            .get_last_events::<ApiKey>(&key_id.to_string(), 0)
            .await
            .map_err(|e| CommandError::Store(StoreError::EventStore(e.to_string())))?;
        Ok(!events.is_empty())
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %key_id), err)]
    pub async fn change_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        req: ChangeKeyRequest,
    ) -> Result<Committed<()>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let tenant = self.key_tenant(ctx, key_id).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Change(ChangeKey {
            name: req.name,
            scopes: req.scopes,
            rate_limits: req.rate_limits,
            ip_rules: req.ip_rules,
            granter: ctx.actor.scopes.clone(),
            at,
        });
        self.execute_key(ctx, key_id, &tenant, command, at).await?;
        self.committed(()).await
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %key_id), err)]
    pub async fn revoke_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        reason: Option<String>,
    ) -> Result<Committed<()>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let tenant = self.key_tenant(ctx, key_id).await?;
        let at = self.clock.now();
        self.execute_key(
            ctx,
            key_id,
            &tenant,
            ApiKeyCommand::Revoke(RevokeKey { reason, at }),
            at,
        )
        .await?;
        self.committed(()).await
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %key_id), err)]
    pub async fn rotate_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        grace: chrono::Duration,
    ) -> Result<Committed<NewSecret<PlaintextKey>>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let events = self.key_events(ctx, key_id).await?;
        let (tenant, environment) = match events.first().map(|e| &e.event) {
            Some(ApiKeyEvent::KeyIssued {
                tenant, environment, ..
            }) => (tenant.clone(), *environment),
            _ => return Err(CommandError::NotFound("key")),
        };
        let key = secrets::generate_key(environment);
        let secret_hash = self.hash(key.expose().to_owned()).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Rotate(RotateKey {
            lookup_id: key.lookup_id().clone(),
            secret_hash,
            grace,
            at,
        });
        self.execute_key(ctx, key_id, &tenant, command, at).await?;
        self.store_verifier(&key).await;
        self.committed(NewSecret {
            id: key_id,
            secret: key,
        })
        .await
    }

    /// Run by the expiry scheduler: records a due warning or the expiry itself, exactly once
    /// (the aggregate ignores what it has already recorded).
    pub async fn check_expiry(&self, key_id: Uuid, tenant: &TenantId) -> Result<(), CommandError> {
        let ctx = CommandContext::system();
        let at = self.clock.now();
        match self
            .execute_key(&ctx, key_id, tenant, ApiKeyCommand::CheckExpiry { at }, at)
            .await
        {
            // Another node's scheduler got there first; it recorded the same thing.
            Ok(()) | Err(CommandError::Conflict) => {}
            Err(e) => return Err(e),
        }
        self.committed(()).await.map(|_| ())
    }

    // ---- endpoints ----

    /// The events of one route stream, oldest first. The registry is platform-wide: any admin
    /// with read access may see it.
    pub async fn endpoint_events(
        &self,
        ctx: &CommandContext,
        route_id: Uuid,
    ) -> Result<Vec<StoredEvent<EndpointEvent>>, CommandError> {
        ctx.require(Permission::ApiManagementRead)?;
        self.stream::<Endpoint>(route_id).await
    }

    /// The current state of one route stream (every endpoint of that shape).
    pub async fn load_route(&self, ctx: &CommandContext, route_id: Uuid) -> Result<Endpoint, CommandError> {
        let events = self.endpoint_events(ctx, route_id).await?;
        let mut route = Endpoint::default();
        for e in events {
            cqrs_es::Aggregate::apply(&mut route, e.event);
        }
        Ok(route)
    }

    /// Runs an Endpoint command built for the bus's current time. Registry changes need
    /// SUPERUSER; enabling or disabling for a tenant needs TENANT_ADMIN of that tenant.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %route_id), err)]
    pub async fn endpoint_command(
        &self,
        ctx: &CommandContext,
        route_id: Uuid,
        build: impl FnOnce(DateTime<Utc>) -> EndpointCommand,
    ) -> Result<Committed<()>, CommandError> {
        let at = self.clock.now();
        let command = build(at);
        let tenant = match &command {
            EndpointCommand::SetTenantEnabled { tenant, .. } => {
                ctx.require(Permission::TenantAdmin)?;
                if !ctx.actor.may_access(tenant) {
                    return Err(CommandError::Forbidden(format!(
                        "you cannot change endpoints for tenant {tenant}"
                    )));
                }
                tenant.clone()
            }
            _ => {
                ctx.require(Permission::Superuser)?;
                ctx.actor.tenant.clone()
            }
        };
        self.endpoints
            .execute_with_metadata(&route_id.to_string(), command, self.metadata(ctx, &tenant, at))
            .await
            .map_err(|e| from_aggregate(e, CommandError::Endpoint))?;
        self.committed(()).await
    }

    // ---- admin tokens ----

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label()), err)]
    pub async fn issue_admin_token(
        &self,
        ctx: &CommandContext,
        req: IssueTokenRequest,
    ) -> Result<Committed<NewSecret<String>>, CommandError> {
        let token = secrets::generate_admin_token();
        self.issue_admin_token_with(ctx, req, token).await
    }

    async fn issue_admin_token_with(
        &self,
        ctx: &CommandContext,
        req: IssueTokenRequest,
        token: String,
    ) -> Result<Committed<NewSecret<String>>, CommandError> {
        ctx.require(Permission::TenantAdmin)?;
        let tenant = ctx.target_tenant(req.tenant)?;
        let secret_hash = self.hash(token.clone()).await?;
        let token_id = Uuid::new_v4();
        let stream = token_stream_id(&tenant, &req.name).to_string();
        let at = self.clock.now();
        let command = AdminTokenCommand::Issue(Box::new(IssueAdminToken {
            token_id,
            tenant: tenant.clone(),
            name: req.name,
            permissions: req.permissions,
            scopes: req.scopes,
            expires_at: req.expires_at,
            fingerprint: secrets::fingerprint(&token),
            secret_hash,
            issuer: ctx.actor.clone(),
            at,
        }));
        let metadata = self.metadata(ctx, &tenant, at);
        let mut result = self
            .tokens
            .execute_with_metadata(&stream, command.clone(), metadata.clone())
            .await;
        if matches!(result, Err(cqrs_es::AggregateError::AggregateConflict)) {
            // A concurrent create of the same name won; retrying turns the conflict into the
            // answer a user understands: the name is taken.
            result = self.tokens.execute_with_metadata(&stream, command, metadata).await;
        }
        result.map_err(|e| from_aggregate(e, CommandError::Token))?;
        self.committed(NewSecret {
            id: token_id,
            secret: token,
        })
        .await
    }

    /// Deletes the token `token_id`, which belongs to (`tenant`, `name`) as the read model says.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %token_id), err)]
    pub async fn delete_admin_token(
        &self,
        ctx: &CommandContext,
        token_id: Uuid,
        tenant: &TenantId,
        name: &Name,
    ) -> Result<Committed<()>, CommandError> {
        ctx.require(Permission::TenantAdmin)?;
        if !ctx.actor.may_access(tenant) {
            return Err(CommandError::NotFound("admin token"));
        }
        let at = self.clock.now();
        let stream = token_stream_id(tenant, name).to_string();
        self.tokens
            .execute_with_metadata(
                &stream,
                AdminTokenCommand::Delete { token_id, at },
                self.metadata(ctx, tenant, at),
            )
            .await
            .map_err(|e| from_aggregate(e, CommandError::Token))?;
        self.committed(()).await
    }

    /// When no admin token was ever issued (a new store, or one that so far only holds a demo
    /// catalogue), creates the first superuser token (tenant `default`) and returns its plaintext:
    /// `given` if provided (scripts, tests), else a fresh one. Otherwise returns `None`.
    pub async fn bootstrap(&self, given: Option<String>) -> Result<Option<String>, CommandError> {
        let issued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_type = $1")
            .bind(<AdminToken as cqrs_es::Aggregate>::TYPE)
            .fetch_one(self.db.pool())
            .await?;
        if issued > 0 {
            return Ok(None);
        }
        let token = given.unwrap_or_else(secrets::generate_admin_token);
        let req = IssueTokenRequest {
            tenant: Some(TenantId::default_tenant()),
            name: "bootstrap".parse().expect("valid name"),
            permissions: [Permission::Superuser].into(),
            scopes: None,
            expires_at: None,
        };
        match self
            .issue_admin_token_with(&CommandContext::system(), req, token.clone())
            .await
        {
            Ok(_) => Ok(Some(token)),
            // Another node bootstrapped the same store at the same moment.
            Err(CommandError::Token(keyledger_domain::AdminTokenError::TokenAlreadyExists { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
