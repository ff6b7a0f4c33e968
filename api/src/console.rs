//! The web console: plain HTML, CSS and JavaScript modules in `api/console/`, served at the admin
//! address's `/` under a strict Content-Security-Policy.
//!
//! Release builds carry the files inside the binary (rust-embed); debug builds read them from
//! `api/console/` on each request, so editing the console needs no rebuild. The console speaks
//! only to the public GraphQL and REST APIs, with the admin token the user pasted.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

#[derive(rust_embed::RustEmbed)]
#[folder = "console/"]
struct Assets;

/// Scripts and styles only from this origin, no inline script or style attribute, no framing;
/// `connect-src 'self'` admits the same-origin WebSocket of the live usage subscription.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route(
            "/console/{*file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }),
        )
}

fn serve(file: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = Assets::get(file) else {
        return crate::error::ApiError::not_found("console file").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&asset.metadata.sha256_hash()[..12]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| given.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, asset.metadata.mimetype().to_owned())],
            // Borrowed from the binary in release builds: served without a copy.
            axum::body::Body::from(asset.data),
        )
            .into_response()
    };
    let answer = response.headers_mut();
    answer.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    answer.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    answer.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Revalidated on every load, so a new binary's console is never mixed with a cached one.
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        answer.insert(header::ETAG, tag);
    }
    response
}
