//! The admin REST API under `/v1`, its OpenAPI document and docs page.

pub mod admin_tokens;
pub mod audit;
pub mod dto;
pub mod health;
pub mod keys;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Keyledger admin API", description = "Issue and manage API keys and admin tokens; audit every change."),
    paths(
        keys::create, keys::list, keys::get, keys::update, keys::revoke, keys::rotate, keys::history,
        admin_tokens::create, admin_tokens::list, admin_tokens::delete,
        audit::list,
    ),
    modifiers(&AdminTokenAuth),
    tags((name = "keys"), (name = "admin tokens"), (name = "audit"))
)]
pub struct ApiDoc;

struct AdminTokenAuth;

impl Modify for AdminTokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", get(keys::get).patch(keys::update))
        .route("/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/v1/keys/{id}/history", get(keys::history))
        .route("/v1/admin-tokens", post(admin_tokens::create).get(admin_tokens::list))
        .route("/v1/admin-tokens/{id}", axum::routing::delete(admin_tokens::delete))
        .route("/v1/audit", get(audit::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}
