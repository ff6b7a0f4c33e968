//! What describes a registered endpoint, as validated value objects.

use crate::route::{HttpMethod, PathTemplate};
use crate::scope::Scope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("plugin must be 1 to 64 letters, digits, spaces, '-' or '_'")]
    Plugin,
    #[error("description must be at most {MAX_DESCRIPTION_CHARS} characters")]
    Description,
    #[error("upstream_url must be an absolute http(s) URL without credentials, query or fragment: {0}")]
    Upstream(String),
    #[error("schema must be a JSON object (a JSON Schema)")]
    Schema,
}

/// The product area an endpoint belongs to ("Files", "Chat", "Agents", …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PluginName(String);

impl PluginName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PluginName {
    type Error = SpecError;
    fn try_from(raw: String) -> Result<Self, SpecError> {
        let t = raw.trim();
        let ok = !t.is_empty()
            && t.chars().count() <= 64
            && t.chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_');
        if ok {
            Ok(PluginName(t.to_owned()))
        } else {
            Err(SpecError::Plugin)
        }
    }
}

impl From<PluginName> for String {
    fn from(p: PluginName) -> String {
        p.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the plugin's service listens: requests are forwarded to `upstream + path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UpstreamUrl(String);

impl UpstreamUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UpstreamUrl {
    type Error = SpecError;
    fn try_from(raw: String) -> Result<Self, SpecError> {
        let url = url::Url::parse(raw.trim()).map_err(|e| SpecError::Upstream(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(SpecError::Upstream("scheme must be http or https with a host".into()));
        }
        // Credentials in a URL end up in logs and events; queries and fragments would be
        // silently merged with the client's.
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(SpecError::Upstream("no credentials, query or fragment".into()));
        }
        Ok(UpstreamUrl(url.as_str().trim_end_matches('/').to_owned()))
    }
}

impl From<UpstreamUrl> for String {
    fn from(u: UpstreamUrl) -> String {
        u.0
    }
}

/// A trimmed, bounded description.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Description {
    type Error = SpecError;
    fn try_from(raw: String) -> Result<Self, SpecError> {
        let t = raw.trim();
        if t.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(SpecError::Description);
        }
        Ok(Description(t.to_owned()))
    }
}

impl From<Description> for String {
    fn from(d: Description) -> String {
        d.0
    }
}

/// A JSON Schema for a request or response body, kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub struct JsonSchema(serde_json::Value);

impl JsonSchema {
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
}

impl TryFrom<serde_json::Value> for JsonSchema {
    type Error = SpecError;
    fn try_from(v: serde_json::Value) -> Result<Self, SpecError> {
        if v.is_object() {
            Ok(JsonSchema(v))
        } else {
            Err(SpecError::Schema)
        }
    }
}

impl From<JsonSchema> for serde_json::Value {
    fn from(s: JsonSchema) -> serde_json::Value {
        s.0
    }
}

/// Everything an endpoint is registered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSpec {
    pub methods: BTreeSet<HttpMethod>,
    pub path: PathTemplate,
    pub plugin: PluginName,
    pub description: Description,
    pub required_scopes: BTreeSet<Scope>,
    pub request_schema: Option<JsonSchema>,
    pub response_schema: Option<JsonSchema>,
    pub upstream_url: UpstreamUrl,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_must_be_plain_http_urls() {
        assert_eq!(
            UpstreamUrl::try_from("https://files.internal:8443/api/".to_owned())
                .unwrap()
                .as_str(),
            "https://files.internal:8443/api"
        );
        for bad in [
            "ftp://x",
            "https://user:pw@x",
            "https://x/?a=1",
            "not a url",
            "http://x/#f",
        ] {
            assert!(UpstreamUrl::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn plugins_and_descriptions_are_bounded() {
        assert!(PluginName::try_from("Knowledge Base".to_owned()).is_ok());
        assert!(PluginName::try_from("".to_owned()).is_err());
        assert!(PluginName::try_from("a/b".to_owned()).is_err());
        assert!(Description::try_from("x".repeat(2001)).is_err());
        assert!(JsonSchema::try_from(serde_json::json!([1])).is_err());
    }
}
