use keyledger_commands::auth::Authenticator;
use keyledger_commands::clock::Clock;
use keyledger_commands::{CommandBus, Database};
use keyledger_projections::Catchup;
use std::sync::Arc;
use std::time::Duration;

/// How long a command's response waits for read models to include it (read-your-writes). Past
/// that the command has still succeeded; a later read may lag briefly.
pub const CATCHUP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub bus: CommandBus,
    pub auth: Authenticator,
    pub catchup: Catchup,
    pub clock: Arc<dyn Clock>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Where clients reach the edge (tenant OpenAPI `servers`, SDK defaults).
    pub edge_url: String,
}

impl AppState {
    /// Waits until read models include `position`; a timeout is logged, not failed.
    pub async fn settle(&self, position: i64) {
        if let Err(e) = self.catchup.wait_for(position, CATCHUP_TIMEOUT).await {
            tracing::warn!(error = %e, "read models are lagging behind a command");
        }
    }
}
