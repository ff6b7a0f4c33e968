//! What every SDK is generated from: the tenant's endpoints as operations with names that are
//! valid identifiers in each language, and types derived from their JSON Schemas.

use super::names::{avoid, pascal, JS_KEYWORDS, PHP_RESERVED, PYTHON_KEYWORDS};
pub use super::names::{camel, snake};
use crate::tenant_openapi::operation_id;
use keyledger_domain::route::{HttpMethod, PathTemplate, Segment};
use keyledger_projections::endpoints::EndpointRow;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

#[derive(Debug, Clone, Serialize)]
pub struct Param {
    /// The template's name, e.g. `file-id`.
    pub name: String,
    pub python: String,
    pub js: String,
    pub php: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub operation_id: String,
    pub python_name: String,
    pub js_name: String,
    pub php_name: String,
    pub method: String,
    pub path: String,
    /// The path with `{param}` replaced per language by an encoded interpolation.
    pub python_path: String,
    pub js_path: String,
    pub php_path: String,
    pub params: Vec<Param>,
    pub has_body: bool,
    pub summary: String,
    pub description: Vec<String>,
    pub plugin: String,
    pub required_scopes: Vec<String>,
    /// " Required scopes: A, B." or empty, for doc comments.
    pub scopes_text: String,
    pub deprecated: bool,
    /// Type names of request and response (`GetFilesByIdResponse`), declared in `types`.
    pub request_type: Option<String>,
    pub response_type: Option<String>,
    pub request_example: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeDecl {
    pub name: String,
    pub python: String,
    pub typescript: String,
    pub php_doc: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SdkModel {
    pub tenant: String,
    pub base_url: String,
    pub version: String,
    pub operations: Vec<Operation>,
    pub types: Vec<TypeDecl>,
}

/// Python's type for a JSON Schema; nested objects become `Dict[str, Any]`.
fn python_type(schema: &Value) -> String {
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "str".into(),
        Some("integer") => "int".into(),
        Some("number") => "float".into(),
        Some("boolean") => "bool".into(),
        Some("array") => format!("List[{}]", schema.get("items").map_or("Any".into(), python_type)),
        Some("object") => "Dict[str, Any]".into(),
        _ => "Any".into(),
    }
}

fn ts_type(schema: &Value, depth: usize) -> String {
    if depth > 8 {
        return "unknown".into();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let literals: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        if !literals.is_empty() {
            return literals.join(" | ");
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "string".into(),
        Some("integer") | Some("number") => "number".into(),
        Some("boolean") => "boolean".into(),
        Some("null") => "null".into(),
        Some("array") => format!(
            "Array<{}>",
            schema.get("items").map_or("unknown".into(), |i| ts_type(i, depth + 1))
        ),
        Some("object") | None if schema.get("properties").is_some() => {
            let required: HashSet<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let props = schema.get("properties").and_then(Value::as_object);
            let fields: Vec<String> = props
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let optional = if required.contains(k.as_str()) { "" } else { "?" };
                    format!(
                        "{}{optional}: {}",
                        serde_json::to_string(k).unwrap_or_default(),
                        ts_type(v, depth + 1)
                    )
                })
                .collect();
            format!("{{ {} }}", fields.join("; "))
        }
        Some("object") => "Record<string, unknown>".into(),
        _ => "unknown".into(),
    }
}

fn php_type(schema: &Value) -> String {
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "string".into(),
        Some("integer") => "int".into(),
        Some("number") => "float".into(),
        Some("boolean") => "bool".into(),
        Some("array") => format!("list<{}>", schema.get("items").map_or("mixed".into(), php_type)),
        Some("object") => "array<string, mixed>".into(),
        _ => "mixed".into(),
    }
}

/// A named type for a schema in each language.
fn declare(name: &str, schema: &Value) -> TypeDecl {
    let python = match schema.get("properties").and_then(Value::as_object) {
        // The functional TypedDict form accepts any key, also ones that are not identifiers.
        Some(props) => {
            let fields: Vec<String> = props
                .iter()
                .map(|(k, v)| format!("{}: {}", serde_json::to_string(k).unwrap_or_default(), python_type(v)))
                .collect();
            format!("{name} = TypedDict(\"{name}\", {{{}}}, total=False)", fields.join(", "))
        }
        None => format!("{name} = {}", python_type(schema)),
    };
    let php_doc = match schema.get("properties").and_then(Value::as_object) {
        Some(props) => {
            let fields: Vec<String> = props
                .iter()
                .filter(|(k, _)| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(|(k, v)| format!("{k}?: {}", php_type(v)))
                .collect();
            format!("array{{{}}}", fields.join(", "))
        }
        None => php_type(schema),
    };
    TypeDecl {
        name: name.to_owned(),
        python,
        typescript: format!("export type {name} = {};", ts_type(schema, 0)),
        php_doc,
    }
}

fn example(schema: &Value, depth: usize) -> Value {
    if depth > 4 {
        return Value::Null;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => Value::String("string".into()),
        Some("integer") | Some("number") => serde_json::json!(0),
        Some("boolean") => Value::Bool(false),
        Some("array") => serde_json::json!([schema.get("items").map_or(Value::Null, |i| example(i, depth + 1))]),
        _ => match schema.get("properties").and_then(Value::as_object) {
            Some(props) => Value::Object(props.iter().map(|(k, v)| (k.clone(), example(v, depth + 1))).collect()),
            None => serde_json::json!({}),
        },
    }
}

pub fn build(tenant: &str, base_url: &str, endpoints: &[EndpointRow]) -> SdkModel {
    let mut taken = HashSet::new();
    let mut operations = Vec::new();
    let mut types = Vec::new();
    for e in endpoints {
        let Ok(template) = PathTemplate::try_from(e.path.clone()) else {
            continue;
        };
        for method in &e.methods {
            let Ok(m) = method.parse::<HttpMethod>() else { continue };
            let operation_id = operation_id(m.as_str(), &e.path, &mut taken);
            let mut seen = HashSet::new();
            let params: Vec<Param> = template
                .params()
                .into_iter()
                .map(|name| {
                    let mut python = avoid(snake(name), PYTHON_KEYWORDS);
                    while !seen.insert(python.clone()) {
                        python.push('_');
                    }
                    Param {
                        name: name.to_owned(),
                        js: avoid(camel(&python), JS_KEYWORDS),
                        php: avoid(camel(&python), PHP_RESERVED),
                        python,
                    }
                })
                .collect();
            let render_path = |f: &dyn Fn(&Param) -> String, literal: &dyn Fn(&str) -> String| -> String {
                let mut index = 0;
                let mut out = String::new();
                for s in template.segments() {
                    out.push('/');
                    match s {
                        Segment::Static(text) => out.push_str(&literal(text)),
                        Segment::Param(_) => {
                            out.push_str(&f(&params[index]));
                            index += 1;
                        }
                    }
                }
                if out.is_empty() {
                    "/".into()
                } else {
                    out
                }
            };
            let base = pascal(&operation_id);
            let request_type = e.request_schema.as_ref().filter(|_| m.has_body()).map(|s| {
                let name = format!("{base}Request");
                types.push(declare(&name, s));
                name
            });
            let response_type = e.response_schema.as_ref().map(|s| {
                let name = format!("{base}Response");
                types.push(declare(&name, s));
                name
            });
            let summary = e.description.lines().next().unwrap_or("").trim().to_owned();
            operations.push(Operation {
                python_name: snake(&operation_id),
                js_name: avoid(operation_id.clone(), JS_KEYWORDS),
                php_name: avoid(operation_id.clone(), PHP_RESERVED),
                operation_id,
                method: m.as_str().to_owned(),
                path: e.path.clone(),
                python_path: render_path(&|p| format!("{{_seg({})}}", p.python), &|s| s.to_owned()),
                js_path: render_path(&|p| format!("${{seg({})}}", p.js), &|s| s.to_owned()),
                // Inside a single-quoted PHP string a static segment's ' must be escaped.
                php_path: render_path(&|p| format!("' . self::seg(${}) . '", p.php), &|s| {
                    s.replace('\\', "\\\\").replace('\'', "\\'")
                }),
                params,
                has_body: m.has_body(),
                summary: if summary.is_empty() {
                    format!("{} {}", m.as_str(), e.path)
                } else {
                    summary
                },
                description: e
                    .description
                    .lines()
                    .map(|l| l.replace("*/", "* /").replace("\"\"\"", "'''"))
                    .collect(),
                plugin: e.plugin.clone(),
                required_scopes: e.required_scopes.clone(),
                scopes_text: if e.required_scopes.is_empty() {
                    String::new()
                } else {
                    format!(" Required scopes: {}.", e.required_scopes.join(", "))
                },
                deprecated: e.deprecated,
                request_example: e
                    .request_schema
                    .as_ref()
                    .filter(|_| m.has_body())
                    .map(|s| example(s, 0).to_string()),
                request_type,
                response_type,
            });
        }
    }
    let version = endpoints.iter().map(|e| e.updated_at).max().map_or_else(
        || "0.0.0".into(),
        |t| {
            format!(
                "1.{}.{}",
                t.format("%Y%m%d"),
                t.format("%H%M%S")
                    .to_string()
                    .trim_start_matches('0')
                    .parse::<u32>()
                    .unwrap_or(0)
            )
        },
    );
    SdkModel {
        tenant: tenant.to_owned(),
        base_url: base_url.to_owned(),
        version,
        operations,
        types,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers_in_every_language() {
        assert_eq!(snake("fileId"), "file_id");
        assert_eq!(snake("file-id"), "file_id");
        assert_eq!(snake("9lives"), "p_9lives");
        assert_eq!(camel("file_id"), "fileId");
        assert_eq!(avoid(snake("class"), PYTHON_KEYWORDS), "class_");
        assert_eq!(avoid(camel("default"), JS_KEYWORDS), "default_");
        assert_eq!(pascal("getFilesById"), "GetFilesById");
    }

    #[test]
    fn schemas_become_types() {
        let schema = serde_json::json!({ "type": "object", "required": ["id"], "properties": {
            "id": { "type": "string" }, "size": { "type": "integer" }, "tags": { "type": "array", "items": { "type": "string" } },
            "odd-name": { "type": "boolean" }, "kind": { "enum": ["a", "b"] } } });
        let d = declare("File", &schema);
        assert_eq!(
            d.typescript,
            r#"export type File = { "id": string; "kind"?: "a" | "b"; "odd-name"?: boolean; "size"?: number; "tags"?: Array<string> };"#
        );
        assert!(d.python.starts_with(r#"File = TypedDict("File", {"id": str, "kind": Any, "odd-name": bool, "size": int, "tags": List[str]}, total=False)"#));
    }
}
