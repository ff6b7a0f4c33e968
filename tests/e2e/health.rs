use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;

both!(health_readiness_metrics_and_docs_answer, health);
async fn health(app: TestApp) -> TestApp {
    let healthz = app.request(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (healthz.status, healthz.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let readyz = app.request(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(readyz.status, StatusCode::OK, "{:?}", readyz.body);
    assert_eq!(readyz.body["status"], "ready");

    app.get("/v1/keys").await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("keyledger_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/v1/keys\""));
    assert!(
        metrics.contains("keyledger_projection_lag_events{projection=\"key_lookup\"} 0"),
        "{metrics}"
    );

    let openapi = app.request(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(openapi.status, StatusCode::OK);
    for path in [
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/keys/{id}/rotate",
        "/v1/admin-tokens",
        "/v1/audit",
    ] {
        assert!(openapi.body["paths"].get(path).is_some(), "{path} documented");
    }

    // The docs page is served entirely by us: no asset from a CDN.
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(!html.contains("https://"), "docs page must work offline");
    let init = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));

    let missing = app.get("/v1/nothing-here").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    app
}
