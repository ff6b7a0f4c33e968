//! The route table: which registered endpoint serves a method and a concrete path. Built from
//! the endpoint catalogue; the auth edge keeps one in memory, the explorer builds one per query.

use keyledger_domain::route::{HttpMethod, PathTemplate, Segment};
use percent_encoding::percent_decode_str;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the edge needs to know about a matched endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTarget {
    pub endpoint_id: String,
    pub path: PathTemplate,
    pub methods: BTreeSet<HttpMethod>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteMatch<'a> {
    /// The endpoint and its path parameters, percent-decoded.
    Found {
        target: &'a RouteTarget,
        params: BTreeMap<String, String>,
    },
    /// The path exists, but not for this method.
    MethodNotAllowed {
        allowed: BTreeSet<HttpMethod>,
    },
    NotFound,
}

/// Static segments win over parameters (`/files/recent` before `/files/{id}`), trailing slashes
/// do not matter, and percent-encoded unreserved characters match their plain form while an
/// encoded `/` (`%2F`) stays inside its segment.
#[derive(Default)]
pub struct RouteTable {
    router: matchit::Router<usize>,
    /// Per route shape, its endpoints.
    shapes: Vec<Vec<RouteTarget>>,
    by_shape: HashMap<String, usize>,
}

/// The shape in matchit's syntax with positional parameter names.
fn matchit_pattern(path: &PathTemplate) -> String {
    if path.as_str() == "/" {
        return "/".to_owned();
    }
    let mut n = 0;
    path.segments()
        .map(|s| match s {
            Segment::Static(text) => format!("/{}", escape_braces(&normalize(text))),
            Segment::Param(_) => {
                n += 1;
                format!("/{{p{n}}}")
            }
        })
        .collect()
}

fn escape_braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

/// RFC 3986 §6.2.2.2: decode percent-encoded unreserved characters; leave the rest encoded
/// (upper-cased), so `%2F` can never split a segment.
fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = &rest.as_bytes()[at..];
        let hex = |i: usize| escape.get(i).filter(|b| b.is_ascii_hexdigit()).map(|b| *b as char);
        match (hex(1), hex(2)) {
            (Some(h), Some(l)) => {
                let value = (h.to_digit(16).unwrap_or(0) * 16 + l.to_digit(16).unwrap_or(0)) as u8;
                if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                    out.push(value as char);
                } else {
                    out.push('%');
                    out.push(h.to_ascii_uppercase());
                    out.push(l.to_ascii_uppercase());
                }
                rest = &rest[at + 3..];
            }
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an endpoint. Endpoints of one shape share a route; a route that cannot be added
    /// (which the registry's rules prevent) is reported, not panicked on.
    pub fn insert(&mut self, target: RouteTarget) -> Result<(), matchit::InsertError> {
        let shape = target.path.shape();
        if let Some(&i) = self.by_shape.get(&shape) {
            self.shapes[i].push(target);
            return Ok(());
        }
        let i = self.shapes.len();
        self.router.insert(matchit_pattern(&target.path), i)?;
        self.shapes.push(vec![target]);
        self.by_shape.insert(shape, i);
        Ok(())
    }

    /// The endpoint serving `method` on `raw_path`, if any: the edge's question, answered without
    /// building the path parameters.
    pub fn target(&self, method: HttpMethod, raw_path: &str) -> Option<&RouteTarget> {
        let path = raw_path.split(['?', '#']).next().unwrap_or("");
        let normalized = Self::normalized(path)?;
        let matched = self.router.at(&normalized).ok()?;
        self.shapes[*matched.value].iter().find(|t| t.methods.contains(&method))
    }

    /// The form routes are stored in, or `None` for a path no route can have: not starting with
    /// `/`, or with an empty segment anywhere but at the end ("/files//x").
    fn normalized(path: &str) -> Option<Cow<'_, str>> {
        if !path.starts_with('/') || path.contains("//") {
            return None;
        }
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            t => t,
        };
        Some(if trimmed.contains('%') {
            Cow::Owned(normalize(trimmed))
        } else {
            Cow::Borrowed(trimmed)
        })
    }

    pub fn find(&self, method: HttpMethod, raw_path: &str) -> RouteMatch<'_> {
        let path = raw_path.split(['?', '#']).next().unwrap_or("");
        let Some(normalized) = Self::normalized(path) else {
            return RouteMatch::NotFound;
        };
        let Ok(matched) = self.router.at(&normalized) else {
            return RouteMatch::NotFound;
        };
        let targets = &self.shapes[*matched.value];
        let Some(target) = targets.iter().find(|t| t.methods.contains(&method)) else {
            let allowed = targets.iter().flat_map(|t| t.methods.iter().copied()).collect();
            return RouteMatch::MethodNotAllowed { allowed };
        };
        let names = target.path.params();
        let params = matched
            .params
            .iter()
            .filter_map(|(key, value)| {
                let index: usize = key.strip_prefix('p')?.parse().ok()?;
                let name = names.get(index.checked_sub(1)?)?;
                Some((
                    (*name).to_owned(),
                    percent_decode_str(value).decode_utf8_lossy().into_owned(),
                ))
            })
            .collect();
        RouteMatch::Found { target, params }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn target(id: &str, methods: &[&str], path: &str) -> RouteTarget {
        RouteTarget {
            endpoint_id: id.to_owned(),
            path: path.parse().unwrap(),
            methods: methods.iter().map(|m| m.parse().unwrap()).collect(),
        }
    }

    fn table() -> RouteTable {
        let mut t = RouteTable::new();
        t.insert(target("list", &["GET"], "/files")).unwrap();
        t.insert(target("one", &["GET", "HEAD"], "/files/{id}")).unwrap();
        t.insert(target("delete", &["DELETE"], "/files/{file_id}")).unwrap();
        t.insert(target("recent", &["GET"], "/files/recent")).unwrap();
        t.insert(target("version", &["GET"], "/files/{id}/versions/{version}"))
            .unwrap();
        t.insert(target("root", &["GET"], "/")).unwrap();
        t
    }

    fn found(t: &RouteTable, m: &str, path: &str) -> Option<(String, BTreeMap<String, String>)> {
        let method = m.parse().unwrap();
        let found = match t.find(method, path) {
            RouteMatch::Found { target, params } => Some((target.endpoint_id.clone(), params)),
            _ => None,
        };
        assert_eq!(
            t.target(method, path).map(|x| &x.endpoint_id),
            found.as_ref().map(|(id, _)| id),
            "the edge's lookup and find disagree on {m} {path}"
        );
        found
    }

    #[test]
    fn templates_static_segments_methods_and_trailing_slashes() {
        let t = table();
        assert_eq!(found(&t, "GET", "/files").unwrap().0, "list");
        assert_eq!(found(&t, "GET", "/files/").unwrap().0, "list");
        assert_eq!(
            found(&t, "GET", "/files/recent").unwrap().0,
            "recent",
            "static before parameter"
        );
        let (id, params) = found(&t, "GET", "/files/42?x=1").unwrap();
        assert_eq!((id.as_str(), params["id"].as_str()), ("one", "42"));
        let (id, params) = found(&t, "DELETE", "/files/42").unwrap();
        assert_eq!(
            (id.as_str(), params["file_id"].as_str()),
            ("delete", "42"),
            "each endpoint's own names"
        );
        assert_eq!(found(&t, "GET", "/files/7/versions/3/").unwrap().1["version"], "3");
        assert_eq!(found(&t, "GET", "/").unwrap().0, "root");
        assert_eq!(
            t.find(HttpMethod::Post, "/files/42"),
            RouteMatch::MethodNotAllowed {
                allowed: [HttpMethod::Get, HttpMethod::Delete, HttpMethod::Head].into()
            }
        );
        assert_eq!(t.find(HttpMethod::Get, "/nope"), RouteMatch::NotFound);
        assert_eq!(t.find(HttpMethod::Get, "/files//42"), RouteMatch::NotFound);
        assert_eq!(t.find(HttpMethod::Get, "files"), RouteMatch::NotFound);
    }

    #[test]
    fn percent_encoding_is_normalised_but_never_splits_segments() {
        let t = table();
        assert_eq!(found(&t, "GET", "/fil%65s/recent").unwrap().0, "recent", "%65 is 'e'");
        let (id, params) = found(&t, "GET", "/files/a%2Fb").unwrap();
        assert_eq!((id.as_str(), params["id"].as_str()), ("one", "a/b"));
        assert_eq!(found(&t, "GET", "/files/caf%C3%A9").unwrap().1["id"], "café");
        assert_eq!(
            found(&t, "GET", "/files/%zz").unwrap().1["id"],
            "%zz",
            "malformed escapes stay literal"
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_-]{0,8}"
    }

    proptest! {
        #[test]
        fn any_registered_template_matches_its_own_concrete_paths(
            statics in proptest::collection::vec(segment(), 1..5),
            param_at in proptest::collection::vec(any::<bool>(), 1..5),
            values in proptest::collection::vec("[^/?#]{1,12}", 5),
            trailing in any::<bool>(),
        ) {
            let mut template = String::new();
            let mut concrete = String::new();
            let mut expected = BTreeMap::new();
            for (i, s) in statics.iter().enumerate() {
                if param_at.get(i).copied().unwrap_or(false) {
                    let name = format!("p_{i}");
                    template.push_str(&format!("/{{{name}}}"));
                    let value = &values[i % values.len()];
                    concrete.push('/');
                    concrete.push_str(&percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string());
                    expected.insert(name, value.clone());
                } else {
                    template.push('/');
                    template.push_str(s);
                    concrete.push('/');
                    concrete.push_str(s);
                }
            }
            if trailing {
                concrete.push('/');
            }
            let mut t = RouteTable::new();
            t.insert(target("x", &["GET"], &template)).unwrap();
            let (id, params) = found(&t, "GET", &concrete).expect("matches");
            prop_assert_eq!(id, "x");
            prop_assert_eq!(params, expected);
        }

        #[test]
        fn finding_never_panics_and_the_edge_lookup_agrees(path in "(/[a-z0-9%/{}._-]{0,12}){0,4}|.{0,40}") {
            let t = table();
            let found = match t.find(HttpMethod::Get, &path) {
                RouteMatch::Found { target, .. } => Some(&target.endpoint_id),
                _ => None,
            };
            prop_assert_eq!(t.target(HttpMethod::Get, &path).map(|x| &x.endpoint_id), found);
        }
    }
}
