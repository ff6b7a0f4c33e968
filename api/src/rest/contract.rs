//! The error answers that follow from an operation's shape, documented by rule in one place:
//! an authenticated operation can answer 401 and 403, one with a path parameter 404, one with a
//! query 400 `invalid_query`, one with a required JSON body 400 `invalid_json` and 415, one with any
//! body 413; any can
//! answer 500, and 503 with `Retry-After` while the database does not answer. Every error
//! answer's body is `ErrorBody` (a component of the document, `rest/mod.rs`), whose `code` lists every `ErrorCode`. The answers particular to
//! an operation (409, 413, …) stay on its handler.

use crate::error::ErrorBody;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, ToSchema};

pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
            ]
            .into_iter()
            .flatten()
            {
                document(operation);
            }
        }
    }
}

fn document(operation: &mut Operation) {
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let located = |place: ParameterIn| operation.parameters.iter().flatten().any(|p| p.parameter_in == place);
    let (queried, addressed) = (located(ParameterIn::Query), located(ParameterIn::Path));
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|b| b.required == Some(Required::True) && b.content.contains_key("application/json"));
    let mut add = |status: u16, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| ResponseBuilder::new().description(description).build().into());
    };
    if authenticated {
        add(
            401,
            "`unauthorized`: the admin token is missing, invalid, expired or deleted",
        );
        add(403, "`forbidden` and the like: the token may not do this");
    }
    if addressed {
        add(404, "`not_found`: nothing has this id (or it is not the tenant's)");
    }
    if queried {
        add(400, "`invalid_query` and the like: a query parameter is malformed");
    }
    if json_body {
        add(
            400,
            "`invalid_json` and the like: the body is not what the operation takes",
        );
        add(415, "`unsupported_media_type`: the body is not `application/json`");
    }
    if operation.request_body.is_some() {
        add(
            413,
            "`body_too_large` (`document_too_large` for an import): the body is larger than the operation takes",
        );
    }
    add(500, "`internal_error`: the server's log says what failed");
    add(
        503,
        "`database_unavailable`: the database did not answer; nothing was changed",
    );
    for (status, response) in operation.responses.responses.iter_mut() {
        let error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (error, response) {
            if status == "503" {
                response.headers.insert(
                    "Retry-After".to_owned(),
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            response.content.insert(
                "application/json".to_owned(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use serde_json::Value;

    fn document() -> Value {
        crate::rest::document()
    }

    #[test]
    fn the_error_code_enum_lists_every_code() {
        let doc = document();
        let code = &doc["components"]["schemas"]["ErrorCode"];
        let listed: Vec<&str> = code["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("ErrorCode is not an enum: {code}"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
    }

    #[test]
    fn every_operation_documents_its_error_answers_with_the_error_body() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let responses = op["responses"].as_object().unwrap();
                let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
                if op.get("security").is_some() {
                    for status in ["401", "403"] {
                        assert!(
                            statuses.contains(&status),
                            "{method} {path}: no {status} in {statuses:?}"
                        );
                    }
                }
                assert!(statuses.contains(&"500"), "{method} {path}");
                assert!(
                    responses["503"]["headers"].get("Retry-After").is_some(),
                    "{method} {path}: 503 without Retry-After"
                );
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        assert!(operations > 20, "{operations} operations");
    }
}
