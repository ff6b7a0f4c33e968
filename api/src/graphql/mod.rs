//! The GraphQL API (`POST /graphql`) and its console (`GET /graphql`, served offline).
//!
//! Resolvers call the same operations as REST; errors carry the REST error code in
//! `extensions.code`.

mod schema;

use crate::error::ErrorCode;
use crate::state::AppState;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use keyledger_commands::CommandContext;
pub use schema::{build_schema, KeyledgerSchema};

/// The routes; the schema is built once here and shared by every request.
pub fn router(state: AppState) -> Router<AppState> {
    let schema = build_schema(state);
    Router::new()
        .route("/graphql", get(console).post(execute))
        .route("/graphql/assets/{file}", get(asset))
        .layer(Extension(schema))
}

async fn execute(
    State(state): State<AppState>,
    Extension(schema): Extension<KeyledgerSchema>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> Response {
    let mut request = req.into_inner();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    // Without a token the schema can still be introspected (the console needs it); every field
    // that touches data answers `unauthorized`.
    if let Some(token) = token {
        match state.auth.authenticate(&token).await {
            Ok(actor) => {
                let request_id = headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                request = request.data(CommandContext { actor, request_id });
            }
            Err(e) => request = request.data(schema::AuthFailure(crate::error::ApiError::from(e))),
        }
    }
    if holds_nul(&request) {
        let refused = crate::error::ApiError::new(ErrorCode::InvalidRequest, "strings must not contain NUL (\\u0000)");
        let error = async_graphql::Error::from(refused).into_server_error(async_graphql::Pos::default());
        return GraphQLResponse::from(async_graphql::Response::from_errors(vec![error])).into_response();
    }
    GraphQLResponse::from(schema.execute(request).await).into_response()
}

/// NUL (U+0000) in the query's text (raw, or as the escape `\u0000` of a string literal) or in
/// its variables: no text the API takes may hold it, as PostgreSQL cannot store it.
fn holds_nul(request: &async_graphql::Request) -> bool {
    request.query.contains('\0')
        || crate::extract::refuse_nul(request.query.as_bytes()).is_err()
        || serde_json::to_vec(&request.variables).map_or(true, |json| crate::extract::refuse_nul(&json).is_err())
}

const INDEX: &str = include_str!("../../assets/graphiql/index.html");

async fn console() -> Html<&'static str> {
    Html(INDEX)
}

/// The console's assets, compiled into the binary: nothing is fetched from a CDN.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (
            include_bytes!("../../assets/graphiql/graphiql.min.js"),
            "text/javascript",
        ),
        "graphiql.min.css" => (include_bytes!("../../assets/graphiql/graphiql.min.css"), "text/css"),
        "react.production.min.js" => (
            include_bytes!("../../assets/graphiql/react.production.min.js"),
            "text/javascript",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
            "text/javascript",
        ),
        "console.js" => (include_bytes!("../../assets/graphiql/console.js"), "text/javascript"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
