//! HTTP methods and path templates of the endpoints Keyledger protects.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

pub const MAX_PATH_LEN: usize = 512;
pub const MAX_SEGMENTS: usize = 32;
const MAX_PARAM_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl HttpMethod {
    pub const ALL: [HttpMethod; 7] = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
        HttpMethod::Head,
        HttpMethod::Options,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
        }
    }

    /// Whether requests of this method carry a body (what SDKs and the explorer send).
    pub fn has_body(self) -> bool {
        matches!(self, HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("unknown HTTP method {0:?}; use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS")]
    Method(String),
    #[error("path must start with '/' and be at most {MAX_PATH_LEN} characters")]
    PathShape,
    #[error("path has an empty segment ('//')")]
    EmptySegment,
    #[error("path has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
    #[error("segment {0:?} has a character that is not allowed in a URL path")]
    SegmentCharacters(String),
    #[error("parameter {0:?} must be a whole segment named like {{id}} (letters, digits, '_', '-')")]
    Parameter(String),
    #[error("parameter {{{0}}} appears twice")]
    DuplicateParameter(String),
}

impl TryFrom<String> for HttpMethod {
    type Error = RouteError;
    fn try_from(raw: String) -> Result<Self, RouteError> {
        raw.parse()
    }
}

impl std::str::FromStr for HttpMethod {
    type Err = RouteError;
    /// Case-insensitive, surrounding spaces ignored; parses every edge request, so it allocates
    /// only to report an error.
    fn from_str(raw: &str) -> Result<Self, RouteError> {
        let trimmed = raw.trim();
        HttpMethod::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| RouteError::Method(raw.to_owned()))
    }
}

impl From<HttpMethod> for String {
    fn from(m: HttpMethod) -> String {
        m.as_str().to_owned()
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One segment of a template: literal text or a named parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Static(&'a str),
    Param(&'a str),
}

/// A path template such as `/files/{id}/versions`. Parameters are whole segments; a trailing
/// slash is dropped, so `/files/` and `/files` are one route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathTemplate(String);

/// RFC 3986 `pchar` minus '%' (checked separately) and the braces of parameters.
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

fn valid_percent_encoding(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

impl TryFrom<String> for PathTemplate {
    type Error = RouteError;
    fn try_from(raw: String) -> Result<Self, RouteError> {
        let trimmed = raw.trim();
        if !trimmed.starts_with('/') || trimmed.len() > MAX_PATH_LEN {
            return Err(RouteError::PathShape);
        }
        let body = trimmed.trim_end_matches('/');
        if body.is_empty() {
            return Ok(PathTemplate("/".to_owned()));
        }
        let segments: Vec<&str> = body[1..].split('/').collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(RouteError::TooManySegments);
        }
        let mut names = BTreeSet::new();
        for segment in &segments {
            if segment.is_empty() {
                return Err(RouteError::EmptySegment);
            }
            if segment.contains('{') || segment.contains('}') {
                let name = segment
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .filter(|n| {
                        !n.is_empty()
                            && n.len() <= MAX_PARAM_LEN
                            && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    })
                    .ok_or_else(|| RouteError::Parameter((*segment).to_owned()))?;
                if !names.insert(name) {
                    return Err(RouteError::DuplicateParameter(name.to_owned()));
                }
            } else if !segment.chars().all(|c| is_pchar(c) || c == '%') || !valid_percent_encoding(segment) {
                return Err(RouteError::SegmentCharacters((*segment).to_owned()));
            }
        }
        Ok(PathTemplate(body.to_owned()))
    }
}

impl std::str::FromStr for PathTemplate {
    type Err = RouteError;
    fn from_str(s: &str) -> Result<Self, RouteError> {
        Self::try_from(s.to_owned())
    }
}

impl From<PathTemplate> for String {
    fn from(p: PathTemplate) -> String {
        p.0
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PathTemplate {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.0.split('/').filter(|s| !s.is_empty()).map(|s| {
            match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name),
                None => Segment::Static(s),
            }
        })
    }

    pub fn params(&self) -> Vec<&str> {
        self.segments()
            .filter_map(|s| match s {
                Segment::Param(p) => Some(p),
                Segment::Static(_) => None,
            })
            .collect()
    }

    /// The route's shape with parameter names erased: `/files/{id}` and `/files/{fileId}` are
    /// the same route and cannot both be registered.
    pub fn shape(&self) -> String {
        if self.0 == "/" {
            return "/".to_owned();
        }
        self.segments()
            .map(|s| match s {
                Segment::Static(text) => format!("/{text}"),
                Segment::Param(_) => "/{}".to_owned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Result<PathTemplate, RouteError> {
        s.parse()
    }

    #[test]
    fn templates_parse_and_normalise_trailing_slashes() {
        assert_eq!(t("/files/{id}/").unwrap().as_str(), "/files/{id}");
        assert_eq!(t("/").unwrap().as_str(), "/");
        assert_eq!(
            t("/files/{id}/versions/{version_id}").unwrap().params(),
            ["id", "version_id"]
        );
        assert_eq!(t("/files/{id}").unwrap().shape(), t("/files/{fileId}").unwrap().shape());
        assert_eq!(t("/a%20b/c").unwrap().shape(), "/a%20b/c");
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert_eq!(t("files"), Err(RouteError::PathShape));
        assert_eq!(t("/files//x"), Err(RouteError::EmptySegment));
        assert_eq!(t("/files/{id}.json"), Err(RouteError::Parameter("{id}.json".into())));
        assert_eq!(t("/files/{}"), Err(RouteError::Parameter("{}".into())));
        assert_eq!(t("/a/{id}/b/{id}"), Err(RouteError::DuplicateParameter("id".into())));
        assert_eq!(t("/a b"), Err(RouteError::SegmentCharacters("a b".into())));
        assert_eq!(t("/a%2"), Err(RouteError::SegmentCharacters("a%2".into())));
        assert_eq!(t("/a%zz"), Err(RouteError::SegmentCharacters("a%zz".into())));
        assert_eq!(t(&format!("/{}", "a/".repeat(40))), Err(RouteError::TooManySegments));
    }

    #[test]
    fn methods_parse_in_any_case() {
        assert_eq!("get".parse::<HttpMethod>(), Ok(HttpMethod::Get));
        assert!("FETCH".parse::<HttpMethod>().is_err());
    }
}
