//! Keyledger's domain: aggregates, commands, events and value objects.
//!
//! Pure by design: no I/O, no clock, no randomness. Times arrive inside commands (read by the
//! application layer from its injected clock); secrets arrive already generated and hashed.

pub mod admin_token;
pub mod api_key;
pub mod ip_rules;
pub mod key_format;
pub mod name;
pub mod permission;
pub mod rate_limits;
pub mod scope;
pub mod tenant;

pub use admin_token::{AdminToken, AdminTokenCommand, AdminTokenError, AdminTokenEvent};
pub use api_key::{ApiKey, ApiKeyCommand, ApiKeyError, ApiKeyEvent, KeyStatus};
pub use permission::{Actor, Permission};
pub use scope::{Scope, ScopeGrant};
pub use tenant::TenantId;
