//! `webhook_templates`: a tenant's templates, with their deletion.

use super::{ms, Applied, Decoded};
use crate::sql::{one, tenant_page, time, Page};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use keyledger_domain::webhook::template::TemplateEvent;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Templates change rarely: one statement per event keeps the order of a batch's changes.
pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    for e in events {
        let Decoded::Template(event) = &e.decoded else {
            continue;
        };
        let id = e.logged.aggregate_id.as_str();
        match event {
            TemplateEvent::TemplateCreated(new) => {
                sqlx::query(
                    "INSERT INTO webhook_templates (template_id, tenant, name, kind, body, created_at_ms, \
                     updated_at_ms, deleted_at_ms, position) VALUES ($1, $2, $3, $4, $5, $6, $6, NULL, $7)",
                )
                .bind(id)
                .bind(new.tenant.as_str())
                .bind(new.name.as_str())
                .bind(new.kind.as_str())
                .bind(new.body.as_ref().map(|b| b.as_str()))
                .bind(ms(new.at))
                .bind(e.logged.position)
                .execute(&mut *conn)
                .await?;
            }
            TemplateEvent::TemplateChanged { name, body, at } => {
                sqlx::query(
                    "UPDATE webhook_templates SET name = COALESCE($1, name), body = COALESCE($2, body), \
                     updated_at_ms = $3 WHERE template_id = $4",
                )
                .bind(name.as_ref().map(|n| n.as_str()))
                .bind(body.as_ref().map(|b| b.as_str()))
                .bind(ms(*at))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            TemplateEvent::TemplateDeleted { at } => {
                sqlx::query("UPDATE webhook_templates SET deleted_at_ms = $1 WHERE template_id = $2")
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
pub struct TemplateRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub kind: String,
    pub body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT template_id, tenant, name, kind, body, created_at_ms, updated_at_ms, position \
     FROM webhook_templates WHERE deleted_at_ms IS NULL";

fn template_row(r: &AnyRow) -> Result<(i64, TemplateRow), ProjectionError> {
    Ok((
        r.try_get("position")?,
        TemplateRow {
            id: r.try_get("template_id")?,
            tenant: r.try_get("tenant")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            body: r.try_get("body")?,
            created_at: time(r.try_get("created_at_ms")?),
            updated_at: time(r.try_get("updated_at_ms")?),
        },
    ))
}

/// Live templates, newest first, of `tenant` (every tenant's when `None`).
pub async fn list_templates(
    db: &Database,
    tenant: Option<&str>,
    limit: i64,
    cursor: Option<i64>,
) -> Result<Page<TemplateRow>, ProjectionError> {
    tenant_page(db, SELECT, tenant, limit, cursor, template_row).await
}

pub async fn get_template(db: &Database, template_id: &str) -> Result<Option<TemplateRow>, ProjectionError> {
    one(db, SELECT, "template_id", template_id, template_row).await
}
