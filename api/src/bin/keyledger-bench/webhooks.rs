//! The webhook benchmark (`--webhooks N`, README: "The webhook benchmark"): a real `keyledger
//! serve` process on core 0, and on core 1 this process, which makes the events over REST and
//! receives the deliveries on a local HTTP receiver.
//!
//! 1. Backlog: every subscription paused, events made until N deliveries are held, then all
//!    resumed at once: deliveries/s from the first resume to the last delivery received, and
//!    the server's CPU per delivery.
//! 2. Steady: events at a rate that makes `--webhook-rate` deliveries/s for 10 s: the rate
//!    reached and each delivery's latency from its event's time to its arrival.

use super::*;
use keyledger_commands::Database;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Keys whose renames are the events (`key.changed`), one request in flight each.
const KEYS: usize = 16;
const STEADY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Received {
    count: AtomicUsize,
    /// Latencies (ms) are kept while set.
    timing: AtomicBool,
    latencies: Mutex<Vec<f64>>,
}

/// A receiver answering 204 at once; counts deliveries and, while timing, each one's latency
/// from the event's time (the message's `timestamp`).
async fn receiver(received: Arc<Received>) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let received = received.clone();
        async move {
            received.count.fetch_add(1, Ordering::Relaxed);
            if received.timing.load(Ordering::Relaxed) {
                let sent = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|m| m["timestamp"].as_str().map(str::to_owned))
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
                if let Some(sent) = sent {
                    let ms = (chrono::Utc::now() - sent.with_timezone(&chrono::Utc)).num_microseconds();
                    if let (Some(us), Ok(mut l)) = (ms, received.latencies.lock()) {
                        l.push(us as f64 / 1000.0);
                    }
                }
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/hooks"))
}

/// CPU time (user + system) of process `pid` so far.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum();
    Duration::from_millis(ticks * 10)
}

struct Api {
    http: reqwest::Client,
    admin: std::net::SocketAddr,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let answer = self
            .http
            .request(method, format!("http://{}{path}", self.admin))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "{path}: {}", answer.status());
        Ok(answer.json().await.unwrap_or_default())
    }

    /// Makes `events` key.changed events, one request in flight per key (a key's changes are
    /// one stream: two at once would conflict).
    async fn rename(self: &Arc<Self>, keys: &Arc<Vec<String>>, events: usize, round: usize) -> anyhow::Result<()> {
        let mut makers = Vec::new();
        for (m, key) in keys.iter().enumerate() {
            let (api, key) = (self.clone(), key.clone());
            makers.push(tokio::spawn(async move {
                for i in (m..events).step_by(KEYS) {
                    api.send(
                        reqwest::Method::PATCH,
                        &format!("/v1/keys/{key}"),
                        serde_json::json!({ "name": format!("renamed {round}-{i}") }),
                    )
                    .await?;
                }
                anyhow::Ok(())
            }));
        }
        for maker in makers {
            maker.await??;
        }
        Ok(())
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    let began = Instant::now();
    while !done() {
        anyhow::ensure!(began.elapsed() < limit, "{what} within {} s", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(began.elapsed())
}

pub(crate) async fn webhooks(a: &Args, deliveries: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url(a, dir.path(), "webhooks.db");
    let subscriptions = a.webhook_subscriptions.max(1);
    let events = deliveries.div_ceil(subscriptions);
    let deliveries = events * subscriptions;
    println!(
        "# Keyledger webhook benchmark: {deliveries} deliveries ({events} events × {subscriptions} subscriptions), {}",
        keyledger_commands::redact_url(&url)
    );
    let ports = (free_port()?, free_port()?);
    let server = start(&url, dir.path(), ports, &["--webhook-allow-cidrs", "127.0.0.1/32"]).await?;
    if pin::move_to_load_core() {
        println!("# the server on core 0; the events' maker and the receiver (this process) on core 1");
    }
    let received = Arc::new(Received::default());
    let target = receiver(received.clone()).await?;
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        admin: server.admin,
    });
    let mut hooks = Vec::new();
    for _ in 0..subscriptions {
        let created = api
            .send(
                reqwest::Method::POST,
                "/v1/webhooks",
                serde_json::json!({ "url": target, "event_types": ["key.changed"] }),
            )
            .await?;
        hooks.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut keys = Vec::new();
    for k in 0..KEYS {
        let key = api
            .send(
                reqwest::Method::POST,
                "/v1/keys",
                serde_json::json!({ "name": format!("hooked {k}") }),
            )
            .await?;
        keys.push(key["id"].as_str().unwrap_or_default().to_owned());
    }
    let keys = Arc::new(keys);
    let db = Database::connect(&url).await?;
    let count = |status: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_deliveries WHERE status = $1")
                .bind(status)
                .fetch_one(db.pool())
                .await
        }
    };

    // 1. Backlog.
    for hook in &hooks {
        api.send(
            reqwest::Method::POST,
            &format!("/v1/webhooks/{hook}/pause"),
            serde_json::json!({}),
        )
        .await?;
    }
    let making = Instant::now();
    api.rename(&keys, events, 0).await?;
    let made = making.elapsed();
    let began = Instant::now();
    while count("held").await? < deliveries as i64 {
        anyhow::ensure!(began.elapsed() < Duration::from_secs(300), "every delivery held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "# {events} events made in {:.1} s over REST; {deliveries} deliveries queued (held)",
        made.as_secs_f64()
    );
    let cpu_before = cpu_of(server.child.id());
    let began = Instant::now();
    for hook in &hooks {
        api.send(
            reqwest::Method::POST,
            &format!("/v1/webhooks/{hook}/resume"),
            serde_json::json!({}),
        )
        .await?;
    }
    let elapsed = wait_until("every held delivery received", Duration::from_secs(600), || {
        received.count.load(Ordering::Relaxed) >= deliveries
    })
    .await?;
    let _ = began;
    let cpu = cpu_of(server.child.id()) - cpu_before;
    while count("delivered").await? < deliveries as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backlog_rate = deliveries as f64 / elapsed.as_secs_f64();

    // 2. Steady.
    let rate = a.webhook_rate.max(subscriptions);
    let events_per_second = rate / subscriptions;
    let steady_events = events_per_second * STEADY.as_secs() as usize;
    let before = received.count.load(Ordering::Relaxed);
    received.timing.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = (events_per_second as f64 / 100.0).max(1.0);
    let (mut due, mut made) = (0.0, 0usize);
    while made < steady_events {
        tick.tick().await;
        due += per_tick;
        let now = (due as usize).min(steady_events) - made;
        if now > 0 {
            api.rename(&keys, now, 1 + made).await?;
            made += now;
        }
    }
    let made_in = began.elapsed();
    let target_count = before + steady_events * subscriptions;
    wait_until("every steady delivery received", Duration::from_secs(300), || {
        received.count.load(Ordering::Relaxed) >= target_count
    })
    .await?;
    let steady_elapsed = began.elapsed();
    let mut latencies = received.latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies.sort_by(f64::total_cmp);

    println!("\n| run | deliveries | time | deliveries/s | server CPU per delivery |\n|---|---|---|---|---|");
    println!(
        "| backlog: {deliveries} held, then resumed | {deliveries} | {:.2} s | **{backlog_rate:.0}** | {:.0} µs |",
        elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / deliveries as f64
    );
    println!(
        "| steady: {events_per_second} events/s × {subscriptions} subscriptions for {} s (made in {:.1} s) | {} | {:.2} s | {:.0} | |",
        STEADY.as_secs(),
        made_in.as_secs_f64(),
        steady_events * subscriptions,
        steady_elapsed.as_secs_f64(),
        (steady_events * subscriptions) as f64 / steady_elapsed.as_secs_f64()
    );
    println!(
        "\nlatency from event to receiver, steady run ({} deliveries): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!("backlog deliveries/s: {backlog_rate:.0} (target ≥ 2000)");
    let mut child = server.child;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok(())
}
