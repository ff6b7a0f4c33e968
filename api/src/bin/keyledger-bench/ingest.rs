//! The ingestion benchmark (`--usage-ingest SECONDS`, README: "Usage ingestion"): a real
//! `keyledger serve` process on core 0 and wrk on core 1 sending `/auth` with a valid key as fast
//! as the edge answers. It reports the requests/s answered, the records/s the usage writer
//! stored and the rollups folded, how long folded records had been stored (the rollups' lag),
//! and how many answered requests have no record: in a steady run, and across a SIGTERM and a
//! SIGKILL of the server in the middle of a run (restarted on the same database to count).

use super::*;
use keyledger_commands::Database;
use keyledger_projections::usage::{log, rollups};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub(crate) const TOKEN: &str = "kla_bench_bootstrap_token_0123456789";
/// The sampler's period: lags are measured to within it.
const SAMPLE: Duration = Duration::from_millis(50);
/// The writer's flush interval: a record waits at most this before its batch is stored.
const FLUSH_MS: f64 = 100.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    None,
    Term,
    Kill,
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) admin: SocketAddr,
    pub(crate) edge: SocketAddr,
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `keyledger serve` (the binary beside this one) on `url`, on this process's core, with
/// `extra` arguments.
pub(crate) async fn start(
    url: &str,
    dir: &std::path::Path,
    ports: (u16, u16),
    extra: &[&str],
) -> anyhow::Result<Server> {
    let log_file = dir.join("server.log");
    let exe = std::env::current_exe()?.with_file_name("keyledger");
    anyhow::ensure!(
        exe.exists(),
        "{} (cargo build --release -p keyledger-api)",
        exe.display()
    );
    let (admin, edge): (SocketAddr, SocketAddr) = (
        format!("127.0.0.1:{}", ports.0).parse()?,
        format!("127.0.0.1:{}", ports.1).parse()?,
    );
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_file)?;
    let child = Command::new(exe)
        .args(["serve", "--database-url", url])
        .args(["--admin-addr", &admin.to_string(), "--edge-addr", &edge.to_string()])
        .args(["--bootstrap-token", TOKEN, "--pbkdf2-iterations", "10000"])
        .args(["--edge-pepper", "bench-pepper-0123456789abcdef0123456789abcdef"])
        // The same spool across a restart: the restarted node stores what the killed one spooled.
        .arg("--usage-spool-dir")
        .arg(dir.join("spool"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let http = reqwest::Client::new();
    let began = Instant::now();
    loop {
        let ready = http.get(format!("http://{admin}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(Server { child, admin, edge });
        }
        anyhow::ensure!(
            began.elapsed() < Duration::from_secs(60),
            "the server did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records stored so far (the usage log's records, every run's).
pub(crate) async fn stored(db: &Database) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT) FROM usage_batches")
        .fetch_one(db.pool())
        .await?;
    Ok(n as u64)
}

/// Follows the rollups' checkpoint until `done`: for each batch it passes, how long the batch
/// had been stored when it was seen folded, and its records.
async fn sample(db: Database, done: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Vec<(f64, u64)>> {
    let mut seen = rollups::checkpoint(&db).await?;
    let mut lags = Vec::new();
    while !*done.borrow() {
        tokio::time::sleep(SAMPLE).await;
        let Ok(now) = rollups::checkpoint(&db).await else {
            continue;
        };
        if now <= seen {
            continue;
        }
        let at = chrono::Utc::now().timestamp_millis();
        let batches: Vec<(i64, i64)> =
            sqlx::query_as("SELECT records, written_at_ms FROM usage_batches WHERE id > $1 AND id <= $2")
                .bind(seen)
                .bind(now)
                .fetch_all(db.pool())
                .await?;
        lags.extend(
            batches
                .into_iter()
                .map(|(records, written)| ((at - written) as f64, records as u64)),
        );
        seen = now;
    }
    Ok(lags)
}

/// The `q` quantile of lags weighted by their records.
fn weighted(lags: &mut [(f64, u64)], q: f64) -> f64 {
    lags.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = lags.iter().map(|l| l.1).sum();
    let mut counted = 0;
    for (lag, n) in lags.iter() {
        counted += n;
        if counted as f64 >= q * total as f64 {
            return *lag;
        }
    }
    f64::NAN
}

/// Records the server's writer dropped (a full queue, or a batch it could not store).
async fn dropped(http: &reqwest::Client, admin: SocketAddr) -> u64 {
    let Ok(answer) = http.get(format!("http://{admin}/metrics")).send().await else {
        return 0;
    };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("keyledger_usage_records_dropped_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Waits until the rollups include every stored batch, once the writer has stored what it held
/// (the count stays put over three flush intervals); how long that took.
async fn caught_up(db: &Database) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let mut last = stored(db).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stored(db).await?;
        if now == last {
            break;
        }
        last = now;
    }
    while rollups::checkpoint(db).await? < log::last_batch(db).await? {
        anyhow::ensure!(
            began.elapsed() < Duration::from_secs(600),
            "the rollups did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(began.elapsed())
}

/// Waits until the usage log has not grown for half a second: a restarted node stores what its
/// predecessor spooled within its first flushes.
async fn settled(db: &Database) -> anyhow::Result<()> {
    let mut last = stored(db).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stored(db).await?;
        if now == last {
            return Ok(());
        }
        last = now;
    }
}

pub(crate) async fn usage_ingest(a: &Args, seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url(a, dir.path(), "ingest.db");
    println!(
        "# Keyledger ingestion benchmark: `keyledger serve` on core 0, wrk ({} connections, {seconds} s a run) on core 1, {}",
        a.connections,
        keyledger_commands::redact_url(&url)
    );
    let ports = (free_port()?, free_port()?);
    let mut server = start(&url, dir.path(), ports, &[]).await?;
    let http = reqwest::Client::new();
    let admin = server.admin;
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("http://{admin}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let answer = post(
        "/v1/endpoints",
        serde_json::json!({ "methods": ["GET"], "path": "/svc/{id}", "plugin": "Ingest", "required_scopes": ["FILES_READ"], "upstream_url": "http://127.0.0.1:9" }),
    )
    .await?;
    anyhow::ensure!(answer.status() == 201, "endpoint registered: {}", answer.text().await?);
    let answer = post(
        "/v1/keys",
        serde_json::json!({ "name": "ingest", "scopes": ["FILES_READ"], "rate_limits": { "per_second": 10_000_000 } }),
    )
    .await?;
    anyhow::ensure!(answer.status() == 201, "key issued: {}", answer.text().await?);
    let key = answer.json::<serde_json::Value>().await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let bearer = format!("Bearer {key}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/svc/1"),
    ];
    let db = Database::connect(&url).await?;

    println!(
        "\n| run | answered (wrk) | requests/s | records stored | answered without a record | dropped by the writer (its counter) | rollup lag p50 / p99 / max | settled after the run |\n|---|---|---|---|---|---|---|---|"
    );
    for stop in [Stop::None, Stop::Term, Stop::Kill] {
        let before = stored(&db).await?;
        let (done, watching) = tokio::sync::watch::channel(false);
        let sampler = tokio::spawn(sample(db.clone(), watching));
        let target = format!("http://{}/auth", server.edge);
        let owned: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let connections = a.connections;
        let run = tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            wrk(&target, connections, seconds, None, &headers)
        });
        if stop != Stop::None {
            tokio::time::sleep(Duration::from_secs(seconds) / 2).await;
            let pid = server.child.id().to_string();
            let signal = if stop == Stop::Term { "-TERM" } else { "-KILL" };
            Command::new("kill").args([signal, &pid]).status()?;
            server.child.wait()?;
        }
        let run = run.await?;
        let dropped = if stop == Stop::None {
            dropped(&http, server.admin).await.to_string()
        } else {
            "-".to_owned()
        };
        if stop != Stop::None {
            server = start(&url, dir.path(), ports, &[]).await?;
            settled(&db).await?;
        }
        let catch_up = caught_up(&db).await?;
        let _ = done.send(true);
        let mut lags = sampler.await??;
        let records = stored(&db).await? - before;
        let label = match stop {
            Stop::None => "steady",
            Stop::Term => "SIGTERM mid-run, restarted",
            Stop::Kill => "SIGKILL mid-run, restarted",
        };
        println!(
            "| {label} | {} | {:.0} | {records} ({:.0}/s) | {} | {dropped} | {:.0} / {:.0} / {:.0} ms (+ up to {FLUSH_MS:.0} ms in the writer) | {:.2} s |",
            run.requests,
            run.rps,
            records as f64 / seconds as f64,
            run.requests.saturating_sub(records),
            weighted(&mut lags, 0.5),
            weighted(&mut lags, 0.99),
            weighted(&mut lags, 1.0),
            catch_up.as_secs_f64(),
        );
    }
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()?;
    server.child.wait()?;
    Ok(())
}
