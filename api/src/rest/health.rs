//! Liveness, readiness and metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use keyledger_commands::log;
use serde_json::json;

/// Readiness tolerates this much projection lag: a busy node is still serving.
const READY_LAG: i64 = 1_000;

pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and every projection is caught up (within a small lag).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let head = match log::head(state.db.pool()).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable", "database": "unreachable" })),
            );
        }
    };
    let checkpoints = keyledger_projections::runner::checkpoints(&state.db)
        .await
        .unwrap_or_default();
    let mut lagging = serde_json::Map::new();
    let mut ready = true;
    for model in keyledger_projections::ReadModel::ALL {
        let at = checkpoints.get(model.name()).copied().unwrap_or(0);
        let lag = head - at;
        ready &= lag <= READY_LAG;
        lagging.insert(model.name().to_owned(), json!({ "position": at, "lag": lag }));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(
            json!({ "status": if ready { "ready" } else { "catching_up" }, "head": head, "projections": lagging }),
        ),
    )
}

/// Prometheus metrics. Projection lag and log head are measured at scrape time, so they are
/// current whenever someone looks.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(head) = log::head(state.db.pool()).await {
        metrics::gauge!("keyledger_event_log_head").set(head as f64);
        let checkpoints = keyledger_projections::runner::checkpoints(&state.db)
            .await
            .unwrap_or_default();
        for model in keyledger_projections::ReadModel::ALL {
            let at = checkpoints.get(model.name()).copied().unwrap_or(0);
            metrics::gauge!("keyledger_projection_position", "projection" => model.name()).set(at as f64);
            metrics::gauge!("keyledger_projection_lag_events", "projection" => model.name()).set((head - at) as f64);
        }
    }
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
