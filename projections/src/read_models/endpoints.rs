//! `endpoints` and `endpoint_tenant_settings`: the catalogue the explorer reads, one row per
//! endpoint derived from its folded state, plus the tenants that disabled it.

use super::{json, ms, touched, Applied, Decoded, States};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use keyledger_domain::endpoint::RegisteredEndpoint;
use sqlx::AnyConnection;
use std::collections::HashMap;

const INTO: &str = "endpoints (endpoint_id, route_id, path, methods, plugin, description, required_scopes, \
     request_schema, response_schema, upstream_url, deprecated, deprecated_at_ms, sunset_at_ms, active, \
     created_at_ms, updated_at_ms, position, state)";

const UPSERT: &str = "ON CONFLICT (endpoint_id) DO UPDATE SET route_id = excluded.route_id, path = excluded.path, \
     methods = excluded.methods, plugin = excluded.plugin, description = excluded.description, \
     required_scopes = excluded.required_scopes, request_schema = excluded.request_schema, \
     response_schema = excluded.response_schema, upstream_url = excluded.upstream_url, \
     deprecated = excluded.deprecated, deprecated_at_ms = excluded.deprecated_at_ms, \
     sunset_at_ms = excluded.sunset_at_ms, active = excluded.active, updated_at_ms = excluded.updated_at_ms, \
     position = excluded.position, state = excluded.state";

/// The stored state: `None` until the endpoint's registration has been applied.
type State = Option<RegisteredEndpoint>;

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let ids = touched(events, |e| match &e.decoded {
        Decoded::Endpoint(event) => Some(event.endpoint_id().to_string()),
        _ => None,
    });
    if ids.is_empty() {
        return Ok(());
    }
    let mut states: States<State> = States::load(conn, "endpoints", "endpoint_id", ids.clone()).await?;
    // (route stream, last position) of each endpoint the batch touched.
    let mut seen: HashMap<String, (&str, i64)> = HashMap::new();
    for e in events {
        let Decoded::Endpoint(event) = &e.decoded else { continue };
        let id = event.endpoint_id().to_string();
        if let Some(state) = states.get_mut(&id) {
            match (RegisteredEndpoint::registered(event), state.as_mut()) {
                (Some(new), _) => *state = Some(new),
                (None, Some(endpoint)) => endpoint.apply(event.clone()),
                (None, None) => {}
            }
        }
        seen.insert(id, (e.logged.aggregate_id.as_str(), e.logged.position));
    }
    let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(ids.len());
    let mut disabled: Vec<Vec<Cell>> = Vec::new();
    for (id, state) in states.into_iter() {
        let Some(e) = &state else { continue };
        let (route, position) = seen.get(&id).copied().unwrap_or(("", 0));
        let s = &e.spec;
        rows.push(vec![
            id.as_str().into(),
            route.into(),
            s.path.to_string().into(),
            json(&s.methods).into(),
            s.plugin.to_string().into(),
            s.description.as_str().into(),
            json(&s.required_scopes).into(),
            s.request_schema.as_ref().map(json).into(),
            s.response_schema.as_ref().map(json).into(),
            s.upstream_url.as_str().into(),
            i64::from(e.deprecation.is_some()).into(),
            e.deprecation.as_ref().map(|d| ms(d.since)).into(),
            e.deprecation.as_ref().and_then(|d| d.sunset).map(ms).into(),
            i64::from(e.active).into(),
            ms(e.created_at).into(),
            ms(e.updated_at).into(),
            position.into(),
            json(&state).into(),
        ]);
        for tenant in &e.disabled_tenants {
            disabled.push(vec![id.as_str().into(), tenant.as_str().into(), 0i64.into()]);
        }
    }
    rows::insert(conn, INTO, UPSERT, rows).await?;
    rows::delete_where_in(conn, "endpoint_tenant_settings", "endpoint_id", &ids).await?;
    rows::insert(
        conn,
        "endpoint_tenant_settings (endpoint_id, tenant, enabled)",
        "",
        disabled,
    )
    .await
}
