//! Usage analytics over HTTP traffic through the edge: the rollups hold, per minute, hour and UTC
//! day, exactly what the stored usage log holds, and rebuild to the same figures.

use keyledger_domain::usage::{Period, RollupCell};
use keyledger_projections::usage::rollups;
use keyledger_tests::{both, eventually, spawn_upstream, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// (grain, period, bucket, tenant, key, endpoint, plugin, outcome, status)
type Group = (String, String, i64, String, String, String, String, String, i64);

/// A `usage_rollups` row: the group, then requests, latency sum and sketch.
type Stored = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
);

/// The rollups' figures: requests, latency sum, and P50 and P99 from the sketch.
async fn rolled_up(app: &TestApp) -> BTreeMap<Group, (i64, i64, Option<u64>, Option<u64>)> {
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT grain, period, bucket_ms, tenant, key_id, endpoint_id, plugin, outcome, status, requests, \
         latency_sum_us, latency_sketch FROM usage_rollups",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| {
            let cell = RollupCell::stored(r.9 as u64, r.10 as u64, &r.11).expect("a stored sketch reads back");
            let q = |q: f64| cell.quantile_us(q).map(|v| v.round() as u64);
            (
                (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8),
                (r.9, r.10, q(0.5), q(0.99)),
            )
        })
        .collect()
}

/// The same groups summed by hand from the raw usage log: per key, endpoint and plugin
/// (`detail`), and without the key (`endpoint`), without the endpoint and plugin (`key`) or
/// without all three (`tenant`).
async fn summed_by_hand(app: &TestApp) -> BTreeMap<Group, (i64, i64)> {
    type Logged = (
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        i64,
        i64,
    );
    let logged: Vec<Logged> =
        sqlx::query_as("SELECT at_ms, tenant, key_id, endpoint_id, plugin, code, status, latency_us FROM usage_log")
            .fetch_all(app.state.db.pool())
            .await
            .unwrap();
    let mut groups = BTreeMap::new();
    for (at_ms, tenant, key, endpoint, plugin, code, status, latency) in logged {
        for period in Period::KEPT {
            for (grain, by_key, by_endpoint) in [
                ("detail", true, true),
                ("endpoint", false, true),
                ("key", true, false),
                ("tenant", false, false),
            ] {
                let width = period.width().num_milliseconds();
                let part = |kept: bool, p: &Option<String>| {
                    if kept {
                        p.clone().unwrap_or_default()
                    } else {
                        String::new()
                    }
                };
                let group = (
                    grain.to_owned(),
                    period.as_str().to_owned(),
                    at_ms - at_ms.rem_euclid(width),
                    part(true, &tenant),
                    part(by_key, &key),
                    part(by_endpoint, &endpoint),
                    part(by_endpoint, &plugin),
                    code.clone(),
                    status,
                );
                let sums: &mut (i64, i64) = groups.entry(group).or_default();
                sums.0 += 1;
                sums.1 += latency;
            }
        }
    }
    groups
}

both!(usage_is_rolled_up_per_minute_hour_and_day_and_rebuilds_the_same, rollup);
async fn rollup(app: TestApp) -> TestApp {
    let upstream = spawn_upstream().await;
    let files = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": format!("{upstream}/api") }))
        .await;
    let created = app
        .create_key(json!({ "name": "metered", "scopes": ["FILES_READ"], "rate_limits": { "per_minute": 2 } }))
        .await;
    let key = created["key"].as_str().unwrap();
    let statuses = [
        app.edge_get("/files/1", key).await.status,
        app.edge_get("/files/2", key).await.status,
        app.edge_get("/files/3", key).await.status,
        app.edge_get("/files/4", "not a key at all").await.status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::UNAUTHORIZED
        ]
    );
    eventually("the rollups include the four requests", || async {
        let summed: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(requests) AS BIGINT) FROM usage_rollups WHERE grain = 'detail' AND period = 'day'",
        )
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
        summed == Some(4)
    })
    .await;

    // What a user would read: per key, endpoint and outcome, for every period.
    let figures = rolled_up(&app).await;
    let (key_id, endpoint_id) = (created["id"].as_str().unwrap(), files["id"].as_str().unwrap());
    for period in Period::ALL {
        let mut by_outcome: BTreeMap<(String, String, String, i64), i64> = BTreeMap::new();
        for (g, (requests, ..)) in figures
            .iter()
            .filter(|(g, _)| g.0 == "detail" && g.1 == period.as_str())
        {
            *by_outcome
                .entry((g.4.clone(), g.5.clone(), g.7.clone(), g.8))
                .or_default() += requests;
        }
        let expected: BTreeMap<(String, String, String, i64), i64> = [
            ((key_id, endpoint_id, "VALID", 200), 2),
            ((key_id, endpoint_id, "rate_limited", 429), 1),
            (("", "", "invalid_key", 401), 1),
        ]
        .into_iter()
        .map(|((k, e, o, s), n)| ((k.to_owned(), e.to_owned(), o.to_owned(), s), n))
        .collect();
        assert_eq!(by_outcome, expected, "per {period}");
    }
    assert!(
        figures
            .keys()
            .filter(|g| !g.5.is_empty())
            .all(|g| g.3 == "default" && g.6 == "Files"),
        "{figures:?}"
    );

    // Every group, bucket and latency sum equals the raw log summed by hand.
    let by_hand = summed_by_hand(&app).await;
    let rolled: BTreeMap<Group, (i64, i64)> = figures.iter().map(|(g, f)| (g.clone(), (f.0, f.1))).collect();
    assert_eq!(rolled, by_hand);

    // Rebuilt from the log, the rollups are the same, percentiles included. (The live worker may
    // fold some of the batches itself meanwhile: each batch is folded once either way.)
    rollups::rebuild(&app.state.db, app.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(rolled_up(&app).await, figures);
    app
}

both!(
    the_overview_counts_keys_endpoints_and_usage_for_the_tenant_only,
    overview
);
async fn overview(app: TestApp) -> TestApp {
    let upstream = spawn_upstream().await;
    app.register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": format!("{upstream}/api") }))
        .await;
    let old = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/old/{id}", "plugin": "Files", "upstream_url": format!("{upstream}/api") }))
        .await;
    let deprecated = app
        .post(
            &format!("/v1/endpoints/{}/deprecate", old["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(deprecated.status, StatusCode::OK, "{:?}", deprecated.body);
    let metered = app
        .create_key(json!({ "name": "metered", "rate_limits": { "per_minute": 2 } }))
        .await;
    let gone = app.create_key(json!({ "name": "gone" })).await;
    let revoked = app
        .post(&format!("/v1/keys/{}/revoke", gone["id"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);

    let empty = app.get("/v1/overview").await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(
        empty.body["last_7_days"]["success_rate"],
        Value::Null,
        "no requests, no rate"
    );
    assert_eq!(empty.body["hourly_requests"].as_array().map(Vec::len), Some(24));

    let key = metered["key"].as_str().unwrap();
    for (path, key) in [
        ("/files/1", key),
        ("/old/2", key),
        ("/files/3", key),
        ("/files/4", "not a key"),
    ] {
        app.edge_get(path, key).await;
    }
    let mine = "/v1/overview?tenant=default";
    // Every request rolled up (the request without a key may be folded a step later).
    eventually("the overview counts all four requests", || async {
        app.get("/v1/overview").await.body["requests_today"] == 4
    })
    .await;

    let o = app.get(mine).await.body;
    let latency_us: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(latency_us) AS BIGINT) FROM usage_log WHERE tenant = 'default'")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(
        (
            &o["total_keys"],
            &o["active_keys"],
            &o["total_endpoints"],
            &o["deprecated_endpoints"]
        ),
        (&json!(2), &json!(1), &json!(2), &json!(1)),
        "{o}"
    );
    let week = &o["last_7_days"];
    assert_eq!(
        (&week["total_requests"], &week["rate_limit_hits"]),
        (&json!(3), &json!(1)),
        "{o}"
    );
    assert!((week["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{o}");
    let avg = week["avg_response_ms"].as_f64().unwrap();
    assert!(
        (avg - latency_us as f64 / 3.0 / 1000.0).abs() < 1e-9,
        "{avg} vs {latency_us} µs / 3"
    );
    let hourly = o["hourly_requests"].as_array().unwrap();
    assert_eq!(hourly.len(), 24);
    assert_eq!(hourly[23]["requests"], 3, "the current hour is last: {o}");
    assert!(hourly[..23].iter().all(|p| p["requests"] == 0));
    let hour = |p: &Value| chrono::DateTime::parse_from_rfc3339(p["hour"].as_str().unwrap()).unwrap();
    assert_eq!(hour(&hourly[23]) - hour(&hourly[0]), chrono::Duration::hours(23));
    assert_eq!(o["requests_24h"], 3);

    // A superuser naming no tenant sees every tenant's, and the request made with no key.
    let all = app.get("/v1/overview").await;
    assert_eq!(all.body["requests_today"], 4, "{:?}", all.body);
    // Another tenant sees none of it, and may not look at this one.
    let acme = app.token_for("acme", "acme reader", &["API_MANAGEMENT_READ"]).await;
    let theirs = app.get_as(&acme, "/v1/overview").await.body;
    assert_eq!(
        (
            &theirs["total_keys"],
            &theirs["requests_today"],
            &theirs["requests_24h"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{theirs}"
    );
    assert_eq!(
        app.get_as(&acme, "/v1/overview?tenant=default").await.error_code(),
        "forbidden"
    );

    // GraphQL answers the same figures.
    let graphql = app
        .graphql(
            Some(&app.token),
            "{ overview(tenant: \"default\") { totalKeys requestsToday lastSevenDays: last7Days { totalRequests rateLimitHits } hourlyRequests { requests } } }",
            json!({}),
        )
        .await;
    let g = &graphql["data"]["overview"];
    assert_eq!(
        (&g["totalKeys"], &g["requestsToday"]),
        (&json!(2), &json!(3)),
        "{graphql}"
    );
    assert_eq!(g["lastSevenDays"]["rateLimitHits"], 1, "{graphql}");
    app
}

both!(analytics_break_a_ranges_usage_down_and_filter_it, report);
async fn report(app: TestApp) -> TestApp {
    let upstream = spawn_upstream().await;
    let files = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": format!("{upstream}/api") }))
        .await;
    app.register_endpoint(json!({ "methods": ["GET"], "path": "/reports/{id}", "plugin": "Reports", "upstream_url": format!("{upstream}/api") }))
        .await;
    let k1 = app
        .create_key(json!({ "name": "first", "rate_limits": { "per_minute": 2 } }))
        .await;
    let k2 = app.create_key(json!({ "name": "second" })).await;
    let (one, two) = (k1["key"].as_str().unwrap(), k2["key"].as_str().unwrap());
    for (path, key) in [
        ("/files/1", one),
        ("/files/2", one),
        ("/files/3", one),
        ("/reports/1", two),
        ("/files/9", "not a key"),
    ] {
        app.edge_get(path, key).await;
    }
    let of = |query: &str| format!("/v1/analytics?tenant=default{query}");
    eventually("analytics count the tenant's four requests", || async {
        app.get(&of("")).await.body["total_requests"] == 4
    })
    .await;

    let r = app.get(&of("")).await.body;
    assert_eq!((&r["range"], &r["period"]), (&json!("24h"), &json!("hour")));
    assert_eq!(
        (&r["success_rate"], &r["error_count"]),
        (&json!(0.75), &json!(1)),
        "{r}"
    );
    let volume = r["volume"].as_array().unwrap();
    assert_eq!((volume.len(), &volume[23]["requests"]), (24, &json!(4)));
    assert_eq!(
        r["by_plugin"],
        json!([{ "name": "Files", "requests": 3 }, { "name": "Reports", "requests": 1 }])
    );
    assert_eq!(
        r["by_outcome"],
        json!([{ "name": "VALID", "requests": 3 }, { "name": "RATE_LIMITED", "requests": 1 }])
    );
    assert_eq!(
        r["errors_by_status"],
        json!([{ "status": 429, "requests": 1, "previous_requests": 0, "change": null }])
    );
    assert_eq!(
        (&r["previous_error_count"], &r["error_change"]),
        (&json!(0), &Value::Null)
    );
    let recent = r["recent_errors"].as_array().unwrap();
    assert_eq!(recent.len(), 1, "the tenant's one error: {r}");
    assert_eq!(
        (
            &recent[0]["path"],
            &recent[0]["status"],
            &recent[0]["outcome"],
            &recent[0]["key_id"]
        ),
        (&json!("/files/3"), &json!(429), &json!("RATE_LIMITED"), &k1["id"])
    );
    let top = &r["top_endpoints"][0];
    assert_eq!(
        (
            &top["endpoint_id"],
            &top["path"],
            &top["methods"],
            &top["requests"],
            &top["error_class"]
        ),
        (
            &files["id"],
            &json!("/files/{id}"),
            &json!(["GET"]),
            &json!(3),
            &json!("red")
        ),
        "{r}"
    );
    assert!((top["error_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!(top["latency"]["p99_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["latency"]["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(
        r["by_key"],
        json!([{ "key_id": k1["id"], "name": "first", "requests": 3 }, { "key_id": k2["id"], "name": "second", "requests": 1 }])
    );
    assert_eq!(r["empty_reason"], Value::Null);

    // Filters narrow every figure.
    for (query, expected) in [
        (format!("&key={}", k2["id"].as_str().unwrap()), 1),
        ("&outcome=RATE_LIMITED".to_owned(), 1),
        ("&status_class=4xx".to_owned(), 1),
        ("&status_class=2xx&plugin=Files".to_owned(), 2),
        (format!("&endpoint={}", files["id"].as_str().unwrap()), 3),
    ] {
        assert_eq!(app.get(&of(&query)).await.body["total_requests"], expected, "{query}");
    }
    // A filter on the key narrows the endpoints and plugins, and one on the plugin the keys
    // (each read from rows that hold both).
    let second = app.get(&of(&format!("&key={}", k2["id"].as_str().unwrap()))).await.body;
    assert_eq!(
        second["by_plugin"],
        json!([{ "name": "Reports", "requests": 1 }]),
        "{second}"
    );
    assert_eq!(second["top_endpoints"].as_array().map(Vec::len), Some(1), "{second}");
    assert_eq!(second["top_endpoints"][0]["path"], "/reports/{id}", "{second}");
    assert!(second["top_endpoints"][0]["latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    let files_only = app.get(&of("&plugin=Files")).await.body;
    assert_eq!(
        files_only["by_key"],
        json!([{ "key_id": k1["id"], "name": "first", "requests": 3 }]),
        "{files_only}"
    );
    let week = app.get(&of("&range=7d")).await.body;
    assert_eq!(
        (&week["period"], week["volume"].as_array().map(Vec::len)),
        (&json!("day"), Some(7))
    );
    for bad in [
        "&range=1y",
        "&range=90d&period=minute",
        "&outcome=nope",
        "&status_class=6xx",
    ] {
        assert_eq!(app.get(&of(bad)).await.error_code(), "invalid_query", "{bad}");
    }

    // Empty states say why.
    let excluded = app.get(&of("&plugin=Nothing")).await.body;
    assert!(
        excluded["empty_reason"].as_str().unwrap().contains("filters exclude"),
        "{excluded}"
    );
    let acme = app.token_for("acme", "acme reader", &["API_MANAGEMENT_READ"]).await;
    let none = app.get_as(&acme, "/v1/analytics").await.body;
    assert!(
        none["empty_reason"]
            .as_str()
            .unwrap()
            .contains("no requests have been recorded"),
        "{none}"
    );
    assert_eq!(none["by_key"], json!([]), "another tenant sees none of it");

    // A day on: this range's errors against the day before's.
    app.clock.advance(chrono::Duration::hours(24));
    for path in ["/nothing/1", "/nothing/2"] {
        assert_eq!(app.edge_get(path, two).await.status, StatusCode::NOT_FOUND);
    }
    eventually("the day's two errors are counted", || async {
        app.get(&of("")).await.body["error_count"] == 2
    })
    .await;
    let day = app.get(&of("")).await.body;
    assert_eq!(
        (&day["previous_error_count"], &day["error_change"]),
        (&json!(1), &json!(1.0)),
        "{day}"
    );
    assert_eq!(
        day["errors_by_status"],
        json!([
            { "status": 404, "requests": 2, "previous_requests": 0, "change": null },
            { "status": 429, "requests": 0, "previous_requests": 1, "change": -1.0 },
        ])
    );
    let recent: Vec<&Value> = day["recent_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["path"])
        .collect();
    assert_eq!(recent, [&json!("/nothing/2"), &json!("/nothing/1")], "newest first");
    let filtered = app.get(&of("&status_class=5xx")).await.body;
    assert_eq!(filtered["recent_errors"], json!([]));

    let graphql = app
        .graphql(
            Some(&app.token),
            "{ analytics(tenant: \"default\", statusClass: \"2xx\", range: \"7d\") { totalRequests byPlugin { name requests } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        graphql["data"]["analytics"],
        json!({ "totalRequests": 3, "byPlugin": [{ "name": "Files", "requests": 2 }, { "name": "Reports", "requests": 1 }] }),
        "{graphql}"
    );
    app
}

both!(
    raw_usage_past_its_retention_is_deleted_once_rolled_up_and_figures_stay,
    retention
);
async fn retention(app: TestApp) -> TestApp {
    use keyledger_projections::usage::retention;
    let upstream = spawn_upstream().await;
    app.register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": format!("{upstream}/api") }))
        .await;
    let key = app.create_key(json!({ "name": "old traffic" })).await;
    let key = key["key"].as_str().unwrap();
    for i in 0..3 {
        assert_eq!(app.edge_get(&format!("/files/{i}"), key).await.status, StatusCode::OK);
    }
    let db = app.state.db.clone();
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT) FROM usage_batches")
            .fetch_one(db.pool())
            .await
            .unwrap()
    };
    let rolled_up = |period: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM usage_rollups WHERE grain = 'key' AND period = $1",
            )
            .bind(period)
            .fetch_one(db.pool())
            .await
            .unwrap()
        }
    };
    eventually("the three records are rolled up", || async {
        rolled_up("day").await == 3
    })
    .await;
    let retained = chrono::Duration::days(30);

    // Within the retention nothing goes; 31 days on, the records go and the minute rollups too.
    let now = app.clock_now();
    assert_eq!(
        retention::sweep(&db, now, retained).await.unwrap(),
        retention::Swept::default()
    );
    assert_eq!(stored().await, 3);
    let later = now + chrono::Duration::days(31);
    let swept = retention::sweep(&db, later, retained).await.unwrap();
    assert!(swept.minute_buckets >= 1, "minute rollups a day old go: {swept:?}");
    assert_eq!(swept.records, 3);
    assert_eq!(stored().await, 0);
    assert_eq!(rolled_up("minute").await, 0);
    assert_eq!(
        (rolled_up("hour").await, rolled_up("day").await),
        (3, 3),
        "figures are kept"
    );

    // Figures still answer; a replay from the start has nothing left to give.
    app.clock.advance(chrono::Duration::days(31));
    let figures = app.get("/v1/analytics?range=90d").await;
    assert_eq!(figures.body["total_requests"], 3, "{:?}", figures.body);
    assert_eq!(
        retention::sweep(&db, later, retained).await.unwrap(),
        retention::Swept::default()
    );
    app
}

/// Stores `n` records at `at` (no key, 401) through the real usage writer, and waits until they are.
pub(crate) async fn write_records(db: &keyledger_commands::Database, n: usize, at: chrono::DateTime<chrono::Utc>) {
    use keyledger_projections::usage::UsageRecord;
    let spool = tempfile::tempdir().unwrap();
    let spool = keyledger_projections::usage::SpoolConfig {
        dir: spool.path().to_owned(),
        max_bytes: 1 << 30,
    };
    let (recorder, writer) = keyledger_projections::usage::spawn(db.clone(), &spool, || {})
        .await
        .unwrap();
    for i in 0..n {
        assert!(recorder.try_record(&UsageRecord {
            at,
            key: None,
            endpoint: None,
            method: "GET".into(),
            path: format!("/old/{i}"),
            status: 401,
            code: "invalid_key",
            latency_us: 10,
            client_ip: None,
        }));
    }
    drop(recorder);
    assert!(writer.finish(std::time::Duration::from_secs(10)).await, "written");
}

/// Rollups folded before the grains existed (detailed rows only, `grains_summed` 0, as
/// migration 0013 leaves them) are summed into the coarser grains by the next step, even with
/// no new records, once: the same rows as if folded with the grains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_folded_before_the_grains_are_summed_into_them_once() {
    use keyledger_projections::usage::rollups;
    for (test_db, db) in bare_databases().await {
        let now = chrono::Utc::now();
        write_records(&db, 3, now).await;
        write_records(&db, 2, now - chrono::Duration::hours(3)).await;
        assert_eq!(rollups::step(&db, now).await.unwrap(), 5);
        let all = "SELECT grain, period, bucket_ms, requests, latency_sum_us, latency_sketch FROM usage_rollups \
                   ORDER BY grain, period, bucket_ms";
        type Row = (String, String, i64, i64, i64, String);
        let folded: Vec<Row> = sqlx::query_as(all).fetch_all(db.pool()).await.unwrap();
        let weeks = folded.iter().filter(|r| r.1 == "week").count();
        assert!(weeks >= 4, "a week at each of the four grains: {folded:?}");
        // As migration 0013 found them: detailed rows, no weeks.
        sqlx::query("DELETE FROM usage_rollups WHERE grain <> 'detail' OR period = 'week'")
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE usage_rollup_checkpoint SET grains_summed = 0")
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(rollups::step(&db, now).await.unwrap(), 0, "no new records");
        let summed: Vec<Row> = sqlx::query_as(all).fetch_all(db.pool()).await.unwrap();
        assert_eq!(summed, folded, "{:?}", test_db.backend);
        rollups::step(&db, now).await.unwrap();
        let again: Vec<Row> = sqlx::query_as(all).fetch_all(db.pool()).await.unwrap();
        assert_eq!(again, folded, "summed once");
        db.close().await;
        test_db.drop_database().await;
    }
}

/// Forgetting all usage (what the million-key benchmark does to a reused key set) leaves no
/// record, rollup or kept error, and the next records are folded from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_all_usage_leaves_none_and_folds_the_next_records_afresh() {
    use keyledger_projections::usage::{retention, rollups};
    for (test_db, db) in bare_databases().await {
        let now = chrono::Utc::now();
        write_records(&db, 3, now).await;
        assert_eq!(rollups::step(&db, now).await.unwrap(), 3);
        write_records(&db, 2, now).await;
        retention::forget_all(&db).await.unwrap();
        let count = |table: &'static str| {
            let db = db.clone();
            async move {
                sqlx::query_scalar::<_, i64>(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}"))
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        for table in ["usage_batches", "usage_rollups", "usage_errors"] {
            assert_eq!(count(table).await, 0, "{table} on {:?}", test_db.backend);
        }
        assert_eq!(rollups::checkpoint(&db).await.unwrap(), 0);
        assert_eq!(rollups::step(&db, now).await.unwrap(), 0, "nothing left to fold");
        write_records(&db, 4, now).await;
        assert_eq!(rollups::step(&db, now).await.unwrap(), 4, "only the new records");
        db.close().await;
        test_db.drop_database().await;
    }
}

/// A sum over a long range reads whole weeks from the week rows, and only the days around them
/// from day rows: without the days of a week inside the range, the sum is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_over_whole_weeks_read_the_week_rows() {
    use keyledger_domain::usage::{Grain, PartSum, UsageFilter};
    use keyledger_projections::usage::rollups::{self, figures};
    for (test_db, db) in bare_databases().await {
        let now = chrono::Utc::now();
        let old = now - chrono::Duration::days(20);
        write_records(&db, 3, old).await;
        rollups::step(&db, now).await.unwrap();
        let scope = figures::Scope::new(&db, Period::Day, UsageFilter::default())
            .await
            .unwrap();
        let today = Period::Day.bucket(now);
        let range = (today - chrono::Duration::days(29), today + chrono::Duration::days(1));
        let total = || async {
            let sums: Vec<PartSum> = figures::sums(&db, &scope, Grain::Endpoint, range, &["endpoint_id", "plugin"])
                .await
                .unwrap();
            sums.iter().map(|s| s.requests).sum::<u64>()
        };
        assert_eq!(total().await, 3, "{:?}", test_db.backend);
        let week = Period::Week.bucket(old);
        sqlx::query("DELETE FROM usage_rollups WHERE period = 'day' AND bucket_ms >= $1 AND bucket_ms < $2")
            .bind(week.timestamp_millis())
            .bind((week + Period::Week.width()).timestamp_millis())
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(total().await, 3, "read from the week's row: {:?}", test_db.backend);
        db.close().await;
        test_db.drop_database().await;
    }
}

/// The log reader leaves out a record (or a batch) that does not read, and reads the rest: one
/// damaged record must not stop the rollups or the streams. Texts that need unescaping read as
/// written; the rollups' reading keeps the texts of errors only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_usage_record_is_left_out_and_the_rest_read() {
    use keyledger_domain::usage::UsageId;
    use keyledger_projections::usage::log;
    for (test_db, db) in bare_databases().await {
        for rows in [
            r#"[[1,null,"GET","/a",200,"VALID",5,null],[1,null,"GET"],[2,null,"GET","/b\u00e9",401,"invalid_key",3,"::1"]]"#,
            "not json",
            r#"[[3,null,"GET","/c\/d",404,"endpoint_not_found",4,null],[4,null,"POST","/e",204,"VALID",2,"10.0.0.1"]]"#,
        ] {
            sqlx::query("INSERT INTO usage_batches (written_at_ms, records, rows, base_ms) VALUES (0, 1, $1, 1000)")
                .bind(rows)
                .execute(db.pool())
                .await
                .unwrap();
        }
        let mut conn = db.pool().acquire().await.unwrap();
        let (entries, read) = log::entries(&mut conn, UsageId::default(), i64::MAX, log::Texts::All)
            .await
            .unwrap();
        let paths: Vec<(&str, i64)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.at.timestamp_millis()))
            .collect();
        assert_eq!(
            paths,
            [("/a", 1001), ("/b\u{e9}", 1002), ("/c/d", 1003), ("/e", 1004)],
            "{:?}",
            test_db.backend
        );
        assert_eq!(read, 5, "the damaged record is read, and left out");
        let (of_errors, _) = log::entries(&mut conn, UsageId::default(), i64::MAX, log::Texts::OfErrors)
            .await
            .unwrap();
        let texts: Vec<(&str, &str, Option<&str>, u16)> = of_errors
            .iter()
            .map(|e| (e.method.as_str(), e.path.as_str(), e.client_ip.as_deref(), e.status))
            .collect();
        assert_eq!(
            texts,
            [
                ("", "", None, 200),
                ("GET", "/b\u{e9}", Some("::1"), 401),
                ("GET", "/c/d", None, 404),
                ("", "", None, 204)
            ],
            "{:?}",
            test_db.backend
        );
        drop(conn);
        // A rebuild goes on past a whole step (16 batches) of batches that do not read.
        for _ in 0..32 {
            sqlx::query(
                "INSERT INTO usage_batches (written_at_ms, records, rows, base_ms) VALUES (0, 1, 'not json', 0)",
            )
            .execute(db.pool())
            .await
            .unwrap();
        }
        sqlx::query("INSERT INTO usage_batches (written_at_ms, records, rows, base_ms) VALUES (0, 1, $1, 1000)")
            .bind(r#"[[4,null,"GET","/d",200,"VALID",4,null]]"#)
            .execute(db.pool())
            .await
            .unwrap();
        let now = chrono::Utc::now();
        keyledger_projections::usage::rollups::rebuild(&db, now, |_, _| {})
            .await
            .unwrap();
        let folded: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM usage_rollups WHERE grain = 'tenant' AND period = 'day'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(folded, 5, "/a, /b, /c/d, /e and /d: {:?}", test_db.backend);
        db.close().await;
        test_db.drop_database().await;
    }
}

/// A bare, migrated database of each backend, with no worker running (PostgreSQL only when
/// reachable).
pub(crate) async fn bare_databases() -> Vec<(keyledger_tests::TestDb, keyledger_commands::Database)> {
    let mut dbs = Vec::new();
    for backend in [keyledger_tests::Backend::Sqlite, keyledger_tests::Backend::Postgres] {
        if let Some(test_db) = keyledger_tests::fresh_database(backend).await {
            let db = keyledger_commands::Database::connect(&test_db.url).await.unwrap();
            db.migrate().await.unwrap();
            dbs.push((test_db, db));
        }
    }
    dbs
}

/// The sweep deletes only batches the rollups include: with no rollup worker running (a bare
/// database and the real usage writer), old batches stay until a rollup step has folded them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_not_yet_rolled_up_is_kept_whatever_its_age() {
    use keyledger_projections::usage::{retention, rollups};
    for (test_db, db) in bare_databases().await {
        let now = chrono::Utc::now();
        write_records(&db, 5, now - chrono::Duration::days(40)).await;
        let days = chrono::Duration::days(30);
        let swept = retention::sweep(&db, now, days).await.unwrap();
        assert_eq!(
            (swept.batches, swept.records),
            (0, 0),
            "{:?}: not rolled up, so kept",
            test_db.backend
        );
        assert_eq!(rollups::step(&db, now).await.unwrap(), 5);
        let swept = retention::sweep(&db, now, days).await.unwrap();
        assert_eq!(swept.records, 5, "{:?}", test_db.backend);
        db.close().await;
        test_db.drop_database().await;
    }
}

/// A cell folded in two steps holds both: each step adds to the stored row (its count, its
/// latency and its sketch) rather than writing over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_cell_folded_in_two_steps_holds_both() {
    use keyledger_projections::usage::rollups;
    for (test_db, db) in bare_databases().await {
        let now = chrono::Utc::now();
        write_records(&db, 3, now).await;
        assert_eq!(rollups::step(&db, now).await.unwrap(), 3);
        write_records(&db, 2, now).await;
        assert_eq!(rollups::step(&db, now).await.unwrap(), 2);
        let cells: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT period, requests, latency_sum_us FROM usage_rollups WHERE grain = 'tenant' ORDER BY period",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert_eq!(
            cells,
            [
                ("day".to_owned(), 5, 50),
                ("hour".to_owned(), 5, 50),
                ("minute".to_owned(), 5, 50),
                ("week".to_owned(), 5, 50)
            ],
            "{:?}",
            test_db.backend
        );
        db.close().await;
        test_db.drop_database().await;
    }
}

both!(an_export_sums_a_window_per_key_endpoint_and_day_as_csv_and_json, export);
async fn export(app: TestApp) -> TestApp {
    let upstream = spawn_upstream().await;
    let files = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": format!("{upstream}/api") }))
        .await;
    let k1 = app.create_key(json!({ "name": "first" })).await;
    let k2 = app.create_key(json!({ "name": "second" })).await;
    let (one, two) = (k1["key"].as_str().unwrap(), k2["key"].as_str().unwrap());
    for (path, key) in [
        ("/files/1", one),
        ("/files/2", one),
        ("/nothing", one),
        ("/files/3", two),
    ] {
        app.edge_get(path, key).await;
    }
    eventually("the four requests are rolled up", || async {
        app.get("/v1/analytics?tenant=default").await.body["total_requests"] == 4
    })
    .await;
    let today = app.clock_now().date_naive();
    let window = format!("from={today}&to={}", today.succ_opt().unwrap());
    let export = |query: String, token: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .get(app.url(&format!("/v1/usage/export?{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            (status, headers, res.text().await.unwrap())
        }
    };

    let (status, headers, csv) = export(format!("{window}&group_by=key"), app.token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with("-by-key.csv\""));
    let mut lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.remove(0),
        "tenant,key_id,requests,successes,errors,rate_limited,avg_latency_ms"
    );
    let mut by_key: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_owned(), f[2].to_owned(), f[4].to_owned())
        })
        .collect();
    by_key.sort();
    let mut expected = vec![
        (k1["id"].as_str().unwrap().to_owned(), "3".to_owned(), "1".to_owned()),
        (k2["id"].as_str().unwrap().to_owned(), "1".to_owned(), "0".to_owned()),
    ];
    expected.sort();
    assert_eq!(by_key, expected, "{csv}");

    let (status, headers, json) = export(format!("{window}&group_by=endpoint&format=json"), app.token.clone()).await;
    assert_eq!(
        (status, &headers["content-type"]),
        (StatusCode::OK, &"application/json".parse().unwrap())
    );
    let rows: Value = serde_json::from_str(&json).expect("a JSON array");
    let on_files: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["endpoint_id"] == files["id"])
        .collect();
    assert_eq!(on_files.len(), 1, "{json}");
    assert_eq!(
        (
            &on_files[0]["plugin"],
            &on_files[0]["requests"],
            &on_files[0]["successes"]
        ),
        (&json!("Files"), &json!(3), &json!(3))
    );
    let (_, _, days) = export(
        format!("{window}&group_by=day&format=json&status_class=4xx"),
        app.token.clone(),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&days).unwrap(),
        json!([{ "tenant": "default", "day": today.to_string(), "requests": 1, "successes": 0, "errors": 1, "rate_limited": 0, "avg_latency_ms": serde_json::from_str::<Value>(&days).unwrap()[0]["avg_latency_ms"] }])
    );
    let (_, _, empty) = export(
        "from=2020-01-01&to=2020-01-02&format=json".to_owned(),
        app.token.clone(),
    )
    .await;
    assert_eq!(empty, "[]");

    // Another tenant's export is empty, and it may not ask for this one's.
    let acme = app.token_for("acme", "acme billing", &["API_MANAGEMENT_READ"]).await;
    let (status, _, theirs) = export(format!("{window}&format=json"), acme.clone()).await;
    assert_eq!((status, theirs.as_str()), (StatusCode::OK, "[]"));
    let (status, _, _) = export(format!("{window}&tenant=default"), acme).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        "group_by=key".to_owned(),
        format!("{window}&group_by=week"),
        format!("{window}&format=xml"),
        format!("from={today}T10:30:00Z&to={}", today.succ_opt().unwrap()),
        format!("from={}&to={today}", today.succ_opt().unwrap()),
    ] {
        let answer = app.get(&format!("/v1/usage/export?{bad}")).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
    app
}
