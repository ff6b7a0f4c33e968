//! Keyledger's application layer: the event store on SQLite or PostgreSQL, the global log, the
//! command bus with its authorisation and tenant scoping, and the services the domain needs
//! (clock, secret generation and hashing).

mod append;
pub mod auth;
pub mod bus;
pub mod clock;
mod database;
mod error;
pub mod group;
pub mod log;
pub mod sealing;
pub mod secrets;
mod store;
pub mod verifiers;
pub mod wake;

pub use bus::{CommandBus, CommandContext, Committed};
pub use database::{redact_url, Backend, Database, WriteTurn};
pub use error::{CommandError, StoreError};
pub use store::EventRepo;
