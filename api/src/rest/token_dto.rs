//! Bodies of the admin-token API.

use crate::error::{ApiError, ErrorCode};
use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_domain::Permission;
use keyledger_projections::admin_tokens::TokenRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "CreateAdminTokenInput")]
pub struct CreateTokenBody {
    pub name: String,
    /// API_MANAGEMENT_READ, API_MANAGEMENT_WRITE, TENANT_ADMIN, SUPERUSER.
    pub permissions: Vec<String>,
    /// Key scopes the token may grant; default: all the creator holds.
    pub scopes: Option<Vec<String>>,
    /// `null` or absent: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Superusers only: create the token in another tenant.
    pub tenant: Option<String>,
}

pub fn permissions(raw: Vec<String>) -> Result<BTreeSet<Permission>, ApiError> {
    raw.iter()
        .map(|p| {
            p.parse::<Permission>()
                .map_err(|e| ApiError::new(ErrorCode::InvalidPermissions, e.to_string()))
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "AdminToken")]
pub struct TokenView {
    pub id: String,
    /// The token itself: only in the answer to create, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub tenant: String,
    pub name: String,
    pub permissions: Vec<String>,
    /// Key scopes this token may grant: `"all"` or a list.
    #[schema(schema_with = scope_grant_schema)]
    pub scopes: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `never`, `active` or `expired`.
    pub expiry_status: String,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `"all"`, or the scopes listed.
fn scope_grant_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["all"])),
        )
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some("Key scopes this token may grant: `\"all\"` or a list."))
        .build()
        .into()
}

/// `"all"`, or the scopes listed.
pub fn scope_grant_json(grant: &keyledger_domain::ScopeGrant) -> serde_json::Value {
    match grant {
        keyledger_domain::ScopeGrant::All => serde_json::json!("all"),
        keyledger_domain::ScopeGrant::Only(scopes) => scopes.iter().map(|s| s.to_string()).collect(),
    }
}

impl TokenView {
    pub fn from_row(t: TokenRow, now: DateTime<Utc>) -> Self {
        let expiry_status = match t.expires_at {
            None => "never",
            Some(e) if e <= now => "expired",
            Some(_) => "active",
        };
        TokenView {
            id: t.id,
            token: None,
            tenant: t.tenant,
            name: t.name,
            permissions: t.permissions,
            scopes: scope_grant_json(&t.scopes),
            created_at: t.created_at,
            expires_at: t.expires_at,
            expiry_status: expiry_status.to_owned(),
            last_used_at: t.last_used_at,
        }
    }
}
