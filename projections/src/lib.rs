//! Keyledger's projections: workers that tail the global log and keep the read models current,
//! each read model's module holding both what writes its tables and the queries that read them.

pub mod catalogue;
pub mod dispatch;
pub mod edge_cache;
mod error;
pub mod read_models;
mod rows;
pub mod runner;
mod sql;
mod statistics;
pub mod usage;

pub use error::ProjectionError;
pub use read_models::{
    admin_tokens, alert_rules, audit, endpoints, key_list, webhook_subscriptions, webhooks, ReadModel,
};
pub use runner::{rebuild, Catchup, ProjectionRunner};
pub use sql::{parse_cursor, Page, MAX_PAGE};
