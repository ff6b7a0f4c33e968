//! Test support: start the real application on a random port against a fresh database and talk
//! to it over HTTP.

use keyledger_api::config::{DbArgs, ServeArgs};
use keyledger_api::state::AppState;
use keyledger_api::{Application, Config};
use keyledger_commands::clock::OffsetClock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
pub mod backlog;
pub mod outage;
pub mod postgres;
pub mod receiver;

use std::net::SocketAddr;
use std::sync::Arc;

pub const BOOTSTRAP_TOKEN: &str = "kla_test_bootstrap_token_0123456789abcdef";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Asks `done` every 20 ms until it answers true; fails with `what` after 10 s. For what happens
/// behind an answer: a projection catching up, a batch written or counted.
pub async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A fresh, empty database of the given backend. `None` (with a printed reason) only when
/// PostgreSQL is unreachable and not required.
pub async fn fresh_database(backend: Backend) -> Option<TestDb> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("keyledger.db").display());
            Some(TestDb {
                url,
                backend,
                _dir: Some(Arc::new(dir)),
                pg_name: None,
            })
        }
        Backend::Postgres => {
            let (url, name) = postgres::create_database().await?;
            Some(TestDb {
                url,
                backend,
                _dir: None,
                pg_name: Some(name),
            })
        }
    }
}

#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<Arc<tempfile::TempDir>>,
    pg_name: Option<String>,
}

impl TestDb {
    /// Drops a PostgreSQL test database (SQLite's folder goes with the last clone).
    pub async fn drop_database(&self) {
        if let Some(name) = &self.pg_name {
            postgres::drop_database(name).await;
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub edge: SocketAddr,
    pub client: reqwest::Client,
    pub token: String,
    pub clock: OffsetClock,
    pub db: TestDb,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The node's usage spool directory, kept across a restart.
    pub spool: Arc<tempfile::TempDir>,
}

/// Starts the application on port 0 against a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let db = fresh_database(backend).await?;
    Some(start(db, OffsetClock::default()).await)
}

pub fn test_config(url: &str) -> Config {
    Config {
        db: DbArgs {
            database_url: url.to_owned(),
        },
        serve: ServeArgs {
            admin_addr: "127.0.0.1:0".parse().expect("addr"),
            edge_addr: "127.0.0.1:0".parse().expect("addr"),
            public_edge_url: Some("https://api.keyledger.test".into()),
            // A fixed pepper keeps test runs from writing files beside the test binary.
            edge_pepper: Some("test-pepper-0123456789abcdef0123456789".into()),
            trusted_proxies: vec!["127.0.0.1/32".parse().expect("cidr")],
            pbkdf2_concurrency: 2,
            bootstrap_token: Some(BOOTSTRAP_TOKEN.into()),
            // Hashing cost is not under test here; 600 000 iterations would take seconds per
            // request in a debug build.
            pbkdf2_iterations: 1_000,
            // Tests drive the scheduler themselves (scheduler::run_once) for determinism.
            expiry_check_seconds: 3_600.0,
            usage_retention_days: 30,
            // `start_with` gives each node its own (a temporary directory) unless told one.
            usage_spool_dir: None,
            usage_spool_max_mb: 1024,
            // Receivers in tests listen on loopback.
            webhook_allow_cidrs: vec!["127.0.0.1/32".parse().expect("cidr")],
            webhook_retry_schedule: Default::default(),
            webhook_timeout_seconds: 5.0,
            webhook_concurrency: 64,
            webhook_subscription_concurrency: 8,
            webhook_disable_after_hours: 120.0,
            // Tests judge alert rules themselves (operations::alert_rules::evaluate).
            alert_check_seconds: 3_600.0,
            webhook_log_retention_days: 30,
        },
    }
}

pub async fn start(db: TestDb, clock: OffsetClock) -> TestApp {
    start_with(db, clock, |_| {}).await
}

/// Starts the application with a test-specific change to the configuration.
pub async fn start_with(db: TestDb, clock: OffsetClock, tweak: impl FnOnce(&mut Config)) -> TestApp {
    start_spooled(db, clock, None, tweak).await
}

/// Starts the application with the usage spool `spool` (a new one when `None`): a restarted
/// node keeps its spool.
async fn start_spooled(
    db: TestDb,
    clock: OffsetClock,
    spool: Option<Arc<tempfile::TempDir>>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    // The server's warnings and errors, captured with the test's output: a failing test shows
    // what the server logged (a 500's cause, say). `RUST_LOG` widens it.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let mut config = test_config(&db.url);
    let spool = spool.unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
    config.serve.usage_spool_dir = Some(spool.path().to_owned());
    tweak(&mut config);
    let app = Application::build_with_clock(config, Arc::new(clock.clone()))
        .await
        .expect("application builds");
    let addr = app.admin_addr();
    let edge = app.edge_addr();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        edge,
        client: reqwest::Client::new(),
        token: BOOTSTRAP_TOKEN.to_owned(),
        clock,
        db,
        state,
        stop: Some(stop),
        server: Some(server),
        spool,
    }
}

/// One HTTP answer: status and JSON body (Null when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// Status, headers and the JSON body (Null when empty or not JSON) of a response.
    pub async fn read(res: reqwest::Response) -> Answer {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Answer::read(req.send().await.expect("request sent")).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Answer {
        self.request(Method::GET, path, Some(token), None).await
    }
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Answer {
        self.request(Method::POST, path, Some(token), Some(body)).await
    }
    /// The Prometheus text of `/metrics` (the recorder is process-wide: compare before and after).
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    /// One counter of `/metrics`, by its series as Prometheus prints it
    /// (`keyledger_edge_decisions_total{code="VALID"}`); 0 while it is absent.
    pub async fn counter(&self, series: &str) -> u64 {
        let prefix = format!("{series} ");
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }
    /// POSTs a body the server refuses for its size, over a bare TCP connection. The server
    /// answers 413 as soon as it has read past its limit and closes without reading the rest;
    /// an HTTP client still writing then fails with a reset (reqwest: `IncompleteMessage`), though
    /// the answer was sent. Here the write's failure is ignored and the answer read, as curl does.
    pub async fn post_oversized(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.addr,
            self.token,
            body.len()
        );
        let (mut read, mut write) = stream.split();
        let send = async {
            let _ = write.write_all(head.as_bytes()).await;
            let _ = write.write_all(&body).await;
        };
        let mut raw = Vec::new();
        let receive = async {
            // Whatever arrived before a reset is kept: the answer is in it.
            let mut chunk = [0u8; 8192];
            while let Ok(n) = read.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::join!(send, receive);
        parse_response(&raw)
    }
    /// The actions of the tenant's audit log starting with `prefix`, newest first.
    pub async fn audit_actions(&self, tenant: &str, prefix: &str) -> Vec<String> {
        let audit = self.get(&format!("/v1/audit?tenant={tenant}")).await;
        audit.body["data"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["action"].as_str())
                    .filter(|a| a.starts_with(prefix))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.get_as(&self.token, path).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_as(&self.token, path, body).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.request(Method::PATCH, path, Some(&self.token), Some(body)).await
    }
    pub async fn delete_as(&self, token: &str, path: &str) -> Answer {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Issues a key as the bootstrap superuser; panics unless 201.
    pub async fn create_key(&self, body: Value) -> Value {
        let answer = self.post("/v1/keys", body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "create key: {:?}", answer.body);
        answer.body
    }

    /// Creates an admin token; returns (id, token).
    pub async fn create_token(&self, as_token: &str, body: Value) -> (String, String) {
        let answer = self.post_as(as_token, "/v1/admin-tokens", body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "create token: {:?}", answer.body);
        (
            answer.body["id"].as_str().unwrap().to_owned(),
            answer.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// A token with the given permissions in `tenant`, created by the superuser.
    pub async fn token_for(&self, tenant: &str, name: &str, permissions: &[&str]) -> String {
        self.create_token(
            &self.token,
            json!({ "name": name, "tenant": tenant, "permissions": permissions }),
        )
        .await
        .1
    }

    /// Number of events in the store: proves that refused commands wrote nothing.
    pub async fn event_count(&self) -> i64 {
        keyledger_commands::log::head(self.state.db.pool()).await.expect("head")
    }

    /// Stops the server (in-flight requests drain) and keeps the database.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        self.db.clone()
    }

    /// Stops and starts the application again on the same database.
    pub async fn restart(self) -> TestApp {
        let clock = self.clock.clone();
        let spool = self.spool.clone();
        let db = self.stop().await;
        start_spooled(db, clock, Some(spool), |_| {}).await
    }

    /// Stops the server and drops its database.
    pub async fn finish(self) {
        let db = self.stop().await;
        db.drop_database().await;
    }
}

/// Runs a test body against a fresh app on both backends: `both!(name, body_fn)`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = keyledger_tests::spawn_app(keyledger_tests::Backend::Sqlite)
                    .await
                    .expect("sqlite app");
                let app = super::$body(app).await;
                app.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = keyledger_tests::spawn_app(keyledger_tests::Backend::Postgres).await else {
                    return;
                };
                let app = super::$body(app).await;
                app.finish().await;
            }
        }
    };
}

impl TestApp {
    /// "Now" as the application sees it (the test clock).
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use keyledger_commands::clock::Clock;
        self.clock.now()
    }
}

impl TestApp {
    /// POSTs a GraphQL request; returns the whole response body (`data` and `errors`).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let answer = self
            .request(
                Method::POST,
                "/graphql",
                token,
                Some(json!({ "query": query, "variables": variables })),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "GraphQL answers 200 with errors in the body"
        );
        answer.body
    }
}

/// The `extensions.code` of the first GraphQL error, if any.
pub fn graphql_error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

impl TestApp {
    /// Imports the shipped demo catalogue through the REST import endpoint; returns how many
    /// operations it registered.
    pub async fn import_demo(&self) -> u64 {
        let mut registered = 0;
        for (plugin, path, document) in keyledger_api::demo::CATALOGUE {
            let answer = self
                .import(plugin, &format!("http://127.0.0.1:9/{path}"), document)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "import {plugin}: {:?}", answer.body);
            registered += answer.body["registered"].as_u64().unwrap();
        }
        registered
    }

    /// POSTs an OpenAPI document to /v1/endpoints/import as the superuser.
    pub async fn import(&self, plugin: &str, upstream: &str, document: &str) -> Answer {
        let res = self
            .client
            .post(self.url("/v1/endpoints/import"))
            .query(&[("plugin", plugin), ("upstream", upstream)])
            .bearer_auth(&self.token)
            .header("content-type", "application/yaml")
            .body(document.to_owned())
            .send()
            .await
            .expect("import sent");
        Answer::read(res).await
    }

    /// Registers an endpoint as the superuser; panics unless 201.
    pub async fn register_endpoint(&self, body: Value) -> Value {
        let answer = self.post("/v1/endpoints", body).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "register endpoint: {:?}",
            answer.body
        );
        answer.body
    }
}

/// Runs a standard OpenAPI validator (the `openapi-spec-validator` CLI) on a document. CI
/// installs it and sets KEYLEDGER_OPENAPI_VALIDATOR; locally the check is skipped with a note
/// when it is not installed.
pub fn validate_openapi(name: &str, document: &str) {
    let Some(validator) = tool("KEYLEDGER_OPENAPI_VALIDATOR", "openapi-spec-validator", true) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(name);
    std::fs::write(&file, document).expect("write document");
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("run the validator");
    assert!(
        out.status.success(),
        "{name} is not valid OpenAPI:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real HTTP service standing in for a plugin's upstream. It echoes every request as JSON
/// (`method`, `path`, `query`, `headers`, `body`), except:
/// - `/limited`: 429 with `Retry-After: 1` for the first two calls, then 200;
/// - `/always-limited`: 429 with `Retry-After: 0`, always;
/// - `/big`: a 2 MiB body.
pub async fn spawn_upstream() -> String {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let limited_calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().fallback(move |req: Request| {
        let limited_calls = limited_calls.clone();
        async move {
            let (parts, body) = req.into_parts();
            if parts.uri.path().ends_with("/limited") && limited_calls.fetch_add(1, Ordering::SeqCst) < 2 {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    axum::Json(json!({"error": {"code": "rate_limited", "message": "slow down"}})),
                )
                    .into_response();
            }
            if parts.uri.path().ends_with("/always-limited") {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "0")],
                    axum::Json(json!({"error": {"code": "rate_limited", "message": "no"}})),
                )
                    .into_response();
            }
            if parts.uri.path().ends_with("/big") {
                return "x".repeat(2 * 1024 * 1024).into_response();
            }
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let headers: serde_json::Map<String, Value> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            axum::Json(json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query(),
                "headers": headers,
                "body": serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            }))
            .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// An external tool a test needs: `$ENV_VAR` if set, else `command` when it is on the PATH. In
/// CI a required tool that is missing fails the test; locally the test is skipped with a note.
pub fn tool(env_var: &str, command: &str, required_in_ci: bool) -> Option<String> {
    if let Ok(path) = std::env::var(env_var) {
        return Some(path);
    }
    // Looked up on the PATH rather than run with --version, which not every tool accepts (dash).
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(command))
            .find(|path| path.is_file())
    });
    if let Some(path) = found {
        // The full path: some callers hand it to programs that do not search the PATH.
        return Some(path.to_string_lossy().into_owned());
    }
    if required_in_ci && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must provide {command} (or set {env_var}); see .ci/run");
    }
    eprintln!("skipping the {command} check: {command} is not installed (set {env_var})");
    None
}

/// Runs a command; panics with its output unless it succeeds. Returns stdout.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestApp {
    /// Downloads an SDK ZIP and unpacks it into `dir`; returns the SDK's folder.
    pub async fn download_sdk(&self, language: &str, dir: &std::path::Path) -> std::path::PathBuf {
        let res = self
            .client
            .get(self.url(&format!("/v1/sdks/{language}.zip")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{language}");
        assert_eq!(res.headers()["content-type"], "application/zip");
        let bytes = res.bytes().await.unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid ZIP");
        archive.extract(dir).expect("unzip");
        dir.join(format!("keyledger-client-{language}"))
    }
}

impl TestApp {
    pub fn edge_url(&self, path: &str) -> String {
        format!("http://{}{}", self.edge, path)
    }

    /// A request through the edge with the key as `Authorization: Bearer`.
    pub async fn edge_request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.request(method, self.edge_url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Answer::read(req.send().await.expect("edge request sent")).await
    }

    pub async fn edge_get(&self, path: &str, key: &str) -> Answer {
        self.edge_request(Method::GET, path, Some(key), &[]).await
    }

    /// The edge's verify API, asked by a service holding `token`.
    pub async fn verify(&self, token: &str, body: Value) -> Answer {
        let req = self
            .client
            .post(self.edge_url("/v1/keys/verify"))
            .bearer_auth(token)
            .json(&body);
        Answer::read(req.send().await.expect("verify request sent")).await
    }
}

/// Status, headers and JSON body of a raw HTTP/1.1 response with a `content-length`.
fn parse_response(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP answer, got {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("a status line, got {head:?}"));
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(value.trim()),
            ) {
                headers.append(name, value);
            }
        }
    }
    Answer {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        headers,
    }
}
