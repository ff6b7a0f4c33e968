use super::{json, ms};
use crate::ProjectionError;
use keyledger_commands::log::LoggedEvent;
use keyledger_domain::EndpointEvent;
use sqlx::AnyConnection;

/// A column value: text or integer, possibly NULL.
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

/// Runs `UPDATE endpoints SET <column> = $1, updated_at_ms = $2, position = $3 WHERE endpoint_id = $4`.
async fn set(
    conn: &mut AnyConnection,
    column: &'static str,
    value: Cell,
    logged: &LoggedEvent,
    event: &EndpointEvent,
) -> Result<(), ProjectionError> {
    // `column` is one of the fixed names in this file, never input.
    let sql = format!("UPDATE endpoints SET {column} = $1, updated_at_ms = $2, position = $3 WHERE endpoint_id = $4");
    let query = sqlx::query(&sql);
    let query = match value {
        Cell::Text(v) => query.bind(v),
        Cell::Int(v) => query.bind(v),
    };
    query
        .bind(ms(event.at()))
        .bind(logged.position)
        .bind(event.endpoint_id().to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn apply(
    conn: &mut AnyConnection,
    logged: &LoggedEvent,
    event: &EndpointEvent,
) -> Result<(), ProjectionError> {
    use EndpointEvent::*;
    match event {
        EndpointRegistered { endpoint_id, spec, at } => {
            sqlx::query(
                "INSERT INTO endpoints (endpoint_id, route_id, path, methods, plugin, description, required_scopes, \
                 request_schema, response_schema, upstream_url, deprecated, sunset_at_ms, active, created_at_ms, \
                 updated_at_ms, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, NULL, 1, $11, $11, $12)",
            )
            .bind(endpoint_id.to_string())
            .bind(logged.aggregate_id.as_str())
            .bind(spec.path.as_str())
            .bind(json(&spec.methods))
            .bind(spec.plugin.as_str())
            .bind(spec.description.as_str())
            .bind(json(&spec.required_scopes))
            .bind(spec.request_schema.as_ref().map(json))
            .bind(spec.response_schema.as_ref().map(json))
            .bind(spec.upstream_url.as_str())
            .bind(ms(*at))
            .bind(logged.position)
            .execute(&mut *conn)
            .await?;
        }
        EndpointChanged {
            methods,
            path,
            plugin,
            description,
            required_scopes,
            upstream_url,
            ..
        } => {
            if let Some(v) = methods {
                set(conn, "methods", Cell::Text(Some(json(v))), logged, event).await?;
            }
            if let Some(v) = path {
                set(conn, "path", Cell::Text(Some(v.to_string())), logged, event).await?;
            }
            if let Some(v) = plugin {
                set(conn, "plugin", Cell::Text(Some(v.to_string())), logged, event).await?;
            }
            if let Some(v) = description {
                set(
                    conn,
                    "description",
                    Cell::Text(Some(v.as_str().to_owned())),
                    logged,
                    event,
                )
                .await?;
            }
            if let Some(v) = required_scopes {
                set(conn, "required_scopes", Cell::Text(Some(json(v))), logged, event).await?;
            }
            if let Some(v) = upstream_url {
                set(
                    conn,
                    "upstream_url",
                    Cell::Text(Some(v.as_str().to_owned())),
                    logged,
                    event,
                )
                .await?;
            }
        }
        EndpointSchemasChanged {
            request_schema,
            response_schema,
            ..
        } => {
            set(
                conn,
                "request_schema",
                Cell::Text(request_schema.as_ref().map(json)),
                logged,
                event,
            )
            .await?;
            set(
                conn,
                "response_schema",
                Cell::Text(response_schema.as_ref().map(json)),
                logged,
                event,
            )
            .await?;
        }
        EndpointDeprecated { sunset, .. } => {
            set(conn, "deprecated", Cell::Int(Some(1)), logged, event).await?;
            set(conn, "deprecated_at_ms", Cell::Int(Some(ms(event.at()))), logged, event).await?;
            set(conn, "sunset_at_ms", Cell::Int(sunset.map(ms)), logged, event).await?;
        }
        EndpointUndeprecated { .. } => {
            set(conn, "deprecated", Cell::Int(Some(0)), logged, event).await?;
            set(conn, "deprecated_at_ms", Cell::Int(None), logged, event).await?;
            set(conn, "sunset_at_ms", Cell::Int(None), logged, event).await?;
        }
        EndpointActivated { .. } => set(conn, "active", Cell::Int(Some(1)), logged, event).await?,
        EndpointDeactivated { .. } => set(conn, "active", Cell::Int(Some(0)), logged, event).await?,
        EndpointEnabledForTenant {
            endpoint_id, tenant, ..
        }
        | EndpointDisabledForTenant {
            endpoint_id, tenant, ..
        } => {
            let enabled = i64::from(matches!(event, EndpointEnabledForTenant { .. }));
            sqlx::query(
                "INSERT INTO endpoint_tenant_settings (endpoint_id, tenant, enabled) VALUES ($1, $2, $3) \
                 ON CONFLICT (endpoint_id, tenant) DO UPDATE SET enabled = excluded.enabled",
            )
            .bind(endpoint_id.to_string())
            .bind(tenant.as_str())
            .bind(enabled)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
