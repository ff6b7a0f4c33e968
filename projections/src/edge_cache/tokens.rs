//! This node's copy of the live admin tokens, by fingerprint: what authentication reads instead
//! of querying `admin_tokens` on every admin request.

use keyledger_commands::auth::TokenEntry;
use keyledger_domain::AdminTokenEvent;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Default)]
pub(super) struct Tokens {
    by_fingerprint: HashMap<String, Arc<TokenEntry>>,
    fingerprints: HashMap<Uuid, String>,
}

impl Tokens {
    pub(super) fn get(&self, fingerprint: &str) -> Option<Arc<TokenEntry>> {
        self.by_fingerprint.get(fingerprint).cloned()
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

    pub(super) fn insert(&mut self, fingerprint: String, entry: TokenEntry) {
        self.fingerprints.insert(entry.token_id, fingerprint.clone());
        self.by_fingerprint.insert(fingerprint, Arc::new(entry));
    }
}
