//! What happens to registered endpoints: the events of a route stream.

use super::{Description, EndpointSpec, JsonSchema, PluginName, UpstreamUrl};
use crate::route::{HttpMethod, PathTemplate};
use crate::scope::Scope;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Persisted `event_type`s are the variant names: never rename one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EndpointEvent {
    EndpointRegistered {
        endpoint_id: Uuid,
        spec: EndpointSpec,
        at: DateTime<Utc>,
    },
    EndpointChanged {
        endpoint_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        methods: Option<BTreeSet<HttpMethod>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathTemplate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plugin: Option<PluginName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Description>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        required_scopes: Option<BTreeSet<Scope>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upstream_url: Option<UpstreamUrl>,
        at: DateTime<Utc>,
    },
    /// Both schemas as they now are (either may be none).
    EndpointSchemasChanged {
        endpoint_id: Uuid,
        request_schema: Option<JsonSchema>,
        response_schema: Option<JsonSchema>,
        at: DateTime<Utc>,
    },
    EndpointDeprecated {
        endpoint_id: Uuid,
        sunset: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    EndpointUndeprecated {
        endpoint_id: Uuid,
        at: DateTime<Utc>,
    },
    EndpointActivated {
        endpoint_id: Uuid,
        at: DateTime<Utc>,
    },
    EndpointDeactivated {
        endpoint_id: Uuid,
        at: DateTime<Utc>,
    },
    EndpointEnabledForTenant {
        endpoint_id: Uuid,
        tenant: TenantId,
        at: DateTime<Utc>,
    },
    EndpointDisabledForTenant {
        endpoint_id: Uuid,
        tenant: TenantId,
        at: DateTime<Utc>,
    },
}

impl EndpointEvent {
    pub fn endpoint_id(&self) -> Uuid {
        use EndpointEvent::*;
        match self {
            EndpointRegistered { endpoint_id, .. }
            | EndpointChanged { endpoint_id, .. }
            | EndpointSchemasChanged { endpoint_id, .. }
            | EndpointDeprecated { endpoint_id, .. }
            | EndpointUndeprecated { endpoint_id, .. }
            | EndpointActivated { endpoint_id, .. }
            | EndpointDeactivated { endpoint_id, .. }
            | EndpointEnabledForTenant { endpoint_id, .. }
            | EndpointDisabledForTenant { endpoint_id, .. } => *endpoint_id,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        use EndpointEvent::*;
        match self {
            EndpointRegistered { at, .. }
            | EndpointChanged { at, .. }
            | EndpointSchemasChanged { at, .. }
            | EndpointDeprecated { at, .. }
            | EndpointUndeprecated { at, .. }
            | EndpointActivated { at, .. }
            | EndpointDeactivated { at, .. }
            | EndpointEnabledForTenant { at, .. }
            | EndpointDisabledForTenant { at, .. } => *at,
        }
    }
}

impl DomainEvent for EndpointEvent {
    fn event_type(&self) -> String {
        use EndpointEvent::*;
        match self {
            EndpointRegistered { .. } => "EndpointRegistered",
            EndpointChanged { .. } => "EndpointChanged",
            EndpointSchemasChanged { .. } => "EndpointSchemasChanged",
            EndpointDeprecated { .. } => "EndpointDeprecated",
            EndpointUndeprecated { .. } => "EndpointUndeprecated",
            EndpointActivated { .. } => "EndpointActivated",
            EndpointDeactivated { .. } => "EndpointDeactivated",
            EndpointEnabledForTenant { .. } => "EndpointEnabledForTenant",
            EndpointDisabledForTenant { .. } => "EndpointDisabledForTenant",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
