//! The Endpoint aggregate: the registered endpoints of one route shape (a path template with its
//! parameter names erased). Keeping every endpoint of a shape in one stream lets the event
//! store's concurrency check guarantee that no two endpoints claim the same method and path.

mod events;
mod registered;
mod spec;
#[cfg(test)]
mod tests;

pub use events::EndpointEvent;
pub use registered::{Deprecation, RegisteredEndpoint};
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
use cqrs_es::Aggregate;
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
