//! Keyledger's projections: workers that tail the global log and keep the read models current,
//! plus the queries over those read models.

pub mod catalogue;
pub mod edge_cache;
mod error;
pub mod queries;
pub mod read_models;
mod rows;
pub mod runner;
pub mod usage;

pub use error::ProjectionError;
pub use read_models::ReadModel;
pub use runner::{rebuild, Catchup, ProjectionRunner};
