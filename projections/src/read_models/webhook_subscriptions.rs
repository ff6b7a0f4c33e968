//! `webhook_subscriptions`: a tenant's subscriptions, their status and their deletion. The
//! signing secrets stay sealed in the events.

use super::{json, ms, Applied, Decoded};
use crate::sql::{one, parse_json, tenant_page, time, Page};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use keyledger_domain::webhook::subscription::WebhookEvent;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

async fn set(
    conn: &mut AnyConnection,
    id: &str,
    column: &str,
    value: Option<String>,
    at: i64,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "UPDATE webhook_subscriptions SET {column} = $1, updated_at_ms = $2 WHERE webhook_id = $3"
    ))
    .bind(value)
    .bind(at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A status change, with why it was disabled (`NULL` unless it is).
async fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    disabled: Option<String>,
    at: i64,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "UPDATE webhook_subscriptions SET status = $1, disabled = $2, updated_at_ms = $3 WHERE webhook_id = $4",
    )
    .bind(status)
    .bind(disabled)
    .bind(at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Subscriptions change rarely: one statement per change keeps the order of a batch's events.
pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    for e in events {
        let Decoded::Webhook(event) = &e.decoded else {
            continue;
        };
        let id = e.logged.aggregate_id.as_str();
        match event {
            WebhookEvent::WebhookCreated {
                tenant, settings, at, ..
            } => {
                sqlx::query(
                    "INSERT INTO webhook_subscriptions (webhook_id, tenant, url, event_types, template_id, headers, \
                     description, status, disabled, secret_rotated_at_ms, created_at_ms, updated_at_ms, deleted_at_ms, \
                     position) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', NULL, NULL, $8, $8, NULL, $9)",
                )
                .bind(id)
                .bind(tenant.as_str())
                .bind(settings.url.as_str())
                .bind(json(&settings.event_types.names()))
                .bind(settings.template_id.map(|t| t.to_string()))
                .bind(json(&settings.headers))
                .bind(settings.description.as_str())
                .bind(ms(*at))
                .bind(e.logged.position)
                .execute(&mut *conn)
                .await?;
            }
            WebhookEvent::WebhookChanged {
                url,
                event_types,
                template_id,
                headers,
                description,
                at,
            } => {
                let at = ms(*at);
                if let Some(url) = url {
                    set(conn, id, "url", Some(url.to_string()), at).await?;
                }
                if let Some(types) = event_types {
                    set(conn, id, "event_types", Some(json(&types.names())), at).await?;
                }
                if let Some(template) = template_id {
                    set(conn, id, "template_id", template.map(|t| t.to_string()), at).await?;
                }
                if let Some(headers) = headers {
                    set(conn, id, "headers", Some(json(headers)), at).await?;
                }
                if let Some(description) = description {
                    set(conn, id, "description", Some(description.clone()), at).await?;
                }
            }
            WebhookEvent::WebhookPaused { at } => set_status(conn, id, "paused", None, ms(*at)).await?,
            WebhookEvent::WebhookResumed { at } | WebhookEvent::WebhookEnabled { at } => {
                set_status(conn, id, "active", None, ms(*at)).await?
            }
            WebhookEvent::WebhookDisabled { reason, at } => {
                set_status(conn, id, "disabled", Some(json(reason)), ms(*at)).await?
            }
            WebhookEvent::WebhookSecretRotated { at, .. } => {
                sqlx::query(
                    "UPDATE webhook_subscriptions SET secret_rotated_at_ms = $1, updated_at_ms = $1 WHERE webhook_id = $2",
                )
                .bind(ms(*at))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            WebhookEvent::WebhookDeleted { at } => {
                sqlx::query("UPDATE webhook_subscriptions SET deleted_at_ms = $1 WHERE webhook_id = $2")
                    .bind(ms(*at))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

// ---- queries ----

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub template_id: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub description: String,
    pub status: String,
    /// Why it was disabled: `{"kind": "gone"}` or `{"kind": "failing", "since": …}`.
    pub disabled: Option<serde_json::Value>,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT webhook_id, tenant, url, event_types, template_id, headers, description, status, \
     disabled, secret_rotated_at_ms, created_at_ms, updated_at_ms, position FROM webhook_subscriptions \
     WHERE deleted_at_ms IS NULL";

fn subscription_row(r: &AnyRow) -> Result<(i64, SubscriptionRow), ProjectionError> {
    let disabled: Option<String> = r.try_get("disabled")?;
    Ok((
        r.try_get("position")?,
        SubscriptionRow {
            id: r.try_get("webhook_id")?,
            tenant: r.try_get("tenant")?,
            url: r.try_get("url")?,
            event_types: parse_json(&r.try_get::<String, _>("event_types")?, "event_types")?,
            template_id: r.try_get("template_id")?,
            headers: parse_json(&r.try_get::<String, _>("headers")?, "headers")?,
            description: r.try_get("description")?,
            status: r.try_get("status")?,
            disabled: disabled.map(|d| parse_json(&d, "disabled")).transpose()?,
            secret_rotated_at: r.try_get::<Option<i64>, _>("secret_rotated_at_ms")?.map(time),
            created_at: time(r.try_get("created_at_ms")?),
            updated_at: time(r.try_get("updated_at_ms")?),
        },
    ))
}

/// Live subscriptions, newest first, of `tenant` (every tenant's when `None`).
pub async fn list_subscriptions(
    db: &Database,
    tenant: Option<&str>,
    limit: i64,
    cursor: Option<i64>,
) -> Result<Page<SubscriptionRow>, ProjectionError> {
    tenant_page(db, SELECT, tenant, limit, cursor, subscription_row).await
}

pub async fn get_subscription(db: &Database, webhook_id: &str) -> Result<Option<SubscriptionRow>, ProjectionError> {
    one(db, SELECT, "webhook_id", webhook_id, subscription_row).await
}

/// A live subscription as the dispatcher matches events against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub event_types: keyledger_domain::webhook::EventTypes,
    pub status: String,
    /// Where it was created in the log: it hears of later events only.
    pub position: i64,
}

/// Whether any live subscription exists.
pub(crate) async fn any(conn: &mut AnyConnection) -> Result<bool, ProjectionError> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM webhook_subscriptions \
         WHERE deleted_at_ms IS NULL LIMIT 1) live",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Every live subscription, for the dispatcher.
pub(crate) async fn listeners(conn: &mut AnyConnection) -> Result<Vec<Listener>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT webhook_id, tenant, url, event_types, status, position FROM webhook_subscriptions \
         WHERE deleted_at_ms IS NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let names: Vec<String> = parse_json(&r.try_get::<String, _>("event_types")?, "event_types")?;
            let event_types = keyledger_domain::webhook::EventTypes::parse(&names).map_err(|e| {
                ProjectionError::Store(keyledger_commands::StoreError::Corrupt(format!("event_types: {e}")))
            })?;
            Ok(Listener {
                id: r.try_get("webhook_id")?,
                tenant: r.try_get("tenant")?,
                url: r.try_get("url")?,
                event_types,
                status: r.try_get("status")?,
                position: r.try_get("position")?,
            })
        })
        .collect()
}

/// What the dispatcher needs of a subscription to send to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub template_id: Option<String>,
    /// active, paused or disabled; `deleted` when it was deleted.
    pub status: String,
    /// Changes when the secret is rotated: what a cache of opened secrets is keyed by.
    pub secret_rotated_at_ms: Option<i64>,
}

/// The subscriptions `ids` (deleted ones too), for the dispatcher's sender.
pub(crate) async fn targets(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<Target>, ProjectionError> {
    let rows = crate::rows::where_in(
        conn,
        "SELECT webhook_id, url, headers, template_id, status, deleted_at_ms, secret_rotated_at_ms \
         FROM webhook_subscriptions",
        "webhook_id",
        ids,
    )
    .await?;
    rows.iter()
        .map(|r| {
            let deleted = r.try_get::<Option<i64>, _>("deleted_at_ms")?.is_some();
            Ok(Target {
                id: r.try_get("webhook_id")?,
                url: r.try_get("url")?,
                headers: parse_json(&r.try_get::<String, _>("headers")?, "headers")?,
                template_id: r.try_get("template_id")?,
                status: if deleted {
                    "deleted".to_owned()
                } else {
                    r.try_get("status")?
                },
                secret_rotated_at_ms: r.try_get("secret_rotated_at_ms")?,
            })
        })
        .collect()
}
