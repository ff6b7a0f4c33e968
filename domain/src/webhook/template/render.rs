//! A delivery's body, as its subscription's template makes it.

use super::chat::{self, LimitBroken};
use super::message::Message;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a template makes of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// The event as JSON (the Standard Webhooks payload).
    Default,
    Slack,
    Teams,
    Discord,
    /// The admin's own template (minijinja) over the event's fields.
    Custom,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 5] = [
        TemplateKind::Default,
        TemplateKind::Slack,
        TemplateKind::Teams,
        TemplateKind::Discord,
        TemplateKind::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Default => "default",
            TemplateKind::Slack => "slack",
            TemplateKind::Teams => "teams",
            TemplateKind::Discord => "discord",
            TemplateKind::Custom => "custom",
        }
    }
}

impl std::str::FromStr for TemplateKind {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TemplateKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(TemplateError::UnknownKind)
    }
}

/// Work a custom template may do for one event (minijinja's fuel: about one unit per
/// instruction), so that a loop cannot hold a delivery worker.
const FUEL: u64 = 50_000;
/// Bytes a body may have.
pub const MAX_BODY: usize = 256 * 1024;
/// Characters a custom template may have.
pub const MAX_TEMPLATE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template kind; known: default, slack, teams, discord, custom")]
    UnknownKind,
    #[error("a custom template needs a body")]
    NoBody,
    #[error("only a custom template has a body")]
    BodyNotCustom,
    #[error("the template is longer than {MAX_TEMPLATE} characters")]
    TooLong,
    #[error("line {line}: {reason}")]
    Invalid { line: usize, reason: String },
    #[error("the template did not render: {0}")]
    Render(String),
    #[error("the body is larger than {MAX_BODY} bytes")]
    BodyTooLarge,
}

/// A custom template's text, known to compile.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomTemplate(String);

impl fmt::Debug for CustomTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomTemplate({} characters)", self.0.chars().count())
    }
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(FUEL));
    // Bodies are JSON or text, not HTML: values go in as they are (`|tojson` quotes them).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

impl TryFrom<String> for CustomTemplate {
    type Error = TemplateError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.chars().count() > MAX_TEMPLATE {
            return Err(TemplateError::TooLong);
        }
        let env = environment();
        match env.template_from_str(&text) {
            Ok(_) => Ok(CustomTemplate(text)),
            Err(e) => Err(TemplateError::Invalid {
                line: e.line().unwrap_or(1),
                reason: e.detail().unwrap_or("syntax error").to_owned(),
            }),
        }
    }
}

impl From<CustomTemplate> for String {
    fn from(t: CustomTemplate) -> String {
        t.0
    }
}

impl CustomTemplate {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a template makes: the body, its content type, and the platform limits it breaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rendered {
    pub body: String,
    pub content_type: &'static str,
    pub limits_broken: Vec<LimitBroken>,
}

/// The body of `message` for a template of `kind` (`custom` with its text).
pub fn render(
    kind: TemplateKind,
    custom: Option<&CustomTemplate>,
    message: &Message,
) -> Result<Rendered, TemplateError> {
    let json = match kind {
        TemplateKind::Default => message.payload(),
        TemplateKind::Slack => chat::slack(message),
        TemplateKind::Teams => chat::teams(message),
        TemplateKind::Discord => chat::discord(message),
        TemplateKind::Custom => return render_custom(custom.ok_or(TemplateError::NoBody)?, message),
    };
    let body = json.to_string();
    if body.len() > MAX_BODY {
        return Err(TemplateError::BodyTooLarge);
    }
    Ok(Rendered {
        limits_broken: chat::limits_broken(&json),
        body,
        content_type: "application/json",
    })
}

fn render_custom(template: &CustomTemplate, message: &Message) -> Result<Rendered, TemplateError> {
    let mut context = message.payload();
    context["id"] = message.id.clone().into();
    context["title"] = message.title().into();
    context["summary"] = message.summary().into();
    let body = environment()
        .render_str(template.as_str(), minijinja::value::Serde(&context))
        .map_err(|e| TemplateError::Render(e.to_string()))?;
    if body.len() > MAX_BODY {
        return Err(TemplateError::BodyTooLarge);
    }
    Ok(match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(json) => Rendered {
            limits_broken: chat::limits_broken(&json),
            body,
            content_type: "application/json",
        },
        Err(_) => Rendered {
            body,
            content_type: "text/plain; charset=utf-8",
            limits_broken: Vec::new(),
        },
    })
}
