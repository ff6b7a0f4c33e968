//! The Endpoint aggregate: the registered endpoints of one route shape (a path template with its
//! parameter names erased). Keeping every endpoint of a shape in one stream lets the event
//! store's concurrency check guarantee that no two endpoints claim the same method and path.

mod spec;
#[cfg(test)]
mod tests;

pub use spec::{Description, EndpointSpec, JsonSchema, PluginName, SpecError, UpstreamUrl};

/// Limits of endpoint fields, for callers that trim input to fit.
pub mod spec_limits {
    pub use super::spec::MAX_DESCRIPTION_CHARS;
}

use crate::route::{HttpMethod, PathTemplate};
use crate::scope::Scope;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

const ROUTE_NAMESPACE: Uuid = Uuid::from_u128(0x6b65_796c_6564_6765_722d_726f_7574_6573);

/// The stream that owns every endpoint of `path`'s shape.
pub fn route_stream_id(path: &PathTemplate) -> Uuid {
    Uuid::new_v5(&ROUTE_NAMESPACE, path.shape().as_bytes())
}

/// Fields to change; `None` leaves a field as it is. The path may only be renamed within its
/// shape (`/files/{id}` → `/files/{file_id}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointChange {
    pub methods: Option<BTreeSet<HttpMethod>>,
    pub path: Option<PathTemplate>,
    pub plugin: Option<PluginName>,
    pub description: Option<Description>,
    pub required_scopes: Option<BTreeSet<Scope>>,
    pub request_schema: Option<Option<JsonSchema>>,
    pub response_schema: Option<Option<JsonSchema>>,
    pub upstream_url: Option<UpstreamUrl>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EndpointCommand {
    Register {
        endpoint_id: Uuid,
        spec: Box<EndpointSpec>,
        at: DateTime<Utc>,
    },
    Change {
        endpoint_id: Uuid,
        change: Box<EndpointChange>,
        at: DateTime<Utc>,
    },
    /// From an OpenAPI import: one method of one path. Updates the endpoint that serves that
    /// method here, or registers `new_id` if none does; unchanged input changes nothing.
    Import {
        new_id: Uuid,
        spec: Box<EndpointSpec>,
        at: DateTime<Utc>,
    },
    Deprecate {
        endpoint_id: Uuid,
        sunset: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    Undeprecate {
        endpoint_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Global activation (superusers).
    SetActive {
        endpoint_id: Uuid,
        active: bool,
        at: DateTime<Utc>,
    },
    /// Per-tenant enablement (tenant admins).
    SetTenantEnabled {
        endpoint_id: Uuid,
        tenant: TenantId,
        enabled: bool,
        at: DateTime<Utc>,
    },
}

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint not found")]
    EndpointNotFound,
    #[error("this endpoint id is already registered")]
    AlreadyRegistered,
    #[error("an endpoint needs at least one method")]
    NoMethods,
    #[error("{method} {path} is already served by endpoint {endpoint_id}")]
    MethodTaken {
        method: HttpMethod,
        path: String,
        endpoint_id: Uuid,
    },
    #[error("the path can only be renamed within its shape ({expected}); register a new endpoint instead")]
    PathShapeChanged { expected: String },
    #[error("the sunset date must be in the future")]
    SunsetInPast,
}

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

/// Every endpoint registered on one route shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    endpoints: BTreeMap<Uuid, RegisteredEndpoint>,
}

impl Endpoint {
    pub fn get(&self, id: Uuid) -> Option<&RegisteredEndpoint> {
        self.endpoints.get(&id)
    }

    pub fn all(&self) -> impl Iterator<Item = &RegisteredEndpoint> {
        self.endpoints.values()
    }

    fn existing(&self, id: Uuid) -> Result<&RegisteredEndpoint, EndpointError> {
        self.endpoints.get(&id).ok_or(EndpointError::EndpointNotFound)
    }

    /// Methods must not be served by another endpoint of this shape.
    fn check_methods(&self, except: Option<Uuid>, methods: &BTreeSet<HttpMethod>) -> Result<(), EndpointError> {
        if methods.is_empty() {
            return Err(EndpointError::NoMethods);
        }
        for other in self.endpoints.values().filter(|e| Some(e.id) != except) {
            if let Some(method) = methods.intersection(&other.spec.methods).next() {
                return Err(EndpointError::MethodTaken {
                    method: *method,
                    path: other.spec.path.to_string(),
                    endpoint_id: other.id,
                });
            }
        }
        Ok(())
    }

    fn register(
        &self,
        endpoint_id: Uuid,
        spec: EndpointSpec,
        at: DateTime<Utc>,
    ) -> Result<Vec<EndpointEvent>, EndpointError> {
        if self.endpoints.contains_key(&endpoint_id) {
            return Err(EndpointError::AlreadyRegistered);
        }
        if let Some(first) = self.endpoints.values().next() {
            if first.spec.path.shape() != spec.path.shape() {
                return Err(EndpointError::PathShapeChanged {
                    expected: first.spec.path.shape(),
                });
            }
        }
        self.check_methods(None, &spec.methods)?;
        Ok(vec![EndpointEvent::EndpointRegistered { endpoint_id, spec, at }])
    }

    fn change(
        &self,
        endpoint_id: Uuid,
        c: EndpointChange,
        at: DateTime<Utc>,
    ) -> Result<Vec<EndpointEvent>, EndpointError> {
        let current = &self.existing(endpoint_id)?.spec;
        let methods = differs(c.methods, &current.methods);
        if let Some(methods) = &methods {
            self.check_methods(Some(endpoint_id), methods)?;
        }
        let path = differs(c.path, &current.path);
        if let Some(path) = &path {
            if path.shape() != current.path.shape() {
                return Err(EndpointError::PathShapeChanged {
                    expected: current.path.shape(),
                });
            }
        }
        let plugin = differs(c.plugin, &current.plugin);
        let description = differs(c.description, &current.description);
        let required_scopes = differs(c.required_scopes, &current.required_scopes);
        let upstream_url = differs(c.upstream_url, &current.upstream_url);
        let mut events = Vec::new();
        if methods.is_some()
            || path.is_some()
            || plugin.is_some()
            || description.is_some()
            || required_scopes.is_some()
            || upstream_url.is_some()
        {
            events.push(EndpointEvent::EndpointChanged {
                endpoint_id,
                methods,
                path,
                plugin,
                description,
                required_scopes,
                upstream_url,
                at,
            });
        }
        let request_schema = c.request_schema.unwrap_or_else(|| current.request_schema.clone());
        let response_schema = c.response_schema.unwrap_or_else(|| current.response_schema.clone());
        if request_schema != current.request_schema || response_schema != current.response_schema {
            events.push(EndpointEvent::EndpointSchemasChanged {
                endpoint_id,
                request_schema,
                response_schema,
                at,
            });
        }
        Ok(events)
    }

    fn import(&self, new_id: Uuid, spec: EndpointSpec, at: DateTime<Utc>) -> Result<Vec<EndpointEvent>, EndpointError> {
        let serving = self
            .endpoints
            .values()
            .find(|e| !e.spec.methods.is_disjoint(&spec.methods));
        match serving {
            Some(existing) => {
                let change = EndpointChange {
                    methods: None,
                    path: Some(spec.path),
                    plugin: Some(spec.plugin),
                    description: Some(spec.description),
                    required_scopes: Some(spec.required_scopes),
                    request_schema: Some(spec.request_schema),
                    response_schema: Some(spec.response_schema),
                    upstream_url: Some(spec.upstream_url),
                };
                self.change(existing.id, change, at)
            }
            None => self.register(new_id, spec, at),
        }
    }
}

/// `new` if it differs from `old`.
fn differs<T: PartialEq>(new: Option<T>, old: &T) -> Option<T> {
    new.filter(|n| n != old)
}

impl Aggregate for Endpoint {
    const TYPE: &'static str = "Endpoint";
    type Command = EndpointCommand;
    type Event = EndpointEvent;
    type Error = EndpointError;
    type Services = ();

    async fn handle(&mut self, command: EndpointCommand, _: &(), sink: &EventSink<Self>) -> Result<(), EndpointError> {
        use EndpointCommand::*;
        let events = match command {
            Register { endpoint_id, spec, at } => self.register(endpoint_id, *spec, at)?,
            Change {
                endpoint_id,
                change,
                at,
            } => self.change(endpoint_id, *change, at)?,
            Import { new_id, spec, at } => self.import(new_id, *spec, at)?,
            Deprecate {
                endpoint_id,
                sunset,
                at,
            } => {
                let current = self.existing(endpoint_id)?;
                if sunset.is_some_and(|s| s <= at) {
                    return Err(EndpointError::SunsetInPast);
                }
                match &current.deprecation {
                    Some(d) if d.sunset == sunset => vec![],
                    _ => vec![EndpointEvent::EndpointDeprecated {
                        endpoint_id,
                        sunset,
                        at,
                    }],
                }
            }
            Undeprecate { endpoint_id, at } => match self.existing(endpoint_id)?.deprecation {
                Some(_) => vec![EndpointEvent::EndpointUndeprecated { endpoint_id, at }],
                None => vec![],
            },
            SetActive {
                endpoint_id,
                active,
                at,
            } => match (self.existing(endpoint_id)?.active, active) {
                (false, true) => vec![EndpointEvent::EndpointActivated { endpoint_id, at }],
                (true, false) => vec![EndpointEvent::EndpointDeactivated { endpoint_id, at }],
                _ => vec![],
            },
            SetTenantEnabled {
                endpoint_id,
                tenant,
                enabled,
                at,
            } => {
                let disabled = self.existing(endpoint_id)?.disabled_tenants.contains(&tenant);
                match (disabled, enabled) {
                    (true, true) => vec![EndpointEvent::EndpointEnabledForTenant {
                        endpoint_id,
                        tenant,
                        at,
                    }],
                    (false, false) => vec![EndpointEvent::EndpointDisabledForTenant {
                        endpoint_id,
                        tenant,
                        at,
                    }],
                    _ => vec![],
                }
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: EndpointEvent) {
        if let Some(registered) = RegisteredEndpoint::registered(&event) {
            self.endpoints.insert(registered.id, registered);
        } else if let Some(e) = self.endpoints.get_mut(&event.endpoint_id()) {
            e.apply(event);
        }
    }
}
