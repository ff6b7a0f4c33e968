//! The `keyledger` binary's library: configuration, the admin REST and GraphQL APIs, the expiry
//! scheduler and telemetry. `main.rs` only parses the command line and calls in here.

pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod edge;
pub mod error;
mod extract;
pub mod graphql;
pub mod operations;
pub mod rest;
pub mod scheduler;
pub mod sdk;
pub mod state;
pub mod telemetry;
pub mod tenant_openapi;

pub use app::Application;
pub use config::{Cli, Config};
