use super::{json, ms};
use crate::ProjectionError;
use keyledger_commands::log::LoggedEvent;
use keyledger_domain::api_key::ExpiryWarning;
use keyledger_domain::ApiKeyEvent;
use sqlx::AnyConnection;

pub(super) async fn apply(
    conn: &mut AnyConnection,
    logged: &LoggedEvent,
    event: &ApiKeyEvent,
) -> Result<(), ProjectionError> {
    use ApiKeyEvent::*;
    let key_id = logged.aggregate_id.as_str();
    let at = ms(event.at());
    // Every update but the insert has the same shape: SET one column (and updated_at).
    let (column, value): (&str, Option<String>) = match event {
        KeyIssued {
            key_id: id,
            tenant,
            name,
            environment,
            lookup_id,
            scopes,
            rate_limits,
            ip_rules,
            expires_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO api_keys (key_id, tenant, name, environment, prefix, scopes, rate_limits, ip_allow, \
                 ip_block, expires_at_ms, status, expiry_stage, created_at_ms, updated_at_ms, revoked_at_ms, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', 'none', $11, $11, NULL, $12)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(name.as_str())
            .bind(environment.as_str())
            .bind(format!("{}{}", environment.prefix(), lookup_id))
            .bind(json(scopes))
            .bind(json(rate_limits))
            .bind(json(&ip_rules.allow()))
            .bind(json(&ip_rules.block()))
            .bind(expires_at.map(ms))
            .bind(at)
            .bind(logged.position)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        KeyRenamed { name, .. } => ("name", Some(name.to_string())),
        KeyScopesChanged { scopes, .. } => ("scopes", Some(json(scopes))),
        KeyRateLimitsChanged { rate_limits, .. } => ("rate_limits", Some(json(rate_limits))),
        KeyIpRulesChanged { ip_rules, .. } => {
            sqlx::query("UPDATE api_keys SET ip_allow = $1, ip_block = $2, updated_at_ms = $3 WHERE key_id = $4")
                .bind(json(&ip_rules.allow()))
                .bind(json(&ip_rules.block()))
                .bind(at)
                .bind(key_id)
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        KeyRotated { lookup_id, .. } => {
            sqlx::query(
                "UPDATE api_keys SET prefix = CASE environment WHEN 'live' THEN 'ak_live_' ELSE 'ak_test_' END || $1, \
                 updated_at_ms = $2 WHERE key_id = $3",
            )
            .bind(lookup_id.as_str())
            .bind(at)
            .bind(key_id)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        KeyRevoked { .. } => {
            sqlx::query(
                "UPDATE api_keys SET status = 'revoked', revoked_at_ms = $1, updated_at_ms = $1 WHERE key_id = $2",
            )
            .bind(at)
            .bind(key_id)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        KeyExpiryWarned { warning, .. } => (
            "expiry_stage",
            Some(
                match warning {
                    ExpiryWarning::SevenDays => "seven_days",
                    ExpiryWarning::OneDay => "one_day",
                }
                .to_owned(),
            ),
        ),
        KeyExpired { .. } => ("status", Some("expired".to_owned())),
    };
    // `column` is one of the fixed names above, never input.
    let sql = format!("UPDATE api_keys SET {column} = $1, updated_at_ms = $2 WHERE key_id = $3");
    sqlx::query(&sql)
        .bind(value)
        .bind(at)
        .bind(key_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
