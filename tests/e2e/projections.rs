use keyledger_projections::{rebuild, ReadModel};
use keyledger_tests::{both, TestApp};
use serde_json::json;
use sqlx::{Column, Row};

/// Every row of a table, as strings, in a stable order.
async fn dump(app: &TestApp, table: &str) -> Vec<Vec<String>> {
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..r.columns().len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or_else(|| "NULL".into()))
                        .or_else(|_| {
                            r.try_get::<Option<i64>, _>(i)
                                .map(|v| v.map_or("NULL".into(), |n| n.to_string()))
                        })
                        .unwrap_or_else(|e| panic!("{table}.{}: {e}", r.column(i).name()))
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

both!(a_rebuilt_read_model_equals_the_live_one, rebuild_equals_live);
async fn rebuild_equals_live(app: TestApp) -> TestApp {
    let a = app
        .create_key(json!({ "name": "a", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
        .await;
    let b = app.create_key(json!({ "name": "b", "environment": "test" })).await;
    app.patch(
        &format!("/v1/keys/{}", a["id"].as_str().unwrap()),
        json!({ "name": "a2", "rate_limits": { "per_second": 3 } }),
    )
    .await;
    app.post(
        &format!("/v1/keys/{}/rotate", a["id"].as_str().unwrap()),
        json!({ "grace_seconds": 60 }),
    )
    .await;
    app.post(&format!("/v1/keys/{}/revoke", b["id"].as_str().unwrap()), json!({}))
        .await;
    let (token_id, _) = app
        .create_token(
            &app.token,
            json!({ "name": "t", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    assert_eq!(
        app.delete_as(&app.token, &format!("/v1/admin-tokens/{token_id}"))
            .await
            .status,
        reqwest::StatusCode::NO_CONTENT
    );

    for model in ReadModel::ALL {
        let before: Vec<_> = futures::future::join_all(model.tables().iter().map(|t| dump(&app, t))).await;
        assert!(before.iter().any(|rows| !rows.is_empty()), "{} has data", model.name());
        let mut calls = 0;
        let at = rebuild(&app.state.db, model, |_, _| calls += 1).await.unwrap();
        assert!(calls >= 2, "progress reported");
        assert_eq!(at, app.event_count().await);
        let after: Vec<_> = futures::future::join_all(model.tables().iter().map(|t| dump(&app, t))).await;
        assert_eq!(before, after, "rebuilt {} equals the live one", model.name());
    }
    app
}
