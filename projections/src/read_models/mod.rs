//! The shared read models and how a batch of events changes each.
//!
//! A model gets the batch's events after its own checkpoint, already decoded, and writes each
//! row it touches once: keys and endpoints load the states the batch touches, fold the events
//! into them with the domain's one fold, and write the rows derived from the result.

pub mod admin_tokens;
pub mod alert_rules;
pub mod audit;
pub mod endpoints;
pub use audit::details as redacted_details;
pub mod key_list;
mod key_lookup;
pub use key_lookup::secrets as key_secrets;
pub mod webhook_subscriptions;
pub mod webhooks;

use crate::ProjectionError;
use cqrs_es::Aggregate;
use keyledger_commands::log::LoggedEvent;
use keyledger_domain::webhook::alert::UsageAlert;
use keyledger_domain::webhook::template::{TemplateEvent, WebhookTemplate};
use keyledger_domain::webhook::{Webhook, WebhookEvent};
use keyledger_domain::{AdminToken, AdminTokenEvent, ApiKey, ApiKeyEvent, Endpoint, EndpointEvent};
use sqlx::AnyConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadModel {
    AdminTokens,
    KeyList,
    KeyLookup,
    Audit,
    Endpoints,
    Webhooks,
}

/// An event of a known aggregate, decoded once for all read models.
pub enum Decoded {
    Key(ApiKeyEvent),
    Token(AdminTokenEvent),
    Endpoint(EndpointEvent),
    Template(TemplateEvent),
    Webhook(WebhookEvent),
    Alert(keyledger_domain::webhook::alert::AlertEvent),
    Other,
}

/// A logged event with its decoded form.
pub struct Applied {
    pub logged: LoggedEvent,
    pub decoded: Decoded,
}

pub fn decode(event: &LoggedEvent) -> Result<Decoded, ProjectionError> {
    let undecodable = |e: serde_json::Error| ProjectionError::Undecodable {
        position: event.position,
        event_type: event.event_type.clone(),
        reason: e.to_string(),
    };
    let payload = event.payload.as_str();
    Ok(match event.aggregate_type.as_str() {
        t if t == ApiKey::TYPE => Decoded::Key(serde_json::from_str(payload).map_err(undecodable)?),
        t if t == AdminToken::TYPE => Decoded::Token(serde_json::from_str(payload).map_err(undecodable)?),
        t if t == Endpoint::TYPE => Decoded::Endpoint(serde_json::from_str(payload).map_err(undecodable)?),
        t if t == WebhookTemplate::TYPE => Decoded::Template(serde_json::from_str(payload).map_err(undecodable)?),
        t if t == Webhook::TYPE => Decoded::Webhook(serde_json::from_str(payload).map_err(undecodable)?),
        t if t == UsageAlert::TYPE => Decoded::Alert(serde_json::from_str(payload).map_err(undecodable)?),
        _ => Decoded::Other,
    })
}

impl ReadModel {
    pub const ALL: [ReadModel; 6] = [
        ReadModel::AdminTokens,
        ReadModel::KeyList,
        ReadModel::KeyLookup,
        ReadModel::Audit,
        ReadModel::Endpoints,
        ReadModel::Webhooks,
    ];

    /// The checkpoint name; also what `keyledger projections rebuild NAME` takes.
    pub fn name(self) -> &'static str {
        match self {
            ReadModel::AdminTokens => "admin_tokens",
            ReadModel::KeyList => "key_list",
            ReadModel::KeyLookup => "key_lookup",
            ReadModel::Audit => "audit",
            ReadModel::Endpoints => "endpoints",
            ReadModel::Webhooks => "webhooks",
        }
    }

    /// The tables this projection owns (emptied by a rebuild).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            ReadModel::AdminTokens => &["admin_tokens"],
            ReadModel::KeyList => &["api_keys"],
            ReadModel::KeyLookup => &["key_lookup"],
            ReadModel::Audit => &["audit_log"],
            ReadModel::Endpoints => &["endpoints", "endpoint_tenant_settings"],
            ReadModel::Webhooks => &["webhook_templates", "webhook_subscriptions", "alert_rules"],
        }
    }

    /// The tables its projector reads back by lists of ids while it applies a batch: their plans
    /// depend on the planner's statistics (see `statistics`).
    pub(crate) fn looked_up(self) -> &'static [&'static str] {
        match self {
            ReadModel::KeyList => &["api_keys"],
            ReadModel::KeyLookup => &["key_lookup"],
            ReadModel::Endpoints => &["endpoints", "endpoint_tenant_settings"],
            ReadModel::AdminTokens | ReadModel::Audit | ReadModel::Webhooks => &[],
        }
    }

    /// `models` in groups that each fold on their own: the key list and the key lookup fold the
    /// same keys (`Shared`), the others share nothing.
    pub(crate) fn folding_apart(models: &[ReadModel]) -> Vec<Vec<ReadModel>> {
        let keys = |m: &ReadModel| matches!(m, ReadModel::KeyList | ReadModel::KeyLookup);
        let mut groups: Vec<Vec<ReadModel>> = Vec::new();
        for model in models {
            match groups.iter_mut().find(|g| keys(model) && g.iter().any(keys)) {
                Some(group) => group.push(*model),
                None => groups.push(vec![*model]),
            }
        }
        groups
    }

    /// Indexes of its tables that only its queries use (the projector never reads by them): a
    /// bulk load builds them at the end (see `runner::deferred`).
    pub(crate) fn query_indexes(self) -> &'static [&'static str] {
        match self {
            ReadModel::KeyList => &["api_keys_tenant_position", "api_keys_status_expiry"],
            ReadModel::Audit => &["audit_log_tenant_position", "audit_log_actor", "audit_log_action"],
            // Small tables, or (the key lookup's by key id) read by the projector itself.
            ReadModel::AdminTokens | ReadModel::KeyLookup | ReadModel::Endpoints | ReadModel::Webhooks => &[],
        }
    }

    pub fn parse(name: &str) -> Result<ReadModel, ProjectionError> {
        ReadModel::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let known: Vec<&str> = ReadModel::ALL.iter().map(|m| m.name()).collect();
            ProjectionError::Unknown(name.to_owned(), known.join(", "))
        })
    }

    /// Applies `events` (in log order, all after this model's checkpoint) in the caller's
    /// transaction.
    pub(crate) async fn apply(
        self,
        conn: &mut AnyConnection,
        events: &[Applied],
        shared: &mut Shared,
    ) -> Result<(), ProjectionError> {
        match self {
            ReadModel::AdminTokens => admin_tokens::apply(conn, events).await,
            ReadModel::KeyList => key_list::apply(conn, events, shared).await,
            ReadModel::KeyLookup => key_lookup::apply(conn, events, shared).await,
            ReadModel::Audit => audit::apply(conn, events).await,
            ReadModel::Endpoints => endpoints::apply(conn, events).await,
            ReadModel::Webhooks => {
                webhooks::apply(conn, events).await?;
                webhook_subscriptions::apply(conn, events).await?;
                alert_rules::apply(conn, events).await
            }
        }
    }
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Store(keyledger_commands::StoreError::Corrupt(format!("{what}: {e}")))
}

/// The states a batch works on, by aggregate id, in first-touched order: loaded from `table`
/// where a stored state exists, else the default (not yet created) state.
pub(crate) struct States<S> {
    order: Vec<String>,
    by_id: std::collections::HashMap<String, S>,
}

impl<S: Default + serde::de::DeserializeOwned> States<S> {
    /// Loads the stored state of every id in `ids` (first-touched order, no duplicates).
    pub(crate) async fn load(
        conn: &mut AnyConnection,
        table: &str,
        id_column: &str,
        ids: Vec<String>,
    ) -> Result<Self, ProjectionError> {
        let mut by_id = std::collections::HashMap::with_capacity(ids.len());
        for (id, state) in crate::rows::states(conn, table, id_column, &ids).await? {
            let parsed: S = serde_json::from_str(&state).map_err(|e| corrupt(&format!("{table} {id} state"), e))?;
            by_id.insert(id, parsed);
        }
        for id in &ids {
            by_id.entry(id.clone()).or_default();
        }
        Ok(States { order: ids, by_id })
    }

    pub(crate) fn get(&self, id: &str) -> Option<&S> {
        self.by_id.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut S> {
        self.by_id.get_mut(id)
    }

    /// The states in first-touched order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &S)> {
        self.order.iter().filter_map(|id| self.by_id.get(id).map(|s| (id, s)))
    }
}

/// The distinct ids `pick` finds in the batch, in first-touched order.
pub(crate) fn touched(events: &[Applied], pick: impl Fn(&Applied) -> Option<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter_map(pick)
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// The keys a batch touches, folded: their states as stored in `table`, with the batch's key
/// events applied by the domain's fold. Both key read models start here.
pub(crate) struct FoldedKeys {
    /// Touched key ids, in first-touched order.
    pub(crate) ids: Vec<String>,
    /// The stored states before the batch, of the keys that had one.
    pub(crate) before: std::collections::HashMap<String, ApiKey>,
    pub(crate) states: States<ApiKey>,
    /// Position of each key's `KeyIssued`, for keys issued in this batch.
    pub(crate) issued_at: std::collections::HashMap<String, i64>,
    /// Position of each key's last event in this batch.
    pub(crate) last_at: std::collections::HashMap<String, i64>,
}

impl FoldedKeys {
    pub(crate) async fn fold(
        conn: &mut AnyConnection,
        table: &str,
        events: &[Applied],
    ) -> Result<Option<Self>, ProjectionError> {
        let ids = touched(events, |e| match e.decoded {
            Decoded::Key(_) => Some(e.logged.aggregate_id.clone()),
            _ => None,
        });
        if ids.is_empty() {
            return Ok(None);
        }
        let states: States<ApiKey> = States::load(conn, table, "key_id", ids.clone()).await?;
        let before = states
            .iter()
            .filter(|(_, state)| state.issued().is_some())
            .map(|(id, state)| (id.clone(), state.clone()))
            .collect();
        let mut folded = FoldedKeys {
            states,
            before,
            ids,
            issued_at: Default::default(),
            last_at: Default::default(),
        };
        for e in events {
            let Decoded::Key(event) = &e.decoded else { continue };
            let id = &e.logged.aggregate_id;
            if matches!(event, ApiKeyEvent::KeyIssued { .. }) {
                folded.issued_at.insert(id.clone(), e.logged.position);
            }
            folded.last_at.insert(id.clone(), e.logged.position);
            if let Some(state) = folded.states.get_mut(id) {
                state.apply(event.clone());
            }
        }
        Ok(Some(folded))
    }
}

/// What the models applied in one transaction share: the key list and the key lookup stand at
/// the same position almost always, so the keys a batch touches are loaded and folded once for
/// both (each model's stored states are the same fold of the same events).
#[derive(Default)]
pub(crate) struct Shared {
    /// The first position of the events folded, and the fold.
    keys: Option<(i64, Option<FoldedKeys>)>,
}

impl Shared {
    /// The keys `events` touch, folded; loaded from `table` unless already folded from the same
    /// position in this transaction.
    pub(crate) async fn keys<'s>(
        &'s mut self,
        conn: &mut AnyConnection,
        table: &str,
        events: &[Applied],
    ) -> Result<Option<&'s FoldedKeys>, ProjectionError> {
        let first = events.first().map(|e| e.logged.position).unwrap_or(0);
        if !matches!(&self.keys, Some((at, _)) if *at == first) {
            self.keys = Some((first, FoldedKeys::fold(conn, table, events).await?));
        }
        Ok(self.keys.as_ref().and_then(|(_, folded)| folded.as_ref()))
    }
}
