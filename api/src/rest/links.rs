//! OpenAPI links: what a client (or a stateful fuzzer) can do next with what an operation created.
//! By rule: a POST on a collection that answers 201 links to every operation on
//! `{collection}/{id}` and below, the `id` taken from the created body.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::RefOr;
use utoipa::Modify;

pub struct CreatedLinks;

fn operations(item: &PathItem) -> impl Iterator<Item = &utoipa::openapi::path::Operation> {
    [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.patch,
        &item.head,
        &item.options,
    ]
    .into_iter()
    .flatten()
}

impl Modify for CreatedLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        let targets: Vec<(String, Vec<String>)> = paths
            .keys()
            .map(|collection| {
                let below = format!("{collection}/{{id}}");
                let ids = paths
                    .iter()
                    .filter(|(path, _)| **path == below || path.starts_with(&format!("{below}/")))
                    .flat_map(|(_, item)| operations(item).filter_map(|op| op.operation_id.clone()))
                    .collect();
                (collection.clone(), ids)
            })
            .collect();
        for (collection, ids) in targets {
            let Some(created) = paths
                .get_mut(&collection)
                .and_then(|item| item.post.as_mut())
                .and_then(|post| post.responses.responses.get_mut("201"))
            else {
                continue;
            };
            let RefOr::T(created) = created else { continue };
            for id in ids {
                let link = LinkBuilder::new()
                    .operation_id(&id)
                    .parameter("id", "$response.body#/id")
                    .build();
                created.links.insert(id, RefOr::T(link));
            }
        }
    }
}

/// utoipa 5 writes a link's fields in snake case (`operation_id`); the specification spells them
/// in camel case, and tools that follow links read only that.
pub fn spell_as_the_specification_does(document: &mut serde_json::Value) {
    const FIELDS: [(&str, &str); 3] = [
        ("operation_id", "operationId"),
        ("operation_ref", "operationRef"),
        ("request_body", "requestBody"),
    ];
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in FIELDS {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_created_key_links_to_what_can_be_done_with_it() {
        let document = crate::rest::document();
        let links = &document["paths"]["/v1/keys"]["post"]["responses"]["201"]["links"];
        let linked: Vec<&str> = links
            .as_object()
            .unwrap()
            .values()
            .map(|l| l["operationId"].as_str().unwrap())
            .collect();
        let revoke = document["paths"]["/v1/keys/{id}/revoke"]["post"]["operationId"]
            .as_str()
            .unwrap();
        assert!(linked.contains(&revoke), "{links}");
        assert!(links
            .as_object()
            .unwrap()
            .values()
            .all(|l| l["parameters"]["id"] == "$response.body#/id"));
    }
}
