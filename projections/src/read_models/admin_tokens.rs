use super::{json, ms};
use crate::ProjectionError;
use keyledger_commands::log::LoggedEvent;
use keyledger_domain::AdminTokenEvent;
use sqlx::AnyConnection;

pub(super) async fn apply(
    conn: &mut AnyConnection,
    logged: &LoggedEvent,
    event: &AdminTokenEvent,
) -> Result<(), ProjectionError> {
    match event {
        AdminTokenEvent::AdminTokenIssued {
            token_id,
            tenant,
            name,
            permissions,
            scopes,
            expires_at,
            fingerprint,
            secret_hash,
            at,
        } => {
            sqlx::query(
                "INSERT INTO admin_tokens (token_id, tenant, name, permissions, scopes, fingerprint, secret_hash, \
                 expires_at_ms, created_at_ms, deleted_at_ms, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)",
            )
            .bind(token_id.to_string())
            .bind(tenant.as_str())
            .bind(name.as_str())
            .bind(json(permissions))
            .bind(json(scopes))
            .bind(fingerprint.as_str())
            .bind(secret_hash.as_phc())
            .bind(expires_at.map(ms))
            .bind(ms(*at))
            .bind(logged.position)
            .execute(&mut *conn)
            .await?;
        }
        AdminTokenEvent::AdminTokenDeleted { token_id, at } => {
            sqlx::query("UPDATE admin_tokens SET deleted_at_ms = $1 WHERE token_id = $2")
                .bind(ms(*at))
                .bind(token_id.to_string())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
