//! The WebhookTemplate aggregate (a tenant's named template: a kind, and a body for `custom`)
//! and what templates make of an event.

pub mod chat;
pub mod message;
pub mod render;
#[cfg(test)]
mod tests;

pub use chat::LimitBroken;
pub use message::Message;
pub use render::{render, CustomTemplate, Rendered, TemplateError, TemplateKind};

use crate::name::Name;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A template as it is made: the command asks for it, the event records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTemplate {
    pub template_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub kind: TemplateKind,
    pub body: Option<CustomTemplate>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TemplateEvent {
    TemplateCreated(NewTemplate),
    /// Only what changed is present.
    TemplateChanged {
        name: Option<Name>,
        body: Option<CustomTemplate>,
        at: DateTime<Utc>,
    },
    TemplateDeleted {
        at: DateTime<Utc>,
    },
}

impl TemplateEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TemplateEvent::TemplateCreated(new) => new.at,
            TemplateEvent::TemplateChanged { at, .. } | TemplateEvent::TemplateDeleted { at } => *at,
        }
    }
}

impl DomainEvent for TemplateEvent {
    fn event_type(&self) -> String {
        match self {
            TemplateEvent::TemplateCreated(_) => "TemplateCreated",
            TemplateEvent::TemplateChanged { .. } => "TemplateChanged",
            TemplateEvent::TemplateDeleted { .. } => "TemplateDeleted",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateCommand {
    Create(NewTemplate),
    Change {
        name: Option<Name>,
        body: Option<CustomTemplate>,
        at: DateTime<Utc>,
    },
    Delete {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateAggregateError {
    #[error("the template already exists")]
    AlreadyExists,
    #[error("template not found")]
    NotFound,
    #[error("the change changes nothing")]
    NothingChanged,
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// A live template, as its stream says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveTemplate {
    pub template_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub kind: TemplateKind,
    pub body: Option<CustomTemplate>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookTemplate {
    live: Option<LiveTemplate>,
    deleted: bool,
}

impl WebhookTemplate {
    pub fn template(&self) -> Option<&LiveTemplate> {
        self.live.as_ref()
    }

    fn live(&self) -> Result<&LiveTemplate, TemplateAggregateError> {
        self.live.as_ref().ok_or(TemplateAggregateError::NotFound)
    }

    fn decide(&self, command: TemplateCommand) -> Result<TemplateEvent, TemplateAggregateError> {
        match command {
            TemplateCommand::Create(_) if self.live.is_some() || self.deleted => {
                Err(TemplateAggregateError::AlreadyExists)
            }
            TemplateCommand::Create(new) => match (new.kind == TemplateKind::Custom, new.body.is_some()) {
                (true, false) => Err(TemplateError::NoBody.into()),
                (false, true) => Err(TemplateError::BodyNotCustom.into()),
                _ => Ok(TemplateEvent::TemplateCreated(new)),
            },
            TemplateCommand::Change { name, body, at } => {
                let live = self.live()?;
                if body.is_some() && live.kind != TemplateKind::Custom {
                    return Err(TemplateError::BodyNotCustom.into());
                }
                let name = name.filter(|n| *n != live.name);
                let body = body.filter(|b| Some(b) != live.body.as_ref());
                if name.is_none() && body.is_none() {
                    return Err(TemplateAggregateError::NothingChanged);
                }
                Ok(TemplateEvent::TemplateChanged { name, body, at })
            }
            TemplateCommand::Delete { at } => {
                self.live()?;
                Ok(TemplateEvent::TemplateDeleted { at })
            }
        }
    }
}

impl Aggregate for WebhookTemplate {
    const TYPE: &'static str = "WebhookTemplate";
    type Command = TemplateCommand;
    type Event = TemplateEvent;
    type Error = TemplateAggregateError;
    type Services = ();

    async fn handle(
        &mut self,
        command: TemplateCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), TemplateAggregateError> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: TemplateEvent) {
        match event {
            TemplateEvent::TemplateCreated(new) => {
                self.live = Some(LiveTemplate {
                    template_id: new.template_id,
                    tenant: new.tenant,
                    name: new.name,
                    kind: new.kind,
                    body: new.body,
                })
            }
            TemplateEvent::TemplateChanged { name, body, .. } => {
                if let Some(live) = self.live.as_mut() {
                    if let Some(name) = name {
                        live.name = name;
                    }
                    if body.is_some() {
                        live.body = body;
                    }
                }
            }
            TemplateEvent::TemplateDeleted { .. } => {
                self.live = None;
                self.deleted = true;
            }
        }
    }
}
