//! What the server does without sockets: the checks through the router, the usage writer alone, PBKDF2 counts.

use super::*;

pub(crate) fn pbkdf2_count(app_metrics: &str) -> u64 {
    app_metrics
        .lines()
        .find(|l| l.starts_with("keyledger_edge_pbkdf2_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
/// The edge's own work per request, without sockets or HTTP parsing: `n` requests through its
/// router on one task, for `path` with these headers. Returns wall µs per request (one task, so
/// the handler's latency) and the process's CPU µs per request, the usage writer's share included
/// (it gets 300 ms after the loop to write what is queued).
pub(crate) async fn in_process(router: &axum::Router, path: &str, headers: &[(&str, &str)], n: usize) -> (f64, f64) {
    use tower::ServiceExt;
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().expect("an address");
    let request = || {
        let mut req = axum::http::Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(axum::body::Body::empty()).expect("a request");
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        req
    };
    let (cpu, wall) = (cpu_time(), Instant::now());
    for _ in 0..n {
        let response = router.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(response.status(), 204, "{path} answers 204");
    }
    let wall = wall.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = cpu_time() - cpu;
    (wall.as_secs_f64() * 1e6 / n as f64, cpu.as_secs_f64() * 1e6 / n as f64)
}
/// The usage writer on its own: `n` records of real keys and endpoints pushed as fast as the queue
/// takes them, until the writer has stored them all. Returns records/s and CPU µs per record (the
/// whole process, which is otherwise idle).
pub(crate) async fn usage_writer(state: &keyledger_api::state::AppState, key: &str, n: usize) -> (f64, f64) {
    use keyledger_projections::usage::{self, UsageRecord};
    let lookup = keyledger_domain::key_format::PlaintextKey::parse(key)
        .expect("a seeded key")
        .lookup_id()
        .as_str()
        .to_owned();
    let entry = state.edge.cache.key(&lookup);
    let endpoint = state.edge.cache.endpoint_for("GET".parse().unwrap(), "/files/1");
    let before = stored(&state.db).await.expect("the usage log can be read");
    let (cpu, wall) = (cpu_time(), Instant::now());
    let key_usage = state.key_usage.clone();
    let spool = usage::SpoolConfig {
        dir: crate::setup::spool_dir(),
        max_bytes: 4 << 30,
    };
    let (recorder, writer) = usage::spawn(state.db.clone(), &spool, move || key_usage.written())
        .await
        .expect("the usage writer starts");
    for i in 0..n {
        let record = UsageRecord {
            at: chrono::Utc::now(),
            key: entry.clone(),
            endpoint: endpoint.clone(),
            method: "GET".into(),
            path: format!("/files/{}", i % 1000),
            status: 204,
            code: "VALID",
            latency_us: 40,
            client_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        };
        // The edge drops records when the spool is full; here we wait, to count every one.
        while !recorder.try_record(&record) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    drop(recorder);
    assert!(writer.finish(Duration::from_secs(300)).await, "the writer ends");
    let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
    // A writer that drops what it cannot store would otherwise look fast.
    assert_eq!(
        stored(&state.db).await.expect("the usage log can be read") - before,
        n as u64,
        "the usage writer stored every record"
    );
    (n as f64 / wall.as_secs_f64(), cpu.as_secs_f64() * 1e6 / n as f64)
}

/// The rollups alone: every stored record folded again from the start (`rollups::rebuild`), as
/// records/s. The node's own rollups worker may take some of the steps; the figure counts every
/// record of the log against the time all of them took. Pinned to one core, that time is the
/// core's: /proc's CPU clock ticks every 10 ms, too coarse for a run of 30 ms.
pub(crate) async fn rollups_alone(state: &keyledger_api::state::AppState) -> (usize, f64) {
    let records = stored(&state.db).await.expect("the usage log can be read");
    let wall = Instant::now();
    keyledger_projections::usage::rollups::rebuild(&state.db, chrono::Utc::now(), |_, _| {})
        .await
        .expect("the rollups rebuild");
    (records as usize, records.max(1) as f64 / wall.elapsed().as_secs_f64())
}
