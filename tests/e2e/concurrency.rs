use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;

both!(concurrent_edits_of_one_key_never_lose_an_update, concurrent_edits);
async fn concurrent_edits(app: TestApp) -> TestApp {
    let key = app.create_key(json!({ "name": "contended" })).await;
    let id = key["id"].as_str().unwrap().to_owned();
    let edits = (0..50).map(|i| {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/keys/{id}")),
            app.token.clone(),
        );
        tokio::spawn(async move {
            let res = client
                .patch(url)
                .bearer_auth(token)
                .json(&json!({ "name": format!("name {i}") }))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, body)
        })
    });
    let results = futures::future::join_all(edits).await;
    let mut ok = 0;
    for result in results {
        let (status, body) = result.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "conflict"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(ok >= 1, "at least one edit wins");

    // Every success is an event, and the final state is what the events say.
    let history = app.get(&format!("/v1/keys/{id}/history")).await.body;
    let renames: Vec<&serde_json::Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "KeyRenamed")
        .collect();
    assert_eq!(renames.len(), ok);
    let sequences: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=sequences.len() as u64).collect::<Vec<_>>(),
        "no gaps, no duplicates"
    );
    let last_name = renames.last().unwrap()["data"]["name"].clone();
    assert_eq!(app.get(&format!("/v1/keys/{id}")).await.body["name"], last_name);
    app
}

both!(
    a_log_reader_sees_every_event_once_in_order_under_concurrent_writers,
    concurrent_log
);
async fn concurrent_log(app: TestApp) -> TestApp {
    let start = app.event_count().await;
    let writers = 20;
    let per_writer = 5;
    let expected = (writers * per_writer) as usize;

    // A reader tails the log while the writers commit.
    let pool = app.state.db.pool().clone();
    let tail = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut position = start;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen.len() < expected && tokio::time::Instant::now() < deadline {
            let batch = keyledger_commands::log::read_after(&pool, position, 7).await.unwrap();
            for e in batch {
                assert!(e.position > position, "positions increase");
                position = e.position;
                seen.push((e.position, e.aggregate_id, e.sequence));
            }
            tokio::task::yield_now().await;
        }
        seen
    });
    let writes = (0..writers).map(|w| {
        let (client, base, token) = (app.client.clone(), app.url(""), app.token.clone());
        tokio::spawn(async move {
            let created: serde_json::Value = client
                .post(format!("{base}/v1/keys"))
                .bearer_auth(&token)
                .json(&json!({ "name": format!("writer {w}") }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = created["id"].as_str().unwrap().to_owned();
            for i in 1..per_writer {
                let res = client
                    .patch(format!("{base}/v1/keys/{id}"))
                    .bearer_auth(&token)
                    .json(&json!({ "name": format!("writer {w} edit {i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
            }
        })
    });
    for w in futures::future::join_all(writes).await {
        w.unwrap();
    }
    let seen = tail.await.unwrap();
    assert_eq!(seen.len(), expected, "the tailing reader saw every event");
    let unique: HashSet<(String, i64)> = seen.iter().map(|(_, a, s)| (a.clone(), *s)).collect();
    assert_eq!(unique.len(), expected, "each exactly once");
    let all = keyledger_commands::log::read_after(app.state.db.pool(), start, 1_000)
        .await
        .unwrap();
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    assert_eq!(
        seen.iter().map(|(p, _, _)| *p).collect::<Vec<_>>(),
        positions,
        "same order as a later full read"
    );
    app
}
