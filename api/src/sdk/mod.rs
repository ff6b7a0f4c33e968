//! SDK generation: ZIP files of client libraries for the tenant's endpoints, rendered from the
//! templates in `api/templates/sdk/` (minijinja) and the model in `model.rs`.

pub mod model;
mod names;

use crate::error::ApiError;
use minijinja::{AutoEscape, Environment};
use model::SdkModel;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Typescript,
    Javascript,
    Php,
    Curl,
}

impl Language {
    pub const ALL: [Language; 5] = [
        Language::Python,
        Language::Typescript,
        Language::Javascript,
        Language::Php,
        Language::Curl,
    ];

    pub fn parse(name: &str) -> Option<Language> {
        match name {
            "python" => Some(Language::Python),
            "typescript" => Some(Language::Typescript),
            "javascript" => Some(Language::Javascript),
            "php" => Some(Language::Php),
            "curl" => Some(Language::Curl),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Typescript => "typescript",
            Language::Javascript => "javascript",
            Language::Php => "php",
            Language::Curl => "curl",
        }
    }

    /// (template, path inside the ZIP's top folder).
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::Python => &[
                ("python/pyproject.toml.j2", "pyproject.toml"),
                ("python/README.md.j2", "README.md"),
                ("python/__init__.py.j2", "keyledger_client/__init__.py"),
                ("python/client.py.j2", "keyledger_client/client.py"),
                ("python/errors.py.j2", "keyledger_client/errors.py"),
                ("python/types.py.j2", "keyledger_client/types.py"),
                ("empty", "keyledger_client/py.typed"),
            ],
            Language::Typescript => &[
                ("typescript/index.ts.j2", "src/index.ts"),
                ("typescript/package.json.j2", "package.json"),
                ("typescript/tsconfig.json.j2", "tsconfig.json"),
                ("typescript/README.md.j2", "README.md"),
            ],
            Language::Javascript => &[
                ("javascript/index.js.j2", "index.js"),
                ("javascript/package.json.j2", "package.json"),
                ("javascript/README.md.j2", "README.md"),
            ],
            Language::Php => &[
                ("php/KeyledgerClient.php.j2", "src/KeyledgerClient.php"),
                ("php/Exceptions.php.j2", "src/Exceptions.php"),
                ("php/composer.json.j2", "composer.json"),
                ("php/README.md.j2", "README.md"),
            ],
            Language::Curl => &[("curl/README.md.j2", "README.md")],
        }
    }
}

/// The templates, compiled into the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("empty", ""),
    (
        "python/pyproject.toml.j2",
        include_str!("../../templates/sdk/python/pyproject.toml.j2"),
    ),
    (
        "python/README.md.j2",
        include_str!("../../templates/sdk/python/README.md.j2"),
    ),
    (
        "python/__init__.py.j2",
        include_str!("../../templates/sdk/python/__init__.py.j2"),
    ),
    (
        "python/client.py.j2",
        include_str!("../../templates/sdk/python/client.py.j2"),
    ),
    (
        "python/errors.py.j2",
        include_str!("../../templates/sdk/python/errors.py.j2"),
    ),
    (
        "python/types.py.j2",
        include_str!("../../templates/sdk/python/types.py.j2"),
    ),
    (
        "typescript/index.ts.j2",
        include_str!("../../templates/sdk/typescript/index.ts.j2"),
    ),
    (
        "typescript/package.json.j2",
        include_str!("../../templates/sdk/typescript/package.json.j2"),
    ),
    (
        "typescript/tsconfig.json.j2",
        include_str!("../../templates/sdk/typescript/tsconfig.json.j2"),
    ),
    (
        "typescript/README.md.j2",
        include_str!("../../templates/sdk/typescript/README.md.j2"),
    ),
    (
        "javascript/index.js.j2",
        include_str!("../../templates/sdk/javascript/index.js.j2"),
    ),
    (
        "javascript/package.json.j2",
        include_str!("../../templates/sdk/javascript/package.json.j2"),
    ),
    (
        "javascript/README.md.j2",
        include_str!("../../templates/sdk/javascript/README.md.j2"),
    ),
    (
        "php/KeyledgerClient.php.j2",
        include_str!("../../templates/sdk/php/KeyledgerClient.php.j2"),
    ),
    (
        "php/Exceptions.php.j2",
        include_str!("../../templates/sdk/php/Exceptions.php.j2"),
    ),
    (
        "php/composer.json.j2",
        include_str!("../../templates/sdk/php/composer.json.j2"),
    ),
    ("php/README.md.j2", include_str!("../../templates/sdk/php/README.md.j2")),
    (
        "curl/README.md.j2",
        include_str!("../../templates/sdk/curl/README.md.j2"),
    ),
];

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // The output is code, not HTML: escaping belongs to the templates (tojson, replace).
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()?;
    env.set_syntax(syntax);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// Every file of one language's SDK: (path, content).
pub fn render(language: Language, model: &SdkModel) -> Result<Vec<(String, String)>, ApiError> {
    render_files(language, model).map_err(|e| ApiError::internal(format!("{e:#}")))
}

fn render_files(language: Language, model: &SdkModel) -> Result<Vec<(String, String)>, minijinja::Error> {
    let env = environment()?;
    let folder = format!("keyledger-client-{}", language.as_str());
    language
        .files()
        .iter()
        .map(|(template, path)| {
            let text = env.get_template(template)?.render(minijinja::value::Serde(model))?;
            Ok((format!("{folder}/{path}"), text))
        })
        .collect()
}

/// The SDK as a ZIP archive.
pub fn zip(language: Language, model: &SdkModel) -> Result<Vec<u8>, ApiError> {
    let files = render(language, model)?;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut archive = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (path, content) in files {
        archive.start_file(path, options).map_err(ApiError::internal)?;
        archive.write_all(content.as_bytes()).map_err(ApiError::internal)?;
    }
    archive.finish().map_err(ApiError::internal)?;
    Ok(buffer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyledger_projections::endpoints::EndpointRow;

    fn row(methods: &[&str], path: &str, request: Option<serde_json::Value>) -> EndpointRow {
        EndpointRow {
            id: path.to_owned(),
            route_id: String::new(),
            path: path.to_owned(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            plugin: "Files".into(),
            description: "Do a thing\n\nwith \"\"\" quotes */ and 'apostrophes'".into(),
            required_scopes: vec!["FILES_READ".into()],
            request_schema: request,
            response_schema: Some(
                serde_json::json!({ "type": "object", "properties": { "id": { "type": "string" } } }),
            ),
            upstream_url: "http://x".into(),
            deprecated: true,
            sunset_at: None,
            active: true,
            enabled: true,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn every_language_renders_for_awkward_endpoints() {
        let rows = [
            row(&["GET", "DELETE"], "/files/{class}/it's/{default}", None),
            row(
                &["POST"],
                "/files",
                Some(serde_json::json!({ "type": "object", "properties": { "a-b": { "type": "string" } } })),
            ),
            row(&["GET"], "/", None),
        ];
        let model = model::build("acme", "https://api.example.com", &rows);
        for language in Language::ALL {
            let files = render_files(language, &model).unwrap_or_else(|e| panic!("{language:?}: {e:#}"));
            assert!(files.iter().any(|(p, _)| p.ends_with("README.md")), "{language:?}");
            let all: String = files.iter().map(|(_, c)| c.as_str()).collect();
            assert!(
                !all.contains("{{") || language == Language::Curl,
                "{language:?} left a template tag"
            );
        }
        let python = render(Language::Python, &model).unwrap();
        let client = &python.iter().find(|(p, _)| p.ends_with("client.py")).unwrap().1;
        assert!(
            client.contains(
                "def get_files_by_class_it_s_by_default(\n        self,\n        class_: str,\n        default: str,"
            ),
            "{client}"
        );
        let php = render(Language::Php, &model).unwrap();
        let php_client = &php.iter().find(|(p, _)| p.ends_with("KeyledgerClient.php")).unwrap().1;
        assert!(
            php_client.contains(r"'/files/' . self::seg($class) . '/it\'s/' . self::seg($default) . ''"),
            "{php_client}"
        );
        assert!(zip(Language::Typescript, &model).unwrap().starts_with(b"PK"));
    }
}
