//! The admin API as the bench uses it: issue a key, change its limits, read it back.

use super::*;

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) auth: String,
}

/// How one PATCH ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patched {
    /// 200 and the answer shows the new limit.
    Applied,
    /// 200 but the answer shows another limit.
    Wrong,
    /// Another status.
    Refused,
}

impl Api {
    /// A client of its own: one keep-alive connection per client task.
    pub(crate) fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("cannot build an HTTP client")?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            auth: format!("Bearer {token}"),
        })
    }

    pub(crate) fn fork(&self) -> anyhow::Result<Self> {
        Api::new(&self.base, &self.token)
    }

    pub(crate) async fn create_key(&self, name: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "name": name, "environment": "live", "scopes": ["FILES_READ"],
            "rate_limits": {"per_minute": 60, "per_hour": 3600}
        });
        let response = self
            .http
            .post(format!("{}/v1/keys", self.base))
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await
            .context("POST /v1/keys")?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.context("POST /v1/keys: not JSON")?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /v1/keys answered {status}: {answer}");
        }
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST /v1/keys: no id in {answer}"))
    }

    /// Sets the key's per-minute limit; times the request up to the last byte of the answer.
    pub(crate) async fn patch(&self, id: &str, per_minute: u64) -> Result<(Duration, Patched), reqwest::Error> {
        let body = serde_json::json!({"rate_limits": {"per_minute": per_minute, "per_hour": 3600}});
        let started = Instant::now();
        let response = self
            .http
            .patch(format!("{}/v1/keys/{id}", self.base))
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let took = started.elapsed();
        if status != reqwest::StatusCode::OK {
            return Ok((took, Patched::Refused));
        }
        let shown = per_minute_of(&bytes);
        Ok((
            took,
            if shown == Some(per_minute) {
                Patched::Applied
            } else {
                Patched::Wrong
            },
        ))
    }

    /// The key's per-minute limit as a GET shows it, and how long the GET took.
    pub(crate) async fn per_minute(&self, id: &str) -> anyhow::Result<(Duration, Option<u64>)> {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/v1/keys/{id}", self.base))
            .header("Authorization", &self.auth)
            .send()
            .await
            .context("GET /v1/keys/{id}")?;
        let status = response.status();
        let bytes = response.bytes().await.context("GET /v1/keys/{id}: body")?;
        let took = started.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!(
                "GET /v1/keys/{id} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((took, per_minute_of(&bytes)))
    }

    pub(crate) async fn ready(&self) -> bool {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(response) => response.status() == reqwest::StatusCode::OK,
            Err(_) => false,
        }
    }
}

pub(crate) fn per_minute_of(body: &[u8]) -> Option<u64> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    answer["rate_limits"]["per_minute"].as_u64()
}

/// The n-th limit a client sets: every PATCH changes the key (consecutive values always differ)
/// and stays a valid limit below the hourly 3600.
pub(crate) fn nth_limit(n: u64) -> u64 {
    61 + n % 3_500
}
