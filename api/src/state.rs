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
    /// This node's edge: its copy of keys and endpoints, its rate limits and its decision (which
    /// the explorer's Test asks too).
    pub edge: Arc<crate::edge::Edge>,
    /// Keys' usage for command answers, read together for answers given at once.
    pub key_usage: keyledger_projections::usage::KeyUsageReader,
    /// Live usage records, for streams.
    pub usage_feed: keyledger_projections::usage::feed::UsageFeed,
    /// Wakes this node's webhook sender.
    pub webhooks_due: keyledger_projections::dispatch::Due,
    /// Cancelled when the node begins to stop: streams end, so that connections drain.
    pub stopping: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Tells this node's webhook sender that deliveries are due now.
    pub fn dispatcher_due(&self) {
        self.webhooks_due.now();
    }

    /// Waits until read models, and this node's edge, include `position`: for commands whose
    /// answer is read back from a read model, or whose effect a next request's authentication
    /// reads (admin tokens). A timeout is logged, not failed.
    pub async fn settle(&self, position: i64) {
        if let Err(e) = self.catchup.wait_for(position, CATCHUP_TIMEOUT).await {
            tracing::warn!(error = %e, "read models are lagging behind a command");
        }
        self.settle_edge(position).await;
    }

    /// Waits until this node's edge includes `position`: after a revocation returns, this
    /// node's edge already refuses the key. Read models are not waited for: a read waits for
    /// them instead ([`Self::fresh`]), so a command answers at the speed of its append.
    pub async fn settle_edge(&self, position: i64) {
        let mut edge = self.edge.cache.subscribe();
        let caught_up = tokio::time::timeout(CATCHUP_TIMEOUT, edge.wait_for(|applied| *applied >= position)).await;
        if !matches!(caught_up, Ok(Ok(_))) {
            tracing::warn!(position, "the edge is lagging behind a command");
        }
    }

    /// Read-your-writes for reads of shared read models: waits until they include everything
    /// committed before the read began, on any node. A lag past the timeout is logged and the
    /// read goes on; an unreachable database is an error.
    pub async fn fresh(&self) -> Result<(), keyledger_projections::ProjectionError> {
        match self.catchup.fresh(CATCHUP_TIMEOUT).await {
            Err(keyledger_projections::ProjectionError::CatchupTimeout(position)) => {
                tracing::warn!(position, "read models are lagging; answering from what they hold");
                Ok(())
            }
            other => other,
        }
    }
}
