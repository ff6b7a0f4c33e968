//! What can be asked of a subscription, and why it can be refused.

use super::{CustomHeaders, DisabledReason, SealedSecret};
use crate::tenant::TenantId;
use crate::webhook::event_type::EventTypes;
use crate::webhook::target::WebhookUrl;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every command carries `at`, read by the command bus from its injected clock.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookCommand {
    Create(Box<CreateWebhook>),
    Change(Box<ChangeWebhook>),
    Pause {
        at: DateTime<Utc>,
    },
    Resume {
        at: DateTime<Utc>,
    },
    RotateSecret {
        secret: SealedSecret,
        /// How long the previous secret keeps signing (24 h by default).
        grace: chrono::Duration,
        at: DateTime<Utc>,
    },
    /// Sent by the dispatcher.
    Disable {
        reason: DisabledReason,
        at: DateTime<Utc>,
    },
    Enable {
        at: DateTime<Utc>,
    },
    Delete {
        at: DateTime<Utc>,
    },
}

/// What an admin sets on a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub url: WebhookUrl,
    pub event_types: EventTypes,
    pub template_id: Option<Uuid>,
    pub headers: CustomHeaders,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateWebhook {
    pub webhook_id: Uuid,
    pub tenant: TenantId,
    pub settings: Settings,
    pub secret: SealedSecret,
    pub at: DateTime<Utc>,
}

/// Fields left `None` stay as they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeWebhook {
    pub url: Option<WebhookUrl>,
    pub event_types: Option<EventTypes>,
    pub template_id: Option<Option<Uuid>>,
    pub headers: Option<CustomHeaders>,
    pub description: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook already exists")]
    AlreadyExists,
    #[error("webhook not found")]
    NotFound,
    #[error("the change changes nothing")]
    NothingChanged,
    #[error("the webhook is already paused")]
    AlreadyPaused,
    #[error("the webhook is not paused")]
    NotPaused,
    #[error("the webhook is disabled: enable it instead")]
    IsDisabled,
    #[error("the webhook is not disabled")]
    NotDisabled,
    #[error("the previous secret's grace period must be from 0 to 7 days")]
    Grace,
}
