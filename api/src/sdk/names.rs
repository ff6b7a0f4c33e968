//! Names that are valid identifiers in each SDK language: case conversions, and reserved words
//! avoided.

use heck::{ToLowerCamelCase, ToSnakeCase, ToUpperCamelCase};

pub const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "match", "case", "self", "query", "body",
];
pub const JS_KEYWORDS: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "let",
    "static",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
    "await",
    "arguments",
    "eval",
    "options",
    "query",
    "body",
];
pub const PHP_RESERVED: &[&str] = &["this", "query", "body", "options"];

/// `fileId`, `file-id`, `FILE_ID` → `file_id`; never empty, never starting with a digit.
pub fn snake(s: &str) -> String {
    let out: String = s
        .to_snake_case()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let out = out.trim_matches('_').to_owned();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("p_{out}")
    } else {
        out
    }
}

/// `file_id` → `fileId`.
pub fn camel(s: &str) -> String {
    snake(s).to_lower_camel_case()
}

pub fn pascal(s: &str) -> String {
    snake(s).to_upper_camel_case()
}

pub fn avoid(name: String, reserved: &[&str]) -> String {
    if reserved.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}
