//! Bodies for chat platforms, and their limits checked on whatever body is about to be sent
//! (built in or from a custom template): a body that breaks one is refused by the platform,
//! so the test endpoint says which.

use super::message::Message;
use serde::Serialize;
use serde_json::{json, Value};

/// A platform limit a body breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitBroken {
    pub platform: &'static str,
    pub limit: String,
    pub actual: usize,
}

fn broken(platform: &'static str, limit: &str, actual: usize) -> LimitBroken {
    LimitBroken {
        platform,
        limit: limit.to_owned(),
        actual,
    }
}

/// Slack: a header, the fields in a section, a context line; `text` is the notification's
/// fallback.
pub fn slack(m: &Message) -> Value {
    let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": m.title() } })];
    let fields: Vec<Value> = m
        .fields()
        .into_iter()
        .map(|(name, value)| json!({ "type": "mrkdwn", "text": format!("*{name}*\n{value}") }))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": m.context() }] }));
    json!({ "text": m.summary(), "blocks": blocks })
}

/// Microsoft Teams through a Workflows webhook: a message holding one Adaptive Card.
pub fn teams(m: &Message) -> Value {
    let facts: Vec<Value> = m
        .fields()
        .into_iter()
        .map(|(name, value)| json!({ "title": name, "value": value }))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": m.summary(), "weight": "Bolder", "size": "Medium", "wrap": true },
                    { "type": "FactSet", "facts": facts },
                    { "type": "TextBlock", "text": m.context(), "isSubtle": true, "size": "Small", "wrap": true },
                ],
            },
        }],
    })
}

/// Discord: the summary as content and one embed with the fields.
pub fn discord(m: &Message) -> Value {
    let fields: Vec<Value> = m
        .fields()
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value, "inline": true }))
        .collect();
    json!({
        "content": m.summary(),
        "embeds": [{
            "title": m.title(),
            "fields": fields,
            "footer": { "text": m.context() },
            "timestamp": m.timestamp.to_rfc3339(),
        }],
    })
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// The limits `body` breaks on each platform whose shape it has: Slack (`blocks`), Discord
/// (`embeds` or `content` without `blocks`), Teams (an Adaptive Card attachment).
pub fn limits_broken(body: &Value) -> Vec<LimitBroken> {
    let mut out = Vec::new();
    if let Some(blocks) = body.get("blocks").and_then(Value::as_array) {
        slack_limits(blocks, &mut out);
    } else if body.get("embeds").is_some() || body.get("content").is_some() {
        discord_limits(body, &mut out);
    }
    let adaptive = body.get("attachments").and_then(Value::as_array).is_some_and(|a| {
        a.iter()
            .any(|a| a["contentType"] == "application/vnd.microsoft.card.adaptive")
    });
    if adaptive {
        // Teams refuses a message over about 28 KB.
        let size = body.to_string().len();
        if size > 28 * 1024 {
            out.push(broken("teams", "28 KB in all", size));
        }
    }
    out
}

fn slack_limits(blocks: &[Value], out: &mut Vec<LimitBroken>) {
    if blocks.len() > 50 {
        out.push(broken("slack", "50 blocks", blocks.len()));
    }
    for block in blocks {
        let text = chars(&block["text"]["text"]);
        match block["type"].as_str() {
            Some("header") if text > 150 => out.push(broken("slack", "150 characters in a header", text)),
            Some("section") => {
                if text > 3000 {
                    out.push(broken("slack", "3,000 characters in a section", text));
                }
                let fields = block["fields"].as_array().map_or(&[][..], Vec::as_slice);
                if fields.len() > 10 {
                    out.push(broken("slack", "10 fields in a section", fields.len()));
                }
                if let Some(long) = fields.iter().map(|f| chars(&f["text"])).filter(|n| *n > 2000).max() {
                    out.push(broken("slack", "2,000 characters in a field", long));
                }
            }
            _ => {}
        }
    }
}

fn discord_limits(body: &Value, out: &mut Vec<LimitBroken>) {
    let content = chars(&body["content"]);
    if content > 2000 {
        out.push(broken("discord", "2,000 characters of content", content));
    }
    let embeds = body["embeds"].as_array().map_or(&[][..], Vec::as_slice);
    if embeds.len() > 10 {
        out.push(broken("discord", "10 embeds", embeds.len()));
    }
    // Discord counts the text of every embed together: titles, descriptions, field names and
    // values, footers and authors.
    let text: usize = embeds
        .iter()
        .map(|e| {
            let fields = e["fields"].as_array().map_or(&[][..], Vec::as_slice);
            chars(&e["title"])
                + chars(&e["description"])
                + chars(&e["footer"]["text"])
                + chars(&e["author"]["name"])
                + fields
                    .iter()
                    .map(|f| chars(&f["name"]) + chars(&f["value"]))
                    .sum::<usize>()
        })
        .sum();
    if text > 6000 {
        out.push(broken("discord", "6,000 characters in all embeds", text));
    }
}
