//! Bodies of the webhook API.

use async_graphql::{Enum, InputObject, MaybeUndefined, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_projections::webhooks::TemplateRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a template makes of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
#[graphql(name = "WebhookTemplateKind")]
pub enum TemplateKindBody {
    /// The event as JSON: `type`, `timestamp`, `tenant`, `data`.
    Default,
    /// Slack blocks with a text fallback.
    Slack,
    /// A Microsoft Teams message holding an Adaptive Card (Workflows webhooks).
    Teams,
    /// Discord content and an embed.
    Discord,
    /// `body`: a minijinja template over `type`, `timestamp`, `tenant`, `data`, `id`, `title`
    /// and `summary`.
    Custom,
}

#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "CreateWebhookTemplateInput")]
pub struct CreateTemplateBody {
    pub name: String,
    pub kind: TemplateKindBody,
    /// The template's text: for `custom` only, and required there.
    pub body: Option<String>,
    /// Superusers may create for another tenant; default: the caller's.
    pub tenant: Option<String>,
}

/// Fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "UpdateWebhookTemplateInput")]
pub struct UpdateTemplateBody {
    pub name: Option<String>,
    /// A custom template's new text.
    pub body: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookTemplate")]
pub struct TemplateView {
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// `default`, `slack`, `teams`, `discord` or `custom`.
    pub kind: String,
    /// A custom template's text.
    pub body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TemplateRow> for TemplateView {
    fn from(r: TemplateRow) -> Self {
        TemplateView {
            id: r.id,
            tenant: r.tenant,
            name: r.name,
            kind: r.kind,
            body: r.body,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestTemplateBody {
    /// The sample event's type (default `key.created`).
    pub event_type: Option<String>,
}

/// A template not yet saved, to preview: the console's live preview while one is written.
#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "PreviewWebhookTemplateInput")]
pub struct PreviewTemplateBody {
    pub kind: TemplateKindBody,
    /// A custom template's text (required for `custom`).
    pub body: Option<String>,
    /// The sample event's type (default `key.created`).
    pub event_type: Option<String>,
}

/// A platform limit the body breaks: the platform would refuse it.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "PlatformLimitBroken")]
pub struct LimitBrokenView {
    /// `slack`, `discord` or `teams`.
    pub platform: String,
    pub limit: String,
    pub actual: u64,
}

/// The exact body a delivery of the sample event would carry.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookTemplateTest")]
pub struct TemplateTestView {
    pub event_type: String,
    pub content_type: String,
    pub body: String,
    pub limits_broken: Vec<LimitBrokenView>,
}

#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "CreateWebhookInput")]
pub struct CreateWebhookBody {
    /// Where deliveries are POSTed: http or https.
    pub url: String,
    /// Event types (`key.created`, `key.revoked`, …), or `["*"]` for every type.
    pub event_types: Vec<String>,
    /// A template of the tenant's; default: the event as JSON.
    pub template_id: Option<String>,
    /// Headers sent with every delivery (a JSON object of strings).
    #[schema(value_type = Option<Object>)]
    pub headers: Option<async_graphql::Json<Headers>>,
    pub description: Option<String>,
    /// Superusers may create for another tenant; default: the caller's.
    pub tenant: Option<String>,
}

pub type Headers = std::collections::BTreeMap<String, String>;

/// Fields left out stay as they are; `template_id: null` goes back to the default body.
#[derive(Debug, Default, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "UpdateWebhookInput")]
pub struct UpdateWebhookBody {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub template_id: MaybeUndefined<String>,
    #[schema(value_type = Option<Object>)]
    pub headers: Option<async_graphql::Json<Headers>>,
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "Webhook")]
pub struct WebhookView {
    pub id: String,
    /// The signing secret (`whsec_…`): only in the answer to create and to rotate-secret, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub tenant: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub template_id: Option<String>,
    #[schema(value_type = Object)]
    pub headers: async_graphql::Json<Headers>,
    pub description: String,
    /// `active`, `paused` or `disabled`.
    pub status: String,
    /// Why it is disabled: `{"kind": "gone"}` or `{"kind": "failing", "since": …}`.
    #[schema(value_type = Option<Object>)]
    #[graphql(skip)]
    pub disabled: Option<serde_json::Value>,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<keyledger_projections::webhook_subscriptions::SubscriptionRow> for WebhookView {
    fn from(r: keyledger_projections::webhook_subscriptions::SubscriptionRow) -> Self {
        WebhookView {
            id: r.id,
            secret: None,
            tenant: r.tenant,
            url: r.url,
            event_types: r.event_types,
            template_id: r.template_id,
            headers: async_graphql::Json(r.headers),
            description: r.description,
            status: r.status,
            disabled: r.disabled,
            secret_rotated_at: r.secret_rotated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// Seconds the previous secret keeps signing beside the new one (default 86400, at most 604800).
    pub grace_seconds: Option<i64>,
}
