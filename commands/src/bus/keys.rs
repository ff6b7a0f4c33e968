//! API-key commands.

use super::{CommandBus, CommandContext, Committed, Decided, Loaded, StoredEvent};
use crate::secrets;
use crate::{verifiers, CommandError};
use chrono::{DateTime, Utc};
use keyledger_domain::api_key::{ChangeKey, IssueKey, IssuedKey, RevokeKey, RotateKey};
use keyledger_domain::ip_rules::{CidrRule, IpRules};
use keyledger_domain::key_format::{Environment, PlaintextKey};
use keyledger_domain::name::Name;
use keyledger_domain::rate_limits::RateLimits;
use keyledger_domain::{ApiKey, ApiKeyCommand, ApiKeyError, ApiKeyEvent, Permission, Scope, TenantId};
use std::collections::BTreeSet;
use uuid::Uuid;

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

/// Fields left `None` stay as they are; the IP lists are replaced one at a time.
#[derive(Debug, Clone, Default)]
pub struct ChangeKeyRequest {
    pub name: Option<Name>,
    pub scopes: Option<BTreeSet<Scope>>,
    pub rate_limits: Option<RateLimits>,
    pub ip_allow: Option<Vec<CidrRule>>,
    pub ip_block: Option<Vec<CidrRule>>,
}

/// What a create did: made a new key (its plaintext shown now, once), or found the key an
/// earlier request with the same idempotency key made (its plaintext cannot be shown again).
#[derive(Debug)]
pub enum IssueOutcome {
    Created { key: Box<IssuedKey>, secret: PlaintextKey },
    Replayed(Box<IssuedKey>),
}

impl IssueOutcome {
    pub fn key(&self) -> &IssuedKey {
        match self {
            IssueOutcome::Created { key, .. } | IssueOutcome::Replayed(key) => key,
        }
    }
}

fn refused(e: ApiKeyError) -> CommandError {
    CommandError::Key(e)
}

impl CommandBus {
    /// The key's stream, if the actor may see it. Keys of other tenants look exactly like keys
    /// that do not exist.
    pub async fn key_events(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
    ) -> Result<Vec<StoredEvent<ApiKeyEvent>>, CommandError> {
        ctx.require(Permission::ApiManagementRead)?;
        let events = self.stream::<ApiKey>(&key_id.to_string()).await?;
        match events.first().map(|e| &e.event) {
            Some(ApiKeyEvent::KeyIssued { tenant, .. }) if ctx.actor.may_access(tenant) => Ok(events),
            _ => Err(CommandError::NotFound("key")),
        }
    }

    /// The key as the actor may see it, loaded once for a command.
    async fn load_key(&self, ctx: &CommandContext, key_id: Uuid) -> Result<Loaded<ApiKey>, CommandError> {
        let loaded = self.load_for_command::<ApiKey>(&key_id.to_string()).await?;
        match loaded.state.issued() {
            Some(key) if ctx.actor.may_access(&key.tenant) => Ok(loaded),
            _ => Err(CommandError::NotFound("key")),
        }
    }

    /// Decides `command` on a loaded key and appends what it decided; the answer is the key as
    /// the command left it, and where its events are in the log.
    async fn run_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        loaded: Loaded<ApiKey>,
        command: ApiKeyCommand,
        at: DateTime<Utc>,
    ) -> Result<(Box<IssuedKey>, Option<i64>), CommandError> {
        let tenant = match (loaded.state.issued(), &command) {
            (Some(key), _) => key.tenant.clone(),
            (None, ApiKeyCommand::Issue(issue)) => issue.tenant.clone(),
            (None, _) => return Err(CommandError::NotFound("key")),
        };
        let metadata = self.metadata(ctx, &tenant, at);
        let Decided { state, position } = self
            .decide(&key_id.to_string(), loaded, command, metadata, refused)
            .await?;
        let key = state.issued().cloned().ok_or(CommandError::NotFound("key"))?;
        Ok((Box::new(key), position))
    }

    /// Stores HMAC(pepper, key) beside the key's lookup id. Best effort: without it the edge
    /// runs PBKDF2 once and stores it then.
    async fn store_verifier(&self, key: &PlaintextKey) {
        let Some(pepper) = &self.pepper else { return };
        let digest = pepper.digest(key.expose());
        if let Err(e) = verifiers::store(&self.db, key.lookup_id().as_str(), pepper.id(), &digest).await {
            tracing::warn!(error = %e, "could not store a key verifier; the edge will compute it lazily");
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
                Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, seed.as_bytes())
            }
            None => Uuid::new_v4(),
        };
        let loaded = match req.idempotency_key {
            Some(_) => self.load::<ApiKey>(&key_id.to_string()).await?,
            None => Loaded {
                state: ApiKey::default(),
                version: 0,
                checked: true,
            },
        };
        if loaded.state.issued().is_some() {
            return self.replayed(ctx, loaded).await;
        }
        let key = secrets::generate_key(req.environment);
        let secret_hash = self.hash(key.expose().to_owned()).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Issue(IssueKey {
            key_id,
            tenant,
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
        match self.run_key(ctx, key_id, loaded, command, at).await {
            Ok((issued, position)) => {
                self.store_verifier(&key).await;
                let created = IssueOutcome::Created {
                    key: issued,
                    secret: key,
                };
                self.committed(created, position).await
            }
            // A concurrent retry with the same idempotency key won the race.
            Err(CommandError::Key(ApiKeyError::KeyAlreadyIssued) | CommandError::Conflict)
                if req.idempotency_key.is_some() =>
            {
                let winner = self.load::<ApiKey>(&key_id.to_string()).await?;
                self.replayed(ctx, winner).await
            }
            Err(e) => Err(e),
        }
    }

    /// The key an earlier create with the same idempotency key made, as already loaded.
    async fn replayed(
        &self,
        ctx: &CommandContext,
        loaded: Loaded<ApiKey>,
    ) -> Result<Committed<IssueOutcome>, CommandError> {
        match loaded.state.issued() {
            Some(key) if ctx.actor.may_access(&key.tenant) => {
                let key = Box::new(key.clone());
                self.committed(IssueOutcome::Replayed(key), None).await
            }
            _ => Err(CommandError::NotFound("key")),
        }
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %key_id), err)]
    pub async fn change_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        req: ChangeKeyRequest,
    ) -> Result<Committed<Box<IssuedKey>>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let loaded = self.load_key(ctx, key_id).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Change(ChangeKey {
            name: req.name,
            scopes: req.scopes,
            rate_limits: req.rate_limits,
            ip_allow: req.ip_allow,
            ip_block: req.ip_block,
            granter: ctx.actor.scopes.clone(),
            at,
        });
        let (key, position) = self.run_key(ctx, key_id, loaded, command, at).await?;
        self.committed(key, position).await
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %key_id), err)]
    pub async fn revoke_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        reason: Option<String>,
    ) -> Result<Committed<Box<IssuedKey>>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let loaded = self.load_key(ctx, key_id).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Revoke(RevokeKey { reason, at });
        let (key, position) = self.run_key(ctx, key_id, loaded, command, at).await?;
        self.committed(key, position).await
    }

    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %key_id), err)]
    pub async fn rotate_key(
        &self,
        ctx: &CommandContext,
        key_id: Uuid,
        grace: chrono::Duration,
    ) -> Result<Committed<(Box<IssuedKey>, PlaintextKey)>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        let loaded = self.load_key(ctx, key_id).await?;
        let environment = loaded
            .state
            .issued()
            .map(|k| k.environment)
            .ok_or(CommandError::NotFound("key"))?;
        let secret = secrets::generate_key(environment);
        let secret_hash = self.hash(secret.expose().to_owned()).await?;
        let at = self.clock.now();
        let command = ApiKeyCommand::Rotate(RotateKey {
            lookup_id: secret.lookup_id().clone(),
            secret_hash,
            grace,
            at,
        });
        let (key, position) = self.run_key(ctx, key_id, loaded, command, at).await?;
        self.store_verifier(&secret).await;
        self.committed((key, secret), position).await
    }

    /// Run by the expiry scheduler: records a due warning or the expiry itself, exactly once
    /// (the aggregate ignores what it has already recorded).
    pub async fn check_expiry(&self, key_id: Uuid) -> Result<(), CommandError> {
        let ctx = CommandContext::system();
        let loaded = self.load_key(&ctx, key_id).await?;
        let at = self.clock.now();
        let position = match self
            .run_key(&ctx, key_id, loaded, ApiKeyCommand::CheckExpiry { at }, at)
            .await
        {
            Ok((_, position)) => position,
            // Another node's scheduler got there first; it recorded the same thing.
            Err(CommandError::Conflict) => None,
            Err(e) => return Err(e),
        };
        self.committed((), position).await.map(|_| ())
    }
}
