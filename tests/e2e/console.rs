//! The web console: served at the admin address's `/` under a strict Content-Security-Policy,
//! and used in a real browser (tests/console/console.test.mjs: Debian's chromium driven by
//! playwright-core, checked by axe-core) against the real server.

use keyledger_tests::{both, eventually, spawn_upstream, tool, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};

async fn served_under_a_strict_policy(app: TestApp) -> TestApp {
    let index = app.client.get(app.url("/")).send().await.expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
    let policy = index.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing from {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = index.text().await.unwrap();
    assert!(
        html.contains(r#"<script type="module" src="/console/app.js"></script>"#),
        "{html}"
    );

    let script = app.client.get(app.url("/console/app.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let etag = script.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/console/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NOT_MODIFIED,
        "an unchanged file is not sent again"
    );

    for missing in [
        "/console/nope.js",
        "/console/../Cargo.toml",
        "/console/%2e%2e/Cargo.toml",
    ] {
        let answer = app.get(missing).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(answer.error_code(), "not_found", "{missing}");
    }
    app
}

both!(
    the_console_is_served_under_a_strict_policy,
    served_under_a_strict_policy
);

/// What the browser run needs, or why it cannot run here (a failure in CI, which installs them).
fn browser_tools() -> Option<(String, String, PathBuf)> {
    let node = tool("KEYLEDGER_NODE", "node", true)?;
    let chromium = tool("KEYLEDGER_CHROMIUM", "chromium", true)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    if !dir.join("node_modules/playwright-core").is_dir() || !dir.join("node_modules/axe-core").is_dir() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI must install the console test's packages (npm ci --prefix tests/console); see .ci/run"
        );
        eprintln!("skipping the browser test: run `npm ci --prefix tests/console` first");
        return None;
    }
    Some((node, chromium, dir))
}

/// Sign in, create a key and see it once, watch the overview follow edge traffic, Test an
/// endpoint, download an SDK, preview a Slack template and subscribe with it, revoke the key;
/// every tab at two widths, screenshotted into `target/console-screenshots/` and checked by
/// axe-core. The console does not depend on the store, so one backend suffices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let Some((node, chromium, dir)) = browser_tools() else {
        return;
    };
    let app = keyledger_tests::spawn_app(Backend::Sqlite).await.expect("sqlite app");
    app.import_demo().await;
    let upstream = spawn_upstream().await;
    app.register_endpoint(json!({
        "methods": ["GET"], "path": "/orders/{id}", "plugin": "Orders", "description": "One order",
        "required_scopes": ["INTEGRATIONS_READ"], "upstream_url": format!("{upstream}/api"),
    }))
    .await;
    let reader = app
        .token_for("default", "console reader", &["API_MANAGEMENT_READ"])
        .await;
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    // A failure's screenshot from an earlier run must not outlive it.
    let _ = std::fs::remove_dir_all(&screenshots);

    let mut command = std::process::Command::new(node);
    command
        .arg("console.test.mjs")
        .current_dir(&dir)
        .env("KL_ADMIN_URL", format!("http://{}", app.addr))
        .env("KL_EDGE_URL", format!("http://{}", app.edge))
        .env("KL_TOKEN", &app.token)
        .env("KL_READ_TOKEN", &reader)
        .env("KL_ENDPOINT_PATH", "/orders/42")
        .env("KL_SCOPE", "INTEGRATIONS_READ")
        .env("KL_RECEIVER_URL", format!("{upstream}/hooks/console"))
        .env("KL_CHROMIUM", chromium)
        .env("KL_SCREENSHOTS", &screenshots);
    // The server runs on this runtime's workers while the browser run blocks its own thread.
    let run = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joins")
        .expect("node runs");
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{said}");
    assert!(run.status.success(), "the browser run failed:\n{said}");

    // What the browser did is what the API holds.
    let keys = app.get("/v1/keys?include_revoked=true").await;
    let key = keys.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "console-e2e")
        .unwrap_or_else(|| panic!("no console-e2e key: {:?}", keys.body));
    assert_eq!(key["status"], "revoked");
    assert_eq!(key["scopes"], json!(["INTEGRATIONS_READ"]));
    let hooks = app.get("/v1/webhooks").await;
    let hook = &hooks.body["data"][0];
    assert_eq!(hook["event_types"], json!(["key.revoked"]), "{:?}", hooks.body);
    let templates = app.get("/v1/webhook-templates").await;
    assert_eq!(templates.body["data"][0]["kind"], "slack", "{:?}", templates.body);
    assert_eq!(hook["template_id"], templates.body["data"][0]["id"]);
    // The revocation reached the receiver through the Slack template.
    eventually("the key.revoked delivery", || async {
        let log = app.get("/v1/webhooks/deliveries?event_type=key.revoked").await;
        log.body["data"][0]["status"] == "delivered"
    })
    .await;
    let log = app.get("/v1/webhooks/deliveries?event_type=key.revoked").await;
    let id = log.body["data"][0]["id"].as_str().unwrap().to_owned();
    let delivery = app.get(&format!("/v1/webhooks/deliveries/{id}")).await;
    let sent: serde_json::Value = serde_json::from_str(
        delivery.body["attempt_log"][0]["request_body"]
            .as_str()
            .unwrap_or("null"),
    )
    .unwrap_or_default();
    assert!(sent["blocks"].is_array(), "not a Slack message: {:?}", delivery.body);
    for tab in ["overview", "keys", "analytics", "explorer", "webhooks", "tokens"] {
        for width in ["desktop", "phone"] {
            let shot = screenshots.join(format!("{tab}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
    app.finish().await;
}
