//! Proxy mode: the edge as a reverse proxy (`GET /files/1` matched, checked, forwarded to the
//! plugin's upstream, the answer streamed back) against a bare axum proxy that forwards the same
//! request to the same upstream with the same HTTP client (reqwest), and nothing else. Both run
//! in this process, with the upstream, on the server's core; the upstream's cost is in both.

use super::*;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use keyledger_api::edge::{streamed_back, HOP_BY_HOP};
use std::net::SocketAddr;

/// The plugin's upstream: a small JSON answer for any path.
pub(crate) async fn upstream() -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"id":"1","name":"report.pdf","size":48213}"#,
        )
    });
    serve(app).await
}

/// A reverse proxy with no checks: headers and body passed through, the hop-by-hop headers the
/// edge drops dropped too, the answer streamed back.
pub(crate) async fn bare_proxy(upstream: SocketAddr) -> anyhow::Result<SocketAddr> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let app = axum::Router::new()
        .fallback(forward)
        .with_state((client, format!("http://{upstream}")));
    serve(app).await
}

async fn forward(State((client, base)): State<(reqwest::Client, String)>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let url = format!("{base}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in parts.headers.iter().filter(|(n, _)| !HOP_BY_HOP.contains(&n.as_str())) {
        headers.append(name.clone(), value.clone());
    }
    let sent = client
        .request(parts.method, &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let Ok(upstream) = sent else {
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    };
    // The edge's own way back, without its headers.
    streamed_back(upstream, |_| {})
}

async fn serve(app: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// One bare-proxy run and the edge-proxy run right after it.
pub(crate) struct ProxyPair {
    pub(crate) bare: Wrk,
    pub(crate) edge: Wrk,
    pub(crate) bare_cpu: f64,
    pub(crate) edge_cpu: f64,
}

/// `GET /files/1` with the key, through the bare proxy and through the edge, alternated.
pub(crate) fn proxy_pairs(a: &Args, bare: &str, edge: &str, headers: &[(&str, &str)]) -> Vec<ProxyPair> {
    (0..a.pairs.max(1))
        .map(|_| {
            let cpu = cpu_time();
            let bare = wrk(bare, a.connections, a.duration, None, headers);
            let bare_cpu = per_request(cpu_time() - cpu, &bare, a.duration);
            let cpu = cpu_time();
            let edge = wrk(edge, a.connections, a.duration, None, headers);
            let edge_cpu = per_request(cpu_time() - cpu, &edge, a.duration);
            assert_eq!(bare.non_2xx, 0, "the bare proxy answers 200");
            assert_eq!(edge.non_2xx, 0, "the edge passes every request to the upstream");
            ProxyPair {
                bare,
                edge,
                bare_cpu,
                edge_cpu,
            }
        })
        .collect()
}

/// The report's rows and the ratio line.
pub(crate) fn report_proxy(pairs: &[ProxyPair]) {
    for (i, p) in pairs.iter().enumerate() {
        println!(
            "| proxy pair {}: bare axum proxy / edge proxy | {:.0} / {:.0} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.1} / {:.1} µs |",
            i + 1,
            p.bare.rps,
            p.edge.rps,
            p.bare.p50_ms,
            p.edge.p50_ms,
            p.bare.p99_ms,
            p.edge.p99_ms,
            p.bare_cpu,
            p.edge_cpu
        );
    }
}

pub(crate) fn proxy_ratio_line(pairs: &[ProxyPair]) {
    let ratio = median(pairs.iter().map(|p| p.edge.rps / p.bare.rps));
    let cpu = median(pairs.iter().map(|p| p.bare_cpu / p.edge_cpu));
    let p99 = median(pairs.iter().map(|p| p.edge.p99_ms - p.bare.p99_ms));
    println!(
        "proxy mode: edge ÷ bare axum proxy throughput {ratio:.2}, server CPU per request bare ÷ edge {cpu:.2}, p99 added {p99:.3} ms (medians of {} pairs)",
        pairs.len()
    );
}
