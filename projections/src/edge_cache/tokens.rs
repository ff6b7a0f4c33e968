//! This node's copy of the live admin tokens, by fingerprint: what authentication reads instead
//! of querying `admin_tokens` on every admin request.

use crate::sql::parse_json;
use crate::ProjectionError;
use keyledger_commands::auth::TokenEntry;
use keyledger_commands::StoreError;
use keyledger_domain::key_format::SecretHash;
use keyledger_domain::{AdminTokenEvent, TenantId};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The snapshot's columns, live tokens only.
pub(super) const SNAPSHOT: &str = "SELECT token_id, tenant, permissions, scopes, fingerprint, secret_hash, \
     expires_at_ms FROM admin_tokens WHERE deleted_at_ms IS NULL";

#[derive(Default)]
pub(super) struct Tokens {
    by_fingerprint: HashMap<String, Arc<TokenEntry>>,
    fingerprints: HashMap<Uuid, String>,
}

fn corrupt(what: String) -> ProjectionError {
    ProjectionError::Store(StoreError::Corrupt(what))
}

impl Tokens {
    pub(super) fn get(&self, fingerprint: &str) -> Option<Arc<TokenEntry>> {
        self.by_fingerprint.get(fingerprint).cloned()
    }

    /// A row of [`SNAPSHOT`].
    pub(super) fn load(&mut self, row: &AnyRow) -> Result<(), ProjectionError> {
        let id: String = row.try_get("token_id")?;
        let what = |field: &str| format!("admin token {id} {field}");
        let token_id = Uuid::parse_str(&id).map_err(|e| corrupt(format!("{}: {e}", what("id"))))?;
        let entry = TokenEntry {
            token_id,
            tenant: TenantId::try_from(row.try_get::<String, _>("tenant")?)
                .map_err(|e| corrupt(format!("{}: {e}", what("tenant"))))?,
            permissions: parse_json(&row.try_get::<String, _>("permissions")?, &what("permissions"))?,
            scopes: parse_json(&row.try_get::<String, _>("scopes")?, &what("scopes"))?,
            secret_hash: SecretHash::from_phc(row.try_get("secret_hash")?),
            expires_at_ms: row.try_get("expires_at_ms")?,
        };
        self.insert(row.try_get("fingerprint")?, entry);
        Ok(())
    }

    pub(super) fn apply(&mut self, event: &AdminTokenEvent) {
        match event {
            AdminTokenEvent::AdminTokenIssued {
                token_id,
                tenant,
                permissions,
                scopes,
                expires_at,
                fingerprint,
                secret_hash,
                ..
            } => self.insert(
                fingerprint.as_str().to_owned(),
                TokenEntry {
                    token_id: *token_id,
                    tenant: tenant.clone(),
                    permissions: permissions.clone(),
                    scopes: scopes.clone(),
                    secret_hash: secret_hash.clone(),
                    expires_at_ms: expires_at.map(crate::read_models::ms),
                },
            ),
            AdminTokenEvent::AdminTokenDeleted { token_id, .. } => {
                if let Some(fingerprint) = self.fingerprints.remove(token_id) {
                    self.by_fingerprint.remove(&fingerprint);
                }
            }
        }
    }

    fn insert(&mut self, fingerprint: String, entry: TokenEntry) {
        self.fingerprints.insert(entry.token_id, fingerprint.clone());
        self.by_fingerprint.insert(fingerprint, Arc::new(entry));
    }
}
