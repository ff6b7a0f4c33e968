//! The OpenAPI 3.1 document of exactly the endpoints a tenant can call, for Postman, Insomnia,
//! code generators and our own SDKs.

use keyledger_domain::route::{HttpMethod, PathTemplate, Segment};
use keyledger_projections::endpoints::EndpointRow;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A stable, unique, identifier-safe operation id: `getFilesById`, `deleteFilesByFileId`.
pub fn operation_id(method: &str, path: &str, taken: &mut HashSet<String>) -> String {
    let mut words = vec![method.to_ascii_lowercase()];
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                words.push("by".into());
                words.extend(split_words(param));
            }
            None => words.extend(split_words(segment)),
        }
    }
    let mut id = String::new();
    for (i, w) in words.iter().filter(|w| !w.is_empty()).enumerate() {
        if i == 0 {
            id.push_str(&w.to_lowercase());
        } else {
            let mut chars = w.chars();
            if let Some(first) = chars.next() {
                id.extend(first.to_uppercase());
                id.push_str(&chars.as_str().to_lowercase());
            }
        }
    }
    if id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, '_');
    }
    let base = id.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}{n}");
        n += 1;
    }
    id
}

/// Splits on anything that is not a letter or digit, and on camelCase boundaries.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

pub fn document(tenant: &str, server_url: &str, endpoints: &[EndpointRow]) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags = BTreeSet::new();
    let mut taken = HashSet::new();
    for e in endpoints {
        let Ok(template) = PathTemplate::try_from(e.path.clone()) else {
            continue;
        };
        tags.insert(e.plugin.clone());
        let parameters: Vec<Value> = template
            .segments()
            .filter_map(|s| match s {
                Segment::Param(name) => {
                    Some(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
                }
                Segment::Static(_) => None,
            })
            .collect();
        for method in &e.methods {
            let Ok(m) = method.parse::<HttpMethod>() else { continue };
            let mut op = Map::new();
            op.insert(
                "operationId".into(),
                json!(operation_id(m.as_str(), &e.path, &mut taken)),
            );
            let summary = e.description.lines().next().unwrap_or("").trim();
            if !summary.is_empty() {
                op.insert("summary".into(), json!(summary));
            }
            if !e.description.is_empty() {
                op.insert("description".into(), json!(e.description));
            }
            op.insert("tags".into(), json!([e.plugin]));
            if !parameters.is_empty() {
                op.insert("parameters".into(), json!(parameters));
            }
            if let (Some(schema), true) = (&e.request_schema, m.has_body()) {
                op.insert(
                    "requestBody".into(),
                    json!({ "required": true, "content": { "application/json": { "schema": schema } } }),
                );
            }
            let ok = match &e.response_schema {
                Some(schema) => {
                    json!({ "description": "Success", "content": { "application/json": { "schema": schema } } })
                }
                None => json!({ "description": "Success" }),
            };
            op.insert(
                "responses".into(),
                json!({
                    "200": ok,
                    "401": error_response("Missing, malformed, unknown, revoked or expired key"),
                    "403": error_response("IP not allowed or a required scope is missing"),
                    "429": error_response("Rate limit exceeded; retry after the Retry-After header"),
                }),
            );
            if e.deprecated {
                op.insert("deprecated".into(), json!(true));
                if let Some(sunset) = e.sunset_at {
                    op.insert("x-sunset".into(), json!(sunset.to_rfc3339()));
                }
            }
            op.insert("x-keyledger-required-scopes".into(), json!(e.required_scopes));
            paths
                .entry(e.path.clone())
                .or_default()
                .insert(m.as_str().to_ascii_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{tenant} API"),
            "version": endpoints.iter().map(|e| e.updated_at).max().map(|t| t.format("%Y%m%d%H%M%S").to_string()).unwrap_or_else(|| "0".into()),
            "description": "Endpoints enabled for this tenant. Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        },
        "servers": [{ "url": server_url }],
        "tags": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
        "security": [{ "bearerAuth": [] }, { "apiKeyAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "An API key: ak_live_… or ak_test_…" },
                "apiKeyAuth": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": { "code": { "type": "string" }, "message": { "type": "string" } },
                        },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_identifiers_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(operation_id("GET", "/files/{id}", &mut taken), "getFilesById");
        assert_eq!(
            operation_id("GET", "/files/{fileId}/v2-items", &mut taken),
            "getFilesByFileIdV2Items"
        );
        assert_eq!(operation_id("GET", "/files/{id}/", &mut taken), "getFilesById2");
        assert_eq!(operation_id("POST", "/", &mut taken), "post");
        assert_eq!(operation_id("DELETE", "/123/a.b~c", &mut taken), "delete123ABC");
    }
}
