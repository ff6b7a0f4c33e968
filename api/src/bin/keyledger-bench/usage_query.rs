//! The usage benchmark (`--usage-query N`, README: "Usage at scale"): N usage records over 90
//! days, in time order as an edge records them, through the real usage writer and rollups of a
//! real server; then how long analytics over them take, asked over HTTP.

use super::*;
use keyledger_projections::usage::{log, rollups, UsageRecord};

/// A small xorshift: the same records on every run, without a dependency.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub(crate) async fn usage_query(a: &Args, records: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url(a, dir.path(), "bench.db");
    let (keys, endpoints, days) = (a.usage_keys, a.usage_endpoints, 90i64);
    println!(
        "# Keyledger usage benchmark: {records} records over {days} days, {keys} keys, {endpoints} endpoints, {}",
        keyledger_commands::redact_url(&url)
    );
    let mut config = config(&url);
    // Records up to 90 days old are the point: none may be swept while the run counts them.
    config.serve.usage_retention_days = 3_650;
    let app = Application::build(config).await?;
    let (admin, edge, state) = (app.admin_addr(), app.edge_addr(), app.state().clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let token = "kla_bench_bootstrap_token_0123456789";
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("http://{admin}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let mut endpoint_entries = Vec::new();
    for e in 0..endpoints {
        let path = format!("/svc{e}/{{id}}");
        let answer = post(
            "/v1/endpoints",
            serde_json::json!({ "methods": ["GET"], "path": path, "plugin": format!("Plugin{}", e % 5), "upstream_url": "http://127.0.0.1:9" }),
        )
        .await?;
        anyhow::ensure!(answer.status() == 201, "endpoint registered");
        let entry = state
            .edge
            .cache
            .endpoint_for("GET".parse()?, &format!("/svc{e}/1"))
            .ok_or_else(|| anyhow::anyhow!("the edge knows the endpoint"))?;
        endpoint_entries.push(entry);
    }
    let mut key_entries = Vec::new();
    let mut first_key = String::new();
    for k in 0..keys {
        let answer = post(
            "/v1/keys",
            serde_json::json!({ "name": format!("customer {k}"), "rate_limits": { "per_minute": 1_000_000 } }),
        )
        .await?;
        anyhow::ensure!(answer.status() == 201, "key issued");
        let issued = answer.json::<serde_json::Value>().await?;
        let id = issued["id"].as_str().unwrap_or("").to_owned();
        if k == 0 {
            first_key = issued["key"].as_str().unwrap_or("").to_owned();
        }
        let entry = state
            .edge
            .cache
            .key_by_id(&id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the edge knows the key"))?;
        key_entries.push(entry);
    }

    // Each key calls three endpoints; 92 % answered 200, then 429, 403, 502 and unknown keys.
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let start = chrono::Utc::now() - chrono::Duration::days(days);
    let span_ms = chrono::Duration::days(days).num_milliseconds();
    let recorder = state.edge.usage.clone();
    let pushing = Instant::now();
    for i in 0..records {
        let at = start + chrono::Duration::milliseconds(span_ms * i as i64 / records as i64);
        let k = draw.below(keys);
        let endpoint = endpoint_entries[(k * 3 + draw.below(3)) % endpoints].clone();
        let (status, code, key) = match draw.below(100) {
            0..=91 => (200, "VALID", Some(key_entries[k].clone())),
            92..=95 => (429, "rate_limited", Some(key_entries[k].clone())),
            96..=97 => (403, "insufficient_scope", Some(key_entries[k].clone())),
            98 => (502, "upstream_unreachable", Some(key_entries[k].clone())),
            _ => (401, "invalid_key", None),
        };
        let record = UsageRecord {
            at,
            key,
            endpoint: Some(endpoint),
            method: "GET".into(),
            path: format!("/svc/{}", draw.below(1000)),
            status,
            code,
            latency_us: 200 + draw.below(5_000) as i64,
            client_ip: Some(std::net::Ipv4Addr::new(10, 0, (k / 250) as u8, (k % 250) as u8).into()),
        };
        while !recorder.try_record(&record) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if i > 0 && i % 1_000_000 == 0 {
            println!("  {i} records queued ({:.0} s)", pushing.elapsed().as_secs_f64());
        }
    }
    while (stored(&state.db).await? as usize) < records {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = pushing.elapsed();
    println!(
        "stored {records} records in {:.1} s: {:.0} records/s through the usage writer",
        written.as_secs_f64(),
        records as f64 / written.as_secs_f64()
    );
    let last = log::last_batch(&state.db).await?;
    while rollups::checkpoint(&state.db).await? < last {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let folded = pushing.elapsed();
    println!(
        "rolled up in {:.1} s after the first record: {:.0} records/s end to end",
        folded.as_secs_f64(),
        records as f64 / folded.as_secs_f64()
    );
    if state.db.backend() == keyledger_commands::Backend::Postgres {
        // What autovacuum does soon after a table grows (it is off on some development
        // machines): statistics for the planner, and the visibility map for index-only scans.
        let vacuumed = Instant::now();
        sqlx::query("VACUUM ANALYZE usage_rollups")
            .execute(state.db.pool())
            .await?;
        println!(
            "  VACUUM ANALYZE usage_rollups: {:.1} s",
            vacuumed.elapsed().as_secs_f64()
        );
    }
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT grain, period, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(LENGTH(latency_sketch)), 0) AS BIGINT) \
         FROM usage_rollups GROUP BY grain, period ORDER BY grain, period",
    )
    .fetch_all(state.db.pool())
    .await?;
    for (grain, period, rows, bytes) in rows {
        println!(
            "  {grain} {period} rollup rows: {rows}, sketches {:.0} MB",
            bytes as f64 / 1e6
        );
    }
    println!("\n| query | answers | median ms | slowest ms |\n|---|---|---|---|");
    let key_id = key_entries[0].key_id.to_string();
    for query in [
        "range=90d".to_owned(),
        "range=30d".to_owned(),
        "range=24h".to_owned(),
        format!("range=90d&key={key_id}"),
        "range=90d&status_class=5xx".to_owned(),
    ] {
        let mut times = Vec::new();
        let mut total = serde_json::Value::Null;
        for _ in 0..a.usage_queries {
            let asked = Instant::now();
            let answer: serde_json::Value = http
                .get(format!("http://{admin}/v1/analytics?{query}"))
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            times.push(asked.elapsed().as_secs_f64() * 1000.0);
            total = answer["total_requests"].clone();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| `{query}` | {total} requests | {:.1} | {:.1} |",
            median(times.iter().copied()),
            times.last().copied().unwrap_or(0.0)
        );
    }
    delivery(&http, admin, edge, token, &first_key, &key_id).await?;
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// How long a request's record takes to reach a live stream: 200 forward-auth requests through
/// the edge, 20 ms apart, each with its own path, against the arrival of its record on
/// `GET /v1/usage/stream`.
async fn delivery(
    http: &reqwest::Client,
    admin: std::net::SocketAddr,
    edge: std::net::SocketAddr,
    token: &str,
    key: &str,
    key_id: &str,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    const REQUESTS: usize = 200;
    let stream = http
        .get(format!("http://{admin}/v1/usage/stream?key={key_id}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(stream.status() == 200, "the stream opened");
    let mut body = stream.bytes_stream();
    let arrivals = tokio::spawn(async move {
        let (mut text, mut seen) = (String::new(), std::collections::HashMap::new());
        while seen.len() < REQUESTS {
            let Some(Ok(chunk)) = body.next().await else { break };
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(i) = event
                    .split("\"path\":\"/svc0/delivery-")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    seen.insert(i, Instant::now());
                }
            }
        }
        seen
    });
    let mut sent = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        sent.push(Instant::now());
        let answer = http
            .get(format!("http://{edge}/auth"))
            .header("authorization", format!("Bearer {key}"))
            .header("x-original-method", "GET")
            .header("x-original-uri", format!("/svc0/delivery-{i}"))
            .send()
            .await?;
        anyhow::ensure!(answer.status() == 204, "the edge allowed the request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), arrivals).await??;
    let mut delays: Vec<f64> = (0..REQUESTS)
        .filter_map(|i| Some(seen.get(&i)?.duration_since(sent[i]).as_secs_f64() * 1000.0))
        .collect();
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays.get(((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1)));
    println!(
        "\nlive delivery, request to SSE event: {} of {REQUESTS} records arrived; p50 {:.0} ms, p99 {:.0} ms, slowest {:.0} ms",
        delays.len(),
        at(0.5).copied().unwrap_or(f64::NAN),
        at(0.99).copied().unwrap_or(f64::NAN),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
