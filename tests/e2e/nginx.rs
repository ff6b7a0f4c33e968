//! A real nginx with `auth_request` pointed at the edge's `/auth`, in front of a test upstream.
//! nginx is a Debian package: CI installs it (see .ci/run); locally the test says why it skips.

use keyledger_tests::{spawn_upstream, tool};
use reqwest::StatusCode;
use serde_json::json;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_valid_keys_through_and_refuses_the_rest() {
    let required = std::env::var("KEYLEDGER_REQUIRE_NGINX").is_ok_and(|v| v == "1");
    let Some(nginx) = tool("KEYLEDGER_NGINX", "nginx", required).or_else(|| {
        std::path::Path::new("/usr/sbin/nginx")
            .is_file()
            .then(|| "/usr/sbin/nginx".to_owned())
    }) else {
        return;
    };
    let app = keyledger_tests::spawn_app(keyledger_tests::Backend::Sqlite)
        .await
        .unwrap();
    let upstream = spawn_upstream().await;
    app.register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": upstream }))
        .await;
    let reader = app
        .create_key(json!({ "name": "reader", "scopes": ["FILES_READ"] }))
        .await;
    let key = reader["key"].as_str().unwrap().to_owned();
    let other = app.create_key(json!({ "name": "no scopes" })).await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let upstream_hostport = upstream.trim_start_matches("http://");
    let conf = format!(
        r#"
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_keyledger;
            auth_request_set $keyledger_key $upstream_http_x_keyledger_key_id;
            proxy_set_header X-Keyledger-Key-Id $keyledger_key;
            proxy_set_header Authorization "";
            proxy_pass http://{upstream_hostport};
        }}
        location = /_keyledger {{
            internal;
            proxy_pass http://{edge}/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }}
    }}
}}
"#,
        dir = dir.path().display(),
        edge = app.edge,
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(&nginx)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nginx");
    let _nginx = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("http://127.0.0.1:{port}/files/7");
    let ok = app.client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let seen: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-keyledger-key-id"], reader["id"],
        "identity from the edge reached the upstream"
    );
    assert!(seen["headers"].get("authorization").is_none());
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client.get(&url).bearer_auth(&other).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    app.post(
        &format!("/v1/keys/{}/revoke", reader["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(
        app.client.get(&url).bearer_auth(&key).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}
