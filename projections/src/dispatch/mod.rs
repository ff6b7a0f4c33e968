//! The webhook dispatcher. Three workers:
//! - the matcher tails the log behind the read models and queues a delivery per event and
//!   subscription that listens to it (`enqueue`), in the transaction that moves its checkpoint;
//! - the sender takes due deliveries (`queue::claim`: on PostgreSQL the nodes share them), and
//!   sends each in a task of its own (`send`), at most `concurrency` at once and
//!   `per_subscription` to one subscription, so a slow receiver holds only its own slots;
//! - the recorder writes what the attempts came to in batches, and disables subscriptions that
//!   answered 410 or have been failing for longer than `disable_after`.
//!
//! Delivery is at least once: a node that dies mid-attempt leaves the delivery claimed until
//! its lease ends, then any node sends it again under the same `webhook-id`.

mod client;
mod enqueue;
mod queue;
mod send;

use crate::read_models::webhook_subscriptions::{self, Target};
use crate::ProjectionError;
use keyledger_commands::clock::Clock;
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{CommandBus, CommandContext, Database};
use keyledger_domain::webhook::delivery::{failing_too_long, RetrySchedule};
use keyledger_domain::webhook::subscription::DisabledReason;
use keyledger_domain::webhook::target::Destination;
use keyledger_domain::webhook::WebhookCommand;
use queue::{Attempted, Claimed};
use send::Sender;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use queue::log as deliveries;

/// How the dispatcher delivers (`keyledger serve --webhook-…`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub destination: Destination,
    pub schedule: RetrySchedule,
    /// For one attempt, connecting included.
    pub timeout: Duration,
    /// Attempts in flight on this node.
    pub concurrency: usize,
    /// Attempts in flight to one subscription on this node.
    pub per_subscription: usize,
    /// A subscription whose every attempt failed for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Finished deliveries and their attempts are kept this long in the log.
    pub log_retention: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            destination: Destination::default(),
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            concurrency: 64,
            per_subscription: 8,
            disable_after: chrono::Duration::days(5),
            log_retention: chrono::Duration::days(30),
        }
    }
}

/// Deliveries taken per claim at most.
const CLAIM: usize = 256;
/// A safety net: new deliveries wake the sender, retries fall due on their own.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long the sender waits for more free slots before a small claim.
const GATHER: Duration = Duration::from_millis(2);
/// How often held deliveries of subscriptions no longer paused are looked for.
const SWEEP: Duration = Duration::from_secs(5);
/// How often the delivery log's retention is applied.
const RETENTION_SWEEP: Duration = Duration::from_secs(60);

/// A way to tell this node's sender that deliveries are due now (a resend, a recovery).
#[derive(Clone, Default)]
pub struct Due(Arc<Notify>);

impl Due {
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// Starts the dispatcher's workers; they run until aborted.
pub fn spawn(
    db: Database,
    bus: CommandBus,
    watch: LogWatch,
    clock: Arc<dyn Clock>,
    settings: Settings,
) -> Result<(Due, Vec<JoinHandle<()>>), ProjectionError> {
    let client = client::Client::new(settings.destination.clone(), settings.timeout, settings.concurrency)
        .map_err(|e| ProjectionError::Usage(format!("the webhook client could not be built: {e}")))?;
    let due = Due::default();
    let retention = settings.log_retention;
    let (results, recorded) = mpsc::unbounded_channel();
    let sender = Arc::new(Sender::new(db.clone(), bus.clone(), client, settings));
    let tasks = vec![
        tokio::spawn(
            matcher(db.clone(), watch, clock.clone(), due.0.clone(), retention)
                .instrument(tracing::info_span!("webhook_matcher")),
        ),
        tokio::spawn(
            sending(sender.clone(), clock.clone(), due.0.clone(), results)
                .instrument(tracing::info_span!("webhook_sender")),
        ),
        tokio::spawn(recorder(sender, clock, recorded).instrument(tracing::info_span!("webhook_recorder"))),
    ];
    Ok((due, tasks))
}

async fn matcher(db: Database, watch: LogWatch, clock: Arc<dyn Clock>, due: Arc<Notify>, retention: chrono::Duration) {
    let mut projected = watch.subscribe_projected();
    let mut failures = 0u32;
    let mut swept = tokio::time::Instant::now();
    let mut forgot = swept;
    loop {
        projected.mark_unchanged();
        let now_ms = clock.now().timestamp_millis();
        match enqueue::step(&db, now_ms).await {
            Ok(enqueue::Matched::Advanced { queued, full }) => {
                failures = 0;
                if queued > 0 {
                    due.notify_one();
                }
                if full {
                    continue;
                }
            }
            Ok(enqueue::Matched::Idle | enqueue::Matched::Busy) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::error!(error = %e, failures, "matching events to webhooks failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(failures.min(6)))).await;
                continue;
            }
        }
        if swept.elapsed() >= SWEEP {
            swept = tokio::time::Instant::now();
            match enqueue::sweep(&db, now_ms).await {
                Ok(0) => {}
                Ok(_) => due.notify_one(),
                Err(e) => tracing::warn!(error = %e, "releasing held webhook deliveries failed"),
            }
        }
        if forgot.elapsed() >= RETENTION_SWEEP {
            forgot = tokio::time::Instant::now();
            let horizon = now_ms - retention.num_milliseconds();
            match queue::log::forget_before(&db, horizon).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deliveries = n, "webhook deliveries past their retention deleted"),
                Err(e) => tracing::warn!(error = %e, "the delivery log's retention sweep failed"),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), projected.changed()).await;
    }
}

/// Attempts in flight per subscription on this node.
#[derive(Default)]
struct InFlight(Mutex<HashMap<String, usize>>);

impl InFlight {
    fn busy(&self, limit: usize) -> Vec<String> {
        let counts = self.0.lock().map(|c| c.clone()).unwrap_or_default();
        counts
            .into_iter()
            .filter(|(_, n)| *n >= limit)
            .map(|(id, _)| id)
            .collect()
    }
    /// Counts one more for `id` unless it has `limit` already.
    fn take(&self, id: &str, limit: usize) -> bool {
        let Ok(mut counts) = self.0.lock() else {
            return false;
        };
        let n = counts.entry(id.to_owned()).or_default();
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }
    fn give_back(&self, id: &str) {
        if let Ok(mut counts) = self.0.lock() {
            if let Some(n) = counts.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(id);
                }
            }
        }
    }
}

async fn sending(
    sender: Arc<Sender>,
    clock: Arc<dyn Clock>,
    due: Arc<Notify>,
    results: mpsc::UnboundedSender<Attempted>,
) {
    let slots = Arc::new(Semaphore::new(sender.settings.concurrency));
    let in_flight = Arc::new(InFlight::default());
    let freed = Arc::new(Notify::new());
    // Long enough that an attempt (bounded by the timeout) and its recording are done before
    // another node may take it; short enough that a dead node's deliveries go out again soon.
    let lease_ms = (sender.settings.timeout * 2 + Duration::from_secs(5)).as_millis() as i64;
    let mut failures = 0u32;
    // A claim is a write transaction: in a backlog, wait for a few slots to free (briefly)
    // rather than claiming one delivery per finished attempt.
    let batch = (sender.settings.concurrency / 2).clamp(1, 32);
    loop {
        let free = slots.available_permits().min(CLAIM);
        if free == 0 {
            freed.notified().await;
            continue;
        }
        if free < batch {
            let _ = tokio::time::timeout(GATHER, freed.notified()).await;
            if slots.available_permits() < batch {
                let _ = tokio::time::timeout(GATHER, freed.notified()).await;
            }
        }
        let free = slots.available_permits().min(CLAIM);
        let now = clock.now();
        let busy = in_flight.busy(sender.settings.per_subscription);
        let busy: Vec<&str> = busy.iter().map(String::as_str).collect();
        let claimed = match queue::claim(&sender.db, now.timestamp_millis(), lease_ms, free as i64, &busy).await {
            Ok(claimed) => claimed,
            Err(e) => {
                failures += 1;
                tracing::error!(error = %e, failures, "taking due webhook deliveries failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(failures.min(6)))).await;
                continue;
            }
        };
        failures = 0;
        if claimed.is_empty() {
            tokio::select! {
                _ = due.notified() => {}
                _ = freed.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let targets = match read_targets(&sender.db, &claimed).await {
            Ok(targets) => targets,
            Err(e) => {
                tracing::error!(error = %e, "reading webhook subscriptions failed; the deliveries go back");
                let ids: Vec<String> = claimed.into_iter().map(|c| c.delivery_id).collect();
                let _ = queue::unclaim(&sender.db, &ids).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (mut back, mut hold) = (Vec::new(), Vec::new());
        for delivery in claimed {
            let target = targets.get(&delivery.webhook_id);
            let Some(target) = target else {
                // Subscriptions are deleted softly, so a missing row is a read model being
                // rebuilt, not a deleted subscription: the delivery waits for it.
                back.push(delivery.delivery_id);
                continue;
            };
            match target.status.as_str() {
                "active" => {}
                "paused" => {
                    hold.push(delivery.delivery_id);
                    continue;
                }
                _ => {
                    let _ = results.send(send::skipped(&delivery, target, now));
                    continue;
                }
            }
            let target = target.clone();
            if !in_flight.take(&delivery.webhook_id, sender.settings.per_subscription) {
                back.push(delivery.delivery_id);
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                in_flight.give_back(&delivery.webhook_id);
                back.push(delivery.delivery_id);
                continue;
            };
            let (sender, clock, results, in_flight, freed) = (
                sender.clone(),
                clock.clone(),
                results.clone(),
                in_flight.clone(),
                freed.clone(),
            );
            tokio::spawn(
                async move {
                    let attempted = sender.attempt(&delivery, &target, clock.now()).await;
                    in_flight.give_back(&delivery.webhook_id);
                    drop(slot);
                    let _ = results.send(attempted);
                    freed.notify_one();
                }
                .in_current_span(),
            );
        }
        if !back.is_empty() {
            if let Err(e) = queue::unclaim(&sender.db, &back).await {
                tracing::warn!(error = %e, "giving back webhook deliveries failed; their lease will end");
            }
        }
        if !hold.is_empty() {
            if let Err(e) = queue::hold(&sender.db, &hold).await {
                tracing::warn!(error = %e, "holding webhook deliveries of a paused subscription failed");
            }
        }
    }
}

async fn read_targets(db: &Database, claimed: &[Claimed]) -> Result<HashMap<String, Target>, ProjectionError> {
    let mut ids: Vec<String> = claimed.iter().map(|c| c.webhook_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut conn = db.pool().acquire().await?;
    Ok(webhook_subscriptions::targets(&mut conn, &ids)
        .await?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect())
}

/// Attempts recorded per transaction at most.
const RECORD: usize = 2_000;

async fn recorder(sender: Arc<Sender>, clock: Arc<dyn Clock>, mut recorded: mpsc::UnboundedReceiver<Attempted>) {
    let mut batch = Vec::new();
    while recorded.recv_many(&mut batch, RECORD).await > 0 {
        let mut failures = 0u32;
        let failing = loop {
            match queue::record(&sender.db, &batch).await {
                Ok(failing) => break failing,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "recording webhook attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(failures.min(6)))).await;
                }
            }
        };
        let now = clock.now();
        // One command per subscription: one already disabled refuses it, at the cost of a read
        // of its stream.
        let mut disable: HashMap<String, (String, DisabledReason)> = HashMap::new();
        for (webhook_id, since) in failing {
            let since = crate::sql::time(since);
            if failing_too_long(Some(since), now, sender.settings.disable_after) {
                if let Some(a) = batch.iter().find(|a| a.webhook_id == webhook_id) {
                    disable.insert(webhook_id, (a.tenant.clone(), DisabledReason::Failing { since }));
                }
            }
        }
        for a in batch.iter().filter(|a| a.status_code == Some(410)) {
            disable.insert(a.webhook_id.clone(), (a.tenant.clone(), DisabledReason::Gone));
        }
        batch.clear();
        for (webhook_id, (tenant, reason)) in disable {
            disable_subscription(&sender.bus, &webhook_id, &tenant, reason).await;
        }
    }
}

async fn disable_subscription(bus: &CommandBus, webhook_id: &str, tenant: &str, reason: DisabledReason) {
    let (Ok(id), Ok(tenant)) = (webhook_id.parse(), tenant.parse()) else {
        return;
    };
    let shown = format!("{reason:?}");
    match bus
        .webhook_command(&CommandContext::system(), id, &tenant, |at| WebhookCommand::Disable {
            reason,
            at,
        })
        .await
    {
        Ok(_) => tracing::warn!(%webhook_id, reason = %shown, "webhook subscription disabled"),
        Err(e) => tracing::info!(%webhook_id, error = %e, "webhook subscription not disabled"),
    }
}
