//! Importing a plugin's endpoints from an OpenAPI 3.0 or 3.1 document (JSON or YAML).

use super::endpoints::{description, plugin as parse_plugin, schema, upstream as parse_upstream};
use crate::error::{ApiError, ErrorCode};
use crate::rest::endpoint_dto::{ImportReport, ImportedOperation};
use keyledger_commands::{CommandBus, CommandContext, Committed};
use keyledger_domain::endpoint::{route_stream_id, EndpointSpec, JsonSchema};
use keyledger_domain::route::{HttpMethod, PathTemplate};
use keyledger_domain::{EndpointCommand, Scope};
use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Documents larger than this are refused before parsing.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
const MAX_REF_DEPTH: usize = 32;
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// One operation of the document, ready to import.
#[derive(Debug, Clone)]
pub struct ImportedOp {
    pub spec: EndpointSpec,
    pub deprecated: bool,
}

fn invalid(problems: &[String]) -> ApiError {
    let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let suffix = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    ApiError::new(ErrorCode::InvalidOpenapi, format!("{}{suffix}", shown.join("; ")))
}

pub fn too_large() -> ApiError {
    ApiError::new(ErrorCode::DocumentTooLarge, "the document is larger than 8 MiB")
}

/// Parses JSON or YAML into a JSON value.
pub fn parse_text(text: &str) -> Result<Value, ApiError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large());
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        serde_json::from_str(trimmed)
            .map_err(|e| ApiError::new(ErrorCode::InvalidOpenapi, format!("invalid JSON: {e}")))
    } else {
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::new(ErrorCode::InvalidOpenapi, format!("invalid YAML: {e}")))
    }
}

/// Inlines local `$ref`s (`#/components/...`); a reference cycle becomes an open schema.
fn resolve(doc: &Value, value: &Value, stack: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                if stack.len() >= MAX_REF_DEPTH || stack.contains(reference) {
                    return serde_json::json!({ "description": format!("recursive reference to {reference}") });
                }
                let target = reference.strip_prefix('#').and_then(|pointer| doc.pointer(pointer));
                return match target {
                    Some(target) => {
                        stack.push(reference.clone());
                        let resolved = resolve(doc, target, stack);
                        stack.pop();
                        resolved
                    }
                    None => serde_json::json!({ "description": format!("unresolved reference {reference}") }),
                };
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(doc, v, stack))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(doc, v, stack)).collect()),
        other => other.clone(),
    }
}

fn json_schema(doc: &Value, content: Option<&Value>) -> Option<Value> {
    let content = content?.as_object()?;
    let media = content
        .iter()
        .find(|(k, _)| k.starts_with("application/json") || k.ends_with("+json"))
        .map(|(_, v)| v)?;
    let schema = media.get("schema")?;
    Some(resolve(doc, schema, &mut Vec::new())).filter(Value::is_object)
}

/// Required scopes: `x-keyledger-scopes`, else the catalogue scopes named in `security`.
fn scopes(doc: &Value, op: &Value, at: &str, problems: &mut Vec<String>) -> BTreeSet<Scope> {
    if let Some(listed) = op.get("x-keyledger-scopes") {
        let Some(items) = listed.as_array() else {
            problems.push(format!("{at}: x-keyledger-scopes must be a list"));
            return BTreeSet::new();
        };
        return items
            .iter()
            .filter_map(|s| match s.as_str().map(|s| Scope::try_from(s.to_owned())) {
                Some(Ok(scope)) => Some(scope),
                Some(Err(e)) => {
                    problems.push(format!("{at}: {e}"));
                    None
                }
                None => {
                    problems.push(format!("{at}: x-keyledger-scopes must hold strings"));
                    None
                }
            })
            .collect();
    }
    let security = op.get("security").or_else(|| doc.get("security"));
    security
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|req| req.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|s| s.as_str().and_then(|s| Scope::try_from(s.to_owned()).ok()))
        .collect()
}

/// Every operation of the document as an endpoint of `plugin` served by `upstream`. All problems
/// are collected and reported together; nothing is imported from a document that has any.
pub fn operations(doc: &Value, plugin: &str, upstream: &str) -> Result<Vec<ImportedOp>, ApiError> {
    let plugin = parse_plugin(plugin.to_owned())?;
    let upstream = parse_upstream(upstream.to_owned())?;
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        return Err(ApiError::new(
            ErrorCode::InvalidOpenapi,
            "not an OpenAPI 3.0 or 3.1 document (\"openapi\" field)",
        ));
    }
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Err(ApiError::new(
            ErrorCode::InvalidOpenapi,
            "the document has no \"paths\"",
        ));
    };
    let mut problems = Vec::new();
    let mut ops = Vec::new();
    for (raw_path, item) in paths {
        let path = match PathTemplate::try_from(raw_path.clone()) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{raw_path}: {e}"));
                continue;
            }
        };
        for method_name in METHODS {
            let Some(op) = item.get(method_name) else { continue };
            let method: HttpMethod = match method_name.parse() {
                Ok(m) => m,
                Err(_) => continue,
            };
            let at = format!("{} {raw_path}", method.as_str());
            let summary = op.get("summary").and_then(Value::as_str).unwrap_or("").trim();
            let details = op.get("description").and_then(Value::as_str).unwrap_or("").trim();
            let text = match (summary.is_empty(), details.is_empty()) {
                (false, false) if summary != details => format!("{summary}\n\n{details}"),
                (false, _) => summary.to_owned(),
                _ => details.to_owned(),
            };
            let text: String = text
                .chars()
                .take(keyledger_domain::endpoint::spec_limits::MAX_DESCRIPTION_CHARS)
                .collect();
            let required_scopes = scopes(doc, op, &at, &mut problems);
            let request_schema = json_schema(
                doc,
                op.get("requestBody")
                    .map(|b| resolve(doc, b, &mut Vec::new()))
                    .as_ref()
                    .and_then(|b| b.get("content")),
            );
            let response_schema = op
                .get("responses")
                .and_then(Value::as_object)
                .and_then(|r| {
                    r.iter()
                        .filter(|(code, _)| code.starts_with('2'))
                        .min_by(|a, b| a.0.cmp(b.0))
                        .map(|(_, v)| resolve(doc, v, &mut Vec::new()))
                })
                .and_then(|r| json_schema(doc, r.get("content")));
            let to_schema = |v: Option<Value>| -> Result<Option<JsonSchema>, ApiError> { v.map(schema).transpose() };
            match (description(text), to_schema(request_schema), to_schema(response_schema)) {
                (Ok(description), Ok(request_schema), Ok(response_schema)) => ops.push(ImportedOp {
                    spec: EndpointSpec {
                        methods: [method].into(),
                        path: path.clone(),
                        plugin: plugin.clone(),
                        description,
                        required_scopes,
                        request_schema,
                        response_schema,
                        upstream_url: upstream.clone(),
                    },
                    deprecated: op.get("deprecated").and_then(Value::as_bool).unwrap_or(false),
                }),
                (a, b, c) => {
                    for e in [a.err(), b.err(), c.err()].into_iter().flatten() {
                        problems.push(format!("{at}: {}", e.message));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    if ops.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidOpenapi,
            "the document has no operations to import",
        ));
    }
    Ok(ops)
}

fn same_except_methods(a: &EndpointSpec, b: &EndpointSpec) -> bool {
    a.path == b.path
        && a.plugin == b.plugin
        && a.description == b.description
        && a.required_scopes == b.required_scopes
        && a.request_schema == b.request_schema
        && a.response_schema == b.response_schema
        && a.upstream_url == b.upstream_url
}

/// Imports parsed operations; re-importing the same document changes nothing.
pub async fn import(
    bus: &CommandBus,
    ctx: &CommandContext,
    plugin: &str,
    ops: Vec<ImportedOp>,
) -> Result<Committed<ImportReport>, ApiError> {
    let mut report = ImportReport {
        plugin: plugin.to_owned(),
        registered: 0,
        changed: 0,
        unchanged: 0,
        operations: Vec::new(),
    };
    let mut position = 0;
    for op in ops {
        let method = *op
            .spec
            .methods
            .iter()
            .next()
            .ok_or_else(|| ApiError::internal("operation without method"))?;
        let route = route_stream_id(&op.spec.path);
        let before = bus.load_route(ctx, route).await?;
        let serving = before.all().find(|e| e.spec.methods.contains(&method)).cloned();
        let outcome = match &serving {
            None => "registered",
            Some(e) if same_except_methods(&e.spec, &op.spec) => "unchanged",
            Some(_) => "changed",
        };
        let new_id = Uuid::new_v4();
        let endpoint_id = serving.as_ref().map_or(new_id, |e| e.id);
        let path = op.spec.path.to_string();
        let spec = op.spec;
        position = bus
            .endpoint_command(ctx, route, |at| EndpointCommand::Import {
                new_id,
                spec: Box::new(spec),
                at,
            })
            .await?
            .position;
        let already_deprecated = serving.as_ref().is_some_and(|e| e.deprecation.is_some());
        if op.deprecated && !already_deprecated {
            position = bus
                .endpoint_command(ctx, route, |at| EndpointCommand::Deprecate {
                    endpoint_id,
                    sunset: None,
                    at,
                })
                .await?
                .position;
        }
        match outcome {
            "registered" => report.registered += 1,
            "changed" => report.changed += 1,
            _ => report.unchanged += 1,
        }
        report.operations.push(ImportedOperation {
            method: method.to_string(),
            path,
            outcome: outcome.to_owned(),
        });
    }
    Ok(Committed {
        value: report,
        position,
    })
}

/// The whole import as every entry point runs it (REST, GraphQL, CLI): superusers only; parse,
/// validate everything, then import.
pub async fn run(
    bus: &CommandBus,
    ctx: &CommandContext,
    text: &str,
    plugin: &str,
    upstream: &str,
) -> Result<Committed<ImportReport>, ApiError> {
    super::require(ctx, keyledger_domain::Permission::Superuser)?;
    let doc = parse_text(text)?;
    let ops = operations(&doc, plugin, upstream)?;
    import(bus, ctx, plugin, ops).await
}
