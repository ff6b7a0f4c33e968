//! Every error code the API answers with, REST, GraphQL (`extensions.code`) and the edge alike,
//! each with its one HTTP status. `/openapi.json` publishes the list as the error body's `code`
//! enum, and the README's table is checked against it.

use axum::http::StatusCode;

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal, $status:ident;)+) => {
        /// What went wrong, for programs: a client branches on the code, not on the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        // utoipa does not see a `rename` that a macro writes: the names are the variants' in
        // snake case, and a test holds them equal to `as_str`.
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The HTTP status of every answer with this code.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)+
                }
            }

            /// What the code means, as the README's table says it.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => concat!($($doc),+).trim(),)+
                }
            }
        }
    };
}

codes! {
    /// The body is not valid JSON, or not the JSON the operation takes.
    InvalidJson = "invalid_json", BAD_REQUEST;
    /// The body could not be read (cut off), or is not one the request may carry.
    InvalidBody = "invalid_body", BAD_REQUEST;
    /// The webhook template is invalid: an unknown kind, a custom body that does not compile (its line and the reason), a body for a kind that has none, or a change that changes nothing.
    InvalidTemplate = "invalid_template", BAD_REQUEST;
    /// The webhook is invalid: its URL (http or https, a host, no credentials), an unknown event type, a header it may not set, a template it cannot use, or a change that changes nothing.
    InvalidWebhook = "invalid_webhook", BAD_REQUEST;
    /// The alert rule is invalid: an unknown metric, a window outside 1 to 1440 minutes, a threshold below 0 (an error rate above 100), a key-expiry rule without a key, or a key or endpoint the tenant does not have.
    InvalidAlertRule = "invalid_alert_rule", BAD_REQUEST;
    /// A query parameter is missing, unknown or malformed.
    InvalidQuery = "invalid_query", BAD_REQUEST;
    /// The cursor is not one this API returned.
    InvalidCursor = "invalid_cursor", BAD_REQUEST;
    /// The page size is out of range.
    InvalidLimit = "invalid_limit", BAD_REQUEST;
    /// The tenant id is malformed.
    InvalidTenant = "invalid_tenant", BAD_REQUEST;
    /// The name is empty, too long or holds control characters.
    InvalidName = "invalid_name", BAD_REQUEST;
    /// A scope is not one of the catalogue's, or not one a key may hold.
    InvalidScope = "invalid_scope", BAD_REQUEST;
    /// A rate limit is zero, negative or inconsistent.
    InvalidRateLimits = "invalid_rate_limits", BAD_REQUEST;
    /// An IP rule is not an address or CIDR block (or has host bits set).
    InvalidIpRule = "invalid_ip_rule", BAD_REQUEST;
    /// The permissions are empty or unknown.
    InvalidPermissions = "invalid_permissions", BAD_REQUEST;
    /// The `Idempotency-Key` header is not ASCII.
    InvalidIdempotencyKey = "invalid_idempotency_key", BAD_REQUEST;
    /// The expiry is in the past.
    InvalidExpiry = "invalid_expiry", BAD_REQUEST;
    /// The rotation's grace period is out of range.
    InvalidGracePeriod = "invalid_grace_period", BAD_REQUEST;
    /// The revocation reason is too long.
    InvalidReason = "invalid_reason", BAD_REQUEST;
    /// The status filter is not a known status.
    InvalidStatus = "invalid_status", BAD_REQUEST;
    /// An HTTP method is unknown, or none was given.
    InvalidMethods = "invalid_methods", BAD_REQUEST;
    /// The path template is malformed, or changes the shape of an existing endpoint's path.
    InvalidPath = "invalid_path", BAD_REQUEST;
    /// The sunset date is in the past.
    InvalidSunset = "invalid_sunset", BAD_REQUEST;
    /// The plugin name is malformed.
    InvalidPlugin = "invalid_plugin", BAD_REQUEST;
    /// The upstream URL is not an absolute http(s) URL.
    InvalidUpstreamUrl = "invalid_upstream_url", BAD_REQUEST;
    /// The description is too long.
    InvalidDescription = "invalid_description", BAD_REQUEST;
    /// A request or response schema is not a JSON Schema.
    InvalidSchema = "invalid_schema", BAD_REQUEST;
    /// The OpenAPI document to import is not valid JSON or YAML, or not OpenAPI 3.
    InvalidOpenapi = "invalid_openapi", BAD_REQUEST;
    /// The request's fields contradict each other (both or neither of a pair).
    InvalidRequest = "invalid_request", BAD_REQUEST;
    /// GraphQL: the document does not parse or validate against the schema, or a value does not
    /// fit its type.
    InvalidGraphql = "invalid_graphql", BAD_REQUEST;
    /// GraphQL: the query nests deeper than the server allows.
    QueryTooDeep = "query_too_deep", BAD_REQUEST;
    /// GraphQL: the query asks for more work than the server allows at once.
    QueryTooComplex = "query_too_complex", BAD_REQUEST;
    /// The key given to an endpoint's Test is malformed or not one of the tenant's keys.
    InvalidTestKey = "invalid_test_key", BAD_REQUEST;
    /// The client address given to an endpoint's Test is not an IPv4 or IPv6 address.
    InvalidClientIp = "invalid_client_ip", BAD_REQUEST;
    /// An endpoint's Test lacks a value for a path parameter.
    MissingPathParam = "missing_path_param", BAD_REQUEST;
    /// The admin token is missing, invalid, expired or deleted.
    Unauthorized = "unauthorized", UNAUTHORIZED;
    /// Edge: the API key is missing, malformed or unknown, or its secret is wrong.
    InvalidKey = "invalid_key", UNAUTHORIZED;
    /// Edge: the API key was revoked.
    KeyRevoked = "key_revoked", UNAUTHORIZED;
    /// Edge: the API key expired.
    KeyExpired = "key_expired", UNAUTHORIZED;
    /// The admin token lacks the permission, or the tenant is not its own.
    Forbidden = "forbidden", FORBIDDEN;
    /// A scope to grant is one the admin token does not hold, or an admin-level scope.
    ScopeNotGrantable = "scope_not_grantable", FORBIDDEN;
    /// A permission to grant is one the admin token does not hold.
    PermissionNotGrantable = "permission_not_grantable", FORBIDDEN;
    /// Edge: the client's address is blocked or not allowed for this key.
    IpForbidden = "ip_forbidden", FORBIDDEN;
    /// Edge: the key lacks a scope the endpoint requires.
    InsufficientScope = "insufficient_scope", FORBIDDEN;
    /// No such resource (or not one of the tenant's), or no such route.
    NotFound = "not_found", NOT_FOUND;
    /// Edge: no active endpoint matches the method and path (or it is off for the key's tenant).
    EndpointNotFound = "endpoint_not_found", NOT_FOUND;
    /// The resource already exists, or changed concurrently: read it again and retry.
    Conflict = "conflict", CONFLICT;
    /// The key is not active (revoked or expired), so it cannot be changed or rotated.
    KeyNotActive = "key_not_active", CONFLICT;
    /// The key was revoked already.
    KeyAlreadyRevoked = "key_already_revoked", CONFLICT;
    /// An admin token with this id exists.
    TokenAlreadyExists = "token_already_exists", CONFLICT;
    /// Another endpoint already answers this method and path.
    EndpointConflict = "endpoint_conflict", CONFLICT;
    /// The OpenAPI document to import is too large.
    DocumentTooLarge = "document_too_large", PAYLOAD_TOO_LARGE;
    /// The JSON body is larger than 2 MiB.
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE;
    /// The body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    /// Edge: a rate limit of the key is exhausted; `Retry-After` says when to come back.
    RateLimited = "rate_limited", TOO_MANY_REQUESTS;
    /// Something failed on the server; its log says what.
    InternalError = "internal_error", INTERNAL_SERVER_ERROR;
    /// Edge (proxy) and an endpoint's Test: the upstream could not be reached.
    UpstreamUnreachable = "upstream_unreachable", BAD_GATEWAY;
    /// The database did not answer; nothing was changed. `Retry-After` says when to try again.
    DatabaseUnavailable = "database_unavailable", SERVICE_UNAVAILABLE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_serialises_as_its_name_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert!(code.status().is_client_error() || code.status().is_server_error());
            assert!(!code.meaning().is_empty());
        }
    }
}

#[cfg(test)]
mod readme {
    use super::ErrorCode;

    /// The README's table of error codes is the one users read: it must list each code with its
    /// status and meaning, and nothing else.
    #[test]
    fn the_readme_lists_every_code_with_its_status_and_meaning() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        let rows: Vec<String> = readme
            .lines()
            .filter(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                cells.len() == 3
                    && cells[0]
                        .strip_prefix("| `")
                        .is_some_and(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch == '`'))
                    && cells[1].parse::<u16>().is_ok()
            })
            .map(str::to_owned)
            .collect();
        let expected: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| format!("| `{}` | {} | {} |", c.as_str(), c.status().as_u16(), c.meaning()))
            .collect();
        assert_eq!(rows, expected);
    }
}
