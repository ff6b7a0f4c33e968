//! `api_keys`: the key list admins page through, one row per key, derived from the key's
//! folded state (kept in the row's `state`).

use super::{json, ms, touched, Applied, Decoded, States};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use cqrs_es::Aggregate;
use keyledger_domain::api_key::{ExpiryWarning, IssuedKey};
use keyledger_domain::{ApiKey, ApiKeyEvent};
use sqlx::AnyConnection;
use std::collections::HashMap;

const INTO: &str = "api_keys (key_id, tenant, name, environment, prefix, scopes, rate_limits, ip_allow, ip_block, \
     expires_at_ms, status, expiry_stage, created_at_ms, updated_at_ms, revoked_at_ms, position, state)";

// The list's order (position of the issue) never changes after the insert.
const UPSERT: &str = "ON CONFLICT (key_id) DO UPDATE SET name = excluded.name, prefix = excluded.prefix, \
     scopes = excluded.scopes, rate_limits = excluded.rate_limits, ip_allow = excluded.ip_allow, \
     ip_block = excluded.ip_block, expires_at_ms = excluded.expires_at_ms, status = excluded.status, \
     expiry_stage = excluded.expiry_stage, updated_at_ms = excluded.updated_at_ms, \
     revoked_at_ms = excluded.revoked_at_ms, state = excluded.state";

/// What the expiry scheduler still owes the key.
fn expiry_stage(key: &IssuedKey) -> &'static str {
    if key.warnings_sent.contains(&ExpiryWarning::OneDay) {
        "one_day"
    } else if key.warnings_sent.contains(&ExpiryWarning::SevenDays) {
        "seven_days"
    } else {
        "none"
    }
}

fn row(key: &IssuedKey, state: &ApiKey, position: i64) -> Vec<Cell> {
    vec![
        key.id.to_string().into(),
        key.tenant.as_str().into(),
        key.name.as_str().into(),
        key.environment.as_str().into(),
        key.display_prefix().into(),
        json(&key.scopes).into(),
        json(&key.rate_limits).into(),
        json(&key.ip_rules.allow()).into(),
        json(&key.ip_rules.block()).into(),
        key.expires_at.map(ms).into(),
        key.recorded_status.as_str().into(),
        expiry_stage(key).into(),
        ms(key.created_at).into(),
        ms(key.updated_at).into(),
        key.revoked_at.map(ms).into(),
        position.into(),
        json(state).into(),
    ]
}

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let ids = touched(events, |e| match e.decoded {
        Decoded::Key(_) => Some(e.logged.aggregate_id.clone()),
        _ => None,
    });
    if ids.is_empty() {
        return Ok(());
    }
    let mut states: States<ApiKey> = States::load(conn, "api_keys", "key_id", ids).await?;
    let mut issued_at: HashMap<&str, i64> = HashMap::new();
    for e in events {
        let Decoded::Key(event) = &e.decoded else { continue };
        if matches!(event, ApiKeyEvent::KeyIssued { .. }) {
            issued_at.insert(&e.logged.aggregate_id, e.logged.position);
        }
        if let Some(state) = states.get_mut(&e.logged.aggregate_id) {
            state.apply(event.clone());
        }
    }
    let rows = states
        .into_iter()
        .filter_map(|(id, state)| {
            let key = state.issued()?;
            // Keys issued before this batch keep the position their row already has.
            Some(row(key, &state, issued_at.get(id.as_str()).copied().unwrap_or(0)))
        })
        .collect();
    rows::insert(conn, INTO, UPSERT, rows).await
}
