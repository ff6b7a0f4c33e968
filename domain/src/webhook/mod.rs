//! Webhooks: what a subscription listens to, where it may deliver, how deliveries are signed,
//! and the WebhookSubscription aggregate.

pub mod alert;
pub mod delivery;
pub mod event_type;
pub mod notice;
pub mod signature;
pub mod subscription;
pub mod target;
pub mod template;

pub use event_type::{EventType, EventTypes};
pub use subscription::{Webhook, WebhookCommand, WebhookError, WebhookEvent};
