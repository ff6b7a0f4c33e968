//! A real HTTP service receiving webhooks: it records every request and answers as a test
//! scripts it (200 once the script is used up).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Checks the signature with the Standard Webhooks reference implementation (the
    /// `standardwebhooks` crate), as a receiver would.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        standardwebhooks::Webhook::new(secret)
            .map_err(|e| e.to_string())?
            .verify(self.body.as_bytes(), &headers)
            .map_err(|e| e.to_string())
    }
}

/// How a receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// The status with a `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// A redirect to a URL.
    Redirect(String),
    /// No answer for this long.
    Hang(Duration),
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Listens on 127.0.0.1 and a free port; answers `script` in order, then 200.
    pub async fn start(script: impl IntoIterator<Item = Reply>) -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        let (r, s) = (received.clone(), script);
        let app = axum::Router::new().fallback(move |req: Request| {
            let (received, script) = (r.clone(), s.clone());
            async move { answer(req, &received, &script).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hooks"),
            received,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits (up to 10 s) until `n` requests have come, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        crate::eventually(&format!("{n} webhook requests at {}", self.url), || async {
            self.received().len() >= n
        })
        .await;
        self.received()
    }
}

async fn answer(req: Request, received: &Mutex<Vec<Received>>, script: &Mutex<VecDeque<Reply>>) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let reply = script.lock().ok().and_then(|mut s| s.pop_front());
    if let Ok(mut r) = received.lock() {
        r.push(Received {
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    match reply {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Status(code)) => (status(code), format!("answered {code}")).into_response(),
        Some(Reply::RetryAfter(code, after)) => (status(code), [("retry-after", after)], "later").into_response(),
        Some(Reply::Redirect(to)) => (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "moved").into_response(),
        Some(Reply::Hang(wait)) => {
            tokio::time::sleep(wait).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}
