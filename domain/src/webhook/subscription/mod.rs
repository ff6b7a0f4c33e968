//! The WebhookSubscription aggregate: where and what a tenant's webhooks deliver, whether they
//! do (active, paused by an admin, disabled after persistent failure), and with which secret.
//!
//! The signing secret travels in events sealed (`SealedSecret`): the application layer seals
//! it with the node's key before the command and opens it to sign; the aggregate never sees
//! the plaintext.

mod commands;
#[cfg(test)]
mod tests;

pub use commands::*;

use super::event_type::EventTypes;
use super::target::WebhookUrl;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A signing secret as the event store keeps it: sealed by the application layer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(String);

impl SealedSecret {
    pub fn new(sealed: String) -> SealedSecret {
        SealedSecret(sealed)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(***)")
    }
}

/// Headers sent with every delivery, beside the signature's.
pub type CustomHeaders = BTreeMap<String, String>;

/// Whether deliveries are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    Active,
    /// Paused by an admin: events are not delivered until resumed.
    Paused,
    /// Stopped by the dispatcher; an admin re-enables it.
    Disabled {
        reason: DisabledReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DisabledReason {
    /// The receiver answered 410 Gone.
    Gone,
    /// Every delivery failed since `since`, for longer than the configured period.
    Failing { since: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WebhookEvent {
    WebhookCreated {
        webhook_id: Uuid,
        tenant: TenantId,
        #[serde(flatten)]
        settings: Settings,
        secret: SealedSecret,
        at: DateTime<Utc>,
    },
    /// Only the fields that changed are present.
    WebhookChanged {
        url: Option<WebhookUrl>,
        event_types: Option<EventTypes>,
        /// `Some(None)`: the template was removed (the default body is sent). Stored as absent,
        /// `null` or the id, so that a removal survives the round trip.
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
        template_id: Option<Option<Uuid>>,
        headers: Option<CustomHeaders>,
        description: Option<String>,
        at: DateTime<Utc>,
    },
    WebhookPaused {
        at: DateTime<Utc>,
    },
    WebhookResumed {
        at: DateTime<Utc>,
    },
    /// The new secret signs from now on; the previous one signs beside it until
    /// `previous_until`.
    WebhookSecretRotated {
        secret: SealedSecret,
        previous_until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    WebhookDisabled {
        reason: DisabledReason,
        at: DateTime<Utc>,
    },
    WebhookEnabled {
        at: DateTime<Utc>,
    },
    WebhookDeleted {
        at: DateTime<Utc>,
    },
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

impl WebhookEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            WebhookEvent::WebhookCreated { at, .. }
            | WebhookEvent::WebhookChanged { at, .. }
            | WebhookEvent::WebhookPaused { at }
            | WebhookEvent::WebhookResumed { at }
            | WebhookEvent::WebhookSecretRotated { at, .. }
            | WebhookEvent::WebhookDisabled { at, .. }
            | WebhookEvent::WebhookEnabled { at }
            | WebhookEvent::WebhookDeleted { at } => *at,
        }
    }
}

impl DomainEvent for WebhookEvent {
    fn event_type(&self) -> String {
        match self {
            WebhookEvent::WebhookCreated { .. } => "WebhookCreated",
            WebhookEvent::WebhookChanged { .. } => "WebhookChanged",
            WebhookEvent::WebhookPaused { .. } => "WebhookPaused",
            WebhookEvent::WebhookResumed { .. } => "WebhookResumed",
            WebhookEvent::WebhookSecretRotated { .. } => "WebhookSecretRotated",
            WebhookEvent::WebhookDisabled { .. } => "WebhookDisabled",
            WebhookEvent::WebhookEnabled { .. } => "WebhookEnabled",
            WebhookEvent::WebhookDeleted { .. } => "WebhookDeleted",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// What a live subscription is, as its stream says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub webhook_id: Uuid,
    pub tenant: TenantId,
    #[serde(flatten)]
    pub settings: Settings,
    pub status: Status,
    pub secret: SealedSecret,
    /// The secret before the last rotation, and until when it signs too.
    pub previous: Option<(SealedSecret, DateTime<Utc>)>,
    pub created_at: DateTime<Utc>,
}

/// One subscription's stream, folded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    live: Option<Subscription>,
    deleted: bool,
}

impl Webhook {
    pub fn subscription(&self) -> Option<&Subscription> {
        self.live.as_ref()
    }

    fn live(&self) -> Result<&Subscription, WebhookError> {
        self.live.as_ref().ok_or(WebhookError::NotFound)
    }

    fn decide(&self, command: WebhookCommand) -> Result<WebhookEvent, WebhookError> {
        match command {
            WebhookCommand::Create(c) => self.create(*c),
            command => decide_live(self.live()?, command),
        }
    }

    fn create(&self, c: CreateWebhook) -> Result<WebhookEvent, WebhookError> {
        // A deleted subscription's id is not reused: its history stays its own.
        if self.live.is_some() || self.deleted {
            return Err(WebhookError::AlreadyExists);
        }
        Ok(WebhookEvent::WebhookCreated {
            webhook_id: c.webhook_id,
            tenant: c.tenant,
            settings: c.settings,
            secret: c.secret,
            at: c.at,
        })
    }
}

fn decide_live(live: &Subscription, command: WebhookCommand) -> Result<WebhookEvent, WebhookError> {
    Ok(match command {
        WebhookCommand::Create(_) => return Err(WebhookError::AlreadyExists),
        WebhookCommand::Change(c) => changed(live, *c)?,
        WebhookCommand::Pause { at } => match live.status {
            Status::Active => WebhookEvent::WebhookPaused { at },
            Status::Paused => return Err(WebhookError::AlreadyPaused),
            Status::Disabled { .. } => return Err(WebhookError::IsDisabled),
        },
        WebhookCommand::Resume { at } => match live.status {
            Status::Paused => WebhookEvent::WebhookResumed { at },
            Status::Active => return Err(WebhookError::NotPaused),
            Status::Disabled { .. } => return Err(WebhookError::IsDisabled),
        },
        WebhookCommand::RotateSecret { secret, grace, at } => {
            if grace < chrono::Duration::zero() || grace > chrono::Duration::days(7) {
                return Err(WebhookError::Grace);
            }
            WebhookEvent::WebhookSecretRotated {
                secret,
                previous_until: at + grace,
                at,
            }
        }
        WebhookCommand::Disable { reason, at } => match live.status {
            Status::Disabled { .. } => return Err(WebhookError::IsDisabled),
            Status::Active | Status::Paused => WebhookEvent::WebhookDisabled { reason, at },
        },
        WebhookCommand::Enable { at } => match live.status {
            Status::Disabled { .. } => WebhookEvent::WebhookEnabled { at },
            Status::Active | Status::Paused => return Err(WebhookError::NotDisabled),
        },
        WebhookCommand::Delete { at } => WebhookEvent::WebhookDeleted { at },
    })
}

/// The change as an event holding only what differs; refused when nothing does.
fn changed(live: &Subscription, c: ChangeWebhook) -> Result<WebhookEvent, WebhookError> {
    fn differs<T: PartialEq>(new: Option<T>, old: &T) -> Option<T> {
        new.filter(|n| n != old)
    }
    let now = &live.settings;
    let event = WebhookEvent::WebhookChanged {
        url: differs(c.url, &now.url),
        event_types: differs(c.event_types, &now.event_types),
        template_id: differs(c.template_id, &now.template_id),
        headers: differs(c.headers, &now.headers),
        description: differs(c.description, &now.description),
        at: c.at,
    };
    match &event {
        WebhookEvent::WebhookChanged {
            url: None,
            event_types: None,
            template_id: None,
            headers: None,
            description: None,
            ..
        } => Err(WebhookError::NothingChanged),
        _ => Ok(event),
    }
}

impl Aggregate for Webhook {
    const TYPE: &'static str = "WebhookSubscription";
    type Command = WebhookCommand;
    type Event = WebhookEvent;
    type Error = WebhookError;
    type Services = ();

    async fn handle(&mut self, command: WebhookCommand, _: &(), sink: &EventSink<Self>) -> Result<(), WebhookError> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: WebhookEvent) {
        if let WebhookEvent::WebhookCreated {
            webhook_id,
            tenant,
            settings,
            secret,
            at,
        } = event
        {
            self.live = Some(Subscription {
                webhook_id,
                tenant,
                settings,
                status: Status::Active,
                secret,
                previous: None,
                created_at: at,
            });
            return;
        }
        if let WebhookEvent::WebhookDeleted { .. } = event {
            self.live = None;
            self.deleted = true;
            return;
        }
        let Some(live) = self.live.as_mut() else {
            return;
        };
        match event {
            WebhookEvent::WebhookCreated { .. } | WebhookEvent::WebhookDeleted { .. } => {}
            WebhookEvent::WebhookChanged {
                url,
                event_types,
                template_id,
                headers,
                description,
                ..
            } => {
                let now = &mut live.settings;
                if let Some(url) = url {
                    now.url = url;
                }
                if let Some(types) = event_types {
                    now.event_types = types;
                }
                if let Some(template) = template_id {
                    now.template_id = template;
                }
                if let Some(headers) = headers {
                    now.headers = headers;
                }
                if let Some(description) = description {
                    now.description = description;
                }
            }
            WebhookEvent::WebhookPaused { .. } => live.status = Status::Paused,
            WebhookEvent::WebhookResumed { .. } | WebhookEvent::WebhookEnabled { .. } => live.status = Status::Active,
            WebhookEvent::WebhookDisabled { reason, .. } => live.status = Status::Disabled { reason },
            WebhookEvent::WebhookSecretRotated {
                secret, previous_until, ..
            } => {
                let previous = std::mem::replace(&mut live.secret, secret);
                live.previous = Some((previous, previous_until));
            }
        }
    }
}
