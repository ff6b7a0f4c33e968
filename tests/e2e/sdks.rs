//! The generated SDKs, checked with each language's own tools and run against a live Keyledger.
//!
//! Until the auth edge exists, the "platform" the SDKs call is Keyledger's own admin API,
//! registered as endpoints (an admin token stands in for the key), plus a test upstream for
//! rate-limit behaviour.

use keyledger_tests::{both, run, spawn_upstream, tool, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::process::Command;

/// Registers the admin API's key routes and the test upstream's rate-limited routes.
async fn register_platform(app: &TestApp, upstream: &str) {
    let admin = format!("http://{}", app.addr);
    for (methods, path, scopes, target) in [
        (json!(["GET"]), "/v1/keys", json!(["FILES_READ"]), admin.as_str()),
        (json!(["POST"]), "/v1/keys", json!(["FILES_WRITE"]), admin.as_str()),
        (json!(["GET"]), "/v1/keys/{id}", json!(["FILES_READ"]), admin.as_str()),
        (json!(["GET"]), "/limited", json!([]), upstream),
        (json!(["GET"]), "/always-limited", json!([]), upstream),
    ] {
        let mut body = json!({ "methods": methods, "path": path, "plugin": "Platform", "required_scopes": scopes, "upstream_url": target });
        if path == "/v1/keys" && methods == json!(["POST"]) {
            body["request_schema"] = json!({ "type": "object", "required": ["name"], "properties": { "name": { "type": "string" }, "scopes": { "type": "array", "items": { "type": "string" } } } });
            body["response_schema"] =
                json!({ "type": "object", "properties": { "id": { "type": "string" }, "key": { "type": "string" } } });
        }
        app.register_endpoint(body).await;
    }
}

both!(sdks_download_as_zips_of_the_tenants_endpoints, downloads);
async fn downloads(app: TestApp) -> TestApp {
    app.import_demo().await;
    let acme_admin = app.token_for("acme", "acme admin", &["TENANT_ADMIN"]).await;
    let upload = app.get("/v1/endpoints?q=upload").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_as(&acme_admin, &format!("/v1/endpoints/{upload}/disable"), json!({}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    for (language, files) in [
        (
            "python",
            &[
                "pyproject.toml",
                "README.md",
                "keyledger_client/client.py",
                "keyledger_client/errors.py",
            ][..],
        ),
        (
            "typescript",
            &["package.json", "tsconfig.json", "src/index.ts", "README.md"][..],
        ),
        ("javascript", &["package.json", "index.js", "README.md"][..]),
        (
            "php",
            &[
                "composer.json",
                "src/KeyledgerClient.php",
                "src/Exceptions.php",
                "README.md",
            ][..],
        ),
        ("curl", &["README.md"][..]),
    ] {
        let folder = app.download_sdk(language, dir.path()).await;
        for file in files {
            assert!(folder.join(file).exists(), "{language}: {file}");
        }
        let readme = std::fs::read_to_string(folder.join("README.md")).unwrap();
        assert!(
            readme.contains("Files") || readme.contains("/files"),
            "{language} README lists the endpoints"
        );
    }
    let curl = std::fs::read_to_string(dir.path().join("keyledger-client-curl/README.md")).unwrap();
    assert_eq!(curl.matches("curl -sS").count(), 36, "one command per operation");
    assert!(curl.contains("https://api.keyledger.test"), "the edge's public URL");

    // Per tenant: acme's SDK lacks the endpoint acme disabled.
    let res = app
        .client
        .get(app.url("/v1/sdks/curl.zip"))
        .bearer_auth(&acme_admin)
        .send()
        .await
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(res.bytes().await.unwrap().to_vec())).unwrap();
    let mut readme = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name("keyledger-client-curl/README.md").unwrap(),
        &mut readme,
    )
    .unwrap();
    assert_eq!(readme.matches("curl -sS").count(), 35);
    assert!(!readme.contains("Upload a file"));

    let missing = app.get("/v1/sdks/cobol.zip").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    app
}

both!(the_python_sdk_installs_in_a_virtualenv_and_calls_keyledger, python);
async fn python(app: TestApp) -> TestApp {
    let Some(python) = tool("KEYLEDGER_PYTHON", "python3", true) else {
        return app;
    };
    let upstream = spawn_upstream().await;
    register_platform(&app, &upstream).await;
    let reader = app.token_for("default", "reader", &["API_MANAGEMENT_READ"]).await;
    let dir = tempfile::tempdir().unwrap();
    let sdk = app.download_sdk("python", dir.path()).await;
    let venv = dir.path().join("venv");
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv));
    let pip = venv.join("bin/pip");
    run(Command::new(&pip)
        .args(["install", "-q", "--disable-pip-version-check"])
        .arg(&sdk));
    let script = dir.path().join("check.py");
    std::fs::write(&script, include_str!("sdk_check.py")).unwrap();
    let admin_url = format!("http://{}", app.addr);
    let out = run(Command::new(venv.join("bin/python"))
        .arg(&script)
        .current_dir(dir.path()) // not the SDK folder: the installed package must be used
        .env("KEYLEDGER_API_KEY", &app.token)
        .env("ADMIN_URL", &admin_url)
        .env("UPSTREAM_URL", &upstream)
        .env("READER_TOKEN", &reader));
    assert!(out.contains("python sdk ok"), "{out}");
    // The key the SDK created exists.
    assert_eq!(
        app.get("/v1/keys").await.body["data"][0]["name"],
        "made by the python sdk"
    );
    app
}

both!(
    the_typescript_sdk_compiles_strictly_and_the_javascript_sdk_runs,
    typescript_and_javascript
);
async fn typescript_and_javascript(app: TestApp) -> TestApp {
    app.import_demo().await;
    let upstream = spawn_upstream().await;
    register_platform(&app, &upstream).await;
    let dir = tempfile::tempdir().unwrap();
    if let Some(tsc) = tool("KEYLEDGER_TSC", "tsc", true) {
        let sdk = app.download_sdk("typescript", dir.path()).await;
        run(Command::new(&tsc).args(["--strict", "--noEmit", "-p"]).arg(&sdk));
    }
    if let Some(node) = tool("KEYLEDGER_NODE", "node", true) {
        let sdk = app.download_sdk("javascript", dir.path()).await;
        let script = sdk.join("check.mjs");
        std::fs::write(
            &script,
            r#"import { KeyledgerClient, NotFoundError, AuthenticationError, RateLimitError } from "./index.js";
const client = new KeyledgerClient({ baseUrl: process.env.ADMIN_URL });
const created = await client.postV1Keys({ name: "made by the javascript sdk", scopes: ["FILES_READ"] });
if (!created.key.startsWith("ak_live_")) throw new Error("no key");
const fetched = await client.getV1KeysById(created.id);
if (fetched.name !== "made by the javascript sdk") throw new Error("wrong key");
try { await client.getV1KeysById("no such/key"); throw new Error("expected 404"); }
catch (e) { if (!(e instanceof NotFoundError) || e.code !== "not_found") throw e; }
try { await new KeyledgerClient({ apiKey: "kla_wrong_token_0123456789abcdef", baseUrl: process.env.ADMIN_URL }).getV1Keys(); throw new Error("expected 401"); }
catch (e) { if (!(e instanceof AuthenticationError)) throw e; }
const limited = new KeyledgerClient({ baseUrl: process.env.UPSTREAM_URL, maxRetries: 1 });
try { await limited.getAlwaysLimited(); throw new Error("expected 429"); }
catch (e) { if (!(e instanceof RateLimitError) || e.retryAfter !== 0) throw e; }
console.log("javascript sdk ok");
"#,
        )
        .unwrap();
        let out = run(Command::new(&node)
            .arg(&script)
            .env("KEYLEDGER_API_KEY", &app.token)
            .env("ADMIN_URL", format!("http://{}", app.addr))
            .env("UPSTREAM_URL", &upstream));
        assert!(out.contains("javascript sdk ok"), "{out}");
    }
    app
}

both!(the_php_sdk_passes_php_lint_and_the_curl_commands_run, php_and_curl);
async fn php_and_curl(app: TestApp) -> TestApp {
    app.import_demo().await;
    let upstream = spawn_upstream().await;
    register_platform(&app, &upstream).await;
    let dir = tempfile::tempdir().unwrap();
    // PHP is optional in CI: .ci/run installs it when the Debian package is available.
    let required = std::env::var("KEYLEDGER_REQUIRE_PHP").is_ok_and(|v| v == "1");
    if let Some(php) = tool("KEYLEDGER_PHP", "php", required) {
        let sdk = app.download_sdk("php", dir.path()).await;
        for file in ["src/KeyledgerClient.php", "src/Exceptions.php"] {
            let out = run(Command::new(&php).arg("-l").arg(sdk.join(file)));
            assert!(out.contains("No syntax errors"), "{out}");
        }
        let modules = run(Command::new(&php).arg("-m"));
        if modules.lines().any(|m| m.trim() == "curl") {
            let script = sdk.join("check.php");
            std::fs::write(
                &script,
                r#"<?php
require __DIR__ . '/src/Exceptions.php';
require __DIR__ . '/src/KeyledgerClient.php';
use Keyledger\Client\KeyledgerClient;
use Keyledger\Client\NotFoundException;
$client = new KeyledgerClient(null, getenv('ADMIN_URL'));
$created = $client->postV1Keys(['name' => 'made by the php sdk']);
if (!str_starts_with($created['key'], 'ak_live_')) { throw new Exception('no key'); }
if ($client->getV1KeysById($created['id'])['name'] !== 'made by the php sdk') { throw new Exception('wrong key'); }
try { $client->getV1KeysById('no such/key'); throw new Exception('expected 404'); }
catch (NotFoundException $e) { if ($e->errorCode !== 'not_found') { throw $e; } }
echo "php sdk ok\n";
"#,
            )
            .unwrap();
            let out = run(Command::new(&php)
                .arg(&script)
                .env("KEYLEDGER_API_KEY", &app.token)
                .env("ADMIN_URL", format!("http://{}", app.addr)));
            assert!(out.contains("php sdk ok"), "{out}");
        } else {
            eprintln!("php has no curl extension: only php -l ran");
        }
    }
    if let Some(sh) = tool("KEYLEDGER_SH", "sh", true) {
        let sdk = app.download_sdk("curl", dir.path()).await;
        let readme = std::fs::read_to_string(sdk.join("README.md")).unwrap();
        let list = readme
            .lines()
            .find(|l| l.starts_with("curl -sS -X GET \"$KEYLEDGER_BASE_URL/v1/keys\""))
            .expect("a command for GET /v1/keys");
        let out = run(Command::new(sh)
            .args(["-c", list])
            .env("KEYLEDGER_BASE_URL", format!("http://{}", app.addr))
            .env("KEYLEDGER_API_KEY", &app.token));
        let body: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert!(body["data"].is_array(), "{body}");
    }
    app
}
