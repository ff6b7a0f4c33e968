//! No webhook event is lost when the server is killed with SIGKILL in the middle of delivering:
//! the deliveries it was sending go out again after the restart, under the same `webhook-id`.
//! On SQLite and on PostgreSQL.

mod node;

use node::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEYS: usize = 20;
/// Requests the receiver holds without answering (the server is killed meanwhile).
const HELD: usize = 4;

/// What a receiver got: requests by `webhook-id`, and the ones it answered.
#[derive(Default, Clone, Debug)]
struct Seen {
    received: HashMap<String, usize>,
    answered: HashMap<String, usize>,
}

/// A receiver that counts each `webhook-id` it gets, holding the first `HELD` requests
/// unanswered.
async fn receiver() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let counted = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let seen = counted.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let calls = {
                let mut seen = seen.lock().unwrap();
                *seen.received.entry(id.clone()).or_default() += 1;
                seen.received.values().sum::<usize>()
            };
            if calls <= HELD {
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            *seen.lock().unwrap().answered.entry(id).or_default() += 1;
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hooks"), seen)
}

fn serve(dir: &Store) -> std::process::Child {
    spawn_serve(
        dir,
        &[
            ("KEYLEDGER_WEBHOOK_ALLOW_CIDRS", "127.0.0.1/32"),
            ("KEYLEDGER_WEBHOOK_TIMEOUT_SECONDS", "1"),
        ],
    )
}

async fn killed_mid_delivery(dir: Store) {
    let (url, seen) = receiver().await;
    let mut child = serve(&dir);
    let (admin, _) = listening(&mut child);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("http://{admin}/v1/webhooks"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "url": url, "event_types": ["key.created"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for i in 0..KEYS {
        let key = http
            .post(format!("http://{admin}/v1/keys"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "name": format!("crash-{i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(key.status(), 201);
    }
    // Killed while the receiver holds requests it has not answered.
    let began = Instant::now();
    while seen.lock().unwrap().received.values().sum::<usize>() < HELD && began.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("killed");

    let mut child = serve(&dir);
    listening(&mut child);
    let began = Instant::now();
    while seen.lock().unwrap().answered.len() < KEYS && began.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.answered.len(), KEYS, "every event was delivered: {seen:?}");
    assert!(seen.answered.keys().all(|id| id.starts_with("msg_")), "{seen:?}");
    let held: Vec<_> = seen.received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        held.len() >= HELD,
        "the deliveries held at the kill went out again under the same id: {seen:?}"
    );
    // And the log says so.
    let db = pool(&dir).await;
    let began = Instant::now();
    let delivered = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    while delivered().await < KEYS as i64 && began.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered().await, KEYS as i64);
    stop(child, "-TERM");
    dir.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_delivers_every_event_after_restart() {
    killed_mid_delivery(Store::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_delivers_every_event_after_restart_postgres() {
    let Some(dir) = Store::postgres().await else {
        return;
    };
    killed_mid_delivery(dir).await;
}
