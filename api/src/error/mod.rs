//! The API's one error type, mapped once to HTTP here (and to GraphQL extensions in graphql/).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyledger_commands::CommandError;
use keyledger_domain::{AdminTokenError, ApiKeyError, EndpointError};
use keyledger_projections::ProjectionError;

mod code;
pub use code::ErrorCode;

/// How long a client should wait before retrying when the database is unavailable: a
/// restarting or failing-over PostgreSQL is usually back within seconds.
pub const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

/// Every error answer's body, REST and edge alike.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: says what to change. Programs branch on `code`.
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// The database did not answer: the client may retry (`Retry-After`); the cause is logged.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "request failed: the database is unavailable");
        Self::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable; nothing was changed, retry later",
        )
    }

    /// Logs the cause once, server-side; the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(ErrorCode::InternalError, "internal error; see the server log")
    }
}

impl ApiError {
    /// The JSON body an answer carries; also what a stream sends when it fails.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.body();
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if self.code == ErrorCode::DatabaseUnavailable {
            headers.insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        use ApiKeyError::*;
        let code = match &e {
            KeyAlreadyIssued => ErrorCode::Conflict,
            KeyNotFound => ErrorCode::NotFound,
            ScopeNotGrantable { .. } => ErrorCode::ScopeNotGrantable,
            ExpiryInPast => ErrorCode::InvalidExpiry,
            KeyNotActive { .. } => ErrorCode::KeyNotActive,
            KeyAlreadyRevoked => ErrorCode::KeyAlreadyRevoked,
            GraceOutOfRange => ErrorCode::InvalidGracePeriod,
            ReasonTooLong => ErrorCode::InvalidReason,
            IpRules(_) => ErrorCode::InvalidIpRule,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<AdminTokenError> for ApiError {
    fn from(e: AdminTokenError) -> Self {
        use AdminTokenError::*;
        let code = match &e {
            TokenAlreadyExists { .. } => ErrorCode::TokenAlreadyExists,
            TokenNotFound => ErrorCode::NotFound,
            NoPermissions => ErrorCode::InvalidPermissions,
            PermissionNotGrantable { .. } => ErrorCode::PermissionNotGrantable,
            PermissionNotHeld { .. } => ErrorCode::Forbidden,
            ScopeNotGrantable { .. } => ErrorCode::ScopeNotGrantable,
            TenantNotAllowed { .. } => ErrorCode::Forbidden,
            ExpiryInPast => ErrorCode::InvalidExpiry,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<keyledger_domain::webhook::template::TemplateAggregateError> for ApiError {
    fn from(e: keyledger_domain::webhook::template::TemplateAggregateError) -> Self {
        use keyledger_domain::webhook::template::TemplateAggregateError::*;
        let code = match &e {
            AlreadyExists => ErrorCode::Conflict,
            NotFound => ErrorCode::NotFound,
            NothingChanged | Template(_) => ErrorCode::InvalidTemplate,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<keyledger_domain::webhook::WebhookError> for ApiError {
    fn from(e: keyledger_domain::webhook::WebhookError) -> Self {
        use keyledger_domain::webhook::WebhookError::*;
        let code = match &e {
            AlreadyExists | AlreadyPaused | NotPaused | IsDisabled | NotDisabled => ErrorCode::Conflict,
            NotFound => ErrorCode::NotFound,
            NothingChanged => ErrorCode::InvalidWebhook,
            Grace => ErrorCode::InvalidGracePeriod,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        use EndpointError::*;
        let code = match &e {
            EndpointNotFound => ErrorCode::NotFound,
            AlreadyRegistered => ErrorCode::Conflict,
            NoMethods => ErrorCode::InvalidMethods,
            MethodTaken { .. } => ErrorCode::EndpointConflict,
            PathShapeChanged { .. } => ErrorCode::InvalidPath,
            SunsetInPast => ErrorCode::InvalidSunset,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Unauthenticated => ApiError::new(
                ErrorCode::Unauthorized,
                "missing, invalid, expired or deleted admin token",
            ),
            CommandError::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
            CommandError::NotFound(what) => ApiError::not_found(what),
            CommandError::Conflict => ApiError::new(ErrorCode::Conflict, e.to_string()),
            CommandError::Key(k) => k.into(),
            CommandError::Token(t) => t.into(),
            CommandError::Endpoint(e) => e.into(),
            CommandError::Template(e) => e.into(),
            CommandError::Webhook(e) => e.into(),
            CommandError::Alert(e) => {
                use keyledger_domain::webhook::alert::AlertAggregateError::*;
                let code = match &e {
                    AlreadyExists => ErrorCode::Conflict,
                    NotFound => ErrorCode::NotFound,
                    Rule(_) => ErrorCode::InvalidAlertRule,
                };
                ApiError::new(code, e.to_string())
            }
            CommandError::Store(s) if s.is_unavailable() => ApiError::unavailable(s),
            CommandError::Store(s) => ApiError::internal(s),
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        match e {
            ProjectionError::Store(s) if s.is_unavailable() => ApiError::unavailable(s),
            other => ApiError::internal(other),
        }
    }
}
