//! `alert_rules`: a tenant's usage alert rules, whether each is in breach, and its firings.

use super::{json, ms, Applied, Decoded};
use crate::sql::{one, opt_time, parse_json, tenant_page, time, Page};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use keyledger_domain::webhook::alert::{AlertEvent, AlertRule};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Rules change rarely: one statement per event keeps the order of a batch's changes.
pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    for e in events {
        let Decoded::Alert(event) = &e.decoded else {
            continue;
        };
        let id = e.logged.aggregate_id.as_str();
        let query = match event {
            AlertEvent::AlertRuleCreated(new) => sqlx::query(
                "INSERT INTO alert_rules (rule_id, tenant, name, rule, state, fired, last_fired_at_ms, last_value, \
                 created_at_ms, updated_at_ms, deleted_at_ms, position) \
                 VALUES ($1, $2, $3, $4, 'clear', 0, NULL, NULL, $5, $5, NULL, $6)",
            )
            .bind(id)
            .bind(new.tenant.as_str())
            .bind(new.name.as_str())
            .bind(json(&new.rule))
            .bind(ms(new.at))
            .bind(e.logged.position),
            AlertEvent::AlertFired { value, at, .. } => sqlx::query(
                "UPDATE alert_rules SET state = 'breached', fired = fired + 1, last_fired_at_ms = $1, \
                 last_value = $2, updated_at_ms = $1 WHERE rule_id = $3",
            )
            .bind(ms(*at))
            .bind(*value)
            .bind(id),
            AlertEvent::AlertCleared { at } => {
                sqlx::query("UPDATE alert_rules SET state = 'clear', updated_at_ms = $1 WHERE rule_id = $2")
                    .bind(ms(*at))
                    .bind(id)
            }
            AlertEvent::AlertRuleDeleted { at } => {
                sqlx::query("UPDATE alert_rules SET deleted_at_ms = $1 WHERE rule_id = $2")
                    .bind(ms(*at))
                    .bind(id)
            }
        };
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

// ---- queries ----

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub rule: AlertRule,
    /// `clear` or `breached`.
    pub state: String,
    pub fired: i64,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub last_value: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT rule_id, tenant, name, rule, state, fired, last_fired_at_ms, last_value, created_at_ms, \
     updated_at_ms, position FROM alert_rules WHERE deleted_at_ms IS NULL";

fn rule_row(r: &AnyRow) -> Result<(i64, AlertRuleRow), ProjectionError> {
    Ok((
        r.try_get("position")?,
        AlertRuleRow {
            id: r.try_get("rule_id")?,
            tenant: r.try_get("tenant")?,
            name: r.try_get("name")?,
            rule: parse_json(&r.try_get::<String, _>("rule")?, "rule")?,
            state: r.try_get("state")?,
            fired: r.try_get("fired")?,
            last_fired_at: opt_time(r.try_get("last_fired_at_ms")?),
            last_value: r.try_get("last_value")?,
            created_at: time(r.try_get("created_at_ms")?),
            updated_at: time(r.try_get("updated_at_ms")?),
        },
    ))
}

/// Live rules, newest first, of `tenant` (every tenant's when `None`).
pub async fn list_rules(
    db: &Database,
    tenant: Option<&str>,
    limit: i64,
    cursor: Option<i64>,
) -> Result<Page<AlertRuleRow>, ProjectionError> {
    tenant_page(db, SELECT, tenant, limit, cursor, rule_row).await
}

pub async fn get_rule(db: &Database, rule_id: &str) -> Result<Option<AlertRuleRow>, ProjectionError> {
    one(db, SELECT, "rule_id", rule_id, rule_row).await
}

/// Every live rule, for the evaluator.
pub async fn all_rules(db: &Database) -> Result<Vec<AlertRuleRow>, ProjectionError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY position"))
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| rule_row(r).map(|(_, row)| row)).collect()
}
