//! The HTTP client deliveries go out through. Every address it connects to has been checked
//! against the blocked ranges: names are resolved here and only the addresses that pass are
//! handed to the connector, and literal addresses are checked before sending. Redirects are
//! not followed, proxies from the environment are not used, and connections are reused.

use chrono::{DateTime, Utc};
use keyledger_domain::webhook::target::Destination;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of an answer's body kept in the delivery log.
const KEPT_RESPONSE: usize = 4_096;

#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, {range}; deliveries there are refused unless --webhook-allow-cidrs opens it")]
struct BlockedName {
    host: String,
    ip: IpAddr,
    range: keyledger_domain::webhook::target::Blocked,
}

/// Resolves names and keeps only the addresses deliveries may reach.
struct Guard(Arc<Destination>);

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let destination = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match destination.check(a.ip()) {
                    Ok(()) => true,
                    Err(range) => {
                        refused.get_or_insert((a.ip(), range));
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some((ip, range))) => Err(Box::new(BlockedName { host, ip, range }) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// What an attempt got back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answered {
    pub status: Option<u16>,
    /// Why no answer came (timeout, refused, blocked), or none.
    pub error: Option<String>,
    pub body: Option<String>,
    /// A `Retry-After` the receiver asked for.
    pub retry_after: Option<chrono::Duration>,
    pub duration_ms: i64,
}

#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    destination: Arc<Destination>,
}

impl Client {
    pub(crate) fn new(
        destination: Destination,
        timeout: Duration,
        idle_per_host: usize,
    ) -> Result<Client, reqwest::Error> {
        let destination = Arc::new(destination);
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guard(destination.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(idle_per_host)
            .user_agent(concat!("Keyledger-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client { http, destination })
    }

    /// POSTs `body` to `url` with `headers`; never fails, it says what happened.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: String,
        now: DateTime<Utc>,
    ) -> Answered {
        let started = Instant::now();
        let elapsed = |started: Instant| started.elapsed().as_millis().try_into().unwrap_or(i64::MAX);
        let failed = |error: String| Answered {
            status: None,
            error: Some(error),
            body: None,
            retry_after: None,
            duration_ms: elapsed(started),
        };
        if let Some(refused) = self.literal_refused(url) {
            return failed(refused);
        }
        let mut request = self.http.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(explain(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        let mut kept = Vec::new();
        let mut error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = KEPT_RESPONSE - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if kept.len() >= KEPT_RESPONSE {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(explain(&e));
                    break;
                }
            }
        }
        Answered {
            status: Some(status),
            error,
            body: Some(String::from_utf8_lossy(&kept).into_owned()),
            retry_after,
            duration_ms: elapsed(started),
        }
    }

    /// Why a URL whose host is an address literal may not be reached (the resolver never sees
    /// those).
    fn literal_refused(&self, url: &str) -> Option<String> {
        let parsed = url::Url::parse(url).ok()?;
        let ip = match parsed.host()? {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(_) => return None,
        };
        self.destination
            .check(ip)
            .err()
            .map(|range| format!("{ip} is {range}; deliveries there are refused unless --webhook-allow-cidrs opens it"))
    }
}

/// The error with its causes, which say what actually went wrong (reqwest's own text only names
/// the URL).
fn explain(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    match causes.last() {
        Some(cause) => format!("{what}: {cause}"),
        None => what,
    }
}

/// A `Retry-After` of seconds or an HTTP date, as a wait from `now`.
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<chrono::Duration> {
    if let Ok(seconds) = value.trim().parse::<i64>() {
        return (seconds >= 0).then(|| chrono::Duration::seconds(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?.with_timezone(&Utc);
    Some((at - now).max(chrono::Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 0).unwrap();
        assert_eq!(retry_after("120", now), Some(chrono::Duration::seconds(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(chrono::Duration::seconds(60))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(chrono::Duration::zero())
        );
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("soon", now), None);
    }
}
