//! The GraphQL API (`POST /graphql`), its subscriptions (`GET /graphql/ws`, graphql-transport-ws
//! and graphql-ws) and its console (`GET /graphql`, served offline).
//!
//! Resolvers call the same operations as REST; errors carry the REST error code in
//! `extensions.code`.

mod alerts;
mod analytics;
mod deliveries;
mod endpoints;
mod schema;
mod webhooks;

use crate::error::ErrorCode;
use crate::state::AppState;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
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
        .route("/graphql/ws", get(subscribe))
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
    let token = crate::extract::bearer_token(&headers).map(str::to_owned);
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
    let mut response = schema.execute(request).await;
    for error in &mut response.errors {
        code_refusal(error);
    }
    GraphQLResponse::from(response).into_response()
}

/// A WebSocket for subscriptions. The admin token comes in `connection_init`'s payload
/// (`{"authorization": "Bearer <token>"}`, as browsers cannot set headers on a WebSocket) or in
/// the upgrade request's `Authorization`; without one, fields answer `unauthorized`, as over HTTP.
async fn subscribe(
    State(state): State<AppState>,
    Extension(schema): Extension<KeyledgerSchema>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_token = crate::extract::bearer_token(&headers).map(str::to_owned);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| connection_data(state, header_token, payload))
                .serve()
        })
}

async fn connection_data(
    state: AppState,
    header_token: Option<String>,
    payload: serde_json::Value,
) -> async_graphql::Result<async_graphql::Data> {
    let given = ["authorization", "Authorization"]
        .iter()
        .find_map(|name| payload.get(name).and_then(|v| v.as_str()))
        .map(|value| value.strip_prefix("Bearer ").unwrap_or(value).trim().to_owned());
    let mut data = async_graphql::Data::default();
    if let Some(token) = given.or(header_token) {
        match state.auth.authenticate(&token).await {
            Ok(actor) => data.insert(CommandContext {
                actor,
                request_id: None,
            }),
            Err(e) => data.insert(schema::AuthFailure(crate::error::ApiError::from(e))),
        }
    }
    Ok(data)
}

/// Gives every error a code: ours carry theirs; what async-graphql refuses before running a
/// resolver (syntax, validation, a value of the wrong type, the depth and complexity limits)
/// gets one here.
fn code_refusal(error: &mut async_graphql::ServerError) {
    if error.extensions.as_ref().is_some_and(|e| e.get("code").is_some()) {
        return;
    }
    // The limits' messages are async-graphql's own (the parser's recursion limit, and
    // `validation::check_rules`); a test holds them to their codes.
    let message = error.message.as_str();
    let code = if message == "Query is nested too deep."
        || message.starts_with("The recursion depth of the query cannot be greater than")
    {
        ErrorCode::QueryTooDeep
    } else if message == "Query is too complex." {
        ErrorCode::QueryTooComplex
    } else {
        ErrorCode::InvalidGraphql
    };
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code.as_str());
    extensions.set("status", code.status().as_u16());
}

/// NUL (U+0000) in the query's text (raw, or as the escape `\u0000` of a string literal) or in
/// its variables: no text the API takes may hold it, as PostgreSQL cannot store it.
fn holds_nul(request: &async_graphql::Request) -> bool {
    request.query.contains('\0')
        || crate::extract::refuse_nul(request.query.as_bytes()).is_err()
        || request
            .variables
            .iter()
            .any(|(name, value)| name.contains('\0') || value_holds_nul(value))
}

/// The variables arrive decoded: a NUL is a character of a string (or of an object's key).
fn value_holds_nul(value: &async_graphql::Value) -> bool {
    use async_graphql::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::List(items) => items.iter().any(value_holds_nul),
        Value::Object(fields) => fields.iter().any(|(name, v)| name.contains('\0') || value_holds_nul(v)),
        _ => false,
    }
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
