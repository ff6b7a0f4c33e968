//! End-to-end tests: the real application on a random port, real SQLite and PostgreSQL, HTTP.
//! Every scenario runs on both backends (`both!`); PostgreSQL ones are required in CI.

mod admin_tokens;
mod alerts;
mod analytics;
mod audit;
mod concurrency;
mod console;
mod contract;
mod edge;
mod endpoints;
mod error_codes;
mod expiry;
mod explorer;
mod graphql;
mod health;
mod keys;
mod migrations;
mod nginx;
mod nodes;
mod outage;
mod projections;
mod restart;
mod rollup_steps;
mod sdks;
mod tenancy;
mod usage_stream;
mod webhook_delivery;
mod webhook_log;
mod webhook_subscriptions;
mod webhooks;
