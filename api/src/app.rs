//! Building and running the application: the piece `main` and the tests share.

use crate::config::Config;
use crate::edge::{router as edge_router, Edge};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::{rest, scheduler, telemetry};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use keyledger_commands::auth::Authenticator;
use keyledger_commands::clock::{Clock, SystemClock};
use keyledger_commands::secrets::{Pepper, SecretHasher};
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{CommandBus, Database};
use keyledger_projections::edge_cache::EdgeCache;
use keyledger_projections::{Catchup, ProjectionRunner};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub struct Application {
    admin: TcpListener,
    admin_addr: SocketAddr,
    edge: TcpListener,
    edge_addr: SocketAddr,
    edge_router: Router,
    usage_writer: keyledger_projections::usage::UsageWriter,
    state: AppState,
    router: Router,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    bootstrap: Option<Bootstrap>,
}

/// The superuser token a start on an empty store created.
pub enum Bootstrap {
    /// Made up on this start: the only time it can be shown.
    Generated(String),
    /// The one configuration gave (`--bootstrap-token`): its owner knows it, so it is not shown.
    Configured,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Connects, migrates, starts projections and the scheduler, bootstraps the first token on an
    /// empty store and binds the admin listener (port 0 allowed).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        config.validate()?;
        let db = Database::connect(&config.db.database_url).await?;
        db.migrate().await?;

        let watch = LogWatch::default();
        let mut tasks = Vec::new();
        if let Some(pg) = db.postgres() {
            tasks.push(watch.spawn_postgres_listener(pg.clone()));
        }
        tasks.push(ProjectionRunner::new(db.clone(), watch.clone()).spawn());

        let pepper = Arc::new(match &config.serve.edge_pepper {
            Some(secret) => Pepper::from_secret(secret)?,
            None => Pepper::load_or_create(&config.data_dir().join("edge-pepper"))?,
        });
        let hasher = SecretHasher::new(config.serve.pbkdf2_iterations);
        let bus = CommandBus::new(db.clone(), hasher, clock.clone(), watch.clone()).with_pepper(pepper.clone());
        let catchup = Catchup::new(db.clone(), watch.clone());

        let bootstrap = bus.bootstrap(config.serve.bootstrap_token.clone()).await?.map(|token| {
            match config.serve.bootstrap_token {
                Some(_) => Bootstrap::Configured,
                None => Bootstrap::Generated(token),
            }
        });
        // Start serving only once the read models know every event so far (the bootstrap token
        // among them), so the first request already authenticates.
        // A large backlog (a new node on a long log, read models just migrated) takes as long
        // as it takes: say how far it is instead of giving up.
        let head = keyledger_commands::log::head(db.pool()).await?;
        let mut previous = None;
        loop {
            match catchup.wait_for(head, Duration::from_secs(10)).await {
                Ok(()) => break,
                Err(keyledger_projections::ProjectionError::CatchupTimeout(_)) => {
                    let at = keyledger_projections::runner::checkpoints(&db)
                        .await?
                        .into_values()
                        .min()
                        .unwrap_or(0);
                    if previous == Some(at) {
                        // A runner that fails on every batch (an event it cannot read, say) logs
                        // why each time; point there rather than promising progress.
                        tracing::warn!(
                            position = at,
                            head,
                            "read models have not advanced in 10 s; the projection errors above say why"
                        );
                    } else {
                        tracing::info!(
                            position = at,
                            head,
                            "read models are catching up; serving once they have"
                        );
                    }
                    previous = Some(at);
                }
                Err(e) => return Err(e.into()),
            }
        }

        // The node's own copy of keys, endpoints and admin tokens: a snapshot of the read models,
        // then the log.
        // Taken once they have caught up, so that on a long backlog the edge does not fold the
        // same events again on the same core while they do.
        let cache = EdgeCache::load(db.clone(), pepper.id()).await?;
        tasks.push(cache.spawn_tail(watch.clone()));
        // Usage is summed from the stored usage log, whichever node's edge recorded it. Started
        // after the edge's copy is loaded: a backlog of records left by the last run would
        // otherwise compete with that load for the same cores and delay the first answer.
        let rollups_wake = Arc::new(tokio::sync::Notify::new());
        tasks.push(keyledger_projections::usage::rollups::spawn(
            db.clone(),
            clock.clone(),
            rollups_wake.clone(),
        ));
        let auth = Authenticator::new(db.clone(), clock.clone(), cache.clone());
        let key_usage = keyledger_projections::usage::KeyUsageReader::spawn(db.clone());
        let (usage_feed, feed_task) = keyledger_projections::usage::feed::UsageFeed::start(db.clone()).await?;
        tasks.push(feed_task);
        let written = {
            let (key_usage, usage_feed) = (key_usage.clone(), usage_feed.clone());
            move || {
                key_usage.written();
                usage_feed.written();
                rollups_wake.notify_one();
            }
        };
        let (usage, usage_writer) =
            keyledger_projections::usage::spawn(db.clone(), &config.usage_spool(), written).await?;
        let edge = Arc::new(Edge::new(
            cache,
            pepper,
            usage,
            config.serve.trusted_proxies.clone(),
            config.serve.pbkdf2_concurrency,
            clock.clone(),
            auth.clone(),
        )?);
        let (webhooks_due, dispatcher) = keyledger_projections::dispatch::spawn(
            db.clone(),
            bus.clone(),
            watch.clone(),
            clock.clone(),
            config.webhooks(),
        )?;
        tasks.extend(dispatcher);
        let state = AppState {
            auth,
            catchup,
            bus: bus.clone(),
            db: db.clone(),
            clock,
            metrics: telemetry::metrics_handle(),
            edge_url: config.edge_url(),
            edge: edge.clone(),
            key_usage,
            usage_feed,
            webhooks_due,
            stopping: tokio_util::sync::CancellationToken::new(),
        };

        tasks.push(keyledger_projections::usage::retention::spawn(
            db.clone(),
            state.clock.clone(),
            chrono::Duration::days(config.serve.usage_retention_days.into()),
        ));
        tasks.push(scheduler::spawn_alerts(
            state.clone(),
            Duration::from_secs_f64(config.serve.alert_check_seconds),
        ));
        tasks.push(scheduler::spawn(
            state.clone(),
            Duration::from_secs_f64(config.serve.expiry_check_seconds),
        ));
        let edge_router = edge_router(edge);

        let admin = TcpListener::bind(config.serve.admin_addr).await?;
        let admin_addr = admin.local_addr()?;
        let edge = TcpListener::bind(config.serve.edge_addr).await?;
        let edge_addr = edge.local_addr()?;
        let router = router(state.clone());
        Ok(Application {
            admin,
            admin_addr,
            edge,
            edge_addr,
            edge_router,
            usage_writer,
            state,
            router,
            tasks,
            bootstrap,
        })
    }

    pub fn edge_addr(&self) -> SocketAddr {
        self.edge_addr
    }

    /// The edge's routes, for driving it in-process (the benchmark's measure of the checks alone).
    pub fn edge_router(&self) -> Router {
        self.edge_router.clone()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The superuser token created on this start, if the store was empty.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves both listeners until `shutdown` completes, then drains in-flight requests, writes
    /// the last usage records and stops workers.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stopping = self.state.stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.cancel();
            let _ = stop.send(true);
        });
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        let admin = axum::serve(
            self.admin,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(until(stopped.clone()));
        let edge = axum::serve(
            self.edge,
            self.edge_router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(until(stopped));
        let (admin, edge) = tokio::join!(admin, edge);
        // The edge has stopped: the writer writes what is queued and ends.
        if !self.usage_writer.finish(Duration::from_secs(30)).await {
            tracing::error!("the usage writer did not finish within 30 s");
        }
        for task in &self.tasks {
            // Workers commit per batch; aborting one mid-batch rolls that batch back.
            task.abort();
        }
        self.state.db.close().await;
        admin?;
        edge?;
        Ok(())
    }
}

pub fn router(state: AppState) -> Router {
    let docs = SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", rest::document());
    Router::new()
        .merge(rest::router())
        .merge(crate::graphql::router(state.clone()))
        .merge(crate::console::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .with_state(state)
        .merge(docs)
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
                let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), route = route.as_deref().unwrap_or(req.uri().path()), request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await.into_response();
    let status = response.status().as_u16().to_string();
    metrics::counter!("keyledger_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("keyledger_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
