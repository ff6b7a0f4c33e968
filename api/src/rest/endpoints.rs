//! `/v1/endpoints`: the registry and explorer; `/v1/openapi/tenant.*`: the tenant's document.

use super::dto::{HistoryEntry, ListResponse};
use super::endpoint_dto::{CreateEndpointBody, DeprecateBody, EndpointView, ImportReport, UpdateEndpointBody};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Admin, Json, OptionalJson, Path, Query};
use crate::operations::endpoints::{self, Action, EndpointListInput};
use crate::operations::import;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

/// Register an endpoint (superusers).
#[utoipa::path(post, path = "/v1/endpoints", tag = "endpoints", request_body = CreateEndpointBody,
    responses((status = 201, body = EndpointView), (status = 400), (status = 403), (status = 409, description = "endpoint_conflict")),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateEndpointBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(endpoints::register(&state, &ctx, body).await?),
    ))
}

/// The explorer: search, filter and page through the endpoints you can see.
#[utoipa::path(get, path = "/v1/endpoints", tag = "endpoints", params(EndpointListInput),
    responses((status = 200, body = ListResponse<EndpointView>), (status = 400)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(input): Query<EndpointListInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(endpoints::list(&state, &ctx, input).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TenantParam {
    /// Superusers: act on or look from this tenant (default: their own).
    pub tenant: Option<String>,
}

#[utoipa::path(get, path = "/v1/endpoints/{id}", tag = "endpoints", params(("id" = String, Path), TenantParam),
    responses((status = 200, body = EndpointView), (status = 404)), security(("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Query(p): Query<TenantParam>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(endpoints::get(&state, &ctx, &id, p.tenant).await?))
}

/// Change an endpoint (superusers).
#[utoipa::path(patch, path = "/v1/endpoints/{id}", tag = "endpoints", params(("id" = String, Path)), request_body = UpdateEndpointBody,
    responses((status = 200, body = EndpointView), (status = 400), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Json(body): Json<UpdateEndpointBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(endpoints::update(&state, &ctx, &id, body).await?))
}

/// Deprecate, optionally with a sunset date (superusers).
#[utoipa::path(post, path = "/v1/endpoints/{id}/deprecate", tag = "endpoints", params(("id" = String, Path)),
    request_body(content = DeprecateBody, description = "optional"),
    responses((status = 200, body = EndpointView), (status = 400), (status = 404)), security(("admin_token" = [])))]
pub async fn deprecate(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DeprecateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let sunset = body.and_then(|b| b.sunset);
    Ok(axum::Json(
        endpoints::act(&state, &ctx, &id, Action::Deprecate { sunset }).await?,
    ))
}

macro_rules! action_handler {
    ($name:ident, $path:literal, $doc:literal, $action:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "endpoints", params(("id" = String, Path), TenantParam),
            responses((status = 200, body = EndpointView), (status = 403), (status = 404)), security(("admin_token" = [])))]
        pub async fn $name(
            State(state): State<AppState>,
            Admin(ctx): Admin,
            Path(id): Path<String>,
            Query(p): Query<TenantParam>,
        ) -> Result<impl IntoResponse, ApiError> {
            let action: fn(Option<String>) -> Action = $action;
            Ok(axum::Json(endpoints::act(&state, &ctx, &id, action(p.tenant)).await?))
        }
    };
}

action_handler!(
    undeprecate,
    "/v1/endpoints/{id}/undeprecate",
    "Withdraw a deprecation (superusers).",
    |_| Action::Undeprecate
);
action_handler!(
    activate,
    "/v1/endpoints/{id}/activate",
    "Activate globally (superusers).",
    |_| Action::Activate
);
action_handler!(
    deactivate,
    "/v1/endpoints/{id}/deactivate",
    "Deactivate globally (superusers).",
    |_| Action::Deactivate
);
action_handler!(
    enable,
    "/v1/endpoints/{id}/enable",
    "Enable for your tenant (tenant admins).",
    |tenant| Action::Enable { tenant }
);
action_handler!(
    disable,
    "/v1/endpoints/{id}/disable",
    "Disable for your tenant (tenant admins).",
    |tenant| Action::Disable { tenant }
);

/// The endpoint's events, oldest first.
#[utoipa::path(get, path = "/v1/endpoints/{id}/history", tag = "endpoints", params(("id" = String, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404)), security(("admin_token" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(endpoints::history(&state, &ctx, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// The plugin the imported endpoints belong to.
    pub plugin: String,
    /// The plugin's service base URL.
    pub upstream: String,
}

/// Import a plugin from an OpenAPI 3.0/3.1 document (JSON or YAML body). Re-importing is
/// idempotent: unchanged operations write nothing. A document with any problem imports nothing.
#[utoipa::path(post, path = "/v1/endpoints/import", tag = "endpoints", params(ImportParams),
    request_body(content = String, description = "OpenAPI document", content_type = "application/yaml"),
    responses((status = 200, body = ImportReport), (status = 400, description = "invalid_openapi")), security(("admin_token" = [])))]
pub async fn import_document(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ImportParams>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body.map_err(|e| match crate::extract::body_refusal(e) {
        e if e.code == ErrorCode::BodyTooLarge => import::too_large(),
        other => other,
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidOpenapi, "the document is not UTF-8"))?;
    let committed = import::run(&state.bus, &ctx, text, &p.plugin, &p.upstream).await?;
    state.settle(committed.position).await;
    Ok(axum::Json(committed.value))
}

/// The tenant's OpenAPI 3.1 document: exactly the endpoints enabled for it.
#[utoipa::path(get, path = "/v1/openapi/tenant.json", tag = "endpoints", params(TenantParam),
    responses((status = 200, description = "OpenAPI 3.1 JSON")), security(("admin_token" = [])))]
pub async fn tenant_json(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<TenantParam>,
) -> Result<Response, ApiError> {
    let doc = endpoints::tenant_document(&state, &ctx, p.tenant).await?;
    Ok((
        [(header::CONTENT_DISPOSITION, "attachment; filename=\"openapi.json\"")],
        axum::Json(doc),
    )
        .into_response())
}

/// The same document as YAML.
#[utoipa::path(get, path = "/v1/openapi/tenant.yaml", tag = "endpoints", params(TenantParam),
    responses((status = 200, description = "OpenAPI 3.1 YAML")), security(("admin_token" = [])))]
pub async fn tenant_yaml(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<TenantParam>,
) -> Result<Response, ApiError> {
    let doc = endpoints::tenant_document(&state, &ctx, p.tenant).await?;
    let yaml = serde_saphyr::to_string(&doc).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"openapi.yaml\""),
        ],
        yaml,
    )
        .into_response())
}

/// Send a request to the endpoint as one of your keys and see the answer (status, headers,
/// body, timing) plus what the edge would object to.
#[utoipa::path(post, path = "/v1/endpoints/{id}/test", tag = "endpoints", params(("id" = String, Path)),
    request_body = crate::operations::tryout::TryRequest,
    responses((status = 200, body = crate::operations::tryout::TryResult), (status = 400), (status = 404),
        (status = 502, description = "upstream_unreachable")),
    security(("admin_token" = [])))]
pub async fn try_it(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Json(body): Json<crate::operations::tryout::TryRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        crate::operations::tryout::try_endpoint(&state, &ctx, &id, body).await?,
    ))
}

/// A client library for the tenant's endpoints: python, typescript, javascript, php or curl.
#[utoipa::path(get, path = "/v1/sdks/{file}", tag = "endpoints",
    params(("file" = String, Path, description = "python.zip, typescript.zip, javascript.zip, php.zip or curl.zip"), TenantParam),
    responses((status = 200, description = "ZIP archive", content_type = "application/zip"), (status = 404)),
    security(("admin_token" = [])))]
pub async fn sdk(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(file): Path<String>,
    Query(p): Query<TenantParam>,
) -> Result<Response, ApiError> {
    let language = file.strip_suffix(".zip").unwrap_or("");
    let (language, bytes) = endpoints::sdk(&state, &ctx, language, p.tenant).await?;
    let disposition = format!("attachment; filename=\"keyledger-client-{}.zip\"", language.as_str());
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
