//! One registered endpoint's state, and the one fold of its events.

use super::EndpointEvent;
use super::EndpointSpec;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deprecation {
    pub sunset: Option<DateTime<Utc>>,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredEndpoint {
    pub id: Uuid,
    pub spec: EndpointSpec,
    pub deprecation: Option<Deprecation>,
    pub active: bool,
    pub disabled_tenants: BTreeSet<TenantId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RegisteredEndpoint {
    pub fn enabled_for(&self, tenant: &TenantId) -> bool {
        self.active && !self.disabled_tenants.contains(tenant)
    }

    /// The endpoint an `EndpointRegistered` event creates. With [`RegisteredEndpoint::apply`],
    /// the one fold of an endpoint's events: the aggregate, the read model and the edge use it.
    pub fn registered(event: &EndpointEvent) -> Option<Self> {
        match event {
            EndpointEvent::EndpointRegistered { endpoint_id, spec, at } => Some(RegisteredEndpoint {
                id: *endpoint_id,
                spec: spec.clone(),
                deprecation: None,
                active: true,
                disabled_tenants: BTreeSet::new(),
                created_at: *at,
                updated_at: *at,
            }),
            _ => None,
        }
    }

    /// Applies one later event of this endpoint. A tenant's own enabling or disabling is not a
    /// change of the endpoint: other tenants must not see when it happened.
    pub fn apply(&mut self, event: EndpointEvent) {
        use EndpointEvent::*;
        match event {
            EndpointRegistered { .. } => {}
            EndpointChanged {
                methods,
                path,
                plugin,
                description,
                required_scopes,
                upstream_url,
                at,
                ..
            } => {
                let s = &mut self.spec;
                s.methods = methods.unwrap_or_else(|| s.methods.clone());
                s.path = path.unwrap_or_else(|| s.path.clone());
                s.plugin = plugin.unwrap_or_else(|| s.plugin.clone());
                s.description = description.unwrap_or_else(|| s.description.clone());
                s.required_scopes = required_scopes.unwrap_or_else(|| s.required_scopes.clone());
                s.upstream_url = upstream_url.unwrap_or_else(|| s.upstream_url.clone());
                self.updated_at = at;
            }
            EndpointSchemasChanged {
                request_schema,
                response_schema,
                at,
                ..
            } => {
                self.spec.request_schema = request_schema;
                self.spec.response_schema = response_schema;
                self.updated_at = at;
            }
            EndpointDeprecated { sunset, at, .. } => {
                self.deprecation = Some(Deprecation { sunset, since: at });
                self.updated_at = at;
            }
            EndpointUndeprecated { at, .. } => {
                self.deprecation = None;
                self.updated_at = at;
            }
            EndpointActivated { at, .. } => {
                self.active = true;
                self.updated_at = at;
            }
            EndpointDeactivated { at, .. } => {
                self.active = false;
                self.updated_at = at;
            }
            EndpointEnabledForTenant { tenant, .. } => {
                self.disabled_tenants.remove(&tenant);
            }
            EndpointDisabledForTenant { tenant, .. } => {
                self.disabled_tenants.insert(tenant);
            }
        }
    }
}
