//! The admin REST API under `/v1`, its OpenAPI document and docs page.

pub mod admin_tokens;
pub mod alert_dto;
pub mod alert_rules;
pub mod analytics;
pub mod audit;
mod contract;
pub mod delivery_dto;
pub mod dto;
pub mod endpoint_dto;
pub mod endpoints;
pub mod health;
pub mod keys;
mod links;
pub mod token_dto;
pub mod webhook_deliveries;
pub mod webhook_dto;
pub mod webhook_subscriptions;
pub mod webhooks;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use contract::ErrorResponses;
use links::CreatedLinks;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Keyledger admin API", description = "Issue and manage API keys and admin tokens; audit every change."),
    paths(
        keys::create, keys::list, keys::get, keys::update, keys::revoke, keys::rotate, keys::history,
        admin_tokens::create, admin_tokens::list, admin_tokens::delete,
        audit::list,
        analytics::overview, analytics::analytics, analytics::usage_stream, analytics::usage_export,
        endpoints::create, endpoints::list, endpoints::get, endpoints::update, endpoints::deprecate,
        endpoints::undeprecate, endpoints::activate, endpoints::deactivate, endpoints::enable, endpoints::disable,
        endpoints::history, endpoints::try_it, endpoints::import_document, endpoints::tenant_json, endpoints::tenant_yaml, endpoints::sdk,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete, webhooks::test, webhooks::preview,
        webhook_subscriptions::create, webhook_subscriptions::list, webhook_subscriptions::get, webhook_subscriptions::update,
        webhook_subscriptions::delete, webhook_subscriptions::pause, webhook_subscriptions::resume, webhook_subscriptions::enable,
        webhook_subscriptions::rotate_secret,
        webhook_deliveries::list, webhook_deliveries::get, webhook_deliveries::resend, webhook_deliveries::recover,
        webhook_deliveries::stats,
        alert_rules::create, alert_rules::list, alert_rules::get, alert_rules::delete,
    ),
    components(schemas(crate::error::ErrorBody, crate::operations::analytics::stream::UsageLag)),
    modifiers(&AdminTokenAuth, &UniqueOperationIds, &ErrorResponses, &CreatedLinks),
    tags((name = "keys"), (name = "admin tokens"), (name = "audit"), (name = "analytics"), (name = "endpoints"), (name = "webhooks"))
)]
pub struct ApiDoc;

/// `/openapi.json`: the document utoipa builds, with its links spelt as the specification does.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    links::spell_as_the_specification_does(&mut document);
    document
}

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

/// utoipa names operations after their handler functions (`list`, `create`), which repeat across
/// modules; OpenAPI requires unique ids, which SDK generators turn into method names.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut taken = std::collections::HashSet::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("GET", &mut item.get),
                ("PUT", &mut item.put),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
                ("OPTIONS", &mut item.options),
                ("HEAD", &mut item.head),
                ("PATCH", &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(op) = operation {
                    op.operation_id = Some(crate::tenant_openapi::operation_id(method, path, &mut taken));
                }
            }
        }
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
        .route("/v1/overview", get(analytics::overview))
        .route("/v1/analytics", get(analytics::analytics))
        .route("/v1/usage/stream", get(analytics::usage_stream))
        .route("/v1/usage/export", get(analytics::usage_export))
        .route("/v1/endpoints", post(endpoints::create).get(endpoints::list))
        .route(
            "/v1/endpoints/import",
            post(endpoints::import_document).layer(axum::extract::DefaultBodyLimit::max(
                crate::operations::import::MAX_DOCUMENT_BYTES,
            )),
        )
        .route("/v1/endpoints/{id}", get(endpoints::get).patch(endpoints::update))
        .route("/v1/endpoints/{id}/deprecate", post(endpoints::deprecate))
        .route("/v1/endpoints/{id}/undeprecate", post(endpoints::undeprecate))
        .route("/v1/endpoints/{id}/activate", post(endpoints::activate))
        .route("/v1/endpoints/{id}/deactivate", post(endpoints::deactivate))
        .route("/v1/endpoints/{id}/enable", post(endpoints::enable))
        .route("/v1/endpoints/{id}/disable", post(endpoints::disable))
        .route("/v1/endpoints/{id}/history", get(endpoints::history))
        .route("/v1/endpoints/{id}/test", post(endpoints::try_it))
        .route("/v1/openapi/tenant.json", get(endpoints::tenant_json))
        .route("/v1/openapi/tenant.yaml", get(endpoints::tenant_yaml))
        .route("/v1/sdks/{file}", get(endpoints::sdk))
        .route(
            "/v1/webhooks",
            post(webhook_subscriptions::create).get(webhook_subscriptions::list),
        )
        .route(
            "/v1/webhooks/{id}",
            get(webhook_subscriptions::get)
                .patch(webhook_subscriptions::update)
                .delete(webhook_subscriptions::delete),
        )
        .route("/v1/webhooks/{id}/pause", post(webhook_subscriptions::pause))
        .route("/v1/webhooks/{id}/resume", post(webhook_subscriptions::resume))
        .route("/v1/webhooks/{id}/enable", post(webhook_subscriptions::enable))
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhook_subscriptions::rotate_secret),
        )
        .route("/v1/webhooks/deliveries", get(webhook_deliveries::list))
        .route("/v1/webhooks/deliveries/{id}", get(webhook_deliveries::get))
        .route("/v1/webhooks/deliveries/{id}/resend", post(webhook_deliveries::resend))
        .route("/v1/webhooks/stats", get(webhook_deliveries::stats))
        .route("/v1/webhooks/{id}/recover", post(webhook_deliveries::recover))
        .route("/v1/alert-rules", post(alert_rules::create).get(alert_rules::list))
        .route(
            "/v1/alert-rules/{id}",
            get(alert_rules::get).delete(alert_rules::delete),
        )
        .route("/v1/webhook-templates", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhook-templates/{id}",
            get(webhooks::get).patch(webhooks::update).delete(webhooks::delete),
        )
        .route("/v1/webhook-templates/{id}/test", post(webhooks::test))
        .route("/v1/webhook-templates/preview", post(webhooks::preview))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}
