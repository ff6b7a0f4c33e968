use crate::api_key::KeyStatus;
use crate::ip_rules::IpRuleError;
use crate::scope::Scope;

/// The rules an ApiKey command can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("this key has already been issued")]
    KeyAlreadyIssued,
    #[error("key not found")]
    KeyNotFound,
    #[error("you cannot grant scope {scope}: you do not hold it")]
    ScopeNotGrantable { scope: Scope },
    #[error("expires_at must be in the future")]
    ExpiryInPast,
    #[error("the key is {status} and can no longer be changed")]
    KeyNotActive { status: KeyStatus },
    #[error("the key is already revoked")]
    KeyAlreadyRevoked,
    #[error("grace period must be between 0 seconds and 7 days")]
    GraceOutOfRange,
    #[error("revocation reason must be at most 500 characters")]
    ReasonTooLong,
    #[error(transparent)]
    IpRules(#[from] IpRuleError),
}
