use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both!(tenants_never_see_each_others_data, isolation);
async fn isolation(app: TestApp) -> TestApp {
    let acme = app.token_for("acme", "acme admin", &["TENANT_ADMIN"]).await;
    let globex = app.token_for("globex", "globex admin", &["TENANT_ADMIN"]).await;
    let acme_key = app.post_as(&acme, "/v1/keys", json!({ "name": "acme key" })).await.body;
    let globex_key = app
        .post_as(&globex, "/v1/keys", json!({ "name": "globex key" }))
        .await
        .body;
    assert_eq!(acme_key["tenant"], "acme");
    let acme_id = acme_key["id"].as_str().unwrap();

    // Lists hold only the own tenant's keys.
    let listed = app.get_as(&globex, "/v1/keys").await;
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["globex key"]);

    // Another tenant's key looks like a key that does not exist, for every verb.
    for answer in [
        app.get_as(&globex, &format!("/v1/keys/{acme_id}")).await,
        app.get_as(&globex, &format!("/v1/keys/{acme_id}/history")).await,
        app.post_as(&globex, &format!("/v1/keys/{acme_id}/revoke"), json!({}))
            .await,
        app.post_as(&globex, &format!("/v1/keys/{acme_id}/rotate"), json!({}))
            .await,
        app.request(
            reqwest::Method::PATCH,
            &format!("/v1/keys/{acme_id}"),
            Some(&globex),
            Some(json!({"name": "x"})),
        )
        .await,
    ] {
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{:?}",
            answer.body
        );
    }
    let asking = app.get_as(&globex, "/v1/keys?tenant=acme").await;
    assert_eq!(asking.status, StatusCode::FORBIDDEN);
    let foreign = app
        .post_as(&globex, "/v1/keys", json!({ "name": "x", "tenant": "acme" }))
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    // Audit and tokens are per tenant too.
    let audit = app.get_as(&globex, "/v1/audit").await;
    assert!(audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["tenant"] == "globex"));
    let tokens = app.get_as(&globex, "/v1/admin-tokens").await;
    assert!(tokens.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["tenant"] == "globex"));
    let acme_tokens = app.get_as(&acme, "/v1/admin-tokens").await;
    let acme_admin_id = acme_tokens.body["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete_as(&globex, &format!("/v1/admin-tokens/{acme_admin_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The superuser sees and acts on every tenant.
    assert_eq!(app.get(&format!("/v1/keys/{acme_id}")).await.status, StatusCode::OK);
    assert_eq!(app.get("/v1/keys").await.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.get("/v1/keys?tenant=globex").await.body["data"][0]["id"],
        globex_key["id"]
    );
    let revoked = app.post(&format!("/v1/keys/{acme_id}/revoke"), json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK);
    let for_acme = app
        .post("/v1/keys", json!({ "name": "made by root", "tenant": "acme" }))
        .await;
    assert_eq!(for_acme.body["tenant"], "acme");
    app
}
