//! Authenticating admin tokens against the admin-token read model.

use crate::clock::Clock;
use crate::secrets::{self, SecretHasher};
use crate::{CommandError, Database, StoreError};
use keyledger_domain::key_format::SecretHash;
use keyledger_domain::{Actor, Permission, ScopeGrant, TenantId};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Last-used times are written at most this often per token: the list shows minutes, and a
/// write per admin request would be wasted I/O.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Checks presented admin tokens. PBKDF2 runs once per token per process; later requests compare
/// a SHA-256 digest of the token (constant time) against the one remembered after that success.
/// The read model is consulted on every request, so a deleted token stops working at once.
#[derive(Clone)]
pub struct Authenticator {
    db: Database,
    clock: Arc<dyn Clock>,
    verified: Arc<Mutex<HashMap<Uuid, [u8; 32]>>>,
    last_used: Arc<Mutex<HashMap<Uuid, i64>>>,
}

impl Authenticator {
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Authenticator {
            db,
            clock,
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
        let row = sqlx::query(
            "SELECT token_id, tenant, permissions, scopes, secret_hash, expires_at_ms, deleted_at_ms \
             FROM admin_tokens WHERE fingerprint = $1",
        )
        .bind(fingerprint.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Err(CommandError::Unauthenticated);
        };
        let token_id: String = row.try_get("token_id")?;
        let token_id = Uuid::parse_str(&token_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now_ms = self.clock.now().timestamp_millis();
        let deleted: Option<i64> = row.try_get("deleted_at_ms")?;
        let expires: Option<i64> = row.try_get("expires_at_ms")?;
        if deleted.is_some() || expires.is_some_and(|e| e <= now_ms) {
            return Err(CommandError::Unauthenticated);
        }
        let hash = SecretHash::from_phc(row.try_get("secret_hash")?);
        self.verify(token_id, &hash, presented).await?;
        self.touch(token_id, now_ms);

        let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("admin token {token_id}: {e}"));
        let tenant: String = row.try_get("tenant")?;
        let permissions: BTreeSet<Permission> =
            serde_json::from_str(&row.try_get::<String, _>("permissions")?).map_err(corrupt)?;
        let scopes: ScopeGrant = serde_json::from_str(&row.try_get::<String, _>("scopes")?).map_err(corrupt)?;
        Ok(Actor {
            token_id: Some(token_id),
            tenant: TenantId::try_from(tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            permissions,
            scopes,
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
        let (hash, secret) = (hash.clone(), presented.to_owned());
        let ok = tokio::task::spawn_blocking(move || SecretHasher::verify(&hash, &secret))
            .await
            .map_err(|e| StoreError::EventStore(format!("verification task failed: {e}")))?;
        if !ok {
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
