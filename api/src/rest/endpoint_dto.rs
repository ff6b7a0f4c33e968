//! Bodies of the endpoint registry's REST and GraphQL API.

use async_graphql::{InputObject, MaybeUndefined, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_projections::endpoints::EndpointRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "RegisterEndpointInput")]
pub struct CreateEndpointBody {
    /// GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
    pub methods: Vec<String>,
    /// Template with whole-segment parameters: `/files/{id}`.
    pub path: String,
    /// Files, Chat, Agents, Knowledge, Reports, …
    pub plugin: String,
    #[serde(default)]
    #[graphql(default)]
    pub description: String,
    /// Scopes a key needs to call this endpoint.
    #[serde(default)]
    #[graphql(default)]
    pub required_scopes: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub request_schema: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub response_schema: Option<serde_json::Value>,
    /// The plugin's service, e.g. `http://files.internal:8080`.
    pub upstream_url: String,
}

/// Absent fields stay as they are; `null` clears a schema.
#[derive(Debug, Default, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "UpdateEndpointInput")]
pub struct UpdateEndpointBody {
    pub methods: Option<Vec<String>>,
    /// Renames parameters only: the shape must stay (`/files/{id}` → `/files/{file_id}`).
    pub path: Option<String>,
    pub plugin: Option<String>,
    pub description: Option<String>,
    pub required_scopes: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub request_schema: MaybeUndefined<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub response_schema: MaybeUndefined<serde_json::Value>,
    pub upstream_url: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeprecateBody {
    /// When the endpoint goes away (RFC 3339), sent as the `Sunset` header.
    pub sunset: Option<DateTime<Utc>>,
}

/// One endpoint as the explorer shows it.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "Endpoint")]
pub struct EndpointView {
    pub id: String,
    pub path: String,
    pub methods: Vec<String>,
    pub plugin: String,
    pub description: String,
    pub required_scopes: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub request_schema: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub response_schema: Option<serde_json::Value>,
    /// Superusers only: where the edge forwards requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_url: Option<String>,
    pub deprecated: bool,
    pub sunset_at: Option<DateTime<Utc>>,
    /// Globally active (superusers switch this).
    pub active: bool,
    /// Usable by the tenant the list was made for (active and not disabled by it).
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointView {
    pub fn from_row(e: EndpointRow, show_upstream: bool) -> Self {
        EndpointView {
            id: e.id,
            path: e.path,
            methods: e.methods,
            plugin: e.plugin,
            description: e.description,
            required_scopes: e.required_scopes,
            request_schema: e.request_schema,
            response_schema: e.response_schema,
            upstream_url: show_upstream.then_some(e.upstream_url),
            deprecated: e.deprecated,
            sunset_at: e.sunset_at,
            active: e.active,
            enabled: e.enabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct ImportedOperation {
    pub method: String,
    pub path: String,
    /// registered, changed or unchanged.
    pub outcome: String,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct ImportReport {
    pub plugin: String,
    pub registered: u32,
    pub changed: u32,
    pub unchanged: u32,
    pub operations: Vec<ImportedOperation>,
}
