//! Matching the log to subscriptions: each event receivers hear of becomes a delivery row for
//! every subscription that listens to it, written with the dispatcher's checkpoint in one
//! transaction, so that a crash neither loses an event nor queues one twice. It never runs ahead
//! of the read models it reads names and subscriptions from.

use super::queue::{self, NewDelivery};
use crate::read_models::webhook_subscriptions::{self, Listener};
use crate::read_models::{admin_tokens, decode, endpoints, key_list, Decoded};
use crate::ProjectionError;
use keyledger_commands::log::{self, LoggedEvent};
use keyledger_commands::Database;
use keyledger_domain::webhook::notice::{self, Audience, Notice, Subject};
use keyledger_domain::webhook::template::Message;
use keyledger_domain::webhook::WebhookEvent;
use keyledger_domain::TenantId;
use sqlx::AnyConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Events matched per transaction.
const BATCH: i64 = 2_000;
/// Events the checkpoint may lag behind while no subscription exists.
const UNHEARD_GAP: i64 = 100_000;

/// Derives a delivery's id from its event and subscription, so that the same match is the same
/// delivery (and the same `webhook-id`) however often it is made.
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6b65_796c_6564_6765_7277_6562_686f_6f6b);

pub(crate) fn delivery_id(position: i64, webhook_id: &str) -> String {
    let id = Uuid::new_v5(&DELIVERY_NAMESPACE, format!("{position}/{webhook_id}").as_bytes());
    format!("msg_{}", id.simple())
}

pub(crate) enum Matched {
    /// Matched the log up to `position`; `queued` deliveries are due now.
    Advanced { queued: usize, full: bool },
    /// Nothing new the read models include.
    Idle,
    /// Another node is matching.
    Busy,
}

/// Matches the next batch of events the read models include.
pub(crate) async fn step(db: &Database, now_ms: i64) -> Result<Matched, ProjectionError> {
    // Looked at first without a lock: an idle matcher takes no write lock, and with no
    // subscriptions it moves its checkpoint only now and then (a subscription made later hears
    // only later events, so the gap is skipped, not matched), instead of a write transaction
    // beside every batch of commands.
    {
        let mut conn = db.pool().acquire().await?;
        let (upto, from) = (
            crate::runner::projected(&mut conn).await?,
            queue::checkpoint(&mut conn).await?,
        );
        if upto <= from || (upto - from < UNHEARD_GAP && !webhook_subscriptions::any(&mut conn).await?) {
            return Ok(Matched::Idle);
        }
    }
    let _turn = db.write_turn().await;
    let mut tx = queue::quick(db).await?;
    let Some(from) = queue::lock_checkpoint(&mut tx, db.backend()).await? else {
        return Ok(Matched::Busy);
    };
    let upto = crate::runner::projected(&mut tx).await?;
    if upto <= from {
        return Ok(Matched::Idle);
    }
    let listeners = webhook_subscriptions::listeners(&mut tx).await?;
    if listeners.is_empty() {
        // Nobody listens: nothing to match, and nothing to read or decode.
        queue::save_checkpoint(&mut tx, upto).await?;
        tx.commit().await?;
        return Ok(Matched::Advanced { queued: 0, full: false });
    }
    let events: Vec<LoggedEvent> = log::read_after(&mut *tx, from, BATCH.min(upto - from))
        .await?
        .into_iter()
        .filter(|e| e.position <= upto)
        .collect();
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(Matched::Idle);
    };
    let full = events.len() as i64 >= BATCH;
    let decoded = events
        .iter()
        .map(|e| decode(e).map(|d| (e, d)))
        .collect::<Result<Vec<_>, _>>()?;
    let subjects = Subjects::read(&mut tx, &decoded, &listeners).await?;
    let mut rows = Vec::new();
    for (logged, event) in &decoded {
        if let Decoded::Webhook(event @ (WebhookEvent::WebhookResumed { .. } | WebhookEvent::WebhookEnabled { .. })) =
            event
        {
            queue::release_held(&mut tx, &logged.aggregate_id, now_ms).await?;
            if matches!(event, WebhookEvent::WebhookEnabled { .. }) {
                queue::forget_health(&mut tx, &logged.aggregate_id).await?;
            }
        }
        if let Some(notice) = notice_of(logged, event, &subjects) {
            rows.extend(deliveries(logged, &notice, &listeners));
        }
    }
    queue::insert(&mut tx, &rows, now_ms).await?;
    queue::save_checkpoint(&mut tx, last).await?;
    tx.commit().await?;
    let queued = rows.iter().filter(|r| r.status == "pending").count();
    Ok(Matched::Advanced { queued, full })
}

/// The delivery rows of one notice: a row for each subscription of its audience, created before
/// the event, that listens to its type.
fn deliveries(logged: &LoggedEvent, notice: &Notice, listeners: &[Listener]) -> Vec<NewDelivery> {
    let hears = |l: &&Listener| {
        l.position < logged.position
            && l.event_types.matches(notice.event_type)
            && match &notice.audience {
                Audience::Tenant(t) => t.as_str() == l.tenant,
                Audience::Everyone => true,
            }
    };
    listeners
        .iter()
        .filter(hears)
        .filter_map(|l| {
            let tenant: TenantId = l.tenant.parse().ok()?;
            let delivery_id = delivery_id(logged.position, &l.id);
            let message = Message {
                id: delivery_id.clone(),
                event_type: notice.event_type,
                timestamp: notice.at,
                tenant,
                data: notice.data.clone(),
            };
            let (status, error) = match l.status.as_str() {
                "paused" => ("held", None),
                "disabled" => ("failed", Some("the subscription was disabled")),
                _ => ("pending", None),
            };
            Some(NewDelivery {
                delivery_id,
                webhook_id: l.id.clone(),
                tenant: l.tenant.clone(),
                event_type: notice.event_type.as_str(),
                event_position: logged.position,
                message: message.payload().to_string(),
                status,
                error,
            })
        })
        .collect()
}

fn notice_of(logged: &LoggedEvent, event: &Decoded, subjects: &Subjects) -> Option<Notice> {
    let id = logged.aggregate_id.as_str();
    let stream: Option<Uuid> = id.parse().ok();
    let tenant = || logged.metadata.tenant.parse::<TenantId>().ok();
    match event {
        Decoded::Key(e) => notice::of_key(stream?, tenant()?, e, &named(&subjects.keys, id)),
        Decoded::Token(e) => notice::of_token(stream?, tenant()?, e, &named(&subjects.tokens, id)),
        Decoded::Endpoint(e) => {
            let route = subjects.endpoints.get(&e.endpoint_id().to_string());
            let subject = Subject {
                path: route.map(|(path, _)| path.clone()),
                methods: route.map(|(_, methods)| methods.clone()),
                ..Subject::default()
            };
            notice::of_endpoint(e, &subject)
        }
        Decoded::Webhook(e) => {
            let subject = Subject {
                url: subjects.webhooks.get(id).cloned(),
                ..Subject::default()
            };
            notice::of_webhook(stream?, tenant()?, e, &subject)
        }
        Decoded::Alert(e) => notice::of_alert(stream?, tenant()?, e),
        Decoded::Template(_) | Decoded::Other => None,
    }
}

/// The names and routes of what a batch's events are about, read once per batch.
#[derive(Default)]
struct Subjects {
    keys: HashMap<String, String>,
    tokens: HashMap<String, String>,
    endpoints: HashMap<String, (String, Vec<String>)>,
    webhooks: HashMap<String, String>,
}

impl Subjects {
    async fn read(
        conn: &mut AnyConnection,
        events: &[(&LoggedEvent, Decoded)],
        listeners: &[Listener],
    ) -> Result<Self, ProjectionError> {
        let (mut keys, mut tokens, mut routes) = (Vec::new(), Vec::new(), Vec::new());
        for (logged, event) in events {
            let id = logged.aggregate_id.clone();
            match event {
                Decoded::Key(_) => keys.push(id),
                Decoded::Token(_) => tokens.push(id),
                Decoded::Endpoint(e) => routes.push(e.endpoint_id().to_string()),
                _ => {}
            }
        }
        for ids in [&mut keys, &mut tokens, &mut routes] {
            ids.sort_unstable();
            ids.dedup();
        }
        let mut subjects = Subjects::default();
        if !keys.is_empty() {
            subjects.keys = key_list::names(conn, &keys).await?;
        }
        if !tokens.is_empty() {
            subjects.tokens = admin_tokens::names(conn, &tokens).await?;
        }
        if !routes.is_empty() {
            subjects.endpoints = endpoints::routes(conn, &routes).await?;
        }
        // A disabled subscription is still a listener: its URL is at hand.
        subjects.webhooks = listeners.iter().map(|l| (l.id.clone(), l.url.clone())).collect();
        Ok(subjects)
    }
}

fn named(names: &HashMap<String, String>, id: &str) -> Subject {
    Subject {
        name: names.get(id).cloned(),
        ..Subject::default()
    }
}

/// Releases held deliveries whose subscription is no longer paused (see
/// `queue::release_held_except`); how many.
pub(crate) async fn sweep(db: &Database, now_ms: i64) -> Result<u64, ProjectionError> {
    let mut conn = db.pool().acquire().await?;
    if !queue::any_held(&mut conn).await? {
        return Ok(0);
    }
    let paused: Vec<String> = webhook_subscriptions::listeners(&mut conn)
        .await?
        .into_iter()
        .filter(|l| l.status == "paused")
        .map(|l| l.id)
        .collect();
    drop(conn);
    queue::release_held_except(db, &paused, now_ms).await
}
