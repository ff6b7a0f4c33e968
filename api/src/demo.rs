//! The demo catalogue `keyledger demo seed` loads: the platform's plugins as OpenAPI documents,
//! so a new user sees a populated explorer (and has import examples to copy).

/// (plugin, upstream path below the demo base URL, document).
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("Files", "files", include_str!("../demo/files.yaml")),
    ("Chat", "chat", include_str!("../demo/chat.yaml")),
    ("Agents", "agents", include_str!("../demo/agents.yaml")),
    ("Knowledge", "knowledge", include_str!("../demo/knowledge.yaml")),
    ("Reports", "reports", include_str!("../demo/reports.yaml")),
    (
        "Organizations",
        "organizations",
        include_str!("../demo/organizations.yaml"),
    ),
    (
        "Integrations",
        "integrations",
        include_str!("../demo/integrations.yaml"),
    ),
    ("Analytics", "analytics", include_str!("../demo/analytics.yaml")),
    ("Scheduler", "scheduler", include_str!("../demo/scheduler.yaml")),
    ("Bots", "bots", include_str!("../demo/bots.yaml")),
    ("Collections", "collections", include_str!("../demo/collections.yaml")),
];
