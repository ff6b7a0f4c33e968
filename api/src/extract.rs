//! Request extractors: our JSON body (errors in our format) and the authenticated admin.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use keyledger_commands::CommandContext;
use serde::de::DeserializeOwned;

/// `axum::Json`, but a malformed body answers `{"error":{"code":"invalid_json",…}}`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(json_error(JsonRejection::MissingJsonContentType(Default::default())));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(body_refusal)?;
        refuse_nul(&bytes)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

/// A body that could not be read: too large (axum's default limit, 2 MiB), or cut off.
pub fn body_refusal(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::BodyTooLarge, "the body is larger than 2 MiB")
    } else {
        ApiError::new(ErrorCode::InvalidBody, e.body_text())
    }
}

/// `application/json`, or a `+json` type, as `axum::Json` asks.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// No text the API takes may hold NUL (U+0000), which PostgreSQL cannot store: in JSON it can
/// only be the escape `\u0000`, found here by reading escapes left to right.
pub(crate) fn refuse_nul(json: &[u8]) -> Result<(), ApiError> {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return Err(ApiError::new(
                    ErrorCode::InvalidJson,
                    "strings must not contain NUL (\\u0000)",
                ));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// `%00` in a URL: a NUL, which no stored text holds.
fn holds_nul(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(ErrorCode::UnsupportedMediaType, "send Content-Type: application/json")
        }
        other => ApiError::new(ErrorCode::InvalidJson, other.body_text()),
    }
}

/// `axum::extract::Query` with our error format.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(holds_nul) {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "query parameters must not contain NUL (%00)",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(query_error(e)),
        }
    }
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, rejection.body_text())
}

/// The admin on whose behalf the request runs, from `Authorization: Bearer <admin token>`.
pub struct Admin(pub CommandContext);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send Authorization: Bearer <admin token>"))?;
        let actor = state.auth.authenticate(token).await?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Admin(CommandContext { actor, request_id }))
    }
}

/// The token of `Authorization: Bearer <token>`, trimmed (perhaps empty): the one reading of
/// that header for REST, GraphQL and the edge.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_token(&parts.headers).filter(|t| !t.is_empty())
}

/// A JSON body that may be absent (`POST /v1/keys/{id}/revoke` with no body at all).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(body_refusal)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        refuse_nul(&bytes)?;
        serde_json::from_slice(&bytes)
            .map(|v| OptionalJson(Some(v)))
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}")))
    }
}

/// `axum::extract::Path`, but an id that cannot exist (undecodable, or holding NUL) answers
/// 404 in our format rather than a plain-text 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if holds_nul(parts.uri.path()) {
            return Err(ApiError::not_found("resource"));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(_) => Err(ApiError::not_found("resource")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_escape_is_refused_wherever_it_is_not_itself_escaped() {
        assert!(refuse_nul(br#"{"q":"a\u0000b"}"#).is_err());
        assert!(refuse_nul(br#"{"q":"a\\\u0000"}"#).is_err());
        assert!(
            refuse_nul(br#"{"q":"a\\u0000"}"#).is_ok(),
            "an escaped backslash, then text"
        );
        assert!(refuse_nul(br#"{"q":"\u00001"}"#).is_err());
        assert!(refuse_nul(br#"{"q":"\u0001","r":"\"}"#).is_ok());
        assert!(refuse_nul(b"\\").is_ok());
        assert!(holds_nul("/v1/keys/a%00b") && !holds_nul("/v1/keys/a%200"));
    }
}
