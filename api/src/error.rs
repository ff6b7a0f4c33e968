//! The API's one error type, mapped once to HTTP here (and to GraphQL extensions in graphql/).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyledger_commands::CommandError;
use keyledger_domain::{AdminTokenError, ApiKeyError, EndpointError};
use keyledger_projections::ProjectionError;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// Logs the cause once, server-side; the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        use ApiKeyError::*;
        let (status, code) = match &e {
            KeyAlreadyIssued => (StatusCode::CONFLICT, "conflict"),
            KeyNotFound => (StatusCode::NOT_FOUND, "not_found"),
            ScopeNotGrantable { .. } => (StatusCode::FORBIDDEN, "scope_not_grantable"),
            ExpiryInPast => (StatusCode::BAD_REQUEST, "invalid_expiry"),
            KeyNotActive { .. } => (StatusCode::CONFLICT, "key_not_active"),
            KeyAlreadyRevoked => (StatusCode::CONFLICT, "key_already_revoked"),
            GraceOutOfRange => (StatusCode::BAD_REQUEST, "invalid_grace_period"),
            ReasonTooLong => (StatusCode::BAD_REQUEST, "invalid_reason"),
            IpRules(_) => (StatusCode::BAD_REQUEST, "invalid_ip_rule"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<AdminTokenError> for ApiError {
    fn from(e: AdminTokenError) -> Self {
        use AdminTokenError::*;
        let (status, code) = match &e {
            TokenAlreadyExists { .. } => (StatusCode::CONFLICT, "token_already_exists"),
            TokenNotFound => (StatusCode::NOT_FOUND, "not_found"),
            NoPermissions => (StatusCode::BAD_REQUEST, "invalid_permissions"),
            PermissionNotGrantable { .. } => (StatusCode::FORBIDDEN, "permission_not_grantable"),
            ScopeNotGrantable { .. } => (StatusCode::FORBIDDEN, "scope_not_grantable"),
            TenantNotAllowed { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ExpiryInPast => (StatusCode::BAD_REQUEST, "invalid_expiry"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        use EndpointError::*;
        let (status, code) = match &e {
            EndpointNotFound => (StatusCode::NOT_FOUND, "not_found"),
            AlreadyRegistered => (StatusCode::CONFLICT, "conflict"),
            NoMethods => (StatusCode::BAD_REQUEST, "invalid_methods"),
            MethodTaken { .. } => (StatusCode::CONFLICT, "endpoint_conflict"),
            PathShapeChanged { .. } => (StatusCode::BAD_REQUEST, "invalid_path"),
            SunsetInPast => (StatusCode::BAD_REQUEST, "invalid_sunset"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing, invalid, expired or deleted admin token",
            ),
            CommandError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            CommandError::NotFound(what) => ApiError::not_found(what),
            CommandError::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            CommandError::Key(k) => k.into(),
            CommandError::Token(t) => t.into(),
            CommandError::Endpoint(e) => e.into(),
            CommandError::Store(s) => ApiError::internal(s),
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        ApiError::internal(e)
    }
}
