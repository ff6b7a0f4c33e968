//! Sending: one attempt of one delivery. The body is rendered with the subscription's template,
//! signed with each secret that signs now, POSTed, and what came back is judged by the delivery
//! policy: delivered, gone, or tried again on the schedule.

use super::client::Client;
use super::queue::{Attempted, Claimed};
use super::Settings;
use crate::read_models::webhook_subscriptions::Target;
use crate::read_models::webhooks;
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::{CommandBus, Database};
use keyledger_domain::webhook::delivery::Answer;
use keyledger_domain::webhook::signature::{signature_header, SigningSecret};
use keyledger_domain::webhook::template::{render, CustomTemplate, Message, TemplateKind};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a template read stays good: a changed template reaches deliveries within it.
const TEMPLATE_TTL: Duration = Duration::from_secs(2);

type Secrets = Vec<(SigningSecret, Option<DateTime<Utc>>)>;
type CachedTemplate = (Instant, Option<(TemplateKind, Option<CustomTemplate>)>);

/// What every attempt shares: the client, the settings, and what was read for earlier ones.
pub(crate) struct Sender {
    pub(crate) db: Database,
    pub(crate) bus: CommandBus,
    pub(crate) client: Client,
    pub(crate) settings: Settings,
    /// Opened secrets by subscription and the time of its last rotation.
    secrets: Mutex<HashMap<(String, Option<i64>), Secrets>>,
    templates: Mutex<HashMap<String, CachedTemplate>>,
}

impl Sender {
    pub(crate) fn new(db: Database, bus: CommandBus, client: Client, settings: Settings) -> Sender {
        Sender {
            db,
            bus,
            client,
            settings,
            secrets: Mutex::default(),
            templates: Mutex::default(),
        }
    }

    /// Makes one attempt of `delivery` to `target` at `now`.
    pub(crate) async fn attempt(&self, delivery: &Claimed, target: &Target, now: DateTime<Utc>) -> Attempted {
        let number = delivery.attempts + 1;
        let mut attempted = Attempted {
            delivery_id: delivery.delivery_id.clone(),
            webhook_id: delivery.webhook_id.clone(),
            tenant: delivery.tenant.clone(),
            event_type: delivery.event_type.clone(),
            attempt: number,
            url: target.url.clone(),
            delivered: false,
            status_code: None,
            error: None,
            request_body: String::new(),
            response_body: None,
            duration_ms: 0,
            at_ms: now.timestamp_millis(),
            next_attempt_ms: None,
            skipped: false,
            unsent: false,
        };
        let prepared = match self.prepare(delivery, target, now).await {
            Ok(prepared) => prepared,
            Err(why) => {
                tracing::warn!(webhook_id = %delivery.webhook_id, error = %why, "a webhook delivery could not be prepared");
                metrics::counter!("keyledger_webhook_attempts_total", "outcome" => "unsent").increment(1);
                attempted.error = Some(why);
                attempted.unsent = true;
                attempted.next_attempt_ms = self.retry(number, now, None);
                return attempted;
            }
        };
        let (body, headers) = prepared;
        attempted.request_body = body.clone();
        let answered = self.client.post(&target.url, &headers, body, now).await;
        let answer = answered.status.map(Answer::of_status).unwrap_or(Answer::Failed);
        attempted.delivered = answer == Answer::Delivered;
        attempted.status_code = answered.status;
        attempted.error = answered.error.or_else(|| match answer {
            Answer::Delivered => None,
            Answer::Gone => Some("the receiver answered 410 Gone: the subscription is disabled".to_owned()),
            Answer::Failed => answered.status.map(|s| format!("the receiver answered {s}")),
        });
        attempted.response_body = answered.body;
        attempted.duration_ms = answered.duration_ms;
        if answer == Answer::Failed {
            attempted.next_attempt_ms = self.retry(number, now, answered.retry_after);
        }
        metrics::counter!("keyledger_webhook_attempts_total", "outcome" => match answer {
            Answer::Delivered => "delivered",
            Answer::Gone => "gone",
            Answer::Failed => "failed",
        })
        .increment(1);
        metrics::histogram!("keyledger_webhook_attempt_seconds").record(answered.duration_ms as f64 / 1e3);
        attempted
    }

    /// When attempt `failed` + 1 is due, if there is one.
    fn retry(&self, failed: u32, now: DateTime<Utc>, retry_after: Option<chrono::Duration>) -> Option<i64> {
        let spread = rand::random::<f64>();
        self.settings
            .schedule
            .next(failed, now, retry_after, spread)
            .map(|at| at.timestamp_millis())
    }

    /// The body and headers of an attempt, or why it cannot be made.
    async fn prepare(
        &self,
        delivery: &Claimed,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<(String, String)>), String> {
        let payload: serde_json::Value =
            serde_json::from_str(&delivery.message).map_err(|e| format!("the stored message does not read: {e}"))?;
        let message = Message::from_payload(delivery.delivery_id.clone(), &payload)
            .ok_or("the stored message does not read as a message")?;
        let (kind, custom) = match &target.template_id {
            Some(id) => self
                .template(id)
                .await
                .map_err(|e| format!("the template could not be read: {e}"))?
                .unwrap_or((TemplateKind::Default, None)),
            None => (TemplateKind::Default, None),
        };
        let rendered =
            render(kind, custom.as_ref(), &message).map_err(|e| format!("the template did not render: {e}"))?;
        let secrets = self
            .secrets(target, now)
            .await
            .map_err(|e| format!("the signing secret could not be opened: {e}"))?;
        let timestamp = now.timestamp();
        let signature = signature_header(
            secrets.iter(),
            &delivery.delivery_id,
            timestamp,
            rendered.body.as_bytes(),
        );
        let mut headers = vec![
            ("content-type".to_owned(), rendered.content_type.to_owned()),
            ("webhook-id".to_owned(), delivery.delivery_id.clone()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signature),
        ];
        headers.extend(target.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok((rendered.body, headers))
    }

    /// The secrets that sign at `now`, newest first.
    async fn secrets(&self, target: &Target, now: DateTime<Utc>) -> Result<Vec<SigningSecret>, String> {
        let key = (target.id.clone(), target.secret_rotated_at_ms);
        let cached = self.secrets.lock().ok().and_then(|c| c.get(&key).cloned());
        let secrets = match cached {
            Some(secrets) => secrets,
            None => {
                let id = target
                    .id
                    .parse()
                    .map_err(|_| "the subscription's id is not a UUID".to_owned())?;
                let secrets = self
                    .bus
                    .webhook_signing_secrets(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the subscription is gone")?;
                if let Ok(mut cache) = self.secrets.lock() {
                    cache.retain(|(id, _), _| id != &target.id);
                    cache.insert(key, secrets.clone());
                }
                secrets
            }
        };
        Ok(secrets
            .into_iter()
            .filter(|(_, until)| until.is_none_or(|until| until > now))
            .map(|(secret, _)| secret)
            .collect())
    }

    /// A template's kind and text, or `None` when it was deleted (the default body is sent).
    async fn template(&self, id: &str) -> Result<Option<(TemplateKind, Option<CustomTemplate>)>, ProjectionError> {
        if let Some((read, template)) = self.templates.lock().ok().and_then(|c| c.get(id).cloned()) {
            if read.elapsed() < TEMPLATE_TTL {
                return Ok(template);
            }
        }
        let row = webhooks::get_template(&self.db, id).await?;
        let template = row.and_then(|row| {
            let kind = row.kind.parse::<TemplateKind>().ok()?;
            let custom = row.body.and_then(|b| CustomTemplate::try_from(b).ok());
            Some((kind, custom))
        });
        if let Ok(mut cache) = self.templates.lock() {
            cache.insert(id.to_owned(), (Instant::now(), template.clone()));
        }
        Ok(template)
    }
}

/// A delivery that is not attempted: its subscription is gone or disabled.
pub(crate) fn skipped(delivery: &Claimed, target: &Target, now: DateTime<Utc>) -> Attempted {
    let why = match target.status.as_str() {
        "disabled" => "the subscription was disabled",
        _ => "the subscription was deleted",
    };
    Attempted {
        delivery_id: delivery.delivery_id.clone(),
        webhook_id: delivery.webhook_id.clone(),
        tenant: delivery.tenant.clone(),
        event_type: delivery.event_type.clone(),
        attempt: delivery.attempts,
        url: target.url.clone(),
        delivered: false,
        status_code: None,
        error: Some(why.to_owned()),
        request_body: String::new(),
        response_body: None,
        duration_ms: 0,
        at_ms: now.timestamp_millis(),
        next_attempt_ms: None,
        skipped: true,
        unsent: true,
    }
}
