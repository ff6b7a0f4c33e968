//! Keyledger's domain: aggregates, commands, events and value objects.
//!
//! Pure by design: no I/O, no clock, no randomness. Times arrive inside commands (read by the
//! application layer from its injected clock); secrets arrive already generated and hashed.

pub mod admin_token;
pub mod api_key;
pub mod endpoint;
pub mod ip_rules;
pub mod key_format;
pub mod name;
pub mod permission;
pub mod rate_limits;
pub mod route;
pub mod scope;
pub mod tenant;
pub mod usage;
pub mod webhook;

pub use admin_token::{AdminToken, AdminTokenCommand, AdminTokenError, AdminTokenEvent};
pub use api_key::{ApiKey, ApiKeyCommand, ApiKeyError, ApiKeyEvent, KeyStatus};
pub use endpoint::{Endpoint, EndpointCommand, EndpointError, EndpointEvent};
pub use permission::{Actor, Permission};
pub use scope::{Scope, ScopeGrant};
pub use tenant::TenantId;

#[cfg(test)]
mod robustness {
    //! Whatever a client sends, parsing answers Ok or a typed error: never a panic.

    use crate::ip_rules::CidrRule;
    use crate::key_format::{Environment, LookupId, PlaintextKey};
    use crate::name::Name;
    use crate::{Scope, TenantId};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(raw in any::<String>()) {
            let _ = PlaintextKey::parse(&raw);
            let _ = CidrRule::try_from(raw.clone());
            let _ = Name::try_from(raw.clone());
            let _ = TenantId::try_from(raw.clone());
            let _ = Scope::try_from(raw.clone());
            let _ = raw.parse::<crate::webhook::target::WebhookUrl>();
            let _ = raw.parse::<crate::webhook::EventType>();
            let _ = raw.parse::<crate::webhook::signature::SigningSecret>();
            let _ = crate::webhook::EventTypes::parse(&[raw.as_str()]);
            let _ = LookupId::try_from(raw);
        }

        #[test]
        fn webhook_urls_and_secrets_never_panic(rest in r"[a-z0-9:/@#?.\[\]%=+_-]{0,80}") {
            let _ = format!("https://{rest}").parse::<crate::webhook::target::WebhookUrl>();
            let _ = format!("whsec_{rest}").parse::<crate::webhook::signature::SigningSecret>();
        }

        #[test]
        fn key_like_strings_never_panic(body in "[A-Za-z0-9\\-_é]{0,60}") {
            let _ = PlaintextKey::parse(&format!("ak_live_{body}"));
        }

        #[test]
        fn any_single_character_change_breaks_the_checksum(lookup in "[A-Za-z0-9]{12}", secret in "[A-Za-z0-9]{24}", at in 8usize..50, c in "[A-Za-z0-9]") {
            let key = PlaintextKey::compose(Environment::Live, LookupId::try_from(lookup).unwrap(), &secret).unwrap();
            let mut typo = key.expose().to_owned();
            let original = typo.as_bytes()[at] as char;
            prop_assume!(original.to_string() != c);
            typo.replace_range(at..at + 1, &c);
            prop_assert!(PlaintextKey::parse(&typo).is_err());
        }
    }
}
