//! `admin_tokens`: every token issued, with its deletion.

use super::{json, ms, Applied, Decoded};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use keyledger_domain::AdminTokenEvent;
use sqlx::AnyConnection;
use std::collections::HashMap;

const INTO: &str = "admin_tokens (token_id, tenant, name, permissions, scopes, fingerprint, secret_hash, \
     expires_at_ms, created_at_ms, deleted_at_ms, position)";
const DELETED_AT: usize = 9;

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let mut issued: Vec<Vec<Cell>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut deleted: Vec<(String, i64)> = Vec::new();
    for e in events {
        match &e.decoded {
            Decoded::Token(AdminTokenEvent::AdminTokenIssued {
                token_id,
                tenant,
                name,
                permissions,
                scopes,
                expires_at,
                fingerprint,
                secret_hash,
                at,
            }) => {
                index.insert(token_id.to_string(), issued.len());
                issued.push(vec![
                    token_id.to_string().into(),
                    tenant.as_str().into(),
                    name.as_str().into(),
                    json(permissions).into(),
                    json(scopes).into(),
                    fingerprint.as_str().into(),
                    secret_hash.as_phc().into(),
                    expires_at.map(ms).into(),
                    ms(*at).into(),
                    Cell::Int(None),
                    e.logged.position.into(),
                ]);
            }
            Decoded::Token(AdminTokenEvent::AdminTokenDeleted { token_id, at }) => {
                let id = token_id.to_string();
                // Issued and deleted in one batch: the row is written once, deleted.
                match index.get(&id) {
                    Some(&i) => issued[i][DELETED_AT] = Cell::Int(Some(ms(*at))),
                    None => deleted.push((id, ms(*at))),
                }
            }
            _ => {}
        }
    }
    rows::insert(conn, INTO, "", issued).await?;
    // Deletions are rare: one statement each.
    for (id, at) in deleted {
        sqlx::query("UPDATE admin_tokens SET deleted_at_ms = $1 WHERE token_id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
