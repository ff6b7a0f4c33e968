//! Authenticating admin tokens against this node's copy of them.

use crate::clock::Clock;
use crate::secrets::{self, SecretHasher};
use crate::{CommandError, Database, StoreError};
use futures::future::BoxFuture;
use keyledger_domain::key_format::SecretHash;
use keyledger_domain::{Actor, Permission, ScopeGrant, TenantId};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Last-used times are written at most this often per token: the list shows minutes, and a
/// write per admin request would be wasted I/O.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A live admin token, as authentication needs it.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub token_id: Uuid,
    pub tenant: TenantId,
    pub permissions: BTreeSet<Permission>,
    pub scopes: ScopeGrant,
    pub secret_hash: SecretHash,
    pub expires_at_ms: Option<i64>,
}

/// Where authentication finds a live token by its fingerprint: this node's copy of the admin
/// tokens, folded from the log like the edge's keys (a deleted token is gone from it), and for a
/// token the copy lacks, the read model (it may have been made on another node a moment ago).
pub trait TokenDirectory: Send + Sync {
    fn token<'a>(&'a self, fingerprint: &'a str) -> BoxFuture<'a, Result<Option<Arc<TokenEntry>>, StoreError>>;
}

/// Checks presented admin tokens. PBKDF2 runs once per token per process; later requests compare
/// a SHA-256 digest of the token (constant time) against the one remembered after that success.
/// Tokens are found in this node's copy, without a query: a deletion answered by this node has
/// reached it before the answer, and one made on another node reaches it as soon as that node's
/// commit is announced (the same path that carries key revocations to every edge).
#[derive(Clone)]
pub struct Authenticator {
    db: Database,
    clock: Arc<dyn Clock>,
    tokens: Arc<dyn TokenDirectory>,
    verified: Arc<Mutex<HashMap<Uuid, [u8; 32]>>>,
    last_used: Arc<Mutex<HashMap<Uuid, i64>>>,
}

impl Authenticator {
    pub fn new(db: Database, clock: Arc<dyn Clock>, tokens: Arc<dyn TokenDirectory>) -> Self {
        Authenticator {
            db,
            clock,
            tokens,
            verified: Default::default(),
            last_used: Default::default(),
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, presented: &str) -> Result<Actor, CommandError> {
        if !presented.starts_with(secrets::ADMIN_TOKEN_PREFIX) && presented.len() < 24 {
            return Err(CommandError::Unauthenticated);
        }
        let fingerprint = secrets::fingerprint(presented);
        let Some(token) = self.tokens.token(fingerprint.as_str()).await? else {
            return Err(CommandError::Unauthenticated);
        };
        let now_ms = self.clock.now().timestamp_millis();
        if token.expires_at_ms.is_some_and(|e| e <= now_ms) {
            return Err(CommandError::Unauthenticated);
        }
        self.verify(token.token_id, &token.secret_hash, presented).await?;
        self.touch(token.token_id, now_ms);
        Ok(Actor {
            token_id: Some(token.token_id),
            tenant: token.tenant.clone(),
            permissions: token.permissions.clone(),
            scopes: token.scopes.clone(),
        })
    }

    async fn verify(&self, token_id: Uuid, hash: &SecretHash, presented: &str) -> Result<(), CommandError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let known = self.verified.lock().ok().and_then(|m| m.get(&token_id).copied());
        if let Some(known) = known {
            return if constant_time_eq::constant_time_eq_32(&known, &digest) {
                Ok(())
            } else {
                Err(CommandError::Unauthenticated)
            };
        }
        if !SecretHasher::verify_off_runtime(hash, presented).await {
            return Err(CommandError::Unauthenticated);
        }
        if let Ok(mut m) = self.verified.lock() {
            m.insert(token_id, digest);
        }
        Ok(())
    }

    fn touch(&self, token_id: Uuid, now_ms: i64) {
        let due = match self.last_used.lock() {
            Ok(mut m) => {
                let due = m
                    .get(&token_id)
                    .is_none_or(|last| now_ms - last >= LAST_USED_RESOLUTION_MS);
                if due {
                    m.insert(token_id, now_ms);
                }
                due
            }
            Err(_) => false,
        };
        if due {
            let db = self.db.clone();
            tokio::spawn(async move {
                let _turn = db.write_turn().await;
                let result = sqlx::query(
                    "INSERT INTO admin_token_usage (token_id, last_used_at_ms) VALUES ($1, $2) \
                     ON CONFLICT (token_id) DO UPDATE SET last_used_at_ms = excluded.last_used_at_ms",
                )
                .bind(token_id.to_string())
                .bind(now_ms)
                .execute(db.pool())
                .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, %token_id, "could not record token use");
                }
            });
        }
    }
}
