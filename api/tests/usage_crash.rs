//! No usage record of an answered request is lost when the server is killed with SIGKILL: the
//! edge spools each record before it answers, and the next start stores what was spooled, each
//! record once. On SQLite and on PostgreSQL.

mod node;

use node::*;
use std::time::{Duration, Instant};

const REQUESTS: usize = 300;

/// Records of the test's requests in the usage log, and how many distinct ones.
async fn logged(db: &sqlx::AnyPool) -> (i64, i64) {
    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT path) FROM usage_log WHERE path LIKE '/crash/%'")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn killed_right_after_answering(dir: Store) {
    let mut child = spawn_serve(&dir, &[]);
    let (_, edge) = listening(&mut child);
    // Each request is answered before the next is sent; the kill comes right after the last
    // answer, before the usage writer's next flush.
    let http = reqwest::Client::new();
    for i in 0..REQUESTS {
        let answer = http
            .get(format!("http://{edge}/crash/{i}"))
            .bearer_auth("ak_live_nosuchkey")
            .send()
            .await
            .expect("answered");
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("killed");

    let mut child = spawn_serve(&dir, &[]);
    listening(&mut child);
    let db = pool(&dir).await;
    let began = Instant::now();
    while logged(&db).await.0 < REQUESTS as i64 && began.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A flush more, to see nothing is stored twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        logged(&db).await,
        (REQUESTS as i64, REQUESTS as i64),
        "every answered request's record, once"
    );
    stop(child, "-TERM");
    dir.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_right_after_answering_loses_no_usage_record() {
    killed_right_after_answering(Store::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_server_killed_right_after_answering_loses_no_usage_record() {
    if let Some(store) = Store::postgres().await {
        killed_right_after_answering(store).await;
    }
}
