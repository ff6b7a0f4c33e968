//! Usage alert rules: create, read, delete; and the evaluator's pass, which judges every rule
//! over the usage rollups (the rule's aggregate fires a `usage.alert` once per breach).

use super::require;
use super::webhooks::owner;
use crate::error::{ApiError, ErrorCode};
use crate::rest::alert_dto::*;
use crate::rest::dto::{self, ListResponse};
use crate::state::AppState;
use keyledger_commands::CommandContext;
use keyledger_domain::webhook::alert::{
    AlertCommand, AlertMetric, AlertRule, AlertState, AlertSubject, NewAlertRule, WindowFigures,
};
use keyledger_domain::{Permission, TenantId};
use keyledger_projections::alert_rules::{self as rules, AlertRuleRow};
use keyledger_projections::{endpoints, key_list, ProjectionError};
use uuid::Uuid;

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidAlertRule, message.to_string())
}

fn metric(raw: &str) -> Result<AlertMetric, ApiError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| {
        invalid(format!(
            "unknown metric {:?}; known: rate_limit_hits, error_rate, requests, key_expiry",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// What the rule is about: one of the tenant's keys or endpoints, or the whole tenant.
async fn subject(
    state: &AppState,
    tenant: &TenantId,
    key_id: Option<String>,
    endpoint_id: Option<String>,
) -> Result<AlertSubject, ApiError> {
    match (key_id, endpoint_id) {
        (Some(_), Some(_)) => Err(invalid("a rule is about a key or an endpoint, not both")),
        (Some(key), None) => {
            let id = Uuid::parse_str(&key).map_err(|_| invalid(format!("there is no key {key}")))?;
            match key_list::get_key(&state.db, &id.to_string(), state.clock.now()).await? {
                Some(row) if row.key.tenant == *tenant => Ok(AlertSubject::Key(id.to_string())),
                _ => Err(invalid(format!("there is no key {key} in tenant {tenant}"))),
            }
        }
        (None, Some(endpoint)) => match endpoints::get_endpoint(&state.db, &endpoint, tenant.as_str()).await? {
            Some(row) => Ok(AlertSubject::Endpoint(row.id)),
            None => Err(invalid(format!("there is no endpoint {endpoint}"))),
        },
        (None, None) => Ok(AlertSubject::Tenant),
    }
}

/// The live rule `id` if the caller may see it; otherwise not found.
async fn visible(state: &AppState, ctx: &CommandContext, id: &str) -> Result<(Uuid, AlertRuleRow), ApiError> {
    let not_found = || ApiError::not_found("alert rule");
    let rule_id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.fresh().await?;
    match rules::get_rule(&state.db, &rule_id.to_string()).await? {
        Some(row) if ctx.actor.may_access_named(&row.tenant) => Ok((rule_id, row)),
        _ => Err(not_found()),
    }
}

pub async fn create_rule(
    state: &AppState,
    ctx: &CommandContext,
    body: CreateAlertRuleBody,
) -> Result<AlertRuleView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let tenant = owner(ctx, body.tenant)?;
    state.fresh().await?;
    let rule = AlertRule {
        subject: subject(state, &tenant, body.key_id, body.endpoint_id).await?,
        metric: metric(&body.metric)?,
        threshold: body.threshold,
        window_minutes: body.window_minutes.unwrap_or(5),
    }
    .validated()
    .map_err(invalid)?;
    let name = dto::name(body.name)?;
    let rule_id = Uuid::new_v4();
    let owner = tenant.clone();
    let committed = state
        .bus
        .alert_command(ctx, rule_id, &tenant, |at| {
            AlertCommand::Create(NewAlertRule {
                rule_id,
                tenant: owner,
                name,
                rule,
                at,
            })
        })
        .await?;
    state.settle(committed.position).await;
    rules::get_rule(&state.db, &rule_id.to_string())
        .await?
        .map(AlertRuleView::from)
        .ok_or_else(|| ApiError::internal("alert rule not in the read model after catch-up"))
}

pub async fn list_rules(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<ListResponse<AlertRuleView>, ApiError> {
    let l = super::listing(state, ctx, Permission::ApiManagementRead, tenant, limit, cursor).await?;
    Ok(rules::list_rules(&state.db, l.tenant.as_deref(), l.limit, l.cursor)
        .await?
        .into())
}

pub async fn get_rule(state: &AppState, ctx: &CommandContext, id: &str) -> Result<AlertRuleView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    Ok(visible(state, ctx, id).await?.1.into())
}

pub async fn delete_rule(state: &AppState, ctx: &CommandContext, id: &str) -> Result<(), ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let (rule_id, row) = visible(state, ctx, id).await?;
    let tenant = TenantId::try_from(row.tenant).map_err(ApiError::internal)?;
    let committed = state
        .bus
        .alert_command(ctx, rule_id, &tenant, |at| AlertCommand::Delete { at })
        .await?;
    state.settle(committed.position).await;
    Ok(())
}

/// One pass of the evaluator: every rule judged on its subject's figures over its window up to
/// now. Returns how many rules fired. Overlapping passes and nodes are safe: a rule's aggregate
/// fires once per breach.
pub async fn evaluate(state: &AppState) -> Result<usize, ProjectionError> {
    let now = state.clock.now();
    let mut fired = 0;
    for row in rules::all_rules(&state.db).await? {
        let (Ok(rule_id), Ok(tenant)) = (Uuid::parse_str(&row.id), TenantId::try_from(row.tenant.clone())) else {
            continue;
        };
        let figures = match (&row.rule.metric, &row.rule.subject) {
            (AlertMetric::KeyExpiry, AlertSubject::Key(key)) => {
                let expires = key_list::get_key(&state.db, key, now)
                    .await?
                    .and_then(|k| k.key.expires_at);
                WindowFigures {
                    hours_to_expiry: expires.map(|at| (at - now).num_seconds() as f64 / 3_600.0),
                    ..WindowFigures::default()
                }
            }
            (_, subject) => {
                let from = now - chrono::Duration::minutes(row.rule.window_minutes.into());
                keyledger_projections::usage::rollups::window::window(&state.db, &row.tenant, subject, (from, now))
                    .await?
            }
        };
        // Only a change of breach is news to the rule's aggregate; a judgement that would
        // change nothing is not sent (it would cost two reads of the stream).
        if row.rule.breached(&figures) == (row.state == "breached") {
            continue;
        }
        let judged = state
            .bus
            .alert_command(&CommandContext::system(), rule_id, &tenant, |at| AlertCommand::Judge {
                figures,
                at,
            })
            .await;
        match judged {
            Ok(committed)
                if committed.value.rule().is_some_and(|r| r.state == AlertState::Breached) && row.state == "clear" =>
            {
                fired += 1
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, rule_id = %row.id, "judging an alert rule failed"),
        }
    }
    Ok(fired)
}
