use super::{json, ms};
use crate::ProjectionError;
use keyledger_commands::log::LoggedEvent;
use keyledger_domain::ApiKeyEvent;
use sqlx::AnyConnection;

pub(super) async fn apply(
    conn: &mut AnyConnection,
    logged: &LoggedEvent,
    event: &ApiKeyEvent,
) -> Result<(), ProjectionError> {
    use ApiKeyEvent::*;
    let key_id = logged.aggregate_id.as_str();
    let pos = logged.position;
    let set_all = |sql: &'static str| sqlx::query(sql);
    match event {
        KeyIssued {
            key_id: id,
            tenant,
            environment,
            lookup_id,
            secret_hash,
            scopes,
            rate_limits,
            ip_rules,
            expires_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO key_lookup (lookup_id, key_id, tenant, environment, secret_hash, valid_until_ms, status, \
                 scopes, rate_limits, ip_allow, ip_block, expires_at_ms, position) \
                 VALUES ($1, $2, $3, $4, $5, NULL, 'active', $6, $7, $8, $9, $10, $11)",
            )
            .bind(lookup_id.as_str())
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(environment.as_str())
            .bind(secret_hash.as_phc())
            .bind(json(scopes))
            .bind(json(rate_limits))
            .bind(json(&ip_rules.allow()))
            .bind(json(&ip_rules.block()))
            .bind(expires_at.map(ms))
            .bind(pos)
            .execute(&mut *conn)
            .await?;
        }
        KeyRenamed { .. } | KeyExpiryWarned { .. } => {}
        KeyScopesChanged { scopes, .. } => {
            set_all("UPDATE key_lookup SET scopes = $1, position = $2 WHERE key_id = $3")
                .bind(json(scopes))
                .bind(pos)
                .bind(key_id)
                .execute(&mut *conn)
                .await?;
        }
        KeyRateLimitsChanged { rate_limits, .. } => {
            set_all("UPDATE key_lookup SET rate_limits = $1, position = $2 WHERE key_id = $3")
                .bind(json(rate_limits))
                .bind(pos)
                .bind(key_id)
                .execute(&mut *conn)
                .await?;
        }
        KeyIpRulesChanged { ip_rules, .. } => {
            set_all("UPDATE key_lookup SET ip_allow = $1, ip_block = $2, position = $3 WHERE key_id = $4")
                .bind(json(&ip_rules.allow()))
                .bind(json(&ip_rules.block()))
                .bind(pos)
                .bind(key_id)
                .execute(&mut *conn)
                .await?;
        }
        KeyRotated {
            lookup_id,
            secret_hash,
            previous_lookup_id,
            previous_valid_until,
            ..
        } => {
            // Only the latest retired secret survives a rotation: rotating twice cuts the oldest.
            sqlx::query("DELETE FROM key_lookup WHERE key_id = $1 AND lookup_id <> $2")
                .bind(key_id)
                .bind(previous_lookup_id.as_str())
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO key_lookup (lookup_id, key_id, tenant, environment, secret_hash, valid_until_ms, status, \
                 scopes, rate_limits, ip_allow, ip_block, expires_at_ms, position) \
                 SELECT $1, key_id, tenant, environment, $2, NULL, status, scopes, rate_limits, ip_allow, ip_block, \
                 expires_at_ms, $3 FROM key_lookup WHERE lookup_id = $4",
            )
            .bind(lookup_id.as_str())
            .bind(secret_hash.as_phc())
            .bind(pos)
            .bind(previous_lookup_id.as_str())
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE key_lookup SET valid_until_ms = $1, position = $2 WHERE lookup_id = $3")
                .bind(ms(*previous_valid_until))
                .bind(pos)
                .bind(previous_lookup_id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        KeyRevoked { .. } => {
            set_all("UPDATE key_lookup SET status = 'revoked', position = $1 WHERE key_id = $2")
                .bind(pos)
                .bind(key_id)
                .execute(&mut *conn)
                .await?;
        }
        KeyExpired { .. } => {
            set_all("UPDATE key_lookup SET status = 'expired', position = $1 WHERE key_id = $2")
                .bind(pos)
                .bind(key_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
